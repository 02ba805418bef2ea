using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The rank-one posterior q(z|x) = N(μ, C), C⁻¹ = D + uuᵀ (see <see cref="RankOne"/>), against auto-encoding CorEx's
/// learned factorized marginal r(z) = Π_j N(m_j, e^(v_j)) (one row [m | v], see <see cref="FactorizedPrior"/>).
/// The sampler and its backward pass are <see cref="RankOne"/>'s; these kernels replace the KL against N(0, I) by
///   KL(q ‖ r) = ½(Σ p_j C_jj + Σ p_j(μ_j − m_j)² − K + Σ v_j − log|C|),  p_j = e^(−v_j),
/// with C_jj = 1/d_j − η a_j² and −log|C| = log(1 + s) + Σ log d_j (a = D⁻¹u, s = uᵀa, η = 1/(1 + s)). With p = 1
/// and m = v = 0 it is the standard KL. A correlated q pays for its correlations here: r is factorized, and
/// −log|C| ≥ −Σ log C_jj.
/// </summary>
public static class RankOneMarginal
{
    /// <summary>Each row's KL(q ‖ r) (rows = examples·samples), written over klPerRow.</summary>
    public static void RankOneMarginalKl(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> klPerRow,
        int rows, int latent, int samples) =>
        kernels.Launch(KlKernel, rows, stats, marginal, klPerRow, latent, samples);

    /// <summary>Adds klWeight·∂KL/∂stats to each example's row of dStats (the sampler's share already there).</summary>
    public static void RankOneMarginalKlBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> dStats,
        int examples, int latent, float klWeight) =>
        kernels.Launch(KlBackwardKernel, examples, stats, marginal, dStats, latent, klWeight);

    /// <summary>d/d[m | v] of klWeight·Σ_examples KL, summed over the examples in order (one thread per column).</summary>
    public static void RankOneMarginalBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> dMarginal,
        int examples, int latent, float klWeight) =>
        kernels.Launch(MarginalBackwardKernel, 2 * latent, stats, marginal, dMarginal, examples, latent, klWeight);

    /// <summary>log w = −rec + log r(z) − log q(z|x) per row.</summary>
    public static void RankOneMarginalLogWeights(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, int rows, int latent, int samples) =>
        kernels.Launch(LogWeightsKernel, rows, stats, marginal, z, epsilon, reconstructionPerRow, logWeights, latent, samples);

    /// <summary>One thread per row: the KL of its example's q against r.</summary>
    [Kernel]
    public static void KlKernel(Index1D row, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> klPerRow, int latent, int samples)
    {
        int statsRow = row / samples * 3 * latent;
        float s = RankOne.PrecisionSum(stats, statsRow, latent), eta = 1f / (1f + s);
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float logd = stats[statsRow + latent + k], inverse = MathF.Exp(-logd), a = stats[statsRow + 2 * latent + k] * inverse;
            float precision = MathF.Exp(-marginal[latent + k]), difference = stats[statsRow + k] - marginal[k];
            sum += precision * (inverse - eta * a * a + difference * difference) + marginal[latent + k] + logd;
        }
        klPerRow[row] = 0.5f * (sum - latent + MathF.Log(1f + s));
    }

    /// <summary>
    /// One thread per example, adding c = klWeight times: ∂KL/∂μ = p(μ − m); through s (∂KL/∂s = ½(η²Q + η),
    /// Q = Σ p a²), a (∂KL/∂a = −η p a) and d directly (∂/∂log d = ½(1 − p/d)), with ∂a/∂u = 1/d, ∂a/∂log d = −a,
    /// ∂s/∂u = 2a, ∂s/∂log d = −ua.
    /// </summary>
    [Kernel]
    public static void KlBackwardKernel(Index1D example, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> dStats,
        int latent, float klWeight)
    {
        int statsRow = example * 3 * latent;
        float s = RankOne.PrecisionSum(stats, statsRow, latent), eta = 1f / (1f + s), weightedSquares = 0f;
        for (int k = 0; k < latent; k++)
        {
            float a = stats[statsRow + 2 * latent + k] * MathF.Exp(-stats[statsRow + latent + k]);
            weightedSquares += MathF.Exp(-marginal[latent + k]) * a * a;
        }
        float klBySum = 0.5f * (eta * eta * weightedSquares + eta);
        for (int k = 0; k < latent; k++)
        {
            float u = stats[statsRow + 2 * latent + k], inverse = MathF.Exp(-stats[statsRow + latent + k]), a = u * inverse;
            float precision = MathF.Exp(-marginal[latent + k]);
            dStats[statsRow + k] += klWeight * precision * (stats[statsRow + k] - marginal[k]);
            dStats[statsRow + latent + k] += klWeight * (0.5f * (1f - precision * inverse) + eta * precision * a * a - klBySum * u * a);
            dStats[statsRow + 2 * latent + k] += klWeight * (-eta * precision * a * inverse + klBySum * 2f * a);
        }
    }

    /// <summary>One thread per column of [m | v]: ∂KL/∂m_j = −p_j(μ_j − m_j) and ∂KL/∂v_j = ½(1 − p_j(C_jj + (μ_j − m_j)²)).</summary>
    [Kernel]
    public static void MarginalBackwardKernel(Index1D column, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> dMarginal,
        int examples, int latent, float klWeight)
    {
        int k = column % latent;
        bool isMean = column < latent;
        float mean = marginal[k], precision = MathF.Exp(-marginal[latent + k]), total = 0f;
        for (int example = 0; example < examples; example++)
        {
            int statsRow = example * 3 * latent;
            float difference = stats[statsRow + k] - mean;
            if (isMean)
            {
                total -= precision * difference;
                continue;
            }
            float eta = 1f / (1f + RankOne.PrecisionSum(stats, statsRow, latent));
            float inverse = MathF.Exp(-stats[statsRow + latent + k]), a = stats[statsRow + 2 * latent + k] * inverse;
            total += 0.5f * (1f - precision * (inverse - eta * a * a + difference * difference));
        }
        dMarginal[column] = klWeight * total;
    }

    /// <summary>log r(z) − log q(z|x) = −½Σ(v + p(z − m)²) + ½(εᵀε − log(1 + s) − Σ log d), the 2π terms cancelling
    /// ((z − μ)ᵀC⁻¹(z − μ) = εᵀε).</summary>
    [Kernel]
    public static void LogWeightsKernel(Index1D row, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, int latent, int samples)
    {
        int statsRow = row / samples * 3 * latent;
        float s = RankOne.PrecisionSum(stats, statsRow, latent), logD = 0f, marginalTerms = 0f, epsilonSquares = 0f;
        for (int k = 0; k < latent; k++)
        {
            int index = row * latent + k;
            float difference = z[index] - marginal[k];
            logD += stats[statsRow + latent + k];
            marginalTerms += marginal[latent + k] + difference * difference * MathF.Exp(-marginal[latent + k]);
            epsilonSquares += epsilon[index] * epsilon[index];
        }
        logWeights[row] = -reconstructionPerRow[row] - 0.5f * marginalTerms + 0.5f * (epsilonSquares - MathF.Log(1f + s) - logD);
    }
}
