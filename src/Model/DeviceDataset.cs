using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Model;

/// <summary>
/// A data set uploaded to the accelerator once, as bytes (MNIST's 60 000 training images are 47 MB), with a
/// device buffer for the current epoch's order. Minibatches are gathered from it on the device.
/// </summary>
public sealed class DeviceDataset : IDisposable
{
    private readonly MemoryBuffer1D<byte, Stride1D.Dense> images, labels;
    private readonly Accelerator accelerator;
    private MemoryBuffer1D<int, Stride1D.Dense> order;

    public DeviceDataset(Accelerator accelerator, ImageDataset dataset)
    {
        Source = dataset;
        this.accelerator = accelerator;
        images = accelerator.Allocate1D(dataset.Images);
        labels = accelerator.Allocate1D(dataset.Labels.Length > 0 ? dataset.Labels : new byte[1]);
        order = accelerator.Allocate1D<int>(dataset.Count);
        SetOrder(Enumerable.Range(0, dataset.Count).ToArray());
    }

    public ImageDataset Source { get; }
    public int Count => Source.Count;
    public int Features => Source.Features;
    public ArrayView<byte> Images => images.View;
    /// <summary>One label per example (the Deep VIB's targets).</summary>
    public ArrayView<byte> Labels => labels.View;
    public ArrayView<int> Order => order.View;

    /// <summary>
    /// Uploads the sequence of examples that steps read from (one copy per epoch, not per step): usually a
    /// permutation, but any list of valid indices, such as one example repeated k times for importance sampling.
    /// </summary>
    public void SetOrder(int[] newOrder)
    {
        if (newOrder.Length == 0 || newOrder.Any(index => (uint)index >= (uint)Count))
            throw new ArgumentException($"an order needs at least one entry, each an example index below {Count}");
        if (newOrder.Length > order.Length)
        {
            order.Dispose();
            order = accelerator.Allocate1D<int>(newOrder.Length);
        }
        order.View.SubView(0, newOrder.Length).CopyFromCPU(newOrder);
        OrderLength = newOrder.Length;
    }

    /// <summary>Entries in the current order (steps may read order[0 .. OrderLength)).</summary>
    public int OrderLength { get; private set; }

    public void Dispose()
    {
        images.Dispose();
        labels.Dispose();
        order.Dispose();
    }
}
