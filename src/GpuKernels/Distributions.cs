using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Non-Gaussian latents on the device (issue 24): Bernoulli, Poisson and gamma draws from Philox, their log
/// densities and their score functions (the gradient of log q with respect to its parameters, what a
/// score-function estimator multiplies by the learning signal), and the special functions they need, log Γ and
/// the digamma function ψ, all in float. Double references: <see cref="Reference.DistributionReference"/>.
/// Parameterisations: Bernoulli by its logit l (p = σ(l)); Poisson by its rate λ; gamma by shape α and rate β
/// (mean α/β).
/// </summary>
public static class Distributions
{
    /// <summary>Rejection samplers try at most this many candidates. Marsaglia–Tsang accepts at least 95% of its
    /// candidates and the Poisson sampler for λ ≥ 10 about 90% (Hörmann's figures), so the cap is reached with
    /// probability below 0.1⁶⁴; then the last candidate (or the mean) is returned.</summary>
    public const int MaxAttempts = 64;

    /// <summary>Rates below this are drawn by inversion from one uniform; at and above it by Hörmann's transformed
    /// rejection (PTRS), whose constants assume λ ≥ 10.</summary>
    public const float PoissonInversionLimit = 10f;

    private const float HalfLogTwoPi = 0.9189385332f;

    /// <summary>log Γ(x) for x > 0: the argument raised to at least 7 by Γ(x + 1) = xΓ(x), then Stirling's series
    /// to the x⁻⁵ term (its next term is below 1e-7 there). NaN for x ≤ 0.</summary>
    public static float LogGamma(float x)
    {
        if (!(x > 0f))
            return float.NaN;
        float shift = 0f;
        // One log of the product of the raised terms, not one log each: a product of at most 7 factors below 7.
        float product = 1f;
        while (x < 7f)
        {
            product *= x;
            x += 1f;
        }
        if (product != 1f)
            shift = MathF.Log(product);
        float inverse = 1f / x, inverseSquare = inverse * inverse;
        float series = inverse * (1f / 12f - inverseSquare * (1f / 360f - inverseSquare * (1f / 1260f)));
        return (x - 0.5f) * MathF.Log(x) - x + HalfLogTwoPi + series - shift;
    }

    /// <summary>ψ(x) = d log Γ(x)/dx for x > 0: raised to at least 6 by ψ(x) = ψ(x + 1) − 1/x, then the asymptotic
    /// series to the x⁻⁶ term. NaN for x ≤ 0.</summary>
    public static float Digamma(float x)
    {
        if (!(x > 0f))
            return float.NaN;
        float shift = 0f;
        while (x < 6f)
        {
            shift += 1f / x;
            x += 1f;
        }
        float inverse = 1f / x, inverseSquare = inverse * inverse;
        float series = inverseSquare * (1f / 12f - inverseSquare * (1f / 120f - inverseSquare * (1f / 252f)));
        return MathF.Log(x) - 0.5f * inverse - series - shift;
    }

    /// <summary>The four uniforms of candidate <paramref name="attempt"/> for element <paramref name="element"/>: one
    /// Philox block, the attempt in the top byte of the counter's second word (elements stay below 2⁵⁶).</summary>
    public static void AttemptUniforms(DrawKey key, long element, int attempt, out float u0, out float u1, out float u2, out float u3)
    {
        Philox.Block((uint)element, (uint)(element >> 32) | ((uint)attempt << 24), (uint)key.Step, key.Stream,
            (uint)key.Seed, (uint)(key.Seed >> 32), out uint b0, out uint b1, out uint b2, out uint b3);
        u0 = Philox.ToUnitInterval(b0);
        u1 = Philox.ToUnitInterval(b1);
        u2 = Philox.ToUnitInterval(b2);
        u3 = Philox.ToUnitInterval(b3);
    }

    /// <summary>
    /// Gamma(α, β) by Marsaglia and Tsang (2000): with d = a − 1/3 and c = 1/√(9d), a candidate v = (1 + c·n)³ from a
    /// normal n (Box–Muller on the block's first two uniforms) is accepted when log u < n²/2 + d − d·v + d·log v
    /// (u the third); then d·v ~ Gamma(a, 1). For α < 1 the draw is of a = α + 1, times u'^(1/α) (u' the fourth
    /// uniform of the first block), which is Gamma(α, 1). Divided by β.
    /// </summary>
    public static float SampleGamma(float shape, float rate, DrawKey key, long element)
    {
        float draw = MarsagliaTsang(shape, key, element, out float boostUniform);
        if (shape < 1f)
            draw *= MathF.Exp(MathF.Log(boostUniform) / shape);
        return draw / rate;
    }

    /// <summary>log of a Gamma(α, 1) draw, the same draw as <see cref="SampleGamma"/>'s with rate 1, kept in log
    /// space: for α &lt; 1 the boost adds log u'/α, which for small α reaches far below float's smallest normal
    /// (α = 0.1 puts 1% of draws under 1e-20), where the draw itself would round to 0 and its log density be lost.</summary>
    public static float SampleLogGamma(float shape, DrawKey key, long element)
    {
        float logDraw = MathF.Log(MarsagliaTsang(shape, key, element, out float boostUniform));
        return shape < 1f ? logDraw + MathF.Log(boostUniform) / shape : logDraw;
    }

