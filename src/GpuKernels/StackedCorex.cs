using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The second layer of stacked (hierarchical) auto-encoding CorEx: its data term is Σ_i I(z1_i; z2) =
/// Σ_i (H(z1_i) − H(z1_i|z2)), bounded with a factorized Gaussian decoder q(z1|z2) = N(m, diag e^u) (its network's
/// output [m | u] per z row) for H(z1_i|z2), and with the first layer's learned marginal r1 = N(m_r, diag e^w) (one
/// row [m_r | w]) standing for the marginal of z1 in H(z1_i). Per row the loss term is
/// −log q(z1|z2) + log r1(z1) = ½Σ((z1 − m)²e^(−u) + u) − ½Σ((z1 − m_r)²e^(−w) + w), the 2π terms cancelling: a log
/// density ratio, so it does not change when z1, its posterior and r1 are all rescaled (−log q(z1|z2) alone would
/// fall without bound as they shrink together). Its gradient goes to [m | u], to z1 (added) and to r1 (added).
/// </summary>
public static class StackedCorex
{
    /// <summary>Each row's −log q(z1|z2) + log r1(z1) into <paramref name="term"/>.</summary>
    public static void LayerReconstruction(this KernelSet kernels, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> marginal,
        ArrayView<float> term, int rows, int latent) =>
        kernels.Launch(ForwardKernel, rows, z1, stats, marginal, term, latent);

    /// <summary>scale times the term's gradient: written into <paramref name="dStats"/> ([m | u] rows), added into
    /// <paramref name="dZ1"/>.</summary>
    public static void LayerReconstructionBackward(this KernelSet kernels, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> marginal,
        ArrayView<float> dStats, ArrayView<float> dZ1, int rows, int latent, float scale) =>
        kernels.Launch(BackwardKernel, rows, z1, stats, marginal, dStats, dZ1, latent, scale);

    /// <summary>scale times the term's gradient with respect to r1's [m_r | w], summed over the rows in order and
    /// added into <paramref name="dMarginal"/> (one thread per column).</summary>
    public static void LayerReconstructionMarginalBackward(this KernelSet kernels, ArrayView<float> z1, ArrayView<float> marginal,
        ArrayView<float> dMarginal, int rows, int latent, float scale) =>
        kernels.Launch(MarginalBackwardKernel, 2 * latent, z1, marginal, dMarginal, rows, latent, scale);

    [Kernel]
    public static void ForwardKernel(Index1D row, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> term, int latent)
    {
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float code = z1[row * latent + k];
            float difference = code - stats[row * 2 * latent + k], logVariance = stats[row * 2 * latent + latent + k];
            float marginalDifference = code - marginal[k], logMarginal = marginal[latent + k];
            sum += difference * difference * MathF.Exp(-logVariance) + logVariance
                - marginalDifference * marginalDifference * MathF.Exp(-logMarginal) - logMarginal;
        }
        term[row] = 0.5f * sum;
    }

    /// <summary>dm = −c·(z1 − m)e^(−u), du = c·½(1 − (z1 − m)²e^(−u)), dz1 += c·((z1 − m)e^(−u) − (z1 − m_r)e^(−w)).</summary>
    [Kernel]
    public static void BackwardKernel(Index1D row, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> dStats,
        ArrayView<float> dZ1, int latent, float scale)
    {
        for (int k = 0; k < latent; k++)
        {
            int mean = row * 2 * latent + k;
            float code = z1[row * latent + k];
            float difference = code - stats[mean], precision = MathF.Exp(-stats[mean + latent]);
            float pull = scale * difference * precision;
            dStats[mean] = -pull;
            dStats[mean + latent] = 0.5f * scale * (1f - difference * difference * precision);
            dZ1[row * latent + k] += pull - scale * (code - marginal[k]) * MathF.Exp(-marginal[latent + k]);
        }
    }

    /// <summary>Column j &lt; K: dm_r = c·Σ (z1 − m_r)e^(−w); column K + j: dw = c·Σ ½((z1 − m_r)²e^(−w) − 1).</summary>
    [Kernel]
    public static void MarginalBackwardKernel(Index1D column, ArrayView<float> z1, ArrayView<float> marginal, ArrayView<float> dMarginal,
        int rows, int latent, float scale)
    {
        int k = column % latent;
        float mean = marginal[k], precision = MathF.Exp(-marginal[latent + k]), sum = 0f;
        for (int row = 0; row < rows; row++)
        {
            float difference = z1[row * latent + k] - mean;
            sum += column < latent ? difference * precision : 0.5f * (difference * difference * precision - 1f);
        }
        dMarginal[column] += scale * sum;
    }
}
