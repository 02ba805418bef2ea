using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The Ladder VAE's precision-weighted merging (Sønderby et al. 2016): the bottom-up Gaussian N(μ̂, e^v̂) of an
/// example (its deterministic pass over x) and the top-down prior N(μp, e^vp) of one z row (the prior network on
/// the row's z above) combine into q = N(μq, e^vq) with precision e^(−vq) = e^(−v̂) + e^(−vp) and
/// μq = a·μ̂ + (1 − a)·μp, where a = e^(−v̂) / (e^(−v̂) + e^(−vp)) = sigmoid(vp − v̂) is the bottom-up share of the
/// precision. In log-variances, vq = v̂ − softplus(v̂ − vp). Stats rows are [μ | v]; z row r belongs to example
/// r / samples.
/// </summary>
public static class Ladder
{
    /// <summary>Merged [rows, 2K] from bottom-up stats [rows / samples, 2K] and top-down [rows, 2K].</summary>
    public static void LadderMerge(this KernelSet kernels, ArrayView<float> bottomUp, ArrayView<float> topDown, ArrayView<float> merged,
        int rows, int latent, int samples) =>
        kernels.Launch(MergeKernel, rows, bottomUp, topDown, merged, latent, samples);

    /// <summary>Writes dBottomUp [examples, 2K] and adds to dTopDown [examples·samples, 2K].</summary>
    public static void LadderMergeBackward(this KernelSet kernels, ArrayView<float> bottomUp, ArrayView<float> topDown, ArrayView<float> dMerged,
        ArrayView<float> dBottomUp, ArrayView<float> dTopDown, int examples, int latent, int samples) =>
        kernels.Launch(MergeBackwardKernel, examples, bottomUp, topDown, dMerged, dBottomUp, dTopDown, latent, samples);

    /// <summary>One thread per z row.</summary>
    [Kernel]
    public static void MergeKernel(
        Index1D row,
        ArrayView<float> bottomUp,
        ArrayView<float> topDown,
        ArrayView<float> merged,
        int latent,
        int samples)
    {
        int upRow = row / samples * 2 * latent, downRow = row * 2 * latent;
        for (int k = 0; k < latent; k++)
        {
            float muHat = bottomUp[upRow + k], vHat = bottomUp[upRow + latent + k];
            float muPrior = topDown[downRow + k], vPrior = topDown[downRow + latent + k];
            float share = StableMath.Sigmoid(vPrior - vHat);
            merged[downRow + k] = share * muHat + (1f - share) * muPrior;
            merged[downRow + latent + k] = vHat - StableMath.Softplus(vHat - vPrior);
        }
    }

    /// <summary>
    /// One thread per example: from d/d[μq | vq] of its rows to d/d[μ̂ | v̂] (summed over the example's samples,
    /// written) and d/d[μp | vp] (added to each row's gradient already in dTopDown: the prior's own log-density
    /// term). With a = sigmoid(vp − v̂) and Δ = μ̂ − μp: ∂μq/∂μ̂ = a, ∂μq/∂μp = 1 − a, ∂μq/∂v̂ = −a(1 − a)Δ,
    /// ∂μq/∂vp = a(1 − a)Δ, ∂vq/∂v̂ = a, ∂vq/∂vp = 1 − a.
    /// </summary>
    [Kernel]
    public static void MergeBackwardKernel(
        Index1D example,
        ArrayView<float> bottomUp,
        ArrayView<float> topDown,
        ArrayView<float> dMerged,
        ArrayView<float> dBottomUp,
        ArrayView<float> dTopDown,
        int latent,
        int samples)
    {
        int upRow = example * 2 * latent;
        for (int k = 0; k < latent; k++)
        {
            float muHat = bottomUp[upRow + k], vHat = bottomUp[upRow + latent + k];
            float dMuHat = 0f, dVHat = 0f;
            for (int i = 0; i < samples; i++)
            {
                int downRow = (example * samples + i) * 2 * latent;
                float muPrior = topDown[downRow + k], vPrior = topDown[downRow + latent + k];
                float share = StableMath.Sigmoid(vPrior - vHat);
                float slope = share * (1f - share) * (muHat - muPrior);
                float dMu = dMerged[downRow + k], dV = dMerged[downRow + latent + k];
                dMuHat += share * dMu;
                dVHat += share * dV - slope * dMu;
                dTopDown[downRow + k] += (1f - share) * dMu;
                dTopDown[downRow + latent + k] += (1f - share) * dV + slope * dMu;
            }
            dBottomUp[upRow + k] = dMuHat;
            dBottomUp[upRow + latent + k] = dVHat;
        }
    }
}
