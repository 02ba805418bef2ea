using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Log importance weights for the k-sample bound (IWAE) and the importance-sampled log-likelihood:
/// log w = log p(x|z) + log p(z) − log q(z|x) with z = μ + σ·ε, where
/// log p(z) = −½Σ(z² + log 2π) and log q(z|x) = −½Σ(ε² + v + log 2π); the log 2π terms cancel, so
/// log w = −rec − ½Σ z² + ½Σ(ε² + v). One thread per row (one z sample); with s samples per example, row r
/// belongs to example r / s (see <see cref="Reparameterize"/>).
/// </summary>
public static class ImportanceWeights
{
    /// <summary>−L_k per example and the normalised weights w̃ from log-weights [examples·samples].</summary>
    public static void ImportanceBound(this KernelSet kernels, ArrayView<float> logWeights, ArrayView<float> normalizedWeights,
        ArrayView<float> negativeBound, int examples, int samples) =>
        kernels.Launch(BoundKernel, examples, logWeights, normalizedWeights, negativeBound, samples);

    public static void LogWeights(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, int rows, int latent, int samples = 1) =>
        kernels.Launch(LogWeightKernel, rows, stats, z, epsilon, reconstructionPerRow, logWeights, latent, samples);

    /// <summary>log w = −rec − (the row's sampled KL term log q(z|x) − log p(z)), for the latents whose KL term is
    /// sampled at the drawn z (planar flows, a mixture prior).</summary>
    public static void SampledKlLogWeights(this KernelSet kernels, ArrayView<float> klPerRow, ArrayView<float> reconstructionPerRow,
        ArrayView<float> logWeights, int rows) =>
        kernels.Launch(SampledKlLogWeightKernel, rows, klPerRow, reconstructionPerRow, logWeights);

    [Kernel]
    public static void SampledKlLogWeightKernel(Index1D row, ArrayView<float> klPerRow, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights) =>
        logWeights[row] = -reconstructionPerRow[row] - klPerRow[row];

    [Kernel]
    public static void LogWeightKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> z,
        ArrayView<float> epsilon,
        ArrayView<float> reconstructionPerRow,
        ArrayView<float> logWeights,
        int latent,
        int samples)
    {
        int statsRow = row / samples * 2 * latent;
        // Accumulated in float: for latent ≤ a few hundred the sums stay within a few ulps relative, far below
        // the Monte Carlo spread of log w.
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            int index = row * latent + k;
            float code = z[index], eps = epsilon[index];
            sum += eps * eps + stats[statsRow + latent + k] - code * code;
        }
        logWeights[row] = 0.5f * sum - reconstructionPerRow[row];
    }

    /// <summary>
    /// The k-sample bound of each example from its k log-weights (rows b·k .. b·k+k−1), one thread per example:
    /// L_k = logsumexp_i(log w_i) − log k, written as the loss −L_k; and the normalised weights
    /// w̃_i = exp(log w_i − logsumexp), which weight each sample's gradient. The maximum is subtracted before exp,
    /// so no weight overflows however negative the log-weights (they are around −100 nats on MNIST); weights under
    /// <see cref="StableMath.NegligibleGradient"/> are written as 0, not as subnormals.
    /// </summary>
    [Kernel]
    public static void BoundKernel(
        Index1D example,
        ArrayView<float> logWeights,
        ArrayView<float> normalizedWeights,
        ArrayView<float> negativeBound,
        int samples)
    {
        int first = example * samples;
        float largest = logWeights[first];
        for (int i = 1; i < samples; i++)
            largest = MathF.Max(largest, logWeights[first + i]);
        float sum = 0f;
        for (int i = 0; i < samples; i++)
            sum += MathF.Exp(logWeights[first + i] - largest);
        float logSumExp = largest + MathF.Log(sum);
        for (int i = 0; i < samples; i++)
            normalizedWeights[first + i] = StableMath.FlushNegligible(MathF.Exp(logWeights[first + i] - logSumExp));
        negativeBound[example] = MathF.Log(samples) - logSumExp;
    }
}
