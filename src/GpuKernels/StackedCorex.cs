using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The second layer of stacked (hierarchical) auto-encoding CorEx: its data term is Σ_i I(z1_i; z2) =
/// Σ_i (H(z1_i) − H(z1_i|z2)), bounded with a factorized Gaussian decoder q(z1|z2) = N(m, diag e^u) (its network's
/// output [m | u] per z row) for H(z1_i|z2), and with the first layer's learned marginal r1 = N(m_r, diag e^w) (one
/// row [m_r | w]) standing for the marginal of z1 in H(z1_i). Per row the loss term is
/// −log q(z1|z2) + log r1(z1) = ½Σ((z1 − m)²e^(−u) + u) − ½Σ((z1 − m_r)²e^(−w) + w), the 2π terms cancelling: a log
/// density ratio, so it does not change when z1, its posterior and r1 are all rescaled (−log q(z1|z2) alone would
/// fall without bound as they shrink together). The layers are trained each on its own bound, as CorEx stacks
/// them: the second takes z1 as data, so this term's gradient goes to q(z1|z2)'s output only, not to z1 or r1 —
/// the gradient of −log N(z1; m, e^u) by [m | u], which <see cref="TwoLayer.PriorStatsGradient"/> already computes.
/// </summary>
public static class StackedCorex
{
    /// <summary>Each row's −log q(z1|z2) + log r1(z1) into <paramref name="term"/>.</summary>
    public static void LayerReconstruction(this KernelSet kernels, ArrayView<float> z1, ArrayView<float> stats, ArrayView<float> marginal,
        ArrayView<float> term, int rows, int latent) =>
        kernels.Launch(ForwardKernel, rows, z1, stats, marginal, term, latent);

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
}
