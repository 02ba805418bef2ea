using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The Gaussian posterior with a rank-one covariance of the deep latent Gaussian model (Rezende, Mohamed and
/// Wierstra 2014): the encoder writes stats [batch, 3K] = [μ | log d | u], and q(z|x) = N(μ, C) with precision
/// C⁻¹ = D + uuᵀ, D = diag(d). With a = D⁻¹u, s = uᵀD⁻¹u and η = 1/(1 + s):
///   C = D⁻¹ − η aaᵀ,  log|C| = log η − Σ log d,  z = μ + Rε with R = D^(−1/2) − c·a uᵀD^(−1/2), c = (1 − √η)/s,
/// so RRᵀ = C. c is computed as 1/(q(q + 1)) with q = √(1 + s), the same number without the 0/0 at s = 0.
/// Per row (w = D^(−1/2)ε, t = uᵀw): z = μ + w − c·t·a, and the KL against N(0, I) is
///   ½(Σμ² + Σ1/d − η Σa² − K + log(1 + s) + Σ log d).
/// The backward pass is the chain rule through those scalars (see <see cref="BackwardKernel"/>); log w needs only
/// (z − μ)ᵀC⁻¹(z − μ) = εᵀε. Rows are example-major with s samples per example, as in <see cref="Reparameterize"/>.
/// </summary>
public static class RankOne
{
    public static void RankOneForward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> klPerRow, int rows, int latent, DrawKey key, int samples = 1) =>
        kernels.Launch(ForwardKernel, rows, stats, z, epsilon, klPerRow, latent, samples, key);

    /// <summary>dStats of each example from its rows' dz, with the KL weighted by klWeight·klWeightFactor[0].</summary>
    public static void RankOneBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> epsilon, ArrayView<float> dZ,
        ArrayView<float> dStats, int examples, int latent, float klWeight, int samples = 1, ArrayView<float>? klWeightFactor = null) =>
        kernels.Launch(BackwardKernel, examples, stats, epsilon, dZ, dStats, klWeightFactor ?? kernels.Unit, latent, samples, klWeight);

    /// <summary>The IWAE's backward pass through the rank-one sampler: row r weighs scale·weights[r] (see
    /// <see cref="WeightedBackwardKernel"/>). <paramref name="standardPrior"/> 0 leaves out the N(0, I) prior's pull on
    /// z, for a latent whose prior is another layer's (its gradient then already in dZ).</summary>
    public static void RankOneWeightedBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> dZ, ArrayView<float> normalizedWeights, ArrayView<float> dStats, int examples, int latent, int samples, float scale,
        float standardPrior = 1f) =>
        kernels.Launch(WeightedBackwardKernel, examples, stats, z, epsilon, dZ, normalizedWeights, dStats, new RankOneShape(latent, samples, standardPrior), scale);

    /// <summary>log w = −rec + log p(z) − log q(z|x) per row.</summary>
    public static void RankOneLogWeights(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, int rows, int latent, int samples = 1) =>
        kernels.Launch(LogWeightsKernel, rows, stats, z, epsilon, reconstructionPerRow, logWeights, latent, samples);

    /// <summary>s = uᵀD⁻¹u = Σ u²/d of the rank-one stats row at <paramref name="statsRow"/> ([μ | log d | u]).</summary>
    public static float PrecisionSum(ArrayView<float> stats, int statsRow, int latent)
    {
        float s = 0f;
        for (int k = 0; k < latent; k++)
        {
            float u = stats[statsRow + 2 * latent + k];
            s += u * u * MathF.Exp(-stats[statsRow + latent + k]);
        }
        return s;
    }

    /// <summary>c = (1 − √η)/s for s = uᵀD⁻¹u, as 1/(q(q + 1)) with q = √(1 + s).</summary>
    public static float Shrink(float s)
    {
        float q = MathF.Sqrt(1f + s);
        return 1f / (q * (q + 1f));
    }

    /// <summary>dc/ds = −(2q + 1) / (2q³(q + 1)²).</summary>
    public static float ShrinkSlope(float s)
    {
        float q = MathF.Sqrt(1f + s);
        return -(2f * q + 1f) / (2f * q * q * q * (q + 1f) * (q + 1f));
    }

    /// <summary>One thread per z row: draws ε, then z = μ + w − c·t·a and the row's KL.</summary>
    [Kernel]
    public static void ForwardKernel(Index1D row, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> klPerRow, int latent, int samples, DrawKey key)
    {
        int statsRow = row / samples * 3 * latent;
        float muSquares = 0f, inverseD = 0f, aSquares = 0f, logD = 0f;
        for (int k = 0; k < latent; k++)
        {
            int index = row * latent + k;
            epsilon[index] = Philox.Normal(key.Seed, key.Stream, key.Step, key.Counter(index, (long)samples * latent));
            float mu = stats[statsRow + k], logd = stats[statsRow + latent + k], u = stats[statsRow + 2 * latent + k];
            float inverse = MathF.Exp(-logd);
            float a = u * inverse;
            muSquares += mu * mu;
            inverseD += inverse;
            aSquares += a * a;
            logD += logd;
        }
        float s = DrawScalars(stats, statsRow, epsilon, z, row * latent, latent).S, eta = 1f / (1f + s);
        klPerRow[row] = 0.5f * (muSquares + inverseD - eta * aSquares - latent + MathF.Log(1f + s) + logD);
    }

    /// <summary>z = μ + w − c·t·a for the stats row at <paramref name="statsRow"/> (its first 3K columns) and the ε
    /// row at <paramref name="codes"/>; returns εᵀε + log|C| = εᵀε − log(1 + s) − Σ log d, the base term of a flow on
    /// this Gaussian (−2 log q_0 less the 2π terms).</summary>
    public static float Draw(ArrayView<float> stats, int statsRow, ArrayView<float> epsilon, ArrayView<float> z, int codes, int latent)
    {
        var (s, epsilonSquares) = DrawScalars(stats, statsRow, epsilon, z, codes, latent);
        float logD = 0f;
        for (int k = 0; k < latent; k++)
            logD += stats[statsRow + latent + k];
        return epsilonSquares - MathF.Log(1f + s) - logD;
    }

    /// <summary>The draw itself; returns s = uᵀD⁻¹u and εᵀε.</summary>
    private static (float S, float EpsilonSquares) DrawScalars(ArrayView<float> stats, int statsRow, ArrayView<float> epsilon, ArrayView<float> z, int codes, int latent)
    {
        float s = 0f, t = 0f, epsilonSquares = 0f;
        for (int k = 0; k < latent; k++)
        {
            float eps = epsilon[codes + k], logd = stats[statsRow + latent + k], u = stats[statsRow + 2 * latent + k];
            float a = u * MathF.Exp(-logd);
            s += u * a;
            t += u * MathF.Exp(-0.5f * logd) * eps;
            epsilonSquares += eps * eps;
        }
        float c = Shrink(s);
        for (int k = 0; k < latent; k++)
        {
            float logd = stats[statsRow + latent + k], u = stats[statsRow + 2 * latent + k];
            z[codes + k] = stats[statsRow + k] + MathF.Exp(-0.5f * logd) * epsilon[codes + k] - c * t * u * MathF.Exp(-logd);
        }
        return (s, epsilonSquares);
    }

    /// <summary>
    /// A flow's rank-one base, one sample: adds to its example's dStats the sampler's share of g (the gradient at z_0)
    /// and that of <paramref name="logQWeight"/>·log q_0(z_0) with ε fixed, ½c(1 − η·u·a) to ∂/∂log d and c·η·a to ∂/∂u
    /// (log q_0 depends on the stats only through log|C|).
    /// </summary>
    public static void AddBaseGradient(ArrayView<float> stats, ArrayView<float> epsilon, ArrayView<float> g, ArrayView<float> dStats,
        int statsRow, int codes, int latent, float logQWeight)
    {
        float s = PrecisionSum(stats, statsRow, latent);
        float eta = 1f / (1f + s);
        for (int k = 0; k < latent; k++)
        {
            float u = stats[statsRow + 2 * latent + k], a = u * MathF.Exp(-stats[statsRow + latent + k]);
            dStats[statsRow + latent + k] += 0.5f * logQWeight * (1f - eta * u * a);
            dStats[statsRow + 2 * latent + k] += logQWeight * eta * a;
        }
        AddSampleGradient(stats, epsilon, g, g, 0f, dStats, statsRow, codes, latent, Shrink(s), ShrinkSlope(s));
    }

    /// <summary>
    /// One thread per example. The KL part first (once per example, weighted): ∂KL/∂μ = μ, and through
    /// s (∂KL/∂s = ½(η²Σa² + η)), a (∂KL/∂a = −ηa) and d directly (½(1 − 1/d)). Then each sample's dz = g:
    /// ∂/∂μ += g; with G = gᵀa, ∂/∂t = −cG, ∂/∂c = −tG, ∂/∂s = ∂/∂c·dc/ds, ∂/∂a = −ctg and ∂/∂w = g + (∂/∂t)u;
    /// then a = u/d, s = Σu²/d, t = Σuw and w = ε/√d give ∂/∂u = (∂/∂a)/d + 2a·∂/∂s + w·∂/∂t and
    /// ∂/∂log d = −a·∂/∂a − ua·∂/∂s − ½w·∂/∂w.
    /// </summary>
    [Kernel]
    public static void BackwardKernel(Index1D example, ArrayView<float> stats, ArrayView<float> epsilon, ArrayView<float> dZ,
        ArrayView<float> dStats, ArrayView<float> klWeightFactor, int latent, int samples, float klWeight)
    {
        klWeight *= klWeightFactor[0];
        int statsRow = example * 3 * latent;
        float s = 0f, aSquares = 0f;
        for (int k = 0; k < latent; k++)
        {
            float u = stats[statsRow + 2 * latent + k];
            float a = u * MathF.Exp(-stats[statsRow + latent + k]);
            s += u * a;
            aSquares += a * a;
        }
        float c = Shrink(s), slope = ShrinkSlope(s), eta = 1f / (1f + s);
        float klBySum = 0.5f * (eta * eta * aSquares + eta);
        for (int k = 0; k < latent; k++)
        {
            float mu = stats[statsRow + k], logd = stats[statsRow + latent + k], u = stats[statsRow + 2 * latent + k];
            float inverse = MathF.Exp(-logd), a = u * inverse;
            dStats[statsRow + k] = klWeight * mu;
            dStats[statsRow + latent + k] = klWeight * (0.5f * (1f - inverse) + eta * a * a - klBySum * u * a);
            dStats[statsRow + 2 * latent + k] = klWeight * (-eta * a * inverse + klBySum * 2f * a);
        }
        for (int i = 0; i < samples; i++)
            AddSampleGradient(stats, epsilon, dZ, dZ, 0f, dStats, statsRow, (example * samples + i) * latent, latent, c, slope);
    }

    /// <summary>
    /// One sample's share of the sampler's gradient, added to its example's row of dStats: with g = dz (plus
    /// <paramref name="priorWeight"/>·z, the IWAE's prior term, when that is not 0), G = gᵀa, ∂/∂t = −cG,
    /// ∂/∂s = −tG·dc/ds, ∂/∂a = −ctg and ∂/∂w = g + (∂/∂t)u, carried to μ, log d and u (see <see cref="BackwardKernel"/>).
    /// </summary>
    private static void AddSampleGradient(ArrayView<float> stats, ArrayView<float> epsilon, ArrayView<float> dZ, ArrayView<float> z,
        float priorWeight, ArrayView<float> dStats, int statsRow, int rowStart, int latent, float c, float slope)
    {
        float t = 0f, g = 0f;
        for (int k = 0; k < latent; k++)
        {
            float logd = stats[statsRow + latent + k], u = stats[statsRow + 2 * latent + k];
            t += u * MathF.Exp(-0.5f * logd) * epsilon[rowStart + k];
            g += CodeGradient(dZ, z, priorWeight, rowStart + k) * u * MathF.Exp(-logd);
        }
        float byT = -c * g, bySum = -t * g * slope;
        for (int k = 0; k < latent; k++)
        {
            float logd = stats[statsRow + latent + k], u = stats[statsRow + 2 * latent + k];
            float inverse = MathF.Exp(-logd), a = u * inverse, w = MathF.Exp(-0.5f * logd) * epsilon[rowStart + k];
            float dz = CodeGradient(dZ, z, priorWeight, rowStart + k);
            float byA = -c * t * dz, byW = dz + byT * u;
            dStats[statsRow + k] += dz;
            dStats[statsRow + latent + k] += -a * byA - u * a * bySum - 0.5f * w * byW;
            dStats[statsRow + 2 * latent + k] += byA * inverse + 2f * a * bySum + w * byT;
        }
    }

    /// <summary>What reaches z at one element: dz, plus the N(0, I) prior's pull weight·z when the weight is not 0.</summary>
    private static float CodeGradient(ArrayView<float> dZ, ArrayView<float> z, float priorWeight, int index) =>
        priorWeight == 0f ? dZ[index] : dZ[index] + priorWeight * z[index];

    /// <summary>
    /// One thread per example. Row r's term is c_r·(rec − log p(z) + log q(z|x)), c_r = scale·w_r, with dZ already
    /// holding c_r times the reconstruction's gradient: the prior adds c_r·z to what reaches z, which then goes back
    /// through the sampler as in <see cref="BackwardKernel"/>; log q = −½(K log 2π + εᵀε − log(1 + s) − Σ log d)
    /// depends on the stats only through log|C| (ε fixed), adding ½c_r(1 − η·u·a) to ∂/∂log d and c_r·η·a to ∂/∂u.
    /// </summary>
    [Kernel]
    public static void WeightedBackwardKernel(Index1D example, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> dZ, ArrayView<float> rowWeights, ArrayView<float> dStats, RankOneShape shape, float scale)
    {
        int latent = shape.Latent, samples = shape.Samples;
        int statsRow = example * 3 * latent;
        float s = PrecisionSum(stats, statsRow, latent);
        float c = Shrink(s), slope = ShrinkSlope(s), eta = 1f / (1f + s);
        float weightSum = 0f;
        for (int i = 0; i < samples; i++)
            weightSum += scale * rowWeights[example * samples + i];
        for (int k = 0; k < latent; k++)
        {
            float u = stats[statsRow + 2 * latent + k];
            float a = u * MathF.Exp(-stats[statsRow + latent + k]);
            dStats[statsRow + k] = 0f;
            dStats[statsRow + latent + k] = 0.5f * weightSum * (1f - eta * u * a);
            dStats[statsRow + 2 * latent + k] = weightSum * eta * a;
        }
        for (int i = 0; i < samples; i++)
        {
            int sample = example * samples + i;
            AddSampleGradient(stats, epsilon, dZ, z, shape.StandardPrior * scale * rowWeights[sample], dStats, statsRow, sample * latent, latent, c, slope);
        }
    }

    /// <summary>log p(z) − log q(z|x) = −½Σz² + ½(εᵀε − log(1 + s) − Σ log d), the 2π terms cancelling.</summary>
    [Kernel]
    public static void LogWeightsKernel(Index1D row, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, int latent, int samples)
    {
        int statsRow = row / samples * 3 * latent;
        float s = 0f, logD = 0f, zSquares = 0f, epsilonSquares = 0f;
        for (int k = 0; k < latent; k++)
        {
            int index = row * latent + k;
            float logd = stats[statsRow + latent + k], u = stats[statsRow + 2 * latent + k];
            s += u * u * MathF.Exp(-logd);
            logD += logd;
            zSquares += z[index] * z[index];
            epsilonSquares += epsilon[index] * epsilon[index];
        }
        logWeights[row] = -reconstructionPerRow[row] - 0.5f * zSquares + 0.5f * (epsilonSquares - MathF.Log(1f + s) - logD);
    }
}

/// <summary>The rank-one weighted backward pass's widths (kernels take a bounded number of arguments): K, the samples
/// per example, and the weight of the N(0, I) prior's pull on z (1, or 0 where z's prior is another layer's).</summary>
public readonly struct RankOneShape
{
    public readonly int Latent, Samples;
    public readonly float StandardPrior;

    public RankOneShape(int latent, int samples, float standardPrior)
    {
        Latent = latent;
        Samples = samples;
        StandardPrior = standardPrior;
    }
}
