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
    private readonly MemoryBuffer1D<byte, Stride1D.Dense> images;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> order;

    public DeviceDataset(Accelerator accelerator, ImageDataset dataset)
    {
        Source = dataset;
        images = accelerator.Allocate1D(dataset.Images);
        order = accelerator.Allocate1D<int>(dataset.Count);
        SetOrder(Enumerable.Range(0, dataset.Count).ToArray());
    }

    public ImageDataset Source { get; }
    public int Count => Source.Count;
    public int Features => Source.Features;
    public ArrayView<byte> Images => images.View;
    public ArrayView<int> Order => order.View;

    /// <summary>Uploads an epoch's order (one copy per epoch, not per step).</summary>
    public void SetOrder(int[] newOrder)
    {
        if (newOrder.Length != Count)
            throw new ArgumentException($"order has {newOrder.Length} entries for {Count} examples");
        order.View.CopyFromCPU(newOrder);
    }

    public void Dispose()
    {
        images.Dispose();
        order.Dispose();
    }
}
