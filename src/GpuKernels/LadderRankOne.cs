using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The Ladder VAE with rank-one posteriors. Each bottom-up head writes [μ̂ | log d̂ | û], the Gaussian of precision
/// P̂ = D̂ + ûûᵀ (see <see cref="RankOne"/>); the prior networks stay diagonal, N(μp, e^vp) with precision Dp.
/// Merging by precision keeps the rank-one form:
///   P = P̂ + Dp = D' + ûûᵀ with D' = D̂ + Dp,   μq = P⁻¹(P̂μ̂ + Dp μp),
/// so the merged row is [μq | log d' | û] and the rank-one sampler, log-determinant and backward pass apply to it.
/// P⁻¹ is applied by Sherman–Morrison: with a' = D'⁻¹û, s' = ûᵀa' and η' = 1/(1 + s'), P⁻¹v = D'⁻¹v − η'a'(a'ᵀv).
/// log w gains, per layer, ½(εᵀε + log|C|) for −log q with log|C| = −log(1 + s) − Σ log d (the 2π terms cancel).
/// </summary>
public static class LadderRankOne
{
    /// <summary>Merged [rows, 3K] from bottom-up [rows / samples, 3K] and top-down [rows, 2K].</summary>
    public static void LadderRankOneMerge(this KernelSet kernels, ArrayView<float> bottomUp, ArrayView<float> topDown, ArrayView<float> merged,
        int rows, int latent, int samples) =>
        kernels.Launch(MergeKernel, rows, bottomUp, topDown, merged, latent, samples);

    /// <summary>Writes dBottomUp [examples, 3K] (summed over each example's samples) and adds to dTopDown [rows, 2K].</summary>
    public static void LadderRankOneMergeBackward(this KernelSet kernels, ArrayView<float> bottomUp, ArrayView<float> topDown, ArrayView<float> dMerged,
        ArrayView<float> dBottomUp, ArrayView<float> dTopDown, int examples, int latent, int samples) =>
        kernels.Launch(MergeBackwardKernel, examples, bottomUp, topDown, dMerged, dBottomUp, dTopDown, latent, samples);

    /// <summary>Adds layer l &lt; L's log p(z_l|z_{l+1}) − log q(z_l|·) (q rank-one, per z row) to each row's accumulator
    /// (or starts it, when <paramref name="first"/> is 1).</summary>
    public static void LadderRankOnePriorLogWeights(this KernelSet kernels, ArrayView<float> accumulator, ArrayView<float> merged, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> prior, int rows, int latent, int first) =>
        kernels.Launch(PriorLogWeightKernel, rows, accumulator, merged, z, epsilon, prior, latent, first);

    /// <summary>Adds the top layer's log N(z_L; 0, I) − log q(z_L|x) (q rank-one, per example) to each row's accumulator.</summary>
    public static void LadderRankOneTopLogWeights(this KernelSet kernels, ArrayView<float> accumulator, ArrayView<float> stats, ArrayView<float> z,
        ArrayView<float> epsilon, int rows, int latent, int samples) =>
        kernels.Launch(TopLogWeightKernel, rows, accumulator, stats, z, epsilon, latent, samples);

    /// <summary>d' = d̂ + e^(−vp) of one dimension, from log d̂ and vp.</summary>
    private static float MergedDiagonal(float logDHat, float vPrior) => MathF.Exp(logDHat) + MathF.Exp(-vPrior);

    /// <summary>
    /// One z row's merge scalars: s' = ûᵀD'⁻¹û, ûᵀμ̂, and a'ᵀb with b = P̂μ̂ + Dp μp = D̂μ̂ + û(ûᵀμ̂) + Dp μp.
    /// </summary>
    private static (float S, float UMuHat, float AB) RowScalars(ArrayView<float> bottomUp, ArrayView<float> topDown, int upRow, int downRow, int latent)
    {
        float s = 0f, uMuHat = 0f;
        for (int k = 0; k < latent; k++)
        {
            float u = bottomUp[upRow + 2 * latent + k];
            s += u * u / MergedDiagonal(bottomUp[upRow + latent + k], topDown[downRow + latent + k]);
            uMuHat += u * bottomUp[upRow + k];
        }
        float ab = 0f;
        for (int k = 0; k < latent; k++)
            ab += bottomUp[upRow + 2 * latent + k] / MergedDiagonal(bottomUp[upRow + latent + k], topDown[downRow + latent + k])
                * B(bottomUp, topDown, upRow, downRow, latent, k, uMuHat);
        return (s, uMuHat, ab);
    }

