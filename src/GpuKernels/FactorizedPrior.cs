using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The widths of a factorized-marginal KL: K latent dimensions, s samples per example, and the first
/// <see cref="Anchors"/> dimensions (AnchorVAE's anchors) with their KL weight scaled by <see cref="AnchorScale"/>.
/// </summary>
public readonly struct MarginalShape
{
    public readonly int Latent, Samples, Anchors;
    public readonly float AnchorScale;

    public MarginalShape(int latent, int samples, int anchors, float anchorScale)
    {
        Latent = latent;
        Samples = samples;
        Anchors = anchors;
        AnchorScale = anchorScale;
    }

    /// <summary>The KL weight of dimension j relative to the others: the anchor scale for an anchor, else 1.</summary>
    public float Weight(int dimension) => dimension < Anchors ? AnchorScale : 1f;
}

/// <summary>
/// Auto-encoding CorEx (Gao et al. 2019): a diagonal Gaussian q(z|x) = N(μ, σ²) against a learned factorized
/// marginal r(z) = Π_j N(m_j, s_j²) (one row [m | log s²]), with the closed-form KL per dimension
/// KL_j = ½(log s_j² − log σ_j² + (σ_j² + (μ_j − m_j)²)/s_j² − 1). The rows' KL terms are the plain sums (the
/// rate); the backward passes weight dimension j by <see cref="MarginalShape.Weight"/> (AnchorVAE: the anchors'
/// information term λ·I(z_k; x), bounded by their KL, leaves them a KL weight of 1 − λ). log w for L_k is
/// −rec + log r(z) − log q(z|x) at the drawn z.
/// </summary>
public static class FactorizedPrior
{
    public static void FactorizedPriorForward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> marginal,
        ArrayView<float> z, ArrayView<float> epsilon, ArrayView<float> klPerRow, int rows, MarginalShape shape, DrawKey key) =>
        kernels.Launch(ForwardKernel, rows, stats, marginal, z, epsilon, klPerRow, shape, key);

    /// <summary>dStats of each example from its rows' dz and the weighted KL (klWeight per example: β/batch).</summary>
    public static void FactorizedPriorBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> marginal,
        ArrayView<float> epsilon, ArrayView<float> dZ, ArrayView<float> dStats, int examples, MarginalShape shape, float klWeight) =>
        kernels.Launch(BackwardKernel, examples, stats, marginal, epsilon, dZ, dStats, shape, klWeight);

    /// <summary>d/d[m | log s²] of the same weighted KL, summed over the examples in order (one thread per column).</summary>
    public static void FactorizedMarginalBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> marginal,
        ArrayView<float> dMarginal, int examples, MarginalShape shape, float klWeight) =>
        kernels.Launch(MarginalBackwardKernel, 2 * shape.Latent, stats, marginal, dMarginal, examples, shape, klWeight);

    public static void FactorizedPriorLogWeights(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> marginal,
        ArrayView<float> z, ArrayView<float> epsilon, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, int rows,
        MarginalShape shape) =>
        kernels.Launch(LogWeightsKernel, rows, stats, marginal, z, epsilon, reconstructionPerRow, logWeights, shape);

    /// <summary>One thread per z row: ε and z as the plain Gaussian sampler draws them, and Σ_j KL_j.</summary>
    [Kernel]
    public static void ForwardKernel(Index1D row, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> klPerRow, MarginalShape shape, DrawKey key)
    {
        int latent = shape.Latent, statsRow = row / shape.Samples * 2 * latent, codes = row * latent;
        float kl = 0f;
        for (int k = 0; k < latent; k++)
        {
            float eps = Philox.Normal(key.Seed, key.Stream, key.Step, key.Counter(codes + k, (long)shape.Samples * latent));
            float mu = stats[statsRow + k], logVariance = stats[statsRow + latent + k];
            float variance = MathF.Exp(logVariance), difference = mu - marginal[k], logMarginal = marginal[latent + k];
            epsilon[codes + k] = eps;
            z[codes + k] = mu + MathF.Exp(0.5f * logVariance) * eps;
            kl += 0.5f * (logMarginal - logVariance + (variance + difference * difference) * MathF.Exp(-logMarginal) - 1f);
        }
        klPerRow[row] = kl;
    }

    /// <summary>
    /// One thread per example: dμ_j = Σ_i dz_ij + c_j(μ_j − m_j)/s_j² and dlog σ_j² = Σ_i ½dz_ij·σ_j·ε_ij +
    /// c_j·½(σ_j²/s_j² − 1), with c_j = klWeight·(the dimension's weight).
    /// </summary>
    [Kernel]
    public static void BackwardKernel(Index1D example, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> epsilon,
        ArrayView<float> dZ, ArrayView<float> dStats, MarginalShape shape, float klWeight)
    {
        int latent = shape.Latent, statsRow = example * 2 * latent;
        for (int k = 0; k < latent; k++)
        {
            float logVariance = stats[statsRow + latent + k], sigma = MathF.Exp(0.5f * logVariance);
            float precision = MathF.Exp(-marginal[latent + k]), weight = klWeight * shape.Weight(k);
            float dMu = 0f, dLogVariance = 0f;
            for (int i = 0; i < shape.Samples; i++)
            {
                int code = (example * shape.Samples + i) * latent + k;
                dMu += dZ[code];
                dLogVariance += 0.5f * dZ[code] * sigma * epsilon[code];
            }
            dStats[statsRow + k] = dMu + weight * (stats[statsRow + k] - marginal[k]) * precision;
            dStats[statsRow + latent + k] = dLogVariance + weight * 0.5f * (sigma * sigma * precision - 1f);
        }
    }

    /// <summary>
    /// One thread per column of [m | log s²]: dm_j = −c_j Σ_b (μ_bj − m_j)/s_j² and dlog s_j² = c_j Σ_b ½(1 −
    /// (σ_bj² + (μ_bj − m_j)²)/s_j²).
    /// </summary>
    [Kernel]
    public static void MarginalBackwardKernel(Index1D column, ArrayView<float> stats, ArrayView<float> marginal,
        ArrayView<float> dMarginal, int examples, MarginalShape shape, float klWeight)
    {
        int latent = shape.Latent, k = column % latent;
        bool isMean = column < latent;
        float mean = marginal[k], precision = MathF.Exp(-marginal[latent + k]), sum = 0f;
        for (int example = 0; example < examples; example++)
        {
            int statsRow = example * 2 * latent;
            float difference = stats[statsRow + k] - mean;
            sum += isMean
                ? -difference * precision
                : 0.5f * (1f - (MathF.Exp(stats[statsRow + latent + k]) + difference * difference) * precision);
        }
        dMarginal[column] = klWeight * shape.Weight(k) * sum;
    }

    /// <summary>log w = −rec − Σ_j ½(log s_j² + (z_j − m_j)²/s_j² − log σ_j² − ε_j²) (the 2π terms cancel).</summary>
    [Kernel]
    public static void LogWeightsKernel(Index1D row, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, MarginalShape shape)
    {
        int latent = shape.Latent, statsRow = row / shape.Samples * 2 * latent, codes = row * latent;
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float logMarginal = marginal[latent + k], difference = z[codes + k] - marginal[k], eps = epsilon[codes + k];
            sum += logMarginal + difference * difference * MathF.Exp(-logMarginal) - stats[statsRow + latent + k] - eps * eps;
        }
        logWeights[row] = -reconstructionPerRow[row] - 0.5f * sum;
    }
}
