using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The second layer of stacked (hierarchical) auto-encoding CorEx: z1's reconstruction from z2 by a factorized
/// Gaussian decoder q(z1|z2) = N(m, diag e^u) (its network's output [m | u] per z row), the term
/// −log q(z1|z2) = ½Σ((z1 − m)²e^(−u) + u) (+ the log 2π constant, left out), and its gradient into [m | u] and,
/// added, into z1 (the first layer's codes, reparameterized).
/// </summary>
public static class StackedCorex
{
    /// <summary>Each row's ½Σ((z1 − m)²e^(−u) + u) into <paramref name="term"/>.</summary>
    public static void LayerReconstruction(this KernelSet kernels, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> term, int rows, int latent) =>
        kernels.Launch(ForwardKernel, rows, z1, stats, term, latent);

    /// <summary>scale times the term's gradient: written into <paramref name="dStats"/> ([m | u] rows), added into
    /// <paramref name="dZ1"/>.</summary>
    public static void LayerReconstructionBackward(this KernelSet kernels, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> dStats,
        ArrayView<float> dZ1, int rows, int latent, float scale) =>
        kernels.Launch(BackwardKernel, rows, z1, stats, dStats, dZ1, latent, scale);

    [Kernel]
    public static void ForwardKernel(Index1D row, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> term, int latent)
    {
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float difference = z1[row * latent + k] - stats[row * 2 * latent + k], logVariance = stats[row * 2 * latent + latent + k];
            sum += difference * difference * MathF.Exp(-logVariance) + logVariance;
        }
        term[row] = 0.5f * sum;
    }

    /// <summary>dm = −c·(z1 − m)e^(−u), du = c·½(1 − (z1 − m)²e^(−u)), dz1 += c·(z1 − m)e^(−u).</summary>
    [Kernel]
    public static void BackwardKernel(Index1D row, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> dStats, ArrayView<float> dZ1,
        int latent, float scale)
    {
        for (int k = 0; k < latent; k++)
        {
            int mean = row * 2 * latent + k;
            float difference = z1[row * latent + k] - stats[mean], precision = MathF.Exp(-stats[mean + latent]);
            float pull = scale * difference * precision;
            dStats[mean] = -pull;
            dStats[mean + latent] = 0.5f * scale * (1f - difference * difference * precision);
            dZ1[row * latent + k] += pull;
        }
    }
}
