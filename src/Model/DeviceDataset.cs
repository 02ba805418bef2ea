using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Model;

/// <summary>
/// A data set on the accelerator, with a device buffer for the current order of examples. Resident (the default):
/// uploaded once, as bytes (MNIST's 60 000 training images are 47 MB), and minibatches gathered from it on the
/// device. Streamed (for a data set larger than the device, or when asked): the bytes stay on the host, and each
/// minibatch's rows are copied from pinned host memory into one of two device slots, the next minibatch's while the
/// current one computes (see <see cref="Stage"/> and <see cref="Prefetch"/>). The gather kernel reads a slot
/// through the order buffer, whose entries for the staged positions point into it, so both ways give the same
/// minibatch bit for bit.
/// </summary>
public sealed class DeviceDataset : IDisposable
{
    private readonly MemoryBuffer1D<byte, Stride1D.Dense> images, labels;
    private readonly Accelerator accelerator;
    private MemoryBuffer1D<int, Stride1D.Dense> order;

    // Streamed only: the slots' rows, the order on the host, each slot's pinned host copy, the copy stream, and the
    // minibatch a prefetch has started (its first entry, rows and slot).
    private readonly int slotRows;
    private readonly int[][] slotIndices = [];
    private int[] hostOrder = [];
    private readonly PageLockedArray1D<byte>[] pinnedImages = [], pinnedLabels = [];
    private readonly AcceleratorStream? copyStream;
    private (int First, int Rows, int Slot)? prefetched;
    private int currentSlot = 1;

    /// <summary>Resident, or streamed through slots of <paramref name="streamRows"/> examples (at least the largest
    /// batch read) when that is given.</summary>
    public DeviceDataset(Accelerator accelerator, ImageDataset dataset, int? streamRows = null)
    {
        Source = dataset;
        this.accelerator = accelerator;
        if (streamRows is { } rows)
        {
            if (rows < 1)
                throw new ArgumentOutOfRangeException(nameof(streamRows), "a streamed data set's slots hold at least one example");
            slotRows = rows;
            // What a staged minibatch's order entries point at: its slot's rows.
            slotIndices = [Enumerable.Range(0, rows).ToArray(), Enumerable.Range(rows, rows).ToArray()];
            images = accelerator.Allocate1D<byte>(2L * rows * Math.Max(1, dataset.Features));
            labels = accelerator.Allocate1D<byte>(2L * rows);
            pinnedImages = [accelerator.AllocatePageLocked1D<byte>((long)rows * Math.Max(1, dataset.Features)),
                            accelerator.AllocatePageLocked1D<byte>((long)rows * Math.Max(1, dataset.Features))];
            pinnedLabels = [accelerator.AllocatePageLocked1D<byte>(rows), accelerator.AllocatePageLocked1D<byte>(rows)];
            copyStream = accelerator.CreateStream();
        }
        else
        {
            images = accelerator.Allocate1D(dataset.Images);
            labels = accelerator.Allocate1D(dataset.Labels.Length > 0 ? dataset.Labels : new byte[1]);
        }
        order = accelerator.Allocate1D<int>(dataset.Count);
        SetOrder(Enumerable.Range(0, dataset.Count).ToArray());
    }

    public ImageDataset Source { get; }
    public int Count => Source.Count;
    public int Features => Source.Features;
    /// <summary>Whether the bytes stay on the host and minibatches are staged (see <see cref="Stage"/>).</summary>
    public bool Streamed => copyStream is not null;
    public ArrayView<byte> Images => images.View;
    /// <summary>One label per example (the Deep VIB's targets).</summary>
    public ArrayView<byte> Labels => labels.View;
    public ArrayView<int> Order => order.View;

