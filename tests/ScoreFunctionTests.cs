using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// The score-function estimator's parts (issue 24, item 1): the learning-signal centring, the running moments and
/// the Bernoulli score gradient against their double references at odd shapes; and, on a sigmoid belief network
/// small enough to sum over every h (5 binary units, 32 configurations), the estimator's mean over 20 000 draws
/// within 4.5 standard errors of the exact gradient, with each variance-reduction device, and its variance with
/// and without them (docs/MODELS.md's table).
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ScoreFunctionTests(AcceleratorFixture fixture)
{
    public static TheoryData<int, int> Shapes => new() { { 1, 1 }, { 7, 5 }, { 33, 200 }, { 128, 7 } };

    /// <summary>Centring (each of its eight combinations), the moment update and the score gradient against their
    /// references. Float keeps about 6e-8 of each term; the moment update sums B terms in order, so its error grows
    /// like B·6e-8 of the largest: 1e-5 of the terms' size covers B = 128 with room.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void KernelsMatchTheirReferences(int batch, int units)
    {
        var random = new Random(batch * 1000 + units);
        var signal = Enumerable.Range(0, batch).Select(_ => (float)(-120 + 40 * random.NextDouble())).ToArray();
        var baseline = Enumerable.Range(0, batch).Select(_ => (float)(-100 + 10 * random.NextDouble())).ToArray();
        var logits = Enumerable.Range(0, batch * units).Select(_ => (float)(-5 + 10 * random.NextDouble())).ToArray();
        var h = logits.Select(_ => random.Next(2) == 0 ? 0f : 1f).ToArray();
        float[] moments = [-14.5f, 37f];
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = $"{accelerator.AcceleratorType} B={batch} K={units}";
            using var signalBuffer = accelerator.Allocate1D(signal);
            using var baselineBuffer = accelerator.Allocate1D(baseline);
            using var momentBuffer = accelerator.Allocate1D(moments);
            using var centred = accelerator.Allocate1D<float>(batch);
            foreach (bool subtractBaseline in new[] { false, true })
                foreach (bool subtractMean in new[] { false, true })
                    foreach (bool normalise in new[] { false, true })
                    {
                        kernels.CenterLearningSignal(signalBuffer.View, baselineBuffer.View, momentBuffer.View, centred.View,
                            new SignalCentring(subtractBaseline, subtractMean, normalise));
                        var expected = ScoreFunctionReference.Center(Numerics.ToDouble(signal), Numerics.ToDouble(baseline), moments[0], moments[1],
                            subtractBaseline, subtractMean, normalise);
                        Numerics.AssertClose($"{label} centring {subtractBaseline}/{subtractMean}/{normalise}", expected, centred.GetAsArray1D(), 1e-6, 1e-4);
                    }

            kernels.UpdateSignalMoments(signalBuffer.View, baselineBuffer.View, momentBuffer.View, 0.8f, subtractBaseline: 1);
            var (mean, variance) = ScoreFunctionReference.UpdateMoments(Numerics.ToDouble(signal), Numerics.ToDouble(baseline), moments[0], moments[1], 0.8);
            var updated = momentBuffer.GetAsArray1D();
            Assert.True(Math.Abs(updated[0] - mean) <= 1e-5 * 150, $"{label}: running mean {updated[0]}, reference {mean}");
            Assert.True(Math.Abs(updated[1] - variance) <= 1e-5 * (variance + 150 * 150 / 100.0), $"{label}: running variance {updated[1]}, reference {variance}");

            using var hBuffer = accelerator.Allocate1D(h);
            using var logitBuffer = accelerator.Allocate1D(logits);
            using var dLogits = accelerator.Allocate1D<float>(batch * units);
            centred.View.CopyFromCPU(signal);
            kernels.BernoulliScoreGradient(hBuffer.View, logitBuffer.View, centred.View, dLogits.View, units, 1f / batch);
            Numerics.AssertClose($"{label} score gradient",
                ScoreFunctionReference.BernoulliScoreGradient(Numerics.ToDouble(h), Numerics.ToDouble(logits), Numerics.ToDouble(signal), units, 1.0 / batch),
                dLogits.GetAsArray1D(), 1e-5, 1e-6);
        }
    }

    /// <summary>
    /// A sigmoid belief network with 5 binary units and 6 pixels: prior p(h_j) = σ(c_j), decoder p(x_i|h) =
    /// σ(V_i·h + d_i), q(h_j) = σ(a_j). The exact gradient of the ELBO with respect to the logits a is
    /// Σ_h q(h)·f(h)·(h − σ(a)) with f = log p(x, h) − log q(h), summed over all 32 h. The estimator, drawn 20 000
    /// times on the device (Philox, the Bernoulli sampler and log density, the centring and score kernels), must
    /// give it within 4.5 standard errors in every unit: with no device, with a running mean (any constant keeps it
    /// unbiased), with an input-dependent baseline and the running mean, and with variance normalisation (which
    /// divides the expectation by max(1, √v), v the running variance it used). The baselines must cut the variance
    /// at least threefold here, where f sits far from 0 (they cut it about fourfold).
    /// </summary>
    [Fact]
    public void TheEstimatorIsUnbiasedOnANetworkSmallEnoughToSum()
    {
        const int units = 5, pixels = 6, draws = 20_000;
        var random = new Random(42);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var prior = Enumerable.Range(0, units).Select(_ => Normal()).ToArray();
        var decoder = Enumerable.Range(0, pixels * units).Select(_ => 1.5 * Normal()).ToArray();
        var decoderBias = Enumerable.Range(0, pixels).Select(_ => Normal()).ToArray();
        var x = Enumerable.Range(0, pixels).Select(i => i % 3 == 0 ? 0.0 : 1.0).ToArray();
        var logits = Enumerable.Range(0, units).Select(_ => (float)Normal()).ToArray();

        double LogJoint(IReadOnlyList<double> hidden)
        {
            double sum = 0;
            for (int j = 0; j < units; j++)
                sum += DistributionReference.BernoulliLogDensity(hidden[j], prior[j]);
            for (int i = 0; i < pixels; i++)
            {
                double activation = decoderBias[i];
                for (int j = 0; j < units; j++)
                    activation += decoder[i * units + j] * hidden[j];
                sum += DistributionReference.BernoulliLogDensity(x[i], activation);
            }
            return sum;
        }
        double LogQ(IReadOnlyList<double> hidden) => Enumerable.Range(0, units).Sum(j => DistributionReference.BernoulliLogDensity(hidden[j], logits[j]));

        // The exact gradient of E_q[f] with respect to a, and E_q[f] itself.
        var exact = new double[units];
        double expectedSignal = 0;
        for (int configuration = 0; configuration < 1 << units; configuration++)
        {
            var state = Enumerable.Range(0, units).Select(j => (double)((configuration >> j) & 1)).ToArray();
            double logQ = LogQ(state), q = Math.Exp(logQ), f = LogJoint(state) - logQ;
            expectedSignal += q * f;
            for (int j = 0; j < units; j++)
                exact[j] += q * f * (state[j] - 1 / (1 + Math.Exp(-logits[j])));
        }

        var kernels = fixture.KernelSets[0];
        var accelerator = kernels.Accelerator;
        using var logitBuffer = accelerator.Allocate1D(Enumerable.Range(0, draws * units).Select(i => logits[i % units]).ToArray());
        using var h = accelerator.Allocate1D<float>(draws * units);
        using var logQElements = accelerator.Allocate1D<float>(draws * units);
        using var scores = accelerator.Allocate1D<float>(draws * units);
        kernels.SampleBernoulli(logitBuffer.View, h.View, units, new DrawKey(9, Philox.Streams.Sample, 1));
        kernels.BernoulliLogDensity(h.View, logitBuffer.View, logQElements.View, scores.View);
        var hidden = h.GetAsArray1D();
        var logQDevice = logQElements.GetAsArray1D();
        var signal = new float[draws];
        for (int n = 0; n < draws; n++)
        {
            var row = Enumerable.Range(0, units).Select(j => (double)hidden[n * units + j]).ToArray();
            signal[n] = (float)(LogJoint(row) - Enumerable.Range(0, units).Sum(j => (double)logQDevice[n * units + j]));
        }
        using var signalBuffer = accelerator.Allocate1D(signal);
        // An input-dependent baseline as a trained b(x) would give: close to E_q[f] for this x, not equal.
        using var baseline = accelerator.Allocate1D(Enumerable.Repeat((float)(expectedSignal - 0.7), draws).ToArray());
        using var moments = accelerator.Allocate1D<float>(2);
        using var centred = accelerator.Allocate1D<float>(draws);
        using var dLogits = accelerator.Allocate1D<float>(draws * units);

        var variances = new Dictionary<string, double>();
        foreach (var (name, centring, runningMean, runningVariance) in new[]
                 {
                     ("none", new SignalCentring(false, false, false), 0f, 0f),
                     ("running mean", new SignalCentring(false, true, false), (float)expectedSignal + 2f, 0f),
                     ("baseline b(x) + running mean", new SignalCentring(true, true, false), 0.5f, 0f),
                     ("running mean + variance normalisation", new SignalCentring(false, true, true), (float)expectedSignal + 2f, 25f),
                 })
        {
            moments.View.CopyFromCPU(new[] { runningMean, runningVariance });
            kernels.CenterLearningSignal(signalBuffer.View, baseline.View, moments.View, centred.View, centring);
            // scale 1: each row is one draw's estimate of −∇_a E_q[f].
            kernels.BernoulliScoreGradient(h.View, logitBuffer.View, centred.View, dLogits.View, units, 1f);
            var estimates = dLogits.GetAsArray1D();
            double normalisation = centring.Normalise != 0 ? Math.Max(1, Math.Sqrt(runningVariance)) : 1;
            double varianceSum = 0;
            for (int j = 0; j < units; j++)
            {
                var component = Enumerable.Range(0, draws).Select(n => (double)estimates[n * units + j]).ToArray();
                double mean = component.Average();
                double variance = component.Sum(value => (value - mean) * (value - mean)) / (draws - 1);
                double error = Math.Sqrt(variance / draws), expected = -exact[j] / normalisation;
                Assert.True(Math.Abs(mean - expected) <= 4.5 * error, $"{name}, unit {j}: estimate {mean} ± {error}, exact {expected}");
                // Variance in units of the unnormalised gradient, so the devices compare.
                varianceSum += variance * normalisation * normalisation;
            }
            variances[name] = varianceSum / units;
        }
        foreach (var (name, variance) in variances)
            TestContext.Current.TestOutputHelper?.WriteLine($"{name}: mean variance per unit {variance:G4} ({variances["none"] / variance:F1}× less than none); E_q[f] = {expectedSignal:F3}");
        Assert.True(variances["running mean"] * 3 < variances["none"], $"running mean {variances["running mean"]} against none {variances["none"]}");
        Assert.True(variances["baseline b(x) + running mean"] * 3 < variances["none"]);
    }

    /// <summary>Control-variate coefficients (per-row and per-unit signals) and the per-unit shift against their
    /// references. A coefficient is a ratio of sums over the rows, each term about |f| in size: 1e-4 of |a| + max|f|
    /// covers float's rounding of those sums at 128 rows with room; no rows of spread (one row) give 0.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void ControlVariateKernelsMatchTheirReferences(int rows, int units)
    {
        var random = new Random(rows * 31 + units);
        var logits = Enumerable.Range(0, rows * units).Select(_ => (float)(-3 + 6 * random.NextDouble())).ToArray();
        var h = logits.Select(_ => random.Next(2) == 0 ? 0f : 1f).ToArray();
        foreach (var kernelSet in fixture.KernelSets)
            foreach (bool perUnit in new[] { false, true })
            {
                var accelerator = kernelSet.Accelerator;
                var signals = Enumerable.Range(0, perUnit ? rows * units : rows).Select(_ => (float)(-60 + 30 * random.NextDouble())).ToArray();
                using var hBuffer = accelerator.Allocate1D(h);
                using var logitBuffer = accelerator.Allocate1D(logits);
                using var signalBuffer = accelerator.Allocate1D(signals);
                using var coefficients = accelerator.Allocate1D<float>(units);
                using var centred = accelerator.Allocate1D<float>(rows * units);
                kernelSet.ControlVariateCoefficients(hBuffer.View, logitBuffer.View, signalBuffer.View, coefficients.View, rows, units, perUnit);
                var expected = ScoreFunctionReference.ControlVariateCoefficients(Numerics.ToDouble(h), Numerics.ToDouble(logits), Numerics.ToDouble(signals),
                    rows, units, perUnit);
                var got = coefficients.GetAsArray1D();
                for (int j = 0; j < units; j++)
                    Assert.True(Math.Abs(got[j] - expected[j]) <= 1e-4 * (Math.Abs(expected[j]) + 60),
                        $"{accelerator.AcceleratorType} rows={rows} units={units} per-unit={perUnit}: a[{j}] = {got[j]}, reference {expected[j]}");
                kernelSet.SubtractPerUnit(signalBuffer.View, coefficients.View, centred.View, units, perUnit);
                Numerics.AssertClose($"{accelerator.AcceleratorType} shift", ScoreFunctionReference.SubtractPerUnit(Numerics.ToDouble(signals),
                    Numerics.ToDouble(got), rows, units, perUnit), centred.GetAsArray1D(), 1e-6, 1e-5);
            }
    }

    /// <summary>
    /// Rao-Blackwellization and control variates on a sigmoid belief network whose pixels each depend on two of its 6
    /// units (pixel i on units i and i + 1), summed over all 64 states: unit j's own learning signal keeps only its
    /// Markov blanket's terms (its prior and q factors and the pixels it touches), which leaves the expectation alone
    /// under a factorised q, since the other terms do not depend on h_j. Control variates a_j are estimated on one
    /// half of 20 000 draws and used on the other (so they do not bias it). Every estimate is within 4.5 standard
    /// errors of the exact gradient; Rao-Blackwellization must cut the variance of the plain estimator, and control
    /// variates cut it again.
    /// </summary>
    [Fact]
    public void RaoBlackwellizationAndControlVariatesStayUnbiasedAndCutTheVariance()
    {
        const int units = 6, pixels = 6, draws = 20_000, half = draws / 2;
        var random = new Random(8);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var prior = Enumerable.Range(0, units).Select(_ => Normal()).ToArray();
        var weights = Enumerable.Range(0, 2 * pixels).Select(_ => 2 * Normal()).ToArray();
        var bias = Enumerable.Range(0, pixels).Select(_ => Normal()).ToArray();
        var x = Enumerable.Range(0, pixels).Select(i => i % 2 == 0 ? 1.0 : 0.0).ToArray();
        var logits = Enumerable.Range(0, units).Select(_ => (float)Normal()).ToArray();
        // Pixel i's log likelihood, from units i and i + 1.
        double Pixel(IReadOnlyList<double> state, int i) =>
            DistributionReference.BernoulliLogDensity(x[i], bias[i] + weights[2 * i] * state[i] + weights[2 * i + 1] * state[(i + 1) % units]);
        double Own(IReadOnlyList<double> state, int j) =>
            DistributionReference.BernoulliLogDensity(state[j], prior[j]) - DistributionReference.BernoulliLogDensity(state[j], logits[j]);
        double Full(IReadOnlyList<double> state) => Enumerable.Range(0, units).Sum(j => Own(state, j)) + Enumerable.Range(0, pixels).Sum(i => Pixel(state, i));
        // Unit j's Markov blanket: its own factors and the two pixels that read it (i = j and i = j − 1).
        double Blanket(IReadOnlyList<double> state, int j) => Own(state, j) + Pixel(state, j) + Pixel(state, (j + units - 1) % units);

        var exact = new double[units];
        for (int configuration = 0; configuration < 1 << units; configuration++)
        {
            var state = Enumerable.Range(0, units).Select(j => (double)((configuration >> j) & 1)).ToArray();
            double q = Math.Exp(Enumerable.Range(0, units).Sum(j => DistributionReference.BernoulliLogDensity(state[j], logits[j])));
            for (int j = 0; j < units; j++)
                exact[j] += q * Full(state) * (state[j] - 1 / (1 + Math.Exp(-logits[j])));
        }

        var kernels = fixture.KernelSets[0];
        var accelerator = kernels.Accelerator;
        using var logitBuffer = accelerator.Allocate1D(Enumerable.Range(0, draws * units).Select(i => logits[i % units]).ToArray());
        using var h = accelerator.Allocate1D<float>(draws * units);
        kernels.SampleBernoulli(logitBuffer.View, h.View, units, new DrawKey(4, Philox.Streams.Sample, 2));
        var hidden = h.GetAsArray1D();
        var rows = Enumerable.Range(0, draws).Select(n => Enumerable.Range(0, units).Select(j => (double)hidden[n * units + j]).ToArray()).ToArray();
        var full = rows.Select(row => (float)Full(row)).ToArray();
        var blanket = rows.SelectMany(row => Enumerable.Range(0, units).Select(j => (float)Blanket(row, j))).ToArray();

        var variances = new Dictionary<string, double>();
        foreach (var (name, perUnit, controlVariates) in new[]
                 {
                     ("plain", false, false), ("control variates", false, true),
                     ("Rao-Blackwellized", true, false), ("Rao-Blackwellized + control variates", true, true),
                 })
        {
            var signals = perUnit ? blanket : full;
            int width = perUnit ? units : 1;
            // First half: the coefficients (or zeros); second half: the estimate.
            using var firstSignals = accelerator.Allocate1D(signals.Take(half * width).ToArray());
            using var secondSignals = accelerator.Allocate1D(signals.Skip(half * width).ToArray());
            var firstRows = h.View.SubView(0, half * units);
            var secondRows = h.View.SubView(half * units, half * units);
            var secondLogits = logitBuffer.View.SubView(half * units, half * units);
            using var coefficients = accelerator.Allocate1D<float>(units);
            coefficients.MemSetToZero();
            if (controlVariates)
                kernels.ControlVariateCoefficients(firstRows, logitBuffer.View.SubView(0, half * units), firstSignals.View, coefficients.View, half, units, perUnit);
            using var centred = accelerator.Allocate1D<float>(half * units);
            kernels.SubtractPerUnit(secondSignals.View, coefficients.View, centred.View, units, perUnit);
            using var dLogits = accelerator.Allocate1D<float>(half * units);
            kernels.BernoulliScoreGradient(secondRows, secondLogits, centred.View, dLogits.View, units: 1, scale: 1f);
            var estimates = dLogits.GetAsArray1D();
            double varianceSum = 0;
            for (int j = 0; j < units; j++)
            {
                var component = Enumerable.Range(0, half).Select(n => (double)estimates[n * units + j]).ToArray();
                double mean = component.Average(), variance = component.Sum(value => (value - mean) * (value - mean)) / (half - 1);
                double error = Math.Sqrt(variance / half);
                Assert.True(Math.Abs(mean + exact[j]) <= 4.5 * error, $"{name}, unit {j}: estimate {mean} ± {error}, exact {-exact[j]}");
                varianceSum += variance;
            }
            variances[name] = varianceSum / units;
        }
        foreach (var (name, variance) in variances)
            TestContext.Current.TestOutputHelper?.WriteLine($"{name}: mean variance per unit {variance:G4} ({variances["plain"] / variance:F1}× less than plain)");
        Assert.True(variances["Rao-Blackwellized"] < variances["plain"], $"Rao-Blackwellized {variances["Rao-Blackwellized"]} against plain {variances["plain"]}");
        Assert.True(variances["control variates"] < variances["plain"]);
        Assert.True(variances["Rao-Blackwellized + control variates"] < variances["Rao-Blackwellized"]);
    }
}
