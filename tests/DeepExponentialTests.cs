using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// The sparse gamma deep exponential family's kernels (issue 24) against their double references at odd shapes, the
/// derivatives they write against finite differences, and the black-box VI estimate of q's gradient, averaged over
/// many draws, against the exact gradient of an ELBO small enough to write in closed form.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class DeepExponentialTests(AcceleratorFixture fixture, ITestOutputHelper output)
{
    /// <summary>(batch, units of the layer, the units before it, the units after it, samples).</summary>
    public static TheoryData<int, int, int, int, int> Shapes => new()
    {
        { 1, 1, 0, 0, 1 }, { 7, 5, 2, 3, 3 }, { 3, 33, 7, 1, 2 }, { 2, 100, 0, 55, 4 }, { 33, 7, 1, 0, 1 },
    };

    /// <summary>
    /// The sampler, the layer's prior terms, the score-function gradient (every estimator) and the softplus weights.
    /// The draws go through the same Marsaglia–Tsang steps in float and double; their logs reach about −2000 at the
    /// shape floor (log u/α with α = 0.005), where float's relative rounding of 6e-8 is 1.2e-4 absolute, so log z, log q
    /// and the score are held to 1e-4 relative and 2e-3 absolute; z itself to 1e-4 relative. The layer terms are sums of
    /// K such values: 1e-5 relative and 2e-3·K absolute. The gradient sums k products of signals up to a few hundred:
    /// 1e-4 relative, 1e-3 absolute.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void KernelsMatchTheirReferences(int batch, int units, int before, int after, int samples)
    {
        int rows = batch * samples, total = before + units + after;
        var shape = new GammaLayerShape(units, before, total, samples);
        var random = new Random(batch * 7919 + units * 31 + samples);
        var statistics = Numerics.Uniform(random, batch * 2 * total, -3, 3);
        // Some units at the shape floor (softplus(−20) ≈ 2e-9 above it).
        for (int i = 0; i < batch * total; i += 5)
            statistics[i / total * 2 * total + i % total] = -20f;
        var means = Numerics.Uniform(random, rows * units, 0.05, 4);
        var key = new DrawKey(11, Philox.Streams.Reparameterize, 4);
        var expected = DeepExponentialReference.Sample(Numerics.ToDouble(statistics), shape, rows, key);
        var (logPrior, dMeans, rowLogPrior, kl) = DeepExponentialReference.LayerTerms(expected.Z, expected.LogZ, expected.LogQ, Numerics.ToDouble(means), units, 0.3);
        var top = DeepExponentialReference.LayerTerms(expected.Z, expected.LogZ, expected.LogQ, null, units, 0.3);
        var reconstruction = Numerics.Uniform(random, rows, 60, 160);
        var child = Numerics.Uniform(random, rows, -80, -10);
        var totalKl = Numerics.Uniform(random, rows, 5, 40);
        var theta = Numerics.Uniform(random, units * 3, -8, 4);
        var dWeights = Numerics.Uniform(random, units * 3, -2, 2);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = $"{accelerator.AcceleratorType} B={batch} K={units} of {total} k={samples}";
            using var statisticsBuffer = accelerator.Upload(statistics);
            using var z = accelerator.Allocate1D<float>(rows * units);
            using var logZ = accelerator.Allocate1D<float>(rows * units);
            using var logQ = accelerator.Allocate1D<float>(rows * units);
            using var score = accelerator.Allocate1D<float>(rows * 2 * units);
            kernels.GammaPosteriorSample(statisticsBuffer.View, z.View, logZ.View, logQ.View, score.View, shape, key);
            Numerics.AssertClose(label + " z", expected.Z, z.GetAsArray1D(), 1e-4, 0);
            Numerics.AssertClose(label + " log z", expected.LogZ, logZ.GetAsArray1D(), 1e-4, 2e-3);
            Numerics.AssertClose(label + " log q", expected.LogQ, logQ.GetAsArray1D(), 1e-4, 2e-3);
            Numerics.AssertClose(label + " score", expected.Score, score.GetAsArray1D(), 1e-4, 2e-3);

            // The prior terms from the reference's draws, so that the comparison is of this kernel alone.
            using var zIn = accelerator.Upload(expected.Z.Select(value => (float)value).ToArray());
            using var logZIn = accelerator.Upload(expected.LogZ.Select(value => (float)value).ToArray());
            using var logQIn = accelerator.Upload(expected.LogQ.Select(value => (float)value).ToArray());
            using var meanBuffer = accelerator.Upload(means);
            using var logP = accelerator.Allocate1D<float>(rows * units);
            using var dMeanBuffer = accelerator.Allocate1D<float>(rows * units);
            using var rowLogP = accelerator.Allocate1D<float>(rows);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            kernels.GammaLayerTerms(zIn.View, logZIn.View, logQIn.View, kernels.None, logP.View, kernels.None, rowLogP.View, klBuffer.View, units, 0.3f, first: true);
            Numerics.AssertClose(label + " top log p", top.LogPrior, logP.GetAsArray1D(), 1e-5, 2e-3);
            Numerics.AssertClose(label + " top KL per row", top.Kl, klBuffer.GetAsArray1D(), 1e-5, 2e-3 * units);
            kernels.GammaLayerTerms(zIn.View, logZIn.View, logQIn.View, meanBuffer.View, logP.View, dMeanBuffer.View, rowLogP.View, klBuffer.View, units, 0.3f,
                first: false);
            Numerics.AssertClose(label + " log p", logPrior, logP.GetAsArray1D(), 1e-5, 2e-3);
            Numerics.AssertClose(label + " ∂ log p/∂μ", dMeans, dMeanBuffer.GetAsArray1D(), 1e-5, 1e-6);
            Numerics.AssertClose(label + " log p per row", rowLogPrior, rowLogP.GetAsArray1D(), 1e-5, 2e-3 * units);
            Numerics.AssertClose(label + " KL per row, added", top.Kl.Zip(kl, (a, b) => a + b).ToArray(), klBuffer.GetAsArray1D(), 1e-5, 4e-3 * units);

            using var scoreIn = accelerator.Upload(expected.Score.Select(value => (float)value).ToArray());
            using var logPIn = accelerator.Upload(logPrior.Select(value => (float)value).ToArray());
            using var childBuffer = accelerator.Upload(child);
            using var reconstructionBuffer = accelerator.Upload(reconstruction);
            using var totalKlBuffer = accelerator.Upload(totalKl);
            using var dStatistics = accelerator.Allocate1D<float>(batch * 2 * total);
            foreach (var (raoBlackwell, leaveOneOut) in new[] { (true, true), (true, false), (false, true), (false, false) })
            {
                var want = new double[batch * 2 * total];
                DeepExponentialReference.ScoreGradient(expected.Score, logPrior, expected.LogQ, Numerics.ToDouble(child), Numerics.ToDouble(reconstruction),
                    Numerics.ToDouble(totalKl), want, shape, raoBlackwell, leaveOneOut, 0.8, -1, 1.0 / rows);
                dStatistics.MemSetToZero();
                kernels.GammaScoreGradient(scoreIn.View, logPIn.View, logQIn.View, childBuffer.View, reconstructionBuffer.View, totalKlBuffer.View, dStatistics.View,
                    shape, new GammaEstimator(raoBlackwell, leaveOneOut), 0.8f, -1f, 1f / rows);
                Numerics.AssertClose($"{label} score gradient (Rao-Blackwell {raoBlackwell}, leave-one-out {leaveOneOut})", want, dStatistics.GetAsArray1D(), 1e-4, 1e-3);
            }

            using var thetaBuffer = accelerator.Upload(theta);
            using var weights = accelerator.Allocate1D<float>(theta.Length);
            using var dWeightBuffer = accelerator.Upload(dWeights);
            using var dTheta = accelerator.Allocate1D<float>(theta.Length);
            kernels.SoftplusWeights(thetaBuffer.View, weights.View);
            kernels.SoftplusWeightGradient(thetaBuffer.View, dWeightBuffer.View, dTheta.View, -0.5f);
            Numerics.AssertClose(label + " softplus weights", theta.Select(value => StableMath.Softplus((double)value)).ToArray(), weights.GetAsArray1D(), 1e-6, 1e-9);
            Numerics.AssertClose(label + " softplus weight gradient",
                theta.Select((value, i) => -0.5 * dWeights[i] * StableMath.Sigmoid((double)value)).ToArray(), dTheta.GetAsArray1D(), 1e-6, 1e-9);
        }
    }

    /// <summary>
    /// The two observation terms, each with what the decoder's output holds and ∂/∂r. Bernoulli–Poisson: binary
    /// targets at rates from 1e-6 to 40 (log-uniform); the logits log(e^r − 1) to 1e-5 relative (the kernel's series
    /// below 0.01 and its log1p form above 15 keep that), the per-row term, a sum of D values up to 14, to 5e-5 relative
    /// and 1e-4 absolute, ∂/∂r to 1e-5 relative. Poisson: grey levels (random bytes / 255, each the count 255·g) at
    /// rates from 1e-3 to 300; the expected grey levels r/255 to 1e-6 relative; the per-row term sums D values of
    /// r − c·log r + log Γ(c + 1), whose parts reach about 1500 and cancel to a few nats near r = c, so 5e-5 relative
    /// and 1e-3·D absolute; ∂/∂r = scale·(1 − c/r) to 1e-5 relative and 2e-7·scale absolute (where c/r is near 1 the
    /// difference is float's rounding of c/r).
    /// </summary>
    [Theory]
    [InlineData(LikelihoodKind.Bernoulli, 1, 1, 1)]
    [InlineData(LikelihoodKind.Bernoulli, 7, 7, 2)]
    [InlineData(LikelihoodKind.Bernoulli, 3, 784, 3)]
    [InlineData(LikelihoodKind.Bernoulli, 33, 33, 1)]
    [InlineData(LikelihoodKind.Poisson, 1, 1, 1)]
    [InlineData(LikelihoodKind.Poisson, 7, 7, 2)]
    [InlineData(LikelihoodKind.Poisson, 3, 784, 3)]
    [InlineData(LikelihoodKind.Poisson, 33, 33, 1)]
    public void ObservationTermsMatchTheirReferences(LikelihoodKind likelihood, int batch, int features, int samples)
    {
        int rows = batch * samples;
        bool counts = likelihood == LikelihoodKind.Poisson;
        var random = new Random(features * 13 + batch + (counts ? 1 : 0));
        var rates = Enumerable.Range(0, rows * features)
            .Select(_ => counts ? (float)Math.Exp(random.NextDouble() * Math.Log(3e5)) * 1e-3f : (float)Math.Exp(random.NextDouble() * Math.Log(4e7)) * 1e-6f).ToArray();
        var target = Enumerable.Range(0, batch * features).Select(_ => counts ? random.Next(256) / 255f : random.NextDouble() < 0.4 ? 1f : 0f).ToArray();
        var (output, reconstruction, dRates) = counts
            ? DeepExponentialReference.PoissonRateLoss(Numerics.ToDouble(target), Numerics.ToDouble(rates), features, samples, 1.0 / rows)
            : DeepExponentialReference.BernoulliRateLoss(Numerics.ToDouble(target), Numerics.ToDouble(rates), features, samples, 1.0 / rows);
        var (outputRelative, outputAbsolute) = counts ? (1e-6, 1e-12) : (1e-5, 1e-6);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = $"{accelerator.AcceleratorType} {likelihood} B={batch} D={features} k={samples}";
            using var targetBuffer = accelerator.Upload(target);
            using var rateBuffer = accelerator.Upload(rates);
            using var outputBuffer = accelerator.Allocate1D<float>(rows * features);
            using var reconstructionBuffer = accelerator.Allocate1D<float>(rows);
            using var dRateBuffer = accelerator.Allocate1D<float>(rows * features);
            if (counts)
                kernels.PoissonRateLoss(targetBuffer.View, rateBuffer.View, outputBuffer.View, reconstructionBuffer.View, dRateBuffer.View, features, samples, 1f / rows);
            else
                kernels.BernoulliRateLoss(targetBuffer.View, rateBuffer.View, outputBuffer.View, reconstructionBuffer.View, dRateBuffer.View, features, samples, 1f / rows);
            Numerics.AssertClose(label + " output", output, outputBuffer.GetAsArray1D(), outputRelative, outputAbsolute);
            Numerics.AssertClose(label + " −log p per row", reconstruction, reconstructionBuffer.GetAsArray1D(), 5e-5, counts ? 1e-3 * features : 1e-4);
            Numerics.AssertClose(label + " ∂/∂r", dRates, dRateBuffer.GetAsArray1D(), 1e-5, counts ? 2e-7 / rows : 1e-9);
            if (counts)
                kernels.RateMeans(rateBuffer.View, outputBuffer.View);
            else
                kernels.RateLogits(rateBuffer.View, outputBuffer.View);
            Numerics.AssertClose(label + " output alone", output, outputBuffer.GetAsArray1D(), outputRelative, outputAbsolute);
        }
    }

    /// <summary>The derivatives the kernels write, in double, against central differences (h = 1e-6; agreement to
    /// 1e-6 relative and absolute): the score of q in its two parameters at a fixed draw, ∂ log p/∂μ, and ∂rec/∂r of the
    /// Poisson and the Bernoulli–Poisson terms.</summary>
    [Fact]
    public void DerivativesMatchFiniteDifferences()
    {
        const double h = 1e-6;
        static double LogQ(double z, double rhoShape, double rhoMean)
        {
            double a = DeepExponentialReference.Shape(rhoShape), rate = a / DeepExponentialReference.Mean(rhoMean);
            return DistributionReference.GammaLogDensity(z, a, rate);
        }
        var shape = new GammaLayerShape(1, 0, 1, 1);
        foreach (var (rhoShape, rhoMean) in new[] { (-1.5, 0.3), (0.7, -2.0), (2.5, 1.2) })
        {
            var (z, _, _, score) = DeepExponentialReference.Sample([rhoShape, rhoMean], shape, 1, new DrawKey(3, 1, 2));
            double dShape = (LogQ(z[0], rhoShape + h, rhoMean) - LogQ(z[0], rhoShape - h, rhoMean)) / (2 * h);
            double dMean = (LogQ(z[0], rhoShape, rhoMean + h) - LogQ(z[0], rhoShape, rhoMean - h)) / (2 * h);
            Assert.True(Math.Abs(dShape - score[0]) <= 1e-6 * (1 + Math.Abs(dShape)), $"∂ log q/∂ρ_a at ({rhoShape}, {rhoMean}): {score[0]}, differences {dShape}");
            Assert.True(Math.Abs(dMean - score[1]) <= 1e-6 * (1 + Math.Abs(dMean)), $"∂ log q/∂ρ_m at ({rhoShape}, {rhoMean}): {score[1]}, differences {dMean}");
        }
        foreach (var (z, mean) in new[] { (0.3, 1.7), (2.5, 0.4), (1e-3, 0.05) })
        {
            double numeric = (DeepExponentialReference.LogPrior(z, Math.Log(z), mean + h, 0.4) - DeepExponentialReference.LogPrior(z, Math.Log(z), mean - h, 0.4)) / (2 * h);
            double analytic = DeepExponentialReference.LogPriorMeanDerivative(z, mean, 0.4);
            Assert.True(Math.Abs(numeric - analytic) <= 1e-6 * (1 + Math.Abs(analytic)), $"∂ log p/∂μ at z = {z}, μ = {mean}: {analytic}, differences {numeric}");
        }
        foreach (var (rate, grey) in new[] { (0.5, 0.0), (3.0, 2 / 255.0), (180.0, 1.0) })
        {
            double Rec(double r) => DeepExponentialReference.PoissonRateLoss([grey], [r], 1, 1, 1).Reconstruction[0];
            double numeric = (Rec(rate + h) - Rec(rate - h)) / (2 * h);
            double analytic = DeepExponentialReference.PoissonRateLoss([grey], [rate], 1, 1, 1).DRates[0];
            Assert.True(Math.Abs(numeric - analytic) <= 1e-6 * (1 + Math.Abs(analytic)), $"Poisson ∂rec/∂r at r = {rate}, grey level {grey}: {analytic}, differences {numeric}");
        }
        foreach (var (rate, x) in new[] { (0.01, 1.0), (0.7, 0.0), (3.0, 1.0), (12.0, 1.0) })
        {
            double Rec(double r) => DeepExponentialReference.BernoulliRateLoss([x], [r], 1, 1, 1).Reconstruction[0];
            double numeric = (Rec(rate + h) - Rec(rate - h)) / (2 * h);
            double analytic = DeepExponentialReference.BernoulliRateLoss([x], [rate], 1, 1, 1).DRates[0];
            Assert.True(Math.Abs(numeric - analytic) <= 1e-6 * (1 + Math.Abs(analytic)), $"∂rec/∂r at r = {rate}, x = {x}: {analytic}, differences {numeric}");
        }
    }

    /// <summary>log Gamma(α, 1) draws kept in log space, at shapes down to the floor: their mean is ψ(α) (within 4.5
    /// standard errors over 40 000 draws), which a draw rounded to 0 in float, or a wrong boost, would miss.</summary>
    [Theory]
    [InlineData(0.005)]
    [InlineData(0.1)]
    [InlineData(0.9)]
    [InlineData(4.0)]
    public void LogGammaDrawsHaveTheDigammaMean(double alpha)
    {
        const int draws = 40_000;
        var key = new DrawKey(21, Philox.Streams.Sample, 0);
        var logs = Enumerable.Range(0, draws).Select(i => (double)Distributions.SampleLogGamma((float)alpha, key, i)).ToArray();
        double mean = logs.Average(), standardError = Math.Sqrt(logs.Sum(value => (value - mean) * (value - mean)) / (draws - 1) / draws);
        double expected = DistributionReference.Digamma(alpha);
        Assert.True(Math.Abs(mean - expected) <= 4.5 * standardError, $"α = {alpha}: mean log draw {mean}, ψ(α) = {expected}, standard error {standardError}");
    }

    /// <summary>A two-layer DEF small enough for a closed-form ELBO: two bottom units over one top unit, three pixels
    /// x = (1, 0, 1). Its parameters, with q's [ρ_a of the three units | ρ_m of them].</summary>
    private const double Alpha = 0.5;
    private static readonly double[] Target = [1, 0, 1];
    private static readonly double[] Theta0 = [-0.4, 0.2, -1.1, 0.5, 0.3, -0.8];
    private static readonly double[] Theta1 = [0.1, -0.6];

    private static double InverseSoftplus(double value) => Math.Log(Math.Exp(value) - 1);

    private static readonly double[] Statistics =
    [
        InverseSoftplus(1.5 - DeepExponential.ShapeFloor), InverseSoftplus(2.2 - DeepExponential.ShapeFloor), InverseSoftplus(3.0 - DeepExponential.ShapeFloor),
        InverseSoftplus(0.8 - DeepExponential.MeanFloor), InverseSoftplus(1.3 - DeepExponential.MeanFloor), InverseSoftplus(1.1 - DeepExponential.MeanFloor),
    ];

    /// <summary>
    /// The exact ELBO of the small DEF as a function of q's statistics. For q = Gamma(a, b): E z = a/b,
    /// E log z = ψ(a) − log b, E 1/z = b/(a − 1), E e^−tz = (1 + t/b)^−a. A pixel with x = 1 contributes
    /// E log(1 − e^−r) = −Σ_n E e^−nr / n (the series to 200 000 terms, whose tail is below 1e-10 here), one with x = 0
    /// −E r. The middle layer's μ = v·z_top is taken without its ε = 1e-6, which moves the gradient by about 1e-6, far
    /// below the estimator's standard errors.
    /// </summary>
    private static double ExactElbo(double[] statistics)
    {
        var a = statistics.Take(3).Select(DeepExponentialReference.Shape).ToArray();
        var m = statistics.Skip(3).Select(DeepExponentialReference.Mean).ToArray();
        var b = a.Select((shape, i) => shape / m[i]).ToArray();
        double ExpectedLog(int i) => DistributionReference.Digamma(a[i]) - Math.Log(b[i]);
        double NegativeEntropy(int i) => a[i] * Math.Log(b[i]) - DistributionReference.LogGamma(a[i]) + (a[i] - 1) * ExpectedLog(i) - a[i];
        double constant = Alpha * Math.Log(Alpha) - DistributionReference.LogGamma(Alpha);
        double elbo = constant + (Alpha - 1) * ExpectedLog(2) - Alpha * m[2];
        for (int k = 0; k < 2; k++)
        {
            double v = StableMath.Softplus(Theta1[k]);
            double expectedLogMean = Math.Log(v) + ExpectedLog(2), expectedInverseMean = b[2] / (a[2] - 1) / v;
            elbo += constant - Alpha * expectedLogMean + (Alpha - 1) * ExpectedLog(k) - Alpha * m[k] * expectedInverseMean;
        }
        for (int i = 0; i < 3; i++)
        {
            double w0 = StableMath.Softplus(Theta0[i * 2]), w1 = StableMath.Softplus(Theta0[i * 2 + 1]);
            if (Target[i] == 0)
            {
                elbo -= w0 * m[0] + w1 * m[1] + DeepExponential.RateFloor;
                continue;
            }
            double series = 0;
            for (int n = 1; n <= 200_000; n++)
                series += Math.Exp(-n * (double)DeepExponential.RateFloor) * Math.Pow(1 + n * w0 / b[0], -a[0]) * Math.Pow(1 + n * w1 / b[1], -a[1]) / n;
            elbo -= series;
        }
        for (int i = 0; i < 3; i++)
            elbo -= NegativeEntropy(i);
        return elbo;
    }

    /// <summary>
    /// Unbiasedness and variance of q's gradient: 20 000 examples of the small DEF, k samples each, through the
    /// reference pipeline (the kernels equal it, above). For every combination of Rao-Blackwellization and the
    /// leave-one-out baseline, the mean estimate of −∂ELBO/∂ρ is within 4.5 standard errors of the exact gradient
    /// (central differences of the closed form); with both devices the exact gradient is at least 8 standard errors
    /// from 0 in some parameter. Rao-Blackwellization lowers every parameter's variance; the baseline lowers their
    /// sum (with k = 2 it is the other sample's signal alone, and raises a few). The variances are written to the
    /// test output (docs/MODELS.md's table).
    /// </summary>
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void ScoreFunctionGradientIsUnbiasedAndItsDevicesCutTheVariance(int samples)
    {
        const int examples = 20_000, total = 3;
        var exact = Numerics.FiniteDifferenceGradient(ExactElbo, Statistics, 1e-5).Select(value => -value).ToArray();

        int rows = examples * samples;
        var statistics = Enumerable.Range(0, examples * 2 * total).Select(i => Statistics[i % (2 * total)]).ToArray();
        var key = new DrawKey(8, Philox.Streams.Reparameterize, 1);
        var bottomShape = new GammaLayerShape(2, 0, total, samples);
        var topShape = new GammaLayerShape(1, 2, total, samples);
        var bottom = DeepExponentialReference.Sample(statistics, bottomShape, rows, key);
        var top = DeepExponentialReference.Sample(statistics, topShape, rows, key);
        var topTerms = DeepExponentialReference.LayerTerms(top.Z, top.LogZ, top.LogQ, null, 1, Alpha);
        var bottomTerms = DeepExponentialReference.LayerTerms(bottom.Z, bottom.LogZ, bottom.LogQ, DeepExponentialReference.Means(Theta1, top.Z, rows, 1, 2), 2, Alpha);
        var kl = topTerms.Kl.Zip(bottomTerms.Kl, (first, second) => first + second).ToArray();
        var target = Enumerable.Range(0, examples * 3).Select(i => Target[i % 3]).ToArray();
        var (_, reconstruction, _) = DeepExponentialReference.BernoulliRateLoss(target, DeepExponentialReference.Means(Theta0, bottom.Z, rows, 2, 3), 3, samples, 1);

        var variances = EstimatorDevices.CheckEach((raoBlackwell, leaveOneOut) =>
        {
            var estimates = new double[examples * 2 * total];
            DeepExponentialReference.ScoreGradient(bottom.Score, bottomTerms.LogPrior, bottom.LogQ, reconstruction, reconstruction, kl, estimates, bottomShape,
                raoBlackwell, leaveOneOut, 1, -1, 1.0 / samples);
            DeepExponentialReference.ScoreGradient(top.Score, topTerms.LogPrior, top.LogQ, bottomTerms.RowLogPrior, reconstruction, kl, estimates, topShape,
                raoBlackwell, leaveOneOut, 1, 1, 1.0 / samples);
            return estimates;
        }, exact, examples, 2 * total, p => p, output, $"k = {samples}", "[a0 a1 a_top | m0 m1 m_top]");
        for (int p = 0; p < 2 * total; p++)
            Assert.True(variances["Rao-Blackwell on, leave-one-out off"][p] < variances["Rao-Blackwell off, leave-one-out off"][p], $"Rao-Blackwellization raises parameter {p}'s variance");
        if (samples >= 4)
            Assert.True(variances["Rao-Blackwell on, leave-one-out on"].Sum() < variances["Rao-Blackwell on, leave-one-out off"].Sum(), "the baseline raises the summed variance");
    }
}

