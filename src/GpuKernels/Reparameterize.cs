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
/// μ in columns 0..K-1 and v = log σ² in columns K..2K-1.
/// Forward:  ε ~ N(0, I) from Philox keyed by (seed, stream, step, b·K + k); z = μ + exp(v/2)·ε;
///           kl[b] = ½ Σ_k (exp v + μ² − 1 − v).
/// Backward: with the objective rec + klWeight·Σ_b kl[b] (klWeight = β/batch when the loss is a batch mean),
///           dμ = dz + klWeight·μ and dv = dz·½·exp(v/2)·ε + klWeight·½(exp v − 1).
/// </summary>
public static class Reparameterize
{
    /// <summary>One thread per batch row: K is small (20–100), and the row's KL sum stays in one register.</summary>
    public static void ForwardKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> z,
        ArrayView<float> epsilon,
        ArrayView<float> klPerRow,
        int latent,
        DrawKey key)
    {
        float kl = 0f;
        int statsRow = row * 2 * latent;
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

    /// <summary>One thread per batch row, like the forward pass (a thread per element costs more than its
    /// work on the CPU accelerator); writes both halves of the row of dStats.</summary>
    public static void BackwardKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> epsilon,
        ArrayView<float> dZ,
        ArrayView<float> dStats,
        int latent,
        float klWeight)
    {
        for (int k = 0; k < latent; k++)
        {
            int element = row * latent + k;
            int muIndex = row * 2 * latent + k;
            int logVarianceIndex = muIndex + latent;
            float mu = stats[muIndex];
            float variance = MathF.Exp(stats[logVarianceIndex]);
            float dz = dZ[element];
            dStats[muIndex] = dz + klWeight * mu;
            dStats[logVarianceIndex] = dz * 0.5f * MathF.Sqrt(variance) * epsilon[element] + klWeight * 0.5f * (variance - 1f);
        }
    }
}
