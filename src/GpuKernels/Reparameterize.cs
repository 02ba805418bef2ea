using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>Random-draw coordinates shared by every kernel that samples: the (seed, stream, step) of Philox.</summary>
public readonly struct DrawKey
{
    public readonly ulong Seed;
    public readonly uint Stream;
    public readonly long Step;

    public DrawKey(ulong seed, uint stream, long step)
    {
        Seed = seed;
        Stream = stream;
        Step = step;
    }
}

/// <summary>
/// The Gaussian encoder's sampler fused with its KL term. The encoder's last layer writes stats [batch, 2K]:
/// μ in columns 0..K-1 and v = log σ² in columns K..2K-1. With s samples per example, z has batch·s rows in
/// example-major order (row r = b·s + i draws from stats row b = r / s); s = 1 is the ordinary VAE.
/// Forward:  ε ~ N(0, I) from Philox keyed by (seed, stream, step, r·K + k); z = μ + exp(v/2)·ε;
///           kl[r] = ½ Σ_k (exp v + μ² − 1 − v) (the analytic KL of row r's example, repeated for each sample).
/// Backward: with the objective rec + klWeight·Σ_b kl[b] (klWeight = β/batch when the loss is a batch mean),
///           dμ = Σ_i dz_i + klWeight·μ and dv = Σ_i dz_i·½·exp(v/2)·ε_i + klWeight·½(exp v − 1).
/// </summary>
public static class Reparameterize
{
    /// <summary>One thread per z row: K is small (20–100), and the row's KL sum stays in one register.</summary>
    public static void ForwardKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> z,
        ArrayView<float> epsilon,
        ArrayView<float> klPerRow,
        int latent,
        int samples,
        DrawKey key)
    {
        float kl = 0f;
        int statsRow = row / samples * 2 * latent;
        for (int k = 0; k < latent; k++)
        {
            float mu = stats[statsRow + k];
            float logVariance = stats[statsRow + latent + k];
            int index = row * latent + k;
            float eps = Philox.Normal(key.Seed, key.Stream, key.Step, index);
            float variance = MathF.Exp(logVariance);
            z[index] = mu + MathF.Sqrt(variance) * eps;
            epsilon[index] = eps;
            kl += variance + mu * mu - 1f - logVariance;
        }
        klPerRow[row] = 0.5f * kl;
    }

    /// <summary>One thread per example (stats row), like the forward pass (a thread per element costs more than
    /// its work on the CPU accelerator); sums over the example's s samples and writes both halves of its row of
    /// dStats, so no two threads write one element.</summary>
    public static void BackwardKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> epsilon,
        ArrayView<float> dZ,
        ArrayView<float> dStats,
        int latent,
        int samples,
        float klWeight)
    {
        for (int k = 0; k < latent; k++)
        {
            int muIndex = row * 2 * latent + k;
            int logVarianceIndex = muIndex + latent;
            float mu = stats[muIndex];
            float variance = MathF.Exp(stats[logVarianceIndex]);
            float sigma = MathF.Sqrt(variance);
            float dMu = 0f, dLogVariance = 0f;
            for (int i = 0; i < samples; i++)
            {
                int element = (row * samples + i) * latent + k;
                float dz = dZ[element];
                dMu += dz;
                dLogVariance += dz * 0.5f * sigma * epsilon[element];
            }
            dStats[muIndex] = dMu + klWeight * mu;
            dStats[logVarianceIndex] = dLogVariance + klWeight * 0.5f * (variance - 1f);
        }
    }

    /// <summary>
    /// The backward pass of the IWAE loss −(1/B)·Σ_b L_k(b) through the sampler, one thread per example. The
    /// decoder's backward pass has already put w̃_r·∂rec_r/∂z_r / B in dZ (the reconstruction gradient weighted by
    /// the normalised importance weights). log w also holds log p(z) − log q(z|x) = −½Σz² + ½Σ(ε² + v) (ε fixed),
    /// whose gradient adds w̃_r·z_r/B to dz_r and −½·Σ_i w̃_i/B to dv directly:
    /// dμ = Σ_i g_i and dv = Σ_i g_i·½σε_i − ½·scale·Σ_i w̃_i, with g_i = dz_i + scale·w̃_i·z_i and scale = 1/B.
    /// </summary>
    public static void ImportanceBackwardKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> z,
        ArrayView<float> epsilon,
        ArrayView<float> dZ,
        ArrayView<float> normalizedWeights,
        ArrayView<float> dStats,
        int latent,
        int samples,
        float scale)
    {
        float weightSum = 0f;
        for (int i = 0; i < samples; i++)
            weightSum += normalizedWeights[row * samples + i];
        for (int k = 0; k < latent; k++)
        {
            int muIndex = row * 2 * latent + k;
            int logVarianceIndex = muIndex + latent;
            float sigma = MathF.Exp(0.5f * stats[logVarianceIndex]);
            float dMu = 0f, dLogVariance = 0f;
            for (int i = 0; i < samples; i++)
            {
                int sample = row * samples + i;
                int element = sample * latent + k;
                float g = dZ[element] + scale * normalizedWeights[sample] * z[element];
                dMu += g;
                dLogVariance += g * 0.5f * sigma * epsilon[element];
            }
            dStats[muIndex] = dMu;
            dStats[logVarianceIndex] = dLogVariance - 0.5f * scale * weightSum;
        }
    }
}