/// <summary>
/// The deep exponential family's Poisson and sigmoid-belief-net units (issue 24): their kernels against the double
/// references at odd shapes, their derivatives against finite differences, and the black-box VI estimate of q's
/// gradient, averaged over many draws, against the exact gradient of a model small enough to enumerate.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class DiscreteDefUnitTests(AcceleratorFixture fixture, ITestOutputHelper output)
{
    /// <summary>(unit type, batch, units of the layer, the units before it, the units after it, samples).</summary>
    public static TheoryData<DefUnitKind, int, int, int, int, int> Shapes
    {
        get
        {
            var data = new TheoryData<DefUnitKind, int, int, int, int, int>();
            foreach (var kind in new[] { DefUnitKind.Poisson, DefUnitKind.Bernoulli })
                foreach (var (batch, units, before, after, samples) in new[] { (1, 1, 0, 0, 1), (7, 5, 2, 3, 3), (3, 33, 7, 1, 2), (2, 100, 0, 55, 4), (33, 7, 1, 0, 1) })
                    data.Add(kind, batch, units, before, after, samples);
            return data;
        }
    }

    /// <summary>
    /// The sampler and the layer's prior terms, under parents and at the top. A draw is a count or a bit decided by
    /// comparing one float uniform with a threshold, the same comparison in both, so z is held equal; log q and the
    /// score follow from it: log q (terms up to about 60 here, through float's log Γ) to 1e-5 relative and 1e-5
    /// absolute, the score to 1e-5 and 1e-6. The layer terms: log p the same as log q, ∂ log p/∂parent 1e-5 and 1e-6,
    /// the per-row sums of K values 1e-5 relative and 1e-5·K absolute.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void KernelsMatchTheirReferences(DefUnitKind kind, int batch, int units, int before, int after, int samples)
    {
        int rows = batch * samples, total = before + units + after;
        var shape = new GammaLayerShape(units, before, total, samples);
        var random = new Random(batch * 7919 + units * 31 + samples + (int)kind);
        var statistics = Numerics.Uniform(random, batch * 2 * total, -4, 4);
        var parents = kind == DefUnitKind.Poisson ? Numerics.Uniform(random, rows * units, 0.05, 6) : Numerics.Uniform(random, rows * units, -6, 6);
        var key = new DrawKey(12, Philox.Streams.Reparameterize, 3);
        var expected = DeepExponentialReference.SampleDiscrete(kind, Numerics.ToDouble(statistics), shape, rows, key);
        var terms = DeepExponentialReference.DiscreteLayerTerms(kind, expected.Z, expected.LogQ, Numerics.ToDouble(parents), units);
        var top = DeepExponentialReference.DiscreteLayerTerms(kind, expected.Z, expected.LogQ, null, units);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = $"{accelerator.AcceleratorType} {kind} B={batch} K={units} of {total} k={samples}";
            using var statisticsBuffer = accelerator.Upload(statistics);
            using var z = accelerator.Allocate1D<float>(rows * units);
            using var logZ = accelerator.Allocate1D<float>(rows * units);
            using var logQ = accelerator.Allocate1D<float>(rows * units);
            using var score = accelerator.Allocate1D<float>(rows * 2 * units);
            kernels.DiscretePosteriorSample(kind, statisticsBuffer.View, z.View, logZ.View, logQ.View, score.View, shape, key);
            Numerics.AssertClose(label + " z", expected.Z, z.GetAsArray1D(), 0, 0);
            Numerics.AssertClose(label + " log z (unused, 0)", expected.LogZ, logZ.GetAsArray1D(), 0, 0);
            Numerics.AssertClose(label + " log q", expected.LogQ, logQ.GetAsArray1D(), 1e-5, 1e-5);
            Numerics.AssertClose(label + " score", expected.Score, score.GetAsArray1D(), 1e-5, 1e-6);

            using var zIn = accelerator.Upload(expected.Z.Select(value => (float)value).ToArray());
            using var logQIn = accelerator.Upload(expected.LogQ.Select(value => (float)value).ToArray());
            using var parentBuffer = accelerator.Upload(parents);
            using var logP = accelerator.Allocate1D<float>(rows * units);
            using var dParents = accelerator.Allocate1D<float>(rows * units);
            using var rowLogP = accelerator.Allocate1D<float>(rows);
            using var kl = accelerator.Allocate1D<float>(rows);
            kernels.DiscreteLayerTerms(kind, zIn.View, logQIn.View, kernels.None, logP.View, kernels.None, rowLogP.View, kl.View, units, first: true);
            Numerics.AssertClose(label + " top log p", top.LogPrior, logP.GetAsArray1D(), 1e-5, 1e-5);
            Numerics.AssertClose(label + " top log p per row", top.RowLogPrior, rowLogP.GetAsArray1D(), 1e-5, 1e-5 * units);
            Numerics.AssertClose(label + " top KL per row", top.Kl, kl.GetAsArray1D(), 1e-5, 1e-5 * units);
            kernels.DiscreteLayerTerms(kind, zIn.View, logQIn.View, parentBuffer.View, logP.View, dParents.View, rowLogP.View, kl.View, units, first: false);
            Numerics.AssertClose(label + " log p", terms.LogPrior, logP.GetAsArray1D(), 1e-5, 1e-5);
            Numerics.AssertClose(label + " ∂ log p/∂parent", terms.DParents, dParents.GetAsArray1D(), 1e-5, 1e-6);
            Numerics.AssertClose(label + " log p per row", terms.RowLogPrior, rowLogP.GetAsArray1D(), 1e-5, 1e-5 * units);
            Numerics.AssertClose(label + " KL per row, added", top.Kl.Zip(terms.Kl, (a, b) => a + b).ToArray(), kl.GetAsArray1D(), 1e-5, 2e-5 * units);
        }
    }

    /// <summary>The derivatives the references write (and the kernels equal), against central differences in double
    /// (h = 1e-6, agreement to 1e-6 relative and absolute): ∂ log q/∂ρ at a fixed draw, and ∂ log p/∂parent.</summary>
    [Fact]
    public void DerivativesMatchFiniteDifferences()
    {
        const double h = 1e-6;
        foreach (var kind in new[] { DefUnitKind.Poisson, DefUnitKind.Bernoulli })
        {
            double LogQ(double z, double rho) => kind == DefUnitKind.Poisson
                ? DistributionReference.PoissonLogDensity(z, DeepExponentialReference.Mean(rho))
                : DistributionReference.BernoulliLogDensity(z, rho);
            var shape = new GammaLayerShape(1, 0, 1, 1);
            foreach (var rho in new[] { -2.5, -0.3, 0.8, 3.0 })
                for (int draw = 0; draw < 4; draw++)
                {
                    var (z, _, _, score) = DeepExponentialReference.SampleDiscrete(kind, [0, rho], shape, 1, new DrawKey(5, 1, draw));
                    double numeric = (LogQ(z[0], rho + h) - LogQ(z[0], rho - h)) / (2 * h);
                    Assert.Equal(0, score[0]);
                    Assert.True(Math.Abs(numeric - score[1]) <= 1e-6 * (1 + Math.Abs(numeric)), $"{kind} ∂ log q/∂ρ at ρ = {rho}, z = {z[0]}: {score[1]}, differences {numeric}");
                }
            var parents = kind == DefUnitKind.Poisson ? new[] { 0.05, 0.9, 4.0 } : [-3.0, 0.2, 2.5];
            foreach (var parent in parents)
                foreach (var z in new[] { 0.0, 1.0, kind == DefUnitKind.Poisson ? 5.0 : 1.0 })
                {
                    double numeric = (DeepExponentialReference.DiscreteLogPrior(kind, z, parent + h).LogPrior
                        - DeepExponentialReference.DiscreteLogPrior(kind, z, parent - h).LogPrior) / (2 * h);
                    double analytic = DeepExponentialReference.DiscreteLogPrior(kind, z, parent).DParent;
                    Assert.True(Math.Abs(numeric - analytic) <= 1e-6 * (1 + Math.Abs(analytic)), $"{kind} ∂ log p/∂parent at z = {z}, parent {parent}: {analytic}, differences {numeric}");
                }
        }
    }

    /// <summary>
    /// A DEF of every discrete kind small enough to enumerate: a Bernoulli top unit z2, two Poisson units z1 with
    /// μ = V2·z2 + ε, two Bernoulli units z0 with η = W1·z1 + b1 (real weights), three pixels x = (1, 0, 1) at rates
    /// V0·z0 + ε. q's ρ_m per unit (bottom first): the Bernoulli logits of z0, the Poisson rates' ρ of z1, z2's logit.
    /// </summary>
    private static readonly double[] Target = [1, 0, 1];
    private static readonly double[] Theta0 = [0.5, -0.3, -1.0, 0.8, 0.2, 0.4];
    private static readonly double[] Weights1 = [0.7, -0.5, -0.3, 0.9];
    private static readonly double[] Bias1 = [-0.2, 0.1];
    private static readonly double[] Theta2 = [0.3, -0.2];
    private static readonly DefUnitKind[] Kinds = [DefUnitKind.Bernoulli, DefUnitKind.Bernoulli, DefUnitKind.Poisson, DefUnitKind.Poisson, DefUnitKind.Bernoulli];
    private static readonly double[] MeanStatistics = [0.4, -0.7, Math.Log(Math.Exp(1.2) - 1), Math.Log(Math.Exp(0.6) - 1), 1.0];

    /// <summary>The counts summed over: P(z1 &gt; 40) is below 1e-35 at the rates q and p give here.</summary>
    private const int MostCount = 40;

    private static double[] Logits1(double[] z1, int rows) =>
        Enumerable.Range(0, rows * 2).Select(i => Bias1[i % 2] + Weights1[i % 2 * 2] * z1[i / 2 * 2] + Weights1[i % 2 * 2 + 1] * z1[i / 2 * 2 + 1]).ToArray();

    /// <summary>log p(x, z) for one configuration, through the references the estimator uses.</summary>
    private static double LogJoint(double[] z0, double[] z1, double z2)
    {
        double logP = DeepExponentialReference.DiscreteLayerTerms(DefUnitKind.Bernoulli, [z2], [0], null, 1).RowLogPrior[0];
        logP += DeepExponentialReference.DiscreteLayerTerms(DefUnitKind.Poisson, z1, [0, 0], DeepExponentialReference.Means(Theta2, [z2], 1, 1, 2), 2).RowLogPrior[0];
        logP += DeepExponentialReference.DiscreteLayerTerms(DefUnitKind.Bernoulli, z0, [0, 0], Logits1(z1, 1), 2).RowLogPrior[0];
        return logP - DeepExponentialReference.BernoulliRateLoss(Target, DeepExponentialReference.Means(Theta0, z0, 1, 2, 3), 3, 1, 1).Reconstruction[0];
    }

    /// <summary>The exact ELBO, Σ over every configuration (the counts to <see cref="MostCount"/>) of q(z)·(log p(x, z) −
    /// log q(z)), as a function of q's mean statistics.</summary>
    private static double ExactElbo(double[] rho)
    {
        double LogQ(int unit, double z) => DeepExponentialReference.DiscreteLogPrior(Kinds[unit], z,
            Kinds[unit] == DefUnitKind.Poisson ? DeepExponentialReference.Mean(rho[unit]) : rho[unit]).LogPrior;
        double elbo = 0;
        for (int z2 = 0; z2 <= 1; z2++)
            for (int a = 0; a <= MostCount; a++)
                for (int b = 0; b <= MostCount; b++)
                {
                    double logQUpper = LogQ(4, z2) + LogQ(2, a) + LogQ(3, b);
                    for (int c = 0; c <= 1; c++)
                        for (int d = 0; d <= 1; d++)
                        {
                            double logQ = logQUpper + LogQ(0, c) + LogQ(1, d);
                            elbo += Math.Exp(logQ) * (LogJoint([c, d], [a, b], z2) - logQ);
                        }
                }
        return elbo;
    }

    /// <summary>
    /// Unbiasedness and variance of q's gradient for the discrete units: 20 000 examples of the small model, k samples
    /// each, through the reference pipeline (the kernels equal it, above). For every combination of
    /// Rao-Blackwellization and the leave-one-out baseline the mean estimate of −∂ELBO/∂ρ_m is within 4.5 standard
    /// errors of the exact gradient (central differences of the enumerated ELBO), the unused shape columns are 0, and
    /// with both devices the exact gradient is at least 8 standard errors from 0 in some parameter.
    /// Rao-Blackwellization lowers the summed variance; the baseline lowers it with k = 4 (with k = 2 it is the other
    /// sample's signal alone, and here raises it). The variances are written to the test output (docs/MODELS.md's table).
    /// </summary>
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void ScoreFunctionGradientIsUnbiasedAndItsDevicesCutTheVariance(int samples)
    {
        const int examples = 20_000, total = 5;
        var exact = Numerics.FiniteDifferenceGradient(ExactElbo, MeanStatistics, 1e-5).Select(value => -value).ToArray();

        int rows = examples * samples;
        var statistics = Enumerable.Range(0, examples * 2 * total).Select(i => i % (2 * total) < total ? 0 : MeanStatistics[i % (2 * total) - total]).ToArray();
        var key = new DrawKey(14, Philox.Streams.Reparameterize, 2);
        var shapes = new[] { new GammaLayerShape(2, 0, total, samples), new GammaLayerShape(2, 2, total, samples), new GammaLayerShape(1, 4, total, samples) };
        var draws = shapes.Select((shape, l) => DeepExponentialReference.SampleDiscrete(Kinds[shape.Offset], statistics, shape, rows, key)).ToArray();
        var topTerms = DeepExponentialReference.DiscreteLayerTerms(DefUnitKind.Bernoulli, draws[2].Z, draws[2].LogQ, null, 1);
        var middleTerms = DeepExponentialReference.DiscreteLayerTerms(DefUnitKind.Poisson, draws[1].Z, draws[1].LogQ,
            DeepExponentialReference.Means(Theta2, draws[2].Z, rows, 1, 2), 2);
        var bottomTerms = DeepExponentialReference.DiscreteLayerTerms(DefUnitKind.Bernoulli, draws[0].Z, draws[0].LogQ, Logits1(draws[1].Z, rows), 2);
        var terms = new[] { bottomTerms, middleTerms, topTerms };
        var kl = Enumerable.Range(0, rows).Select(r => terms.Sum(layer => layer.Kl[r])).ToArray();
        var target = Enumerable.Range(0, examples * 3).Select(i => Target[i % 3]).ToArray();
        var (_, reconstruction, _) = DeepExponentialReference.BernoulliRateLoss(target, DeepExponentialReference.Means(Theta0, draws[0].Z, rows, 2, 3), 3, samples, 1);

        var variances = EstimatorDevices.CheckEach((raoBlackwell, leaveOneOut) =>
        {
            var estimates = new double[examples * 2 * total];
            for (int l = 0; l < 3; l++)
                DeepExponentialReference.ScoreGradient(draws[l].Score, terms[l].LogPrior, draws[l].LogQ, l == 0 ? reconstruction : terms[l - 1].RowLogPrior,
                    reconstruction, kl, estimates, shapes[l], raoBlackwell, leaveOneOut, 1, l == 0 ? -1 : 1, 1.0 / samples);
            // The shape columns, which no discrete unit reads, get exactly 0.
            Assert.All(Enumerable.Range(0, examples * total), i => Assert.Equal(0, estimates[i / total * 2 * total + i % total]));
            return estimates;
        }, exact, examples, 2 * total, p => total + p, output, $"k = {samples}", "[z0 z0' z1 z1' z2]");
        Assert.True(variances["Rao-Blackwell on, leave-one-out off"].Sum() < variances["Rao-Blackwell off, leave-one-out off"].Sum(), "Rao-Blackwellization raises the summed variance");
        if (samples >= 4)
            Assert.True(variances["Rao-Blackwell on, leave-one-out on"].Sum() < variances["Rao-Blackwell on, leave-one-out off"].Sum(), "the baseline raises the summed variance");
    }
}

