using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The Ladder VAE's precision-weighted merging (Sønderby et al. 2016): the bottom-up Gaussian N(μ̂, e^v̂) of an
/// example (its deterministic pass over x) and the top-down prior N(μp, e^vp) of one z row (the prior network on
/// the row's z above) combine into q = N(μq, e^vq) with precision e^(−vq) = e^(−v̂) + e^(−vp) and
/// μq = a·μ̂ + (1 − a)·μp, where a = e^(−v̂) / (e^(−v̂) + e^(−vp)) = sigmoid(vp − v̂) is the bottom-up share of the
/// precision. In log-variances, vq = v̂ − softplus(v̂ − vp). Stats rows are [μ | v]; z row r belongs to example
/// r / samples.
/// With L stochastic layers, log w is summed layer by layer into one accumulator per z row: each layer below the
/// top adds log p(z_l|z_{l+1}) − log q(z_l|·) at its merged q, the top adds log N(z_L; 0, I) − log q(z_L|x), and
/// the last kernel subtracts the reconstruction (all without the log 2π terms, which cancel). Where a layer's
/// variance is written as σ² = softplus(ρ) (the paper's form), its stats are first rewritten as [μ | log σ²] and
/// the gradient of log σ² is carried back to ρ in place.
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

    /// <summary>stats [rows, 2K] = [μ | log softplus(ρ)] from raw [rows, 2K] = [μ | ρ]; with <paramref name="rankOne"/>,
    /// a rank-one head's [rows, 3K] = [μ | −log softplus(ρ) | u] from [μ | ρ | u] (D⁻¹ = softplus(ρ), the variance
    /// before the rank-one correction).</summary>
    public static void LadderSoftplusVariance(this KernelSet kernels, ArrayView<float> raw, ArrayView<float> stats, int rows, int latent, bool rankOne = false) =>
        kernels.Launch(SoftplusVarianceKernel, rows, raw, stats, latent, rankOne ? 3 : 2);

    /// <summary>Turns d/d[μ | log σ²] in <paramref name="dStats"/> into d/d[μ | ρ] in place (the μ half, and a rank-one
    /// row's u, unchanged).</summary>
    public static void LadderSoftplusVarianceBackward(this KernelSet kernels, ArrayView<float> raw, ArrayView<float> dStats, int rows, int latent, bool rankOne = false) =>
        kernels.Launch(SoftplusVarianceBackwardKernel, rows, raw, dStats, latent, rankOne ? 3 : 2);

    /// <summary>Adds layer l &lt; L's log p(z_l|z_{l+1}) − log q(z_l|·) to each row's accumulator (or starts it,
    /// when <paramref name="first"/> is 1): merged and prior stats are per z row.</summary>
    public static void LadderPriorLogWeights(this KernelSet kernels, ArrayView<float> accumulator, ArrayView<float> merged, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> prior, int rows, int latent, int first) =>
        kernels.Launch(PriorLogWeightKernel, rows, accumulator, merged, z, epsilon, prior, latent, first);

    /// <summary>Adds the top layer's log N(z_L; 0, I) − log q(z_L|x) to each row's accumulator; q's stats are per example.</summary>
    public static void LadderTopLogWeights(this KernelSet kernels, ArrayView<float> accumulator, ArrayView<float> stats, ArrayView<float> z,
        ArrayView<float> epsilon, int rows, int latent, int samples) =>
        kernels.Launch(TopLogWeightKernel, rows, accumulator, stats, z, epsilon, latent, samples);

    /// <summary>From the accumulated latent terms S in <paramref name="logWeights"/>: KL terms −S, and log w = S − rec in place.</summary>
    public static void LadderFinishLogWeights(this KernelSet kernels, ArrayView<float> logWeights, ArrayView<float> reconstructionPerRow,
        ArrayView<float> klPerRow, int rows) =>
        kernels.Launch(FinishLogWeightKernel, rows, logWeights, reconstructionPerRow, klPerRow);

    /// <summary>One thread per stats row of <paramref name="blocks"/>·K columns (3: a rank-one row, whose middle block
    /// is log d = −log softplus(ρ)).</summary>
    [Kernel]
    public static void SoftplusVarianceKernel(Index1D row, ArrayView<float> raw, ArrayView<float> stats, int latent, int blocks)
    {
        int start = row * blocks * latent;
        for (int k = 0; k < latent; k++)
        {
            stats[start + k] = raw[start + k];
            float logSoftplus = StableMath.LogSoftplus(raw[start + latent + k]);
            stats[start + latent + k] = blocks == 3 ? -logSoftplus : logSoftplus;
            if (blocks == 3)
                stats[start + 2 * latent + k] = raw[start + 2 * latent + k];
        }
    }

    /// <summary>One thread per stats row: d/dρ = d/d(log σ²) · sigmoid(ρ) / softplus(ρ) (negated for log d).</summary>
    [Kernel]
    public static void SoftplusVarianceBackwardKernel(Index1D row, ArrayView<float> raw, ArrayView<float> dStats, int latent, int blocks)
    {
        int start = row * blocks * latent + latent;
        for (int k = 0; k < latent; k++)
        {
            float slope = StableMath.LogSoftplusDerivative(raw[start + k]);
            dStats[start + k] *= blocks == 3 ? -slope : slope;
        }
    }

    /// <summary>One thread per z row: Σ_k −½((z − m)²e^(−u) + u) + ½(ε² + vq), in that order after the row's running sum.</summary>
    [Kernel]
    public static void PriorLogWeightKernel(
        Index1D row,
        ArrayView<float> accumulator,
        ArrayView<float> merged,
        ArrayView<float> z,
        ArrayView<float> epsilon,
        ArrayView<float> prior,
        int latent,
        int first)
    {
        float sum = first == 1 ? 0f : accumulator[row];
        int statsRow = row * 2 * latent;
        for (int k = 0; k < latent; k++)
        {
            int element = row * latent + k;
            float difference = z[element] - prior[statsRow + k];
            float logVariance = prior[statsRow + latent + k];
            float eps = epsilon[element];
            sum += -0.5f * (difference * difference * MathF.Exp(-logVariance) + logVariance) + 0.5f * (eps * eps + merged[statsRow + latent + k]);
        }
        accumulator[row] = sum;
    }

    /// <summary>One thread per z row: Σ_k −½z² + ½(ε² + v) after the row's running sum.</summary>
    [Kernel]
    public static void TopLogWeightKernel(
        Index1D row,
        ArrayView<float> accumulator,
        ArrayView<float> stats,
        ArrayView<float> z,
        ArrayView<float> epsilon,
        int latent,
        int samples)
    {
        float sum = accumulator[row];
        int statsRow = row / samples * 2 * latent;
        for (int k = 0; k < latent; k++)
        {
            int element = row * latent + k;
            float code = z[element], eps = epsilon[element];
            sum += -0.5f * code * code + 0.5f * (eps * eps + stats[statsRow + latent + k]);
        }
        accumulator[row] = sum;
    }

    /// <summary>One thread per z row.</summary>
    [Kernel]
    public static void FinishLogWeightKernel(Index1D row, ArrayView<float> logWeights, ArrayView<float> reconstructionPerRow, ArrayView<float> klPerRow)
    {
        float sum = logWeights[row];
        logWeights[row] = sum - reconstructionPerRow[row];
        klPerRow[row] = -sum;
    }

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
