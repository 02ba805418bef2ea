using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>
/// Data parallelism: N ranks train one model, each on its slice of every global minibatch (see
/// <see cref="Distributed.BatchSlice"/>). A rank's gradient is the mean over its slice; weighted by its share of the
/// batch, b_r/B, and summed over the ranks, that is the mean over the global batch, which every rank then feeds
/// to the same clipping and Adam step, so the ranks' weights stay equal bit for bit.
/// </summary>
public sealed partial class Vae
{
    private float[]? localGradient, gatheredGradients;

    /// <summary>
    /// Why <paramref name="config"/> cannot be trained data parallel (null when it can). Its objective must be a
    /// mean of per-example terms: then the slices' weighted means are the batch's. Batch norm's statistics, the
    /// MMD between the batch's codes and the prior, the target rate's sign of the batch's KL against σ, and the
    /// mutual autoencoder's information estimate over the batch are functions of the whole batch, which no rank
    /// sees.
    /// </summary>
    public static string? DataParallelRefusal(VaeConfig config)
    {
        const string split = ", and the minibatch is split over the ranks: run it as one process (without mpirun or srun)";
        if (config.BatchNorm)
            return "@BatchNorm normalises with the statistics of the whole minibatch" + split;
        if (config.TargetRate is not null)
            return "@TargetRate weights the KL by the sign of the whole minibatch's KL against the target" + split;
        if (config.Spec.WholeBatchTerm is { } term)
            return $"@Model {config.Spec.Name}'s {term}" + split;
        return null;
    }

    /// <summary>
    /// Replaces this rank's gradient (the mean over its <paramref name="localCount"/> examples) with the global
    /// batch's mean: Σ_r (b_r/B)·g_r over the ranks that had examples, added in rank order in double on every rank
    /// (the same numbers everywhere, and from run to run). Waits for the device.
    /// </summary>
    private void CombineGradients(int localCount, int globalBatch)
    {
        int length = Layout.Count, size = Ranks.Size;
        localGradient ??= new float[length];
        gatheredGradients ??= new float[(long)length * size];
        kernels.Synchronize();
        if (localCount > 0)
            gradients.View.SubView(0, length).CopyToCPU(localGradient);
        Ranks.AllGather(localGradient, gatheredGradients);
        var combined = new double[length];
        for (int rank = 0; rank < size; rank++)
        {
            int count = Distributed.BatchSlice.Of(globalBatch, rank, size).Count;
            if (count == 0)
                continue; // a rank without examples sent whatever its buffer held
            double share = (double)count / globalBatch;
            var part = gatheredGradients.AsSpan(rank * length, length);
            for (int i = 0; i < length; i++)
                combined[i] += share * part[i];
        }
        for (int i = 0; i < length; i++)
            localGradient[i] = (float)combined[i];
        gradients.View.SubView(0, length).CopyFromCPU(localGradient);
    }
}