/// <summary>The DEF estimator tests' common part: each combination of Rao-Blackwellization and the leave-one-out
/// baseline, its estimates of −∂ELBO/∂ρ per example, held to the exact gradient and written out with their variances.</summary>
internal static class EstimatorDevices
{
    /// <summary>
    /// For each combination (none, Rao-Blackwellized, leave-one-out, both): the estimates [examples, width] from
    /// <paramref name="estimate"/>; each tested parameter p's (column <paramref name="column"/>(p)) mean within 4.5
    /// standard errors of exact[p]; with both devices the exact gradient at least 8 standard errors from 0 somewhere.
    /// Returns each combination's variances per example, keyed "Rao-Blackwell on|off, leave-one-out on|off".
    /// </summary>
    public static Dictionary<string, double[]> CheckEach(Func<bool, bool, double[]> estimate, double[] exact, int examples, int width, Func<int, int> column,
        ITestOutputHelper output, string label, string parameters)
    {
        var variances = new Dictionary<string, double[]>();
        foreach (var (raoBlackwell, leaveOneOut) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            var estimates = estimate(raoBlackwell, leaveOneOut);
            string name = $"Rao-Blackwell {(raoBlackwell ? "on" : "off")}, leave-one-out {(leaveOneOut ? "on" : "off")}";
            var variance = new double[exact.Length];
            double mostStandardErrors = 0;
            for (int p = 0; p < exact.Length; p++)
            {
                var values = Enumerable.Range(0, examples).Select(b => estimates[b * width + column(p)]).ToArray();
                double mean = values.Average();
                variance[p] = values.Sum(value => (value - mean) * (value - mean)) / (examples - 1);
                double standardError = Math.Sqrt(variance[p] / examples);
                Assert.True(Math.Abs(mean - exact[p]) <= 4.5 * standardError,
                    $"{name}, parameter {p}: mean estimate {mean}, exact {exact[p]}, standard error {standardError}");
                mostStandardErrors = Math.Max(mostStandardErrors, Math.Abs(exact[p]) / standardError);
            }
            if (raoBlackwell && leaveOneOut)
                Assert.True(mostStandardErrors >= 8, $"{name}: the exact gradient is at most {mostStandardErrors:F1} standard errors from 0 (too few draws to tell)");
            variances[name] = variance;
            output.WriteLine($"{label}, {name}: variance per example of −∂ELBO/∂ρ {parameters} = {string.Join(" ", variance.Select(value => value.ToString("G4")))}");
        }
        output.WriteLine($"exact −∂ELBO/∂ρ {parameters} = {string.Join(" ", exact.Select(value => value.ToString("G4")))}");
        return variances;
    }
}
