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
