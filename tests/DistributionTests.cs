using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// Bernoulli, Poisson and gamma on the device (issue 24's distributions): log Γ and ψ, the samplers, the log
/// densities and their scores, each against its double reference at odd sizes, the references against known values
/// and finite differences, and the samplers' moments against the distributions'.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class DistributionTests(AcceleratorFixture fixture)
{
    private const double EulerGamma = 0.57721566490153286;

    [Fact]
    public void ReferencesMatchKnownValuesAndEachOther()
    {
        Assert.Equal(0.5 * Math.Log(Math.PI), DistributionReference.LogGamma(0.5), 1e-13);
        Assert.Equal(0, DistributionReference.LogGamma(1), 1e-13);
        Assert.Equal(0, DistributionReference.LogGamma(2), 1e-13);
        Assert.Equal(Math.Log(362880), DistributionReference.LogGamma(10), 1e-12);
        Assert.Equal(2.2527126517342059, DistributionReference.LogGamma(0.1), 1e-12);
        Assert.Equal(-EulerGamma, DistributionReference.Digamma(1), 1e-12);
        Assert.Equal(-EulerGamma - 2 * Math.Log(2), DistributionReference.Digamma(0.5), 1e-12);
        Assert.Equal(Enumerable.Range(1, 9).Sum(n => 1.0 / n) - EulerGamma, DistributionReference.Digamma(10), 1e-12);
        // ψ is log Γ's derivative: central differences of the reference's log Γ (h chosen for about 1e-9 accuracy).
        foreach (double x in new[] { 0.05, 0.7, 3.3, 42.0, 900.0 })
        {
            double h = 1e-5 * x;
            double slope = (DistributionReference.LogGamma(x + h) - DistributionReference.LogGamma(x - h)) / (2 * h);
            Assert.Equal(slope, DistributionReference.Digamma(x), 1e-7 * Math.Max(1, Math.Abs(slope)));
        }
    }

    /// <summary>
    /// The device's log Γ (Stirling after raising x to 7) and ψ against the double references on x spread
    /// log-uniformly over [1e-3, 1e3]. Allowed: 4e-6 of |log Γ| + 10 (its largest terms, (x − ½)·log x and the log
    /// of the raising product, reach ten and more, and float keeps about 6e-8 of each; the margin covers the GPU's
    /// approximate log) and 4e-6 of |ψ| + 1 (the raising sum 1/x + 1/(x + 1) + ... is as large as |ψ| for small x).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(784)]
    public void SpecialFunctionsMatchTheirReferences(int count)
    {
        var random = new Random(count);
        var x = Enumerable.Range(0, count).Select(_ => (float)Math.Pow(10, -3 + 6 * random.NextDouble())).ToArray();
        foreach (var kernels in fixture.KernelSets)
        {
            using var xBuffer = kernels.Accelerator.Allocate1D(x);
            using var logGamma = kernels.Accelerator.Allocate1D<float>(count);
            using var digamma = kernels.Accelerator.Allocate1D<float>(count);
            kernels.SpecialFunctions(xBuffer.View, logGamma.View, digamma.View);
            var gotLogGamma = logGamma.GetAsArray1D();
            var gotDigamma = digamma.GetAsArray1D();
            for (int i = 0; i < count; i++)
            {
                double expectedLogGamma = DistributionReference.LogGamma(x[i]), expectedDigamma = DistributionReference.Digamma(x[i]);
                Assert.True(Math.Abs(gotLogGamma[i] - expectedLogGamma) <= 4e-6 * (Math.Abs(expectedLogGamma) + 10),
                    $"{kernels.Accelerator.AcceleratorType}: log Γ({x[i]}) = {gotLogGamma[i]}, reference {expectedLogGamma}");
                Assert.True(Math.Abs(gotDigamma[i] - expectedDigamma) <= 4e-6 * (Math.Abs(expectedDigamma) + 1),
                    $"{kernels.Accelerator.AcceleratorType}: ψ({x[i]}) = {gotDigamma[i]}, reference {expectedDigamma}");
            }
        }
    }

    /// <summary>
    /// Log densities and scores against the references, at random parameters and values; the references' scores
    /// against central differences of their own log densities. A log density's error is measured against the sum
    /// of its terms' sizes (float keeps about 6e-8 of each; 1e-5 leaves room for log Γ and the GPU's approximate
    /// log), a score's against its size plus 1.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(784)]
    public void LogDensitiesAndScoresMatchTheirReferences(int count)
    {
        var random = new Random(100 + count);
        float Uniform(double low, double high) => (float)(low + (high - low) * random.NextDouble());
        var logits = Enumerable.Range(0, count).Select(_ => Uniform(-8, 8)).ToArray();
        var bits = Enumerable.Range(0, count).Select(_ => random.Next(2) == 0 ? 0f : 1f).ToArray();
        var rates = Enumerable.Range(0, count).Select(_ => Uniform(0.05, 60)).ToArray();
        var counts = Enumerable.Range(0, count).Select(_ => (float)random.Next(0, 90)).ToArray();
        var shapes = Enumerable.Range(0, count).Select(_ => Uniform(0.05, 20)).ToArray();
        var gammaRates = Enumerable.Range(0, count).Select(_ => Uniform(0.1, 10)).ToArray();
        var z = Enumerable.Range(0, count).Select(_ => Uniform(1e-3, 30)).ToArray();
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = accelerator.AcceleratorType.ToString();
            using var logitBuffer = accelerator.Allocate1D(logits);
            using var bitBuffer = accelerator.Allocate1D(bits);
            using var rateBuffer = accelerator.Allocate1D(rates);
            using var countBuffer = accelerator.Allocate1D(counts);
            using var shapeBuffer = accelerator.Allocate1D(shapes);
            using var gammaRateBuffer = accelerator.Allocate1D(gammaRates);
            using var zBuffer = accelerator.Allocate1D(z);
            using var logDensity = accelerator.Allocate1D<float>(count);
            using var score = accelerator.Allocate1D<float>(count);
            using var score2 = accelerator.Allocate1D<float>(count);

            kernels.BernoulliLogDensity(bitBuffer.View, logitBuffer.View, logDensity.View, score.View);
            Check(label + " Bernoulli", logDensity.GetAsArray1D(), score.GetAsArray1D(), i =>
                (DistributionReference.BernoulliLogDensity(bits[i], logits[i]), Math.Abs(logits[i]) + 1, DistributionReference.BernoulliScore(bits[i], logits[i])));

            kernels.PoissonLogDensity(countBuffer.View, rateBuffer.View, logDensity.View, score.View);
            Check(label + " Poisson", logDensity.GetAsArray1D(), score.GetAsArray1D(), i =>
                (DistributionReference.PoissonLogDensity(counts[i], rates[i]),
                 Math.Abs(counts[i] * Math.Log(rates[i])) + rates[i] + Math.Abs(DistributionReference.LogGamma(counts[i] + 1)),
                 DistributionReference.PoissonScore(counts[i], rates[i])));

            kernels.GammaLogDensity(zBuffer.View, shapeBuffer.View, gammaRateBuffer.View, logDensity.View, score.View, score2.View);
            var dRates = score2.GetAsArray1D();
            Check(label + " gamma", logDensity.GetAsArray1D(), score.GetAsArray1D(), i =>
                (DistributionReference.GammaLogDensity(z[i], shapes[i], gammaRates[i]),
                 Math.Abs(shapes[i] * Math.Log(gammaRates[i])) + Math.Abs(DistributionReference.LogGamma(shapes[i]))
                 + Math.Abs((shapes[i] - 1) * Math.Log(z[i])) + gammaRates[i] * z[i],
                 DistributionReference.GammaScore(z[i], shapes[i], gammaRates[i]).Shape));
            for (int i = 0; i < count; i++)
            {
                double expected = DistributionReference.GammaScore(z[i], shapes[i], gammaRates[i]).Rate;
                Assert.True(Math.Abs(dRates[i] - expected) <= 1e-5 * (Math.Abs(shapes[i] / gammaRates[i]) + z[i] + 1), $"{label} gamma ∂/∂β at {i}");
            }
        }
        // The scores are the log densities' derivatives (central differences in double, h = 1e-6 of the parameter).
        for (int i = 0; i < Math.Min(count, 50); i++)
        {
            AssertSlope(p => DistributionReference.BernoulliLogDensity(bits[i], p), logits[i], DistributionReference.BernoulliScore(bits[i], logits[i]));
            AssertSlope(p => DistributionReference.PoissonLogDensity(counts[i], p), rates[i], DistributionReference.PoissonScore(counts[i], rates[i]));
            var (dShape, dRate) = DistributionReference.GammaScore(z[i], shapes[i], gammaRates[i]);
            AssertSlope(p => DistributionReference.GammaLogDensity(z[i], p, gammaRates[i]), shapes[i], dShape);
            AssertSlope(p => DistributionReference.GammaLogDensity(z[i], shapes[i], p), gammaRates[i], dRate);
        }
    }

    /// <summary>
    /// The samplers against their references from the same uniforms, at parameters spanning the branches (gamma
    /// shapes below 1, boosted; Poisson rates both sides of 10). Each draw must agree to 1e-4 relative (the gamma
    /// boost u^(1/α) with α down to 0.1 multiplies float's relative error by ten), except where float and double
    /// decide an accept test or a threshold differently, which changes that draw entirely; at most 1 in 500
    /// draws may do so (none did on the CPU accelerator when this was written).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(784)]
    [InlineData(5000)]
    public void SamplersDrawWhatTheirReferencesDraw(int count)
    {
        var random = new Random(7 + count);
        var logits = Enumerable.Range(0, count).Select(_ => (float)(-6 + 12 * random.NextDouble())).ToArray();
        var rates = Enumerable.Range(0, count).Select(_ => (float)Math.Pow(10, -1.5 + 3.5 * random.NextDouble())).ToArray();
        var shapes = Enumerable.Range(0, count).Select(_ => (float)Math.Pow(10, -1 + 2 * random.NextDouble())).ToArray();
        var gammaRates = Enumerable.Range(0, count).Select(_ => (float)(0.2 + 5 * random.NextDouble())).ToArray();
        var key = new DrawKey(11, Philox.Streams.Sample, 3);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = accelerator.AcceleratorType.ToString();
            using var logitBuffer = accelerator.Allocate1D(logits);
            using var rateBuffer = accelerator.Allocate1D(rates);
            using var shapeBuffer = accelerator.Allocate1D(shapes);
            using var gammaRateBuffer = accelerator.Allocate1D(gammaRates);
            using var draws = accelerator.Allocate1D<float>(count);
            kernels.SampleBernoulli(logitBuffer.View, draws.View, 1, key);
            AssertDraws(label + " Bernoulli", draws.GetAsArray1D(), i => DistributionReference.SampleBernoulli(logits[i], key, i, 1));
            kernels.SamplePoisson(rateBuffer.View, draws.View, 1, key);
            AssertDraws(label + " Poisson", draws.GetAsArray1D(), i => DistributionReference.SamplePoisson(rates[i], key, i));
            kernels.SampleGamma(shapeBuffer.View, gammaRateBuffer.View, draws.View, 1, key);
            AssertDraws(label + " gamma", draws.GetAsArray1D(), i => DistributionReference.SampleGamma(shapes[i], gammaRates[i], key, i));
        }
    }

    /// <summary>
    /// 40 000 draws at each setting: the sample mean within 4 standard errors of the distribution's mean, and the
    /// sample variance within 4 standard errors of its variance (that error from the fourth central moment μ₄: for
    /// Gamma(α) the excess kurtosis is 6/α, for Poisson(λ) 1/λ; the error is √((μ₄ − σ⁴)/n)). A wrong constant in a sampler moves them by
    /// many errors; with 15 comparisons at 4 errors each a false alarm has odds below 1 in 1000, and the draws are
    /// fixed by the seed, so a pass is a pass on every run.
    /// </summary>
    [Fact]
    public void SamplersHaveTheirDistributionsMoments()
    {
        const int count = 40_000;
        var kernels = fixture.KernelSets[0];
        var accelerator = kernels.Accelerator;
        using var parameters = accelerator.Allocate1D<float>(count);
        using var second = accelerator.Allocate1D<float>(count);
        using var draws = accelerator.Allocate1D<float>(count);
        var key = new DrawKey(5, Philox.Streams.Sample, 1);
        foreach (float shape in new[] { 0.1f, 0.5f, 1f, 4.5f })
        {
            parameters.View.CopyFromCPU(Enumerable.Repeat(shape, count).ToArray());
            second.View.CopyFromCPU(Enumerable.Repeat(2f, count).ToArray());
            kernels.SampleGamma(parameters.View, second.View, draws.View, 1, key);
            double variance = shape / 4.0;
            AssertMoments($"Gamma({shape}, 2)", draws.GetAsArray1D(), shape / 2.0, variance, variance * variance * (3 + 6 / shape));
        }
        foreach (float rate in new[] { 0.3f, 4f, 9.99f, 10f, 37.5f, 400f })
        {
            parameters.View.CopyFromCPU(Enumerable.Repeat(rate, count).ToArray());
            kernels.SamplePoisson(parameters.View, draws.View, 1, key);
            AssertMoments($"Poisson({rate})", draws.GetAsArray1D(), rate, rate, (double)rate * rate * (3 + 1.0 / rate));
        }
        foreach (float logit in new[] { -3f, 0.4f })
        {
            parameters.View.CopyFromCPU(Enumerable.Repeat(logit, count).ToArray());
            kernels.SampleBernoulli(parameters.View, draws.View, 1, key);
            double p = 1 / (1 + Math.Exp(-logit)), variance = p * (1 - p);
            // Bernoulli's fourth central moment is p(1 − p)(1 − 3p(1 − p)).
            AssertMoments($"Bernoulli(σ({logit}))", draws.GetAsArray1D(), p, variance, variance * (1 - 3 * variance));
        }
    }

    /// <summary>A slice of a batch drawn with its first example in the key draws what the whole batch draws for
    /// those examples (the data-parallel keying), for each sampler.</summary>
    [Fact]
    public void ASliceDrawsWhatTheWholeBatchDrawsForItsExamples()
    {
        const int rows = 9, width = 5, first = 4, sliceRows = 3;
        var kernels = fixture.KernelSets[0];
        var accelerator = kernels.Accelerator;
        var values = Enumerable.Range(0, rows * width).Select(i => 0.3f + 0.4f * (i % 7)).ToArray();
        using var parameters = accelerator.Allocate1D(values);
        using var whole = accelerator.Allocate1D<float>(rows * width);
        using var part = accelerator.Allocate1D<float>(sliceRows * width);
        var key = new DrawKey(3, Philox.Streams.Sample, 8);
        var sliceKey = new DrawKey(3, Philox.Streams.Sample, 8, first);
        var parameterSlice = parameters.View.SubView(first * width, sliceRows * width);
        foreach (var draw in new Action<ILGPU.ArrayView<float>, ILGPU.ArrayView<float>, DrawKey>[]
                 {
                     (p, x, k) => kernels.SampleBernoulli(p, x, width, k),
                     (p, x, k) => kernels.SamplePoisson(p, x, width, k),
                     (p, x, k) => kernels.SampleGamma(p, p, x, width, k),
                 })
        {
            draw(parameters.View, whole.View, key);
            draw(parameterSlice, part.View, sliceKey);
            Assert.Equal(whole.GetAsArray1D().Skip(first * width).Take(sliceRows * width), part.GetAsArray1D());
        }
    }

    private static void Check(string label, float[] logDensity, float[] score, Func<int, (double LogDensity, double Scale, double Score)> reference)
    {
        for (int i = 0; i < logDensity.Length; i++)
        {
            var (expected, scale, expectedScore) = reference(i);
            Assert.True(Math.Abs(logDensity[i] - expected) <= 1e-5 * scale + 1e-6, $"{label} log density at {i}: {logDensity[i]}, reference {expected}");
            Assert.True(Math.Abs(score[i] - expectedScore) <= 1e-5 * (Math.Abs(expectedScore) + 1), $"{label} score at {i}: {score[i]}, reference {expectedScore}");
        }
    }

    private static void AssertSlope(Func<double, double> logDensity, double at, double expected)
    {
        double h = 1e-6 * Math.Max(1, Math.Abs(at));
        double slope = (logDensity(at + h) - logDensity(at - h)) / (2 * h);
        Assert.True(Math.Abs(slope - expected) <= 1e-5 * (Math.Abs(expected) + 1), $"slope {slope} at {at}, score {expected}");
    }

    private static void AssertDraws(string label, float[] draws, Func<int, double> reference)
    {
        int differing = 0;
        for (int i = 0; i < draws.Length; i++)
        {
            double expected = reference(i);
            if (Math.Abs(draws[i] - expected) > 1e-4 * Math.Abs(expected) + 1e-30)
                differing++;
        }
        Assert.True(differing <= Math.Max(1, draws.Length / 500), $"{label}: {differing} of {draws.Length} draws differ from the reference's");
    }

    private static void AssertMoments(string label, float[] draws, double mean, double variance, double fourthCentralMoment)
    {
        int n = draws.Length;
        double sampleMean = draws.Average(value => (double)value);
        double sampleVariance = draws.Sum(value => (value - sampleMean) * (value - sampleMean)) / (n - 1);
        double meanError = Math.Sqrt(variance / n), varianceError = Math.Sqrt((fourthCentralMoment - variance * variance) / n);
        Assert.True(Math.Abs(sampleMean - mean) <= 4 * meanError, $"{label}: mean {sampleMean}, expected {mean} ± {meanError}");
        Assert.True(Math.Abs(sampleVariance - variance) <= 4 * varianceError, $"{label}: variance {sampleVariance}, expected {variance} ± {varianceError}");
    }
}
