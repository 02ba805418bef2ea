using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Distributed;

namespace IlgpuVae.Model;

/// <summary>
/// Data parallelism: N ranks train one model, each on its slice of every global minibatch (see
/// <see cref="Distributed.BatchSlice"/>). A rank's gradient is the mean over its slice; weighted by its share of the
/// batch, b_r/B, and summed over the ranks, that is the mean over the global batch, which every rank then feeds
/// to the same clipping and Adam step, so the ranks' weights stay equal bit for bit.
/// </summary>
public sealed partial class Vae
{
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

    /// <summary>How this rank's gradients reach the others (null for one process); see <see cref="UseGradientExchange"/>.</summary>
    public GradientExchange? Exchange { get; private set; }

    /// <summary>Replaces the gradient exchange (by default the host path when there are several ranks); the tests
    /// pass exchanges of their own.</summary>
    public void UseGradientExchange(Func<GradientBuffers, GradientExchange> create)
    {
        Exchange?.Dispose();
        Exchange = create(new GradientBuffers(kernels, gradients.View.SubView(0, Layout.Count), Layout, Ranks));
    }
}