    /// <summary>b_k = d̂_k μ̂_k + û_k(ûᵀμ̂) + e^(−vp_k) μp_k.</summary>
    private static float B(ArrayView<float> bottomUp, ArrayView<float> topDown, int upRow, int downRow, int latent, int k, float uMuHat) =>
        MathF.Exp(bottomUp[upRow + latent + k]) * bottomUp[upRow + k] + bottomUp[upRow + 2 * latent + k] * uMuHat
        + MathF.Exp(-topDown[downRow + latent + k]) * topDown[downRow + k];

    /// <summary>One thread per z row: μq = b/d' − η'a'(a'ᵀb), log d' = log d̂ + softplus(−vp − log d̂), û copied.</summary>
    [Kernel]
    public static void MergeKernel(Index1D row, ArrayView<float> bottomUp, ArrayView<float> topDown, ArrayView<float> merged, int latent, int samples)
    {
        int upRow = row / samples * 3 * latent, downRow = row * 2 * latent, outRow = row * 3 * latent;
        var (s, uMuHat, ab) = RowScalars(bottomUp, topDown, upRow, downRow, latent);
        float eta = 1f / (1f + s);
        for (int k = 0; k < latent; k++)
        {
            float logDHat = bottomUp[upRow + latent + k], vPrior = topDown[downRow + latent + k], u = bottomUp[upRow + 2 * latent + k];
            float diagonal = MergedDiagonal(logDHat, vPrior);
            merged[outRow + k] = (B(bottomUp, topDown, upRow, downRow, latent, k, uMuHat) - eta * u * ab) / diagonal;
            merged[outRow + latent + k] = logDHat + StableMath.Softplus(-vPrior - logDHat);
            merged[outRow + 2 * latent + k] = u;
        }
    }

    /// <summary>
    /// One thread per example; per row, with gμ, gℓ, gu the gradient of [μq | log d' | û] and y = P⁻¹gμ:
    /// ∂/∂b = y, ∂/∂P = −yμqᵀ, hence ∂/∂d'_k = gℓ_k/d'_k − y_k μq_k; then ∂/∂μ̂ = D̂y + û(ûᵀy), ∂/∂μp = Dp y,
    /// ∂/∂d̂_k = y_k μ̂_k + ∂/∂d'_k, ∂/∂(e^(−vp_k)) = y_k μp_k + ∂/∂d'_k, and
    /// ∂/∂û = gu + y·ûᵀ(μ̂ − μq) + (μ̂ − μq)·ûᵀy; carried to log d̂ (×d̂) and vp (×−e^(−vp)).
    /// </summary>
    [Kernel]
    public static void MergeBackwardKernel(Index1D example, ArrayView<float> bottomUp, ArrayView<float> topDown, ArrayView<float> dMerged,
        ArrayView<float> dBottomUp, ArrayView<float> dTopDown, int latent, int samples)
    {
        int upRow = example * 3 * latent;
        for (int k = 0; k < 3 * latent; k++)
            dBottomUp[upRow + k] = 0f;
        for (int i = 0; i < samples; i++)
        {
            int row = example * samples + i, downRow = row * 2 * latent, mergedRow = row * 3 * latent;
            var (s, uMuHat, ab) = RowScalars(bottomUp, topDown, upRow, downRow, latent);
            float eta = 1f / (1f + s);
            float ag = 0f;
            for (int k = 0; k < latent; k++)
                ag += bottomUp[upRow + 2 * latent + k] / MergedDiagonal(bottomUp[upRow + latent + k], topDown[downRow + latent + k]) * dMerged[mergedRow + k];
            // ûᵀy and ûᵀ(μ̂ − μq), with y = (gμ − η'û(a'ᵀgμ))/d' and μq = (b − η'û(a'ᵀb))/d'.
            float uY = 0f, uGap = 0f;
            for (int k = 0; k < latent; k++)
            {
                float u = bottomUp[upRow + 2 * latent + k], diagonal = MergedDiagonal(bottomUp[upRow + latent + k], topDown[downRow + latent + k]);
                float y = (dMerged[mergedRow + k] - eta * u * ag) / diagonal;
                float muQ = (B(bottomUp, topDown, upRow, downRow, latent, k, uMuHat) - eta * u * ab) / diagonal;
                uY += u * y;
                uGap += u * (bottomUp[upRow + k] - muQ);
            }
            for (int k = 0; k < latent; k++)
            {
                float muHat = bottomUp[upRow + k], dHat = MathF.Exp(bottomUp[upRow + latent + k]), u = bottomUp[upRow + 2 * latent + k];
                float muPrior = topDown[downRow + k], precisionPrior = MathF.Exp(-topDown[downRow + latent + k]);
                float diagonal = dHat + precisionPrior;
                float y = (dMerged[mergedRow + k] - eta * u * ag) / diagonal;
                float muQ = (B(bottomUp, topDown, upRow, downRow, latent, k, uMuHat) - eta * u * ab) / diagonal;
                float byDiagonal = dMerged[mergedRow + latent + k] / diagonal - y * muQ;
                dBottomUp[upRow + k] += dHat * y + u * uY;
                dBottomUp[upRow + latent + k] += dHat * (y * muHat + byDiagonal);
                dBottomUp[upRow + 2 * latent + k] += dMerged[mergedRow + 2 * latent + k] + y * uGap + (muHat - muQ) * uY;
                dTopDown[downRow + k] += precisionPrior * y;
                dTopDown[downRow + latent + k] -= precisionPrior * (y * muPrior + byDiagonal);
            }
        }
    }

