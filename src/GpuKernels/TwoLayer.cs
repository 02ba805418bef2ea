using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The terms a second stochastic layer adds (the IWAE paper's two-layer model): q(z1|x) q(z2|z1) and
/// p(z2) p(z1|z2) p(x|z1), with z1 = μ1 + σ1ε1 (stats1 [batch, 2K1], row r of z1 drawn from example r / s),
/// z2 = μ2 + σ2ε2 (stats2 [rows, 2K2], one z2 per z1 row) and the prior network's output priorStats [rows, 2K1]
/// = [m | u], p(z1|z2) = N(m, exp u). With the log 2π constants cancelled,
/// −log w = rec + T + ½Σz2² − ½Σ(ε1² + v1) − ½Σ(ε2² + v2), where T = ½Σ((z1 − m)²·e^(−u) + u).
/// The objective is Σ_r c_r·(rec_r + β·(−log w_r − rec_r)) with per-row weights c_r = scale·w_r: w̃_r/B for the
/// IWAE (β = 1), 1/(B·k) for the VAE; the kernels take w_r and scale (which includes β) separately.
/// </summary>
public static class TwoLayer
{
    /// <summary>log w and the sampled KL terms of the two-layer model per z row.</summary>
    public static void TwoLayerLogWeights(this KernelSet kernels, ArrayView<float> stats1, ArrayView<float> z1, ArrayView<float> epsilon1,
        ArrayView<float> stats2, ArrayView<float> z2, ArrayView<float> epsilon2, ArrayView<float> priorStats,
        ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, ArrayView<float> klPerRow, int rows, LatentWidths widths) =>
        kernels.Launch(LogWeightKernel, rows, stats1, z1, epsilon1, stats2, z2, epsilon2, priorStats, reconstructionPerRow, logWeights, klPerRow, widths);

    public static void PriorStatsGradient(this KernelSet kernels, ArrayView<float> z1, ArrayView<float> priorStats, ArrayView<float> rowWeights,
        ArrayView<float> dPriorStats, int rows, int latent, float scale) =>
        kernels.Launch(PriorStatsGradientKernel, rows, z1, priorStats, rowWeights, dPriorStats, latent, scale);

    /// <summary>log w and the sampled KL terms with both q's rank-one (stats1 [batch, 3K1], stats2 [rows, 3K2], see
    /// <see cref="RankOne"/>): each ½Σ(ε² + v) becomes ½(εᵀε + log|C|), log|C| = −log(1 + s) − Σ log d.</summary>
    public static void TwoLayerRankOneLogWeights(this KernelSet kernels, ArrayView<float> stats1, ArrayView<float> z1, ArrayView<float> epsilon1,
        ArrayView<float> stats2, ArrayView<float> z2, ArrayView<float> epsilon2, ArrayView<float> priorStats,
        ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, ArrayView<float> klPerRow, int rows, LatentWidths widths) =>
        kernels.Launch(RankOneLogWeightKernel, rows, stats1, z1, epsilon1, stats2, z2, epsilon2, priorStats, reconstructionPerRow, logWeights, klPerRow, widths);

    /// <summary>Adds the pull of p(z1|z2) = N(m, e^u) on z1 to dz1: scale·w_r·(z1 − m)e^(−u), for a z1 sampler that
    /// does not take the prior's statistics itself (the rank-one one).</summary>
    public static void ConditionalPriorCodeGradient(this KernelSet kernels, ArrayView<float> z1, ArrayView<float> priorStats, ArrayView<float> rowWeights,
        ArrayView<float> dZ1, int rows, int latent, float scale) =>
        kernels.Launch(ConditionalPriorCodeGradientKernel, rows, z1, priorStats, rowWeights, dZ1, latent, scale);

    /// <summary>One thread per z row.</summary>
    [Kernel]
    public static void RankOneLogWeightKernel(
        Index1D row,
        ArrayView<float> stats1,
        ArrayView<float> z1,
        ArrayView<float> epsilon1,
        ArrayView<float> stats2,
        ArrayView<float> z2,
        ArrayView<float> epsilon2,
        ArrayView<float> priorStats,
        ArrayView<float> reconstructionPerRow,
        ArrayView<float> logWeights,
        ArrayView<float> klPerRow,
        LatentWidths widths)
    {
        int k1 = widths.First, k2 = widths.Second;
        int statsRow = row / widths.Samples * 3 * k1, stats2Row = row * 3 * k2;
        float sum = 0f, s1 = 0f, logD1 = 0f, s2 = 0f, logD2 = 0f;
        for (int k = 0; k < k1; k++)
        {
            int element = row * k1 + k;
            float difference = z1[element] - priorStats[row * 2 * k1 + k];
            float logVariance = priorStats[row * 2 * k1 + k1 + k];
            float eps = epsilon1[element], logd = stats1[statsRow + k1 + k], u = stats1[statsRow + 2 * k1 + k];
            sum += -0.5f * (difference * difference * MathF.Exp(-logVariance) + logVariance) + 0.5f * eps * eps;
            s1 += u * u * MathF.Exp(-logd);
            logD1 += logd;
        }
        for (int k = 0; k < k2; k++)
        {
            int element = row * k2 + k;
            float code = z2[element], eps = epsilon2[element], logd = stats2[stats2Row + k2 + k], u = stats2[stats2Row + 2 * k2 + k];
            sum += -0.5f * code * code + 0.5f * eps * eps;
            s2 += u * u * MathF.Exp(-logd);
            logD2 += logd;
        }
        sum += 0.5f * (-MathF.Log(1f + s1) - logD1 - MathF.Log(1f + s2) - logD2);
        logWeights[row] = sum - reconstructionPerRow[row];
        klPerRow[row] = -sum;
    }

    /// <summary>One thread per z row.</summary>
    [Kernel]
    public static void ConditionalPriorCodeGradientKernel(Index1D row, ArrayView<float> z1, ArrayView<float> priorStats, ArrayView<float> rowWeights,
        ArrayView<float> dZ1, int latent, float scale)
    {
        float weight = scale * rowWeights[row];
        for (int k = 0; k < latent; k++)
        {
            int mean = row * 2 * latent + k;
            dZ1[row * latent + k] += weight * (z1[row * latent + k] - priorStats[mean]) * MathF.Exp(-priorStats[mean + latent]);
        }
    }

    /// <summary>One thread per z row: log w, and −log w − rec (the sampled KL terms) as the row's KL.</summary>
    [Kernel]
    public static void LogWeightKernel(
        Index1D row,
        ArrayView<float> stats1,
        ArrayView<float> z1,
        ArrayView<float> epsilon1,
        ArrayView<float> stats2,
        ArrayView<float> z2,
        ArrayView<float> epsilon2,
        ArrayView<float> priorStats,
        ArrayView<float> reconstructionPerRow,
        ArrayView<float> logWeights,
        ArrayView<float> klPerRow,
        LatentWidths widths)
    {
        int k1 = widths.First, k2 = widths.Second;
        int statsRow = row / widths.Samples * 2 * k1, stats2Row = row * 2 * k2;
        float sum = 0f; // log p(z1|z2) + log p(z2) − log q(z1|x) − log q(z2|z1), without the 2π terms
        for (int k = 0; k < k1; k++)
        {
            int element = row * k1 + k;
            float difference = z1[element] - priorStats[row * 2 * k1 + k];
            float logVariance = priorStats[row * 2 * k1 + k1 + k];
            float eps = epsilon1[element];
            sum += -0.5f * (difference * difference * MathF.Exp(-logVariance) + logVariance) + 0.5f * (eps * eps + stats1[statsRow + k1 + k]);
        }
        for (int k = 0; k < k2; k++)
        {
            int element = row * k2 + k;
            float code = z2[element], eps = epsilon2[element];
            sum += -0.5f * code * code + 0.5f * (eps * eps + stats2[stats2Row + k2 + k]);
        }
        logWeights[row] = sum - reconstructionPerRow[row];
        klPerRow[row] = -sum;
    }

    /// <summary>One thread per z row: the gradient of c_r·T with respect to the prior network's output,
    /// dm = −c·(z1 − m)·e^(−u) and du = c·½(1 − (z1 − m)²·e^(−u)), with c = scale·w_r.</summary>
    [Kernel]
    public static void PriorStatsGradientKernel(
        Index1D row,
        ArrayView<float> z1,
        ArrayView<float> priorStats,
        ArrayView<float> rowWeights,
        ArrayView<float> dPriorStats,
        int latent,
        float scale)
    {
        float weight = scale * rowWeights[row];
        for (int k = 0; k < latent; k++)
        {
            int meanIndex = row * 2 * latent + k;
            float difference = z1[row * latent + k] - priorStats[meanIndex];
            float precision = MathF.Exp(-priorStats[meanIndex + latent]);
            dPriorStats[meanIndex] = -weight * difference * precision;
            dPriorStats[meanIndex + latent] = weight * 0.5f * (1f - difference * difference * precision);
        }
    }
}

/// <summary>K1, K2 and k, passed together (kernels take a bounded number of arguments): q(z1|x) has one stats row
/// per example (k z rows each) and q(z2|z1) one per z row.</summary>
public readonly struct LatentWidths
{
    public readonly int First, Second, Samples;

    public LatentWidths(int first, int second, int samples)
    {
        First = first;
        Second = second;
        Samples = samples;
    }
}
