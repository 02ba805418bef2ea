using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>The unit types of a deep exponential family's layers (Ranganath et al. 2015, table 1).</summary>
public enum DefUnitKind
{
    /// <summary>Sparse gamma units, z &gt; 0: p(z | μ) = Gamma(α, α/μ), q a gamma (<see cref="DeepExponential"/>).</summary>
    Gamma,

    /// <summary>Poisson units, z ∈ {0, 1, 2, …}: p(z | μ) = Poisson(μ), q a Poisson.</summary>
    Poisson,

    /// <summary>Sigmoid-belief-net units, z ∈ {0, 1}: p(z = 1 | η) = σ(η), η = W·z_above + b with real W, q a Bernoulli.</summary>
    Bernoulli,
}

/// <summary>One discrete unit type of the DEF, a generic struct parameter: q's draw from its one statistic ρ (the
/// mean column of q's statistics row), and the prior's log density given the parameter the layer above sets.</summary>
public interface IDiscreteDefUnit
{
    /// <summary>z ~ q(ρ) from the counter's uniforms, with log q(z) and ∂ log q(z)/∂ρ.</summary>
    float Sample(float rho, DrawKey key, long counter, out float logQ, out float score);

    /// <summary>log p(z | parent) and its derivative in the parent (μ for Poisson, η for Bernoulli).</summary>
    float LogPrior(float z, float parent, out float dParent);

    /// <summary>The parent of the top layer's units (the prior's fixed hyperparameter).</summary>
    float TopParent();

    /// <summary>q's mean from ρ.</summary>
    float PosteriorMean(float rho);
}

/// <summary>Poisson units: q(z) = Poisson(λ), λ = softplus(ρ) + <see cref="DeepExponential.MeanFloor"/>;
/// ∂ log q/∂ρ = (z/λ − 1)·σ(ρ). p(z | μ) = Poisson(μ), ∂/∂μ = z/μ − 1; the top layer's μ is 1.</summary>
public readonly struct PoissonDefUnit : IDiscreteDefUnit
{
    public float Sample(float rho, DrawKey key, long counter, out float logQ, out float score)
    {
        float rate = DeepExponential.Mean(rho);
        float count = Distributions.SamplePoisson(rate, key, counter);
        logQ = Distributions.PoissonLogDensity(count, rate);
        score = (count / rate - 1f) * StableMath.Sigmoid(rho);
        return count;
    }

    public float LogPrior(float z, float parent, out float dParent)
    {
        dParent = z / parent - 1f;
        return Distributions.PoissonLogDensity(z, parent);
    }

    public float TopParent() => 1f;

    public float PosteriorMean(float rho) => DeepExponential.Mean(rho);
}

/// <summary>Sigmoid-belief-net units: q(z = 1) = σ(ρ), ∂ log q/∂ρ = z − σ(ρ). p(z = 1 | η) = σ(η), ∂/∂η = z − σ(η);
/// the top layer's η is 0 (each unit on with probability ½).</summary>
public readonly struct BernoulliDefUnit : IDiscreteDefUnit
{
    public float Sample(float rho, DrawKey key, long counter, out float logQ, out float score)
    {
        Distributions.AttemptUniforms(key, counter, 0, out float u, out _, out _, out _);
        // u < σ(ρ), written as u·(1 + e^−ρ) < 1 so that no division rounds the threshold.
        float z = u * (1f + MathF.Exp(-rho)) < 1f ? 1f : 0f;
        logQ = Distributions.BernoulliLogDensity(z, rho);
        score = z - StableMath.Sigmoid(rho);
        return z;
    }

    public float LogPrior(float z, float parent, out float dParent)
    {
        dParent = z - StableMath.Sigmoid(parent);
        return Distributions.BernoulliLogDensity(z, parent);
    }

    public float TopParent() => 0f;

    public float PosteriorMean(float rho) => StableMath.Sigmoid(rho);
}

/// <summary>
/// The deep exponential family's Poisson and sigmoid-belief-net layers on the device, the discrete counterparts of
/// <see cref="DeepExponential"/>'s gamma kernels with the same buffers: a layer's q reads only the mean column of
/// its units' statistics (the shape column is the gamma units'; here its score is 0, so its gradient is 0), log z is
/// written 0 (only gamma units read it), and the score-function gradient is
/// <see cref="DeepExponential.GammaScoreGradient"/>'s, whose signals do not depend on the unit type. Double
/// references: <see cref="Reference.DeepExponentialReference"/>.
/// </summary>
public static class DeepExponentialDiscrete
{
    /// <summary>
    /// z ~ q for one Poisson or Bernoulli layer, k rows per example, element (r, j) keyed as the gamma layers' draws
    /// (counter r·T + offset + j, k·T). Writes z, log z = 0, log q(z) and the score [0 | ∂ log q/∂ρ_m] per row
    /// ([rows, 2K]). One thread per element.
    /// </summary>
    public static void DiscretePosteriorSample(this KernelSet kernels, DefUnitKind kind, ArrayView<float> statistics, ArrayView<float> z,
        ArrayView<float> logZ, ArrayView<float> logQ, ArrayView<float> score, GammaLayerShape shape, DrawKey key)
    {
        if (kind == DefUnitKind.Poisson)
            kernels.Launch(PosteriorSampleKernel<PoissonDefUnit>, (int)z.Length, statistics, z, logZ, logQ, score, shape, key);
        else
            kernels.Launch(PosteriorSampleKernel<BernoulliDefUnit>, (int)z.Length, statistics, z, logZ, logQ, score, shape, key);
    }