    /// <summary>log(1 + s) + Σ log d of a rank-one stats row: −log|C|.</summary>
    private static float NegativeLogDeterminant(ArrayView<float> stats, int statsRow, int latent)
    {
        float logD = 0f;
        for (int k = 0; k < latent; k++)
            logD += stats[statsRow + latent + k];
        return MathF.Log(1f + RankOne.PrecisionSum(stats, statsRow, latent)) + logD;
    }

    /// <summary>One thread per z row: Σ_k −½((z − m)²e^(−u) + u) + ½(εᵀε − (log(1 + s') + Σ log d')).</summary>
    [Kernel]
    public static void PriorLogWeightKernel(Index1D row, ArrayView<float> accumulator, ArrayView<float> merged, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> prior, int latent, int first)
    {
        float sum = first == 1 ? 0f : accumulator[row];
        int priorRow = row * 2 * latent;
        float epsilonSquares = 0f;
        for (int k = 0; k < latent; k++)
        {
            int element = row * latent + k;
            float difference = z[element] - prior[priorRow + k], logVariance = prior[priorRow + latent + k];
            sum += -0.5f * (difference * difference * MathF.Exp(-logVariance) + logVariance);
            epsilonSquares += epsilon[element] * epsilon[element];
        }
        accumulator[row] = sum + 0.5f * (epsilonSquares - NegativeLogDeterminant(merged, row * 3 * latent, latent));
    }

    /// <summary>One thread per z row: −½Σz² + ½(εᵀε − (log(1 + s) + Σ log d)).</summary>
    [Kernel]
    public static void TopLogWeightKernel(Index1D row, ArrayView<float> accumulator, ArrayView<float> stats, ArrayView<float> z,
        ArrayView<float> epsilon, int latent, int samples)
    {
        float codeSquares = 0f, epsilonSquares = 0f;
        for (int k = 0; k < latent; k++)
        {
            int element = row * latent + k;
            codeSquares += z[element] * z[element];
            epsilonSquares += epsilon[element] * epsilon[element];
        }
        accumulator[row] += -0.5f * codeSquares + 0.5f * (epsilonSquares - NegativeLogDeterminant(stats, row / samples * 3 * latent, latent));
    }
}