    /// <summary>Marsaglia and Tsang's accepted d·v ~ Gamma(a, 1) with a = α, or α + 1 for α &lt; 1 (then
    /// <paramref name="boostUniform"/> is the first block's fourth uniform, for the boost).</summary>
    private static float MarsagliaTsang(float shape, DrawKey key, long element, out float boostUniform)
    {
        bool boost = shape < 1f;
        float a = boost ? shape + 1f : shape;
        float d = a - 1f / 3f, c = 1f / MathF.Sqrt(9f * d);
        float draw = d;
        boostUniform = 0.5f;
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            AttemptUniforms(key, element, attempt, out float u0, out float u1, out float u2, out float u3);
            if (attempt == 0)
                boostUniform = u3;
            float normal = MathF.Sqrt(-2f * MathF.Log(u0)) * MathF.Cos(2f * MathF.PI * u1);
            float root = 1f + c * normal;
            if (root <= 0f)
                continue;
            float v = root * root * root;
            draw = d * v;
            if (MathF.Log(u2) < 0.5f * normal * normal + d - draw + d * MathF.Log(v))
                break;
        }
        return draw;
    }

    /// <summary>
    /// Poisson(λ) as a float count. λ below <see cref="PoissonInversionLimit"/>: inversion, the smallest k whose
    /// cumulative probability reaches one uniform (p_k = p_{k−1}·λ/k from e^−λ). At and above it: Hörmann's (1993)
    /// transformed rejection with squeeze, PTRS, from two uniforms a candidate, accepted by comparing with the
    /// log density (log Γ on the device).
    /// </summary>
    public static float SamplePoisson(float rate, DrawKey key, long element)
    {
        if (!(rate > 0f))
            return 0f;
        if (rate < PoissonInversionLimit)
        {
            AttemptUniforms(key, element, 0, out float u, out _, out _, out _);
            float probability = MathF.Exp(-rate), cumulative = probability;
            int count = 0;
            while (u > cumulative && count < 1000)
            {
                count++;
                probability *= rate / count;
                cumulative += probability;
                // Rounding can leave the cumulative sum a hair below 1; past the mass, stop.
                if (probability == 0f)
                    break;
            }
            return count;
        }
        float root = MathF.Sqrt(rate), logRate = MathF.Log(rate);
        float b = 0.931f + 2.53f * root, a = -0.059f + 0.02483f * b;
        float inverseAlpha = 1.1239f + 1.1328f / (b - 3.4f), vr = 0.9277f - 3.6224f / (b - 2f);
        float candidate = MathF.Floor(rate);
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            AttemptUniforms(key, element, attempt, out float u0, out float v, out _, out _);
            float centred = u0 - 0.5f, us = 0.5f - MathF.Abs(centred);
            float k = MathF.Floor((2f * a / us + b) * centred + rate + 0.43f);
            if (us >= 0.07f && v <= vr)
                return k;
            if (k < 0f || (us < 0.013f && v > us))
                continue;
            candidate = k;
            if (MathF.Log(v) + MathF.Log(inverseAlpha) - MathF.Log(a / (us * us) + b) <= -rate + k * logRate - LogGamma(k + 1f))
                return k;
        }
        return candidate;
    }

    /// <summary>log Bernoulli(x; σ(l)) = x·l − softplus(l), softplus in its stable form.</summary>
    public static float BernoulliLogDensity(float x, float logit) =>
        x * logit - (MathF.Max(logit, 0f) + MathF.Log(1f + MathF.Exp(-MathF.Abs(logit))));

    /// <summary>log Poisson(k; λ) = k·log λ − λ − log Γ(k + 1).</summary>
    public static float PoissonLogDensity(float count, float rate) => count * MathF.Log(rate) - rate - LogGamma(count + 1f);

    /// <summary>log Gamma(z; α, β) = α·log β − log Γ(α) + (α − 1)·log z − β·z.</summary>
    public static float GammaLogDensity(float z, float shape, float rate) =>
        shape * MathF.Log(rate) - LogGamma(shape) + (shape - 1f) * MathF.Log(z) - rate * z;

    /// <summary>x ~ Bernoulli(σ(l)) per element. Element e of a row of <paramref name="perExample"/> draws counter
    /// <see cref="DrawKey.Counter"/>(e, perExample), as the Gaussian samplers do, so a data-parallel slice draws what
    /// the whole batch draws for its examples.</summary>
    public static void SampleBernoulli(this KernelSet kernels, ArrayView<float> logits, ArrayView<float> x, int perExample, DrawKey key) =>
        kernels.Launch(SampleBernoulliKernel, (int)logits.Length, logits, x, perExample, key);

    /// <summary>counts ~ Poisson(rate) per element, keyed as <see cref="SampleBernoulli"/>.</summary>
    public static void SamplePoisson(this KernelSet kernels, ArrayView<float> rates, ArrayView<float> counts, int perExample, DrawKey key) =>
        kernels.Launch(SamplePoissonKernel, (int)rates.Length, rates, counts, perExample, key);

    /// <summary>z ~ Gamma(shape, rate) per element, keyed as <see cref="SampleBernoulli"/>.</summary>
    public static void SampleGamma(this KernelSet kernels, ArrayView<float> shapes, ArrayView<float> rates, ArrayView<float> z, int perExample, DrawKey key) =>
        kernels.Launch(SampleGammaKernel, (int)shapes.Length, shapes, rates, z, perExample, key);

    /// <summary>log q per element and its score ∂ log q/∂l = x − σ(l).</summary>
    public static void BernoulliLogDensity(this KernelSet kernels, ArrayView<float> x, ArrayView<float> logits, ArrayView<float> logDensity,
        ArrayView<float> dLogits) =>
        kernels.Launch(BernoulliLogDensityKernel, (int)x.Length, x, logits, logDensity, dLogits);

    /// <summary>log q per element and its score ∂ log q/∂λ = k/λ − 1.</summary>
    public static void PoissonLogDensity(this KernelSet kernels, ArrayView<float> counts, ArrayView<float> rates, ArrayView<float> logDensity,
        ArrayView<float> dRates) =>
        kernels.Launch(PoissonLogDensityKernel, (int)counts.Length, counts, rates, logDensity, dRates);

    /// <summary>log q per element and its scores ∂ log q/∂α = log β − ψ(α) + log z and ∂ log q/∂β = α/β − z.</summary>
    public static void GammaLogDensity(this KernelSet kernels, ArrayView<float> z, ArrayView<float> shapes, ArrayView<float> rates,
        ArrayView<float> logDensity, ArrayView<float> dShapes, ArrayView<float> dRates) =>
        kernels.Launch(GammaLogDensityKernel, (int)z.Length, z, shapes, rates, logDensity, dShapes, dRates);

    /// <summary>log Γ and ψ of each element (for the tests and <c>check</c>; the samplers and densities call them inline).</summary>
    public static void SpecialFunctions(this KernelSet kernels, ArrayView<float> x, ArrayView<float> logGamma, ArrayView<float> digamma) =>
        kernels.Launch(SpecialFunctionsKernel, (int)x.Length, x, logGamma, digamma);

    [Kernel]
    public static void SampleBernoulliKernel(Index1D element, ArrayView<float> logits, ArrayView<float> x, int perExample, DrawKey key)
    {
        float u = Philox.Uniform(key.Seed, key.Stream, key.Step, key.Counter(element, perExample));
        // u < σ(l), written as u·(1 + e^−l) < 1 so that no division rounds the threshold.
        x[element] = u * (1f + MathF.Exp(-logits[element])) < 1f ? 1f : 0f;
    }

    [Kernel]
    public static void SamplePoissonKernel(Index1D element, ArrayView<float> rates, ArrayView<float> counts, int perExample, DrawKey key) =>
        counts[element] = SamplePoisson(rates[element], key, key.Counter(element, perExample));

    [Kernel]
    public static void SampleGammaKernel(Index1D element, ArrayView<float> shapes, ArrayView<float> rates, ArrayView<float> z, int perExample,
        DrawKey key) =>
        z[element] = SampleGamma(shapes[element], rates[element], key, key.Counter(element, perExample));

    [Kernel]
    public static void BernoulliLogDensityKernel(Index1D element, ArrayView<float> x, ArrayView<float> logits, ArrayView<float> logDensity,
        ArrayView<float> dLogits)
    {
        float logit = logits[element];
        logDensity[element] = BernoulliLogDensity(x[element], logit);
        dLogits[element] = x[element] - 1f / (1f + MathF.Exp(-logit));
    }

    [Kernel]
    public static void PoissonLogDensityKernel(Index1D element, ArrayView<float> counts, ArrayView<float> rates, ArrayView<float> logDensity,
        ArrayView<float> dRates)
    {
        float count = counts[element], rate = rates[element];
        logDensity[element] = PoissonLogDensity(count, rate);
        dRates[element] = count / rate - 1f;
    }

    [Kernel]
    public static void GammaLogDensityKernel(Index1D element, ArrayView<float> z, ArrayView<float> shapes, ArrayView<float> rates,
        ArrayView<float> logDensity, ArrayView<float> dShapes, ArrayView<float> dRates)
    {
        float value = z[element], shape = shapes[element], rate = rates[element];
        logDensity[element] = GammaLogDensity(value, shape, rate);
        dShapes[element] = MathF.Log(rate) - Digamma(shape) + MathF.Log(value);
        dRates[element] = shape / rate - value;
    }

    [Kernel]
    public static void SpecialFunctionsKernel(Index1D element, ArrayView<float> x, ArrayView<float> logGamma, ArrayView<float> digamma)
    {
        logGamma[element] = LogGamma(x[element]);
        digamma[element] = Digamma(x[element]);
    }
}
