using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Builds a minibatch on the device from a device-resident data set of bytes (0–255):
/// x[b, j] = data[order[first + b], j] / 255, or, with dynamic binarization, 1 when a fresh uniform draw is below
/// that grey level and 0 otherwise (a new binary image every time the example is seen).
/// </summary>
public static class Minibatch
{
    public static void Gather(this KernelSet kernels, ArrayView<byte> data, ArrayView<int> order, ArrayView<float> x, int first, int batch,
        int features, bool binarize, DrawKey binarizeKey)
    {
        var chunking = kernels.ChunkingFor(batch * features);
        kernels.Launch(GatherKernel, chunking.Threads, data, order, x, new GatherParameters(first, features, binarize), chunking, binarizeKey);
    }

    [Kernel]
    public static void GatherKernel(
        Index1D thread,
        ArrayView<byte> data,
        ArrayView<int> order,
        ArrayView<float> x,
        GatherParameters parameters,
        Chunking chunking,
        DrawKey binarizeKey)
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
        {
            int row = element / parameters.Features;
            int column = element - row * parameters.Features;
            long source = (long)order[parameters.First + row] * parameters.Features + column;
            // A true division, so the grey level is the correctly rounded float that the reference compares against.
            float grey = data[source] / 255f;
            if (parameters.Binarize != 0)
                grey = Philox.Uniform(binarizeKey.Seed, binarizeKey.Stream, binarizeKey.Step, binarizeKey.Counter(element, parameters.Features)) < grey ? 1f : 0f;
            x[element] = grey;
        }
    }
}

public readonly struct GatherParameters
{
    public readonly int First, Features, Binarize;

    public GatherParameters(int first, int features, bool binarize)
    {
        First = first;
        Features = features;
        Binarize = binarize ? 1 : 0;
    }
}

/// <summary>
/// Loss bookkeeping on the device, so training never waits on the host: one thread adds this batch's
/// reconstruction and KL sums (in a fixed order, in double) to running totals that the host reads once per
/// progress tick or epoch. totals = [Σ rec, Σ KL, rows, Σ −L_k, examples of the bound]; with s samples per
/// example the first three count z rows (so their means are averages over samples), and the last two are
/// written only by the IWAE objective.
/// </summary>
public static class LossTotals
{
    public static void AccumulateLoss(this KernelSet kernels, ArrayView<float> reconstructionPerRow, ArrayView<float> klPerRow,
        ArrayView<double> totals, int batch) =>
        kernels.Launch(AccumulateKernel, 1, reconstructionPerRow, klPerRow, totals, batch);

    /// <summary>totals[slot] += Σ values.</summary>
    public static void AccumulateCount(this KernelSet kernels, ArrayView<float> values, ArrayView<double> totals, int rows, int slot) =>
        kernels.Launch(AccumulateSumKernel, 1, values, totals, rows, slot, -1);

    /// <summary>Adds the per-example objective (−L_k, InfoVAE, target rate) and the example count to totals[3] and totals[4].</summary>
    public static void AccumulateBound(this KernelSet kernels, ArrayView<float> negativeBound, ArrayView<double> totals, int examples) =>
        kernels.Launch(AccumulateSumKernel, 1, negativeBound, totals, examples, 3, 4);

    [Kernel]
    public static void AccumulateKernel(
        Index1D thread,
        ArrayView<float> reconstructionPerRow,
        ArrayView<float> klPerRow,
        ArrayView<double> totals,
        int batch)
    {
        double reconstruction = 0, kl = 0;
        for (int row = 0; row < batch; row++)
        {
            reconstruction += reconstructionPerRow[row];
            kl += klPerRow[row];
        }
        totals[0] += reconstruction;
        totals[1] += kl;
        totals[2] += batch;
    }

    /// <summary>totals[sumSlot] += Σ values[0 .. rows), and totals[countSlot] += rows unless countSlot is
    /// negative: the per-example objective in slots 3 and 4, the Deep VIB's correct classifications in slot 5.</summary>
    [Kernel]
    public static void AccumulateSumKernel(
        Index1D thread,
        ArrayView<float> values,
        ArrayView<double> totals,
        int rows,
        int sumSlot,
        int countSlot)
    {
        double sum = 0;
        for (int row = 0; row < rows; row++)
            sum += values[row];
        totals[sumSlot] += sum;
        if (countSlot >= 0)
            totals[countSlot] += rows;
    }
}