    /// <summary>
    /// One Poisson or Bernoulli layer's prior terms per row, as <see cref="DeepExponential.GammaLayerTerms"/>:
    /// logPrior[r, j] = log p(z | parent) with the parents [rows, K] (μ or η; for the top layer pass
    /// <see cref="KernelSet.None"/> and each unit reads the fixed hyperparameter), dParents = ∂ log p/∂parent (not
    /// for the top), rowLogPrior[r] = Σ_j logPrior, and kl[r] gains Σ_j (log q − log p) (set when
    /// <paramref name="first"/>). One thread per row, units in order.
    /// </summary>
    public static void DiscreteLayerTerms(this KernelSet kernels, DefUnitKind kind, ArrayView<float> z, ArrayView<float> logQ, ArrayView<float> parents,
        ArrayView<float> logPrior, ArrayView<float> dParents, ArrayView<float> rowLogPrior, ArrayView<float> kl, int units, bool first)
    {
        int hasParents = parents.Length > 0 ? 1 : 0;
        if (kind == DefUnitKind.Poisson)
            kernels.Launch(LayerTermsKernel<PoissonDefUnit>, (int)rowLogPrior.Length, z, logQ, parents, logPrior, dParents, rowLogPrior, kl, units,
                first ? 1 : 0, hasParents);
        else
            kernels.Launch(LayerTermsKernel<BernoulliDefUnit>, (int)rowLogPrior.Length, z, logQ, parents, logPrior, dParents, rowLogPrior, kl, units,
                first ? 1 : 0, hasParents);
    }

    /// <summary>q's mean of a unit of this kind from its mean statistic ρ_m (the gamma's and Poisson's
    /// softplus(ρ_m) + floor, the Bernoulli's σ(ρ_m)).</summary>
    public static float PosteriorMean(DefUnitKind kind, float rho) => kind switch
    {
        DefUnitKind.Bernoulli => default(BernoulliDefUnit).PosteriorMean(rho),
        DefUnitKind.Poisson => default(PoissonDefUnit).PosteriorMean(rho),
        _ => DeepExponential.Mean(rho),
    };

    [Kernel(typeof(PoissonDefUnit), typeof(BernoulliDefUnit))]
    public static void PosteriorSampleKernel<TUnit>(Index1D element, ArrayView<float> statistics, ArrayView<float> z, ArrayView<float> logZ,
        ArrayView<float> logQ, ArrayView<float> score, GammaLayerShape shape, DrawKey key)
        where TUnit : struct, IDiscreteDefUnit
    {
        int units = shape.Units, total = shape.TotalUnits;
        int row = element / units, unit = element - row * units;
        float rho = statistics[row / shape.Samples * 2 * total + total + shape.Offset + unit];
        long counter = key.Counter((long)row * total + shape.Offset + unit, (long)shape.Samples * total);
        z[element] = default(TUnit).Sample(rho, key, counter, out float logDensity, out float rhoScore);
        logZ[element] = 0f;
        logQ[element] = logDensity;
        int scoreRow = row * 2 * units + unit;
        score[scoreRow] = 0f;
        score[scoreRow + units] = rhoScore;
    }

    [Kernel(typeof(PoissonDefUnit), typeof(BernoulliDefUnit))]
    public static void LayerTermsKernel<TUnit>(Index1D row, ArrayView<float> z, ArrayView<float> logQ, ArrayView<float> parents, ArrayView<float> logPrior,
        ArrayView<float> dParents, ArrayView<float> rowLogPrior, ArrayView<float> kl, int units, int first, int hasParents)
        where TUnit : struct, IDiscreteDefUnit
    {
        float priorSum = 0f, klSum = 0f;
        for (int j = 0; j < units; j++)
        {
            int index = row * units + j;
            float parent = hasParents != 0 ? parents[index] : default(TUnit).TopParent();
            float logP = default(TUnit).LogPrior(z[index], parent, out float dParent);
            logPrior[index] = logP;
            if (hasParents != 0)
                dParents[index] = dParent;
            priorSum += logP;
            klSum += logQ[index] - logP;
        }
        rowLogPrior[row] = priorSum;
        kl[row] = first != 0 ? klSum : kl[row] + klSum;
    }
}
