namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// The distributions of <see cref="Distributions"/> in double, written for clarity: log Γ by Lanczos'
/// approximation (independent of the kernels' Stirling series), ψ by recurrence and a longer asymptotic series,
/// and the samplers as the papers state them, from the kernels' own float uniforms.
/// </summary>
public static class DistributionReference
{
    // Lanczos' approximation with g = 7 and nine coefficients (relative error about 1e-15 for x > 0.5).
    private static readonly double[] Lanczos =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
        12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
    ];

    public static double LogGamma(double x)
    {
        if (!(x > 0))
            return double.NaN;
        if (x < 0.5)
            // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
            return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        x -= 1;
        double sum = Lanczos[0];
        for (int i = 1; i < Lanczos.Length; i++)
            sum += Lanczos[i] / (x + i);
        double t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }

    public static double Digamma(double x)
    {
        if (!(x > 0))
            return double.NaN;
        double result = 0;
        while (x < 10)
        {
            result -= 1 / x;
            x += 1;
        }
        double inverseSquare = 1 / (x * x);
        // ψ(x) ~ log x − 1/(2x) − Σ B_2n / (2n x^2n).
        double series = inverseSquare * (1.0 / 12 - inverseSquare * (1.0 / 120 - inverseSquare * (1.0 / 252
                        - inverseSquare * (1.0 / 240 - inverseSquare * (1.0 / 132)))));
        return result + Math.Log(x) - 0.5 / x - series;
    }

    public static double BernoulliLogDensity(double x, double logit) => x * logit - Softplus(logit);

    public static double PoissonLogDensity(double count, double rate) => count * Math.Log(rate) - rate - LogGamma(count + 1);

    public static double GammaLogDensity(double z, double shape, double rate) =>
        shape * Math.Log(rate) - LogGamma(shape) + (shape - 1) * Math.Log(z) - rate * z;

    /// <summary>∂/∂l of the Bernoulli log density: x − σ(l).</summary>
    public static double BernoulliScore(double x, double logit) => x - 1 / (1 + Math.Exp(-logit));

    /// <summary>∂/∂λ of the Poisson log density: k/λ − 1.</summary>
    public static double PoissonScore(double count, double rate) => count / rate - 1;

    /// <summary>∂/∂α and ∂/∂β of the gamma log density.</summary>
    public static (double Shape, double Rate) GammaScore(double z, double shape, double rate) =>
        (Math.Log(rate) - Digamma(shape) + Math.Log(z), shape / rate - z);

    public static double SampleBernoulli(double logit, DrawKey key, long element, int perExample)
    {
        double u = Philox.Uniform(key.Seed, key.Stream, key.Step, key.Counter(element, perExample));
        return u < 1 / (1 + Math.Exp(-logit)) ? 1 : 0;
    }

    /// <summary>Marsaglia and Tsang's method, with the boost u^(1/α) for α < 1, in double.</summary>
    public static double SampleGamma(double shape, double rate, DrawKey key, long element) =>
        Math.Exp(SampleLogGamma(shape, key, element)) / rate;

    /// <summary>log of the same Gamma(α, 1) draw: log(d·v), plus log u'/α for α &lt; 1.</summary>
    public static double SampleLogGamma(double shape, DrawKey key, long element)
    {
        bool boost = shape < 1;
        double a = boost ? shape + 1 : shape;
        double d = a - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        double draw = d, boostUniform = 0.5;
        for (int attempt = 0; attempt < Distributions.MaxAttempts; attempt++)
        {
            Distributions.AttemptUniforms(key, element, attempt, out float u0, out float u1, out float u2, out float u3);
            if (attempt == 0)
                boostUniform = u3;
            double normal = Math.Sqrt(-2 * Math.Log(u0)) * Math.Cos(2 * Math.PI * u1);
            double root = 1 + c * normal;
            if (root <= 0)
                continue;
            double v = root * root * root;
            draw = d * v;
            if (Math.Log(u2) < 0.5 * normal * normal + d - draw + d * Math.Log(v))
                break;
        }
        return boost ? Math.Log(draw) + Math.Log(boostUniform) / shape : Math.Log(draw);
    }

    /// <summary>Inversion below λ = 10, Hörmann's transformed rejection (PTRS) from there, in double.</summary>
    public static double SamplePoisson(double rate, DrawKey key, long element)
    {
        if (!(rate > 0))
            return 0;
        if (rate < Distributions.PoissonInversionLimit)
        {
            Distributions.AttemptUniforms(key, element, 0, out float u, out _, out _, out _);
            double probability = Math.Exp(-rate), cumulative = probability;
            int count = 0;
            while (u > cumulative && count < 1000 && probability > 0)
            {
                count++;
                probability *= rate / count;
                cumulative += probability;
            }
            return count;
        }
        double root = Math.Sqrt(rate), logRate = Math.Log(rate);
        double b = 0.931 + 2.53 * root, a = -0.059 + 0.02483 * b;
        double inverseAlpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
        double candidate = Math.Floor(rate);
        for (int attempt = 0; attempt < Distributions.MaxAttempts; attempt++)
        {
            Distributions.AttemptUniforms(key, element, attempt, out float u0, out float v, out _, out _);
            double centred = u0 - 0.5, us = 0.5 - Math.Abs(centred);
            double k = Math.Floor((2 * a / us + b) * centred + rate + 0.43);
            if (us >= 0.07 && v <= vr)
                return k;
            if (k < 0 || (us < 0.013 && v > us))
                continue;
            candidate = k;
            if (Math.Log(v) + Math.Log(inverseAlpha) - Math.Log(a / (us * us) + b) <= -rate + k * logRate - LogGamma(k + 1))
                return k;
        }
        return candidate;
    }

    private static double Softplus(double x) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));
}