    /// <summary>Device bytes a data set of <paramref name="count"/> examples takes: all of it resident, or two slots
    /// of <paramref name="streamRows"/> examples streamed; and its order.</summary>
    public static long DeviceBytes(int count, int features, int? streamRows = null) =>
        (streamRows is { } rows ? 2L * rows * (features + 1) : (long)count * (features + 1)) + 4L * count;

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
        OrderLength = newOrder.Length;
        if (Streamed)
        {
            // The device order is filled per minibatch, pointing into a slot; a prefetch of the old order is void.
            hostOrder = (int[])newOrder.Clone();
            prefetched = null;
            return;
        }
        order.View.SubView(0, newOrder.Length).CopyFromCPU(newOrder);
    }

    /// <summary>Entries in the current order (steps may read order[0 .. OrderLength)).</summary>
    public int OrderLength { get; private set; }

    /// <summary>
    /// Streamed: makes order[first .. first+rows) readable by the next kernels on <paramref name="kernels"/>' stream.
    /// It waits for that stream (the step before is then done with its slot), takes the minibatch from the slot a
    /// <see cref="Prefetch"/> filled (waiting for its copy) or else copies it now into the other slot, and points
    /// the order's entries at the slot's rows. Resident: nothing to do.
    /// </summary>
    public void Stage(KernelSet kernels, int first, int rows)
    {
        if (!Streamed)
            return;
        if (rows > slotRows)
            throw new ArgumentOutOfRangeException(nameof(rows), $"a minibatch of {rows} examples does not fit the stream's slots of {slotRows}");
        kernels.Synchronize();
        int slot;
        if (prefetched is { } ahead && ahead.First == first && ahead.Rows == rows)
            slot = ahead.Slot;
        else
        {
            slot = 1 - currentSlot;
            Fill(slot, first, rows);
        }
        copyStream!.Synchronize();
        prefetched = null;
        currentSlot = slot;
        order.View.AsContiguous().SubView(first, rows).CopyFromCPU(new ReadOnlySpan<int>(slotIndices[slot], 0, rows));
    }

    /// <summary>
    /// Streamed: starts copying order[first .. first+rows) (cut at the order's end) into the slot the current
    /// minibatch does not use, on the copy stream, so that it overlaps the work just enqueued; the next
    /// <see cref="Stage"/> of the same entries takes it. Resident, or past the end: nothing to do.
    /// </summary>
    public void Prefetch(int first, int rows)
    {
        if (!Streamed || first >= OrderLength)
            return;
        rows = Math.Min(Math.Min(rows, slotRows), OrderLength - first);
        int slot = 1 - currentSlot;
        Fill(slot, first, rows);
        prefetched = (first, rows, slot);
    }

    /// <summary>The rows of order[first .. first+rows) into a slot's pinned copy, then to the device on the copy stream.
    /// A copy still under way (a prefetch that the next minibatch did not take) is waited for first: its pinned
    /// buffer and slot may be this one.</summary>
    private void Fill(int slot, int first, int rows)
    {
        copyStream!.Synchronize();
        int features = Features;
        var imageSpan = pinnedImages[slot].Span;
        var labelSpan = pinnedLabels[slot].Span;
        for (int r = 0; r < rows; r++)
        {
            int example = hostOrder[first + r];
            Source.Images.AsSpan(example * features, features).CopyTo(imageSpan.Slice(r * features, features));
            labelSpan[r] = Source.Labels.Length > 0 ? Source.Labels[example] : (byte)0;
        }
        images.View.SubView((long)slot * slotRows * features, (long)slotRows * features).CopyFromPageLockedAsync(copyStream!, pinnedImages[slot]);
        labels.View.SubView((long)slot * slotRows, slotRows).CopyFromPageLockedAsync(copyStream!, pinnedLabels[slot]);
    }

    public void Dispose()
    {
        copyStream?.Synchronize();
        images.Dispose();
        labels.Dispose();
        order.Dispose();
        foreach (var pinned in pinnedImages.Concat(pinnedLabels))
            pinned.Dispose();
        copyStream?.Dispose();
    }
}
