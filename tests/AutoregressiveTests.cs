using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// DARN's autoregressive binary units: the masked logits, the sequential sampler and W's gradient against their
/// double references at odd shapes, W's gradient against finite differences of the log-probability, the mask (only
/// the strictly lower triangle is read), the sampler's state frequencies against the exact distribution, and the
/// slice keying of data parallelism.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class AutoregressiveTests(AcceleratorFixture fixture)
{
    public static TheoryData<int, int> Shapes => new() { { 1, 1 }, { 7, 5 }, { 33, 33 }, { 128, 200 } };

    private static (float[] Context, float[] Weights, float[] H) Inputs(int rows, int units, int seed)
    {
        var random = new Random(seed);
        double scale = 2 / Math.Sqrt(units);
        var context = Enumerable.Range(0, rows * units).Select(_ => (float)(-2 + 4 * random.NextDouble())).ToArray();
        var weights = Enumerable.Range(0, units * units).Select(_ => (float)(scale * (2 * random.NextDouble() - 1))).ToArray();
        var h = Enumerable.Range(0, rows * units).Select(_ => random.Next(2) == 0 ? 0f : 1f).ToArray();
        return (context, weights, h);
    }

    /// <summary>Logits of given units: each a sum of up to K − 1 products; float keeps about 6e-8 of each, so 1e-5
    /// of the sum of their sizes (plus 1e-6) bounds the difference at K = 200 with room.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void LogitsMatchTheReference(int rows, int units)
    {
        var (context, weights, h) = Inputs(rows, units, rows + units);
        var expected = AutoregressiveReference.Logits(Numerics.ToDouble(context), Numerics.ToDouble(weights), Numerics.ToDouble(h), rows, units);
        var sizes = AutoregressiveReference.Logits(context.Select(value => (double)Math.Abs(value)).ToArray(),
            weights.Select(value => (double)Math.Abs(value)).ToArray(), Numerics.ToDouble(h), rows, units);
        foreach (var kernels in fixture.KernelSets)
        {
            using var contextBuffer = kernels.Accelerator.Allocate1D(context);
            using var weightBuffer = kernels.Accelerator.Allocate1D(weights);
            using var hBuffer = kernels.Accelerator.Allocate1D(h);
            using var logits = kernels.Accelerator.Allocate1D<float>(rows * units);
            kernels.AutoregressiveLogits(contextBuffer.View, weightBuffer.View, hBuffer.View, logits.View, units);
            var got = logits.GetAsArray1D();
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-5 * sizes[i] + 1e-6, $"{kernels.Accelerator.AcceleratorType}: logit {i} = {got[i]}, reference {expected[i]}");
        }
    }

    /// <summary>(examples, units, rows per example).</summary>
    public static TheoryData<int, int, int> ObservedShapes => new() { { 1, 1, 1 }, { 7, 5, 3 }, { 3, 33, 2 }, { 2, 784, 4 } };

    /// <summary>
    /// Units observed once per example and read by its k rows (DARN's autoregressive decoder reads the pixels so):
    /// the logits of k·B rows against the reference (tolerance as above), and W's gradient from per-row logit
    /// gradients, a sum over k·B rows of products with h ∈ {0, 1}: 1e-5 of the summed sizes plus 1e-6.
    /// </summary>
    [Theory]
    [MemberData(nameof(ObservedShapes))]
    public void UnitsReadOncePerExampleMatchTheReference(int examples, int units, int samples)
    {
        int rows = examples * samples;
        var (context, weights, _) = Inputs(rows, units, examples * 7 + units + samples);
        var (_, _, h) = Inputs(examples, units, units + samples);
        var dLogits = Numerics.Uniform(new Random(units), rows * units, -1, 1);
        var expected = AutoregressiveReference.Logits(Numerics.ToDouble(context), Numerics.ToDouble(weights), Numerics.ToDouble(h), rows, units, samples);
        var sizes = AutoregressiveReference.Logits(context.Select(value => (double)Math.Abs(value)).ToArray(),
            weights.Select(value => (double)Math.Abs(value)).ToArray(), Numerics.ToDouble(h), rows, units, samples);
        var expectedGradient = AutoregressiveReference.WeightGradient(Numerics.ToDouble(dLogits), Numerics.ToDouble(h), rows, units, samples);
        var gradientSizes = AutoregressiveReference.WeightGradient(dLogits.Select(value => (double)Math.Abs(value)).ToArray(), Numerics.ToDouble(h), rows, units, samples);
        // The per-example reading is the per-row one on h repeated k times.
        var repeated = Enumerable.Range(0, rows * units).Select(i => (double)h[i / units / samples * units + i % units]).ToArray();
        Assert.Equal(AutoregressiveReference.Logits(Numerics.ToDouble(context), Numerics.ToDouble(weights), repeated, rows, units), expected);
        foreach (var kernels in fixture.KernelSets)
        {
            using var contextBuffer = kernels.Accelerator.Allocate1D(context);
            using var weightBuffer = kernels.Accelerator.Allocate1D(weights);
            using var hBuffer = kernels.Accelerator.Allocate1D(h);
            using var logits = kernels.Accelerator.Allocate1D<float>(rows * units);
            using var dLogitBuffer = kernels.Accelerator.Allocate1D(dLogits);
            using var dWeights = kernels.Accelerator.Allocate1D<float>(units * units);
            kernels.AutoregressiveLogits(contextBuffer.View, weightBuffer.View, hBuffer.View, logits.View, units, samples);
            kernels.AutoregressiveWeightGradient(dLogitBuffer.View, hBuffer.View, dWeights.View, rows, units, samples);
            var got = logits.GetAsArray1D();
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-5 * sizes[i] + 1e-6, $"{kernels.Accelerator.AcceleratorType}: logit {i} = {got[i]}, reference {expected[i]}");
            var gotGradient = dWeights.GetAsArray1D();
            for (int i = 0; i < gotGradient.Length; i++)
                Assert.True(Math.Abs(gotGradient[i] - expectedGradient[i]) <= 1e-5 * gradientSizes[i] + 1e-6,
                    $"{kernels.Accelerator.AcceleratorType}: dW[{i}] = {gotGradient[i]}, reference {expectedGradient[i]}");
        }
    }

    /// <summary>
    /// The Taylor-expansion baseline's gradient of q's logits against the reference: each element is ½·(1 − q(h_i))
    /// times dCodes_i plus klScale times two sums of up to K − 1 products (∂ log q/∂h_i − ∂ log p/∂h_i), so 1e-5 of
    /// the sum of the terms' sizes plus 1e-6.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void TaylorGradientMatchesTheReference(int rows, int units)
    {
        var (qContext, qWeights, h) = Inputs(rows, units, rows * 3 + units);
        var (priorContext, priorWeights, _) = Inputs(rows, units, rows * 5 + units);
        var dCodes = Numerics.Uniform(new Random(rows + 2 * units), rows * units, -0.3, 0.3);
        const float klScale = 0.7f;
        var qLogits = AutoregressiveReference.Logits(Numerics.ToDouble(qContext), Numerics.ToDouble(qWeights), Numerics.ToDouble(h), rows, units);
        var priorLogits = AutoregressiveReference.Logits(Numerics.ToDouble(priorContext), Numerics.ToDouble(priorWeights), Numerics.ToDouble(h), rows, units);
        var (qIn, priorIn) = (qLogits.Select(value => (float)value).ToArray(), priorLogits.Select(value => (float)value).ToArray());
        var expected = AutoregressiveReference.TaylorGradient(Numerics.ToDouble(dCodes), Numerics.ToDouble(h), Numerics.ToDouble(qIn), Numerics.ToDouble(priorIn),
            Numerics.ToDouble(qWeights), Numerics.ToDouble(priorWeights), rows, units, klScale);
        // Each term's size: |dCodes| + klScale·(|a_q| + |a_p| + Σ_{j>i} (|U_ji| + |W_ji|)).
        var sizes = Enumerable.Range(0, rows * units).Select(i =>
        {
            int row = i / units, unit = i % units;
            double sum = Math.Abs(qIn[i]) + Math.Abs(priorIn[i]);
            for (int j = unit + 1; j < units; j++)
                sum += Math.Abs(qWeights[j * units + unit]) + Math.Abs(priorWeights[j * units + unit]);
            return 0.5 * (Math.Abs(dCodes[i]) + klScale * sum);
        }).ToArray();
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var dCodeBuffer = accelerator.Allocate1D(dCodes);
            using var hBuffer = accelerator.Allocate1D(h);
            using var qBuffer = accelerator.Allocate1D(qIn);
            using var priorBuffer = accelerator.Allocate1D(priorIn);
            using var qWeightBuffer = accelerator.Allocate1D(qWeights);
            using var priorWeightBuffer = accelerator.Allocate1D(priorWeights);
            using var dQ = accelerator.Allocate1D<float>(rows * units);
            kernels.AutoregressiveTaylorGradient(dCodeBuffer.View, hBuffer.View, qBuffer.View, priorBuffer.View, qWeightBuffer.View, priorWeightBuffer.View,
                dQ.View, units, klScale);
            var got = dQ.GetAsArray1D();
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-5 * sizes[i] + 1e-6, $"{accelerator.AcceleratorType}: dQ[{i}] = {got[i]}, reference {expected[i]}");
        }
    }

    /// <summary>∂/∂h of Σ_j log Bernoulli(h_j; σ(a_j)), a = c + W·h, with h taken as continuous in [0, 1], against
    /// central differences in double (h = 1e-6, agreement to 1e-6 relative and absolute): what the Taylor baseline
    /// reads of q's and p's densities.</summary>
    [Fact]
    public void LogDensityCodeGradientMatchesFiniteDifferences()
    {
        const int rows = 3, units = 7;
        var (context, weights, _) = Inputs(rows, units, 41);
        var random = new Random(5);
        var h = Enumerable.Range(0, rows * units).Select(_ => random.NextDouble()).ToArray();
        var (c, w) = (Numerics.ToDouble(context), Numerics.ToDouble(weights));
        double LogDensity(double[] values) => AutoregressiveReference.Logits(c, w, values, rows, units)
            .Select((logit, i) => values[i] * logit - Math.Log(1 + Math.Exp(logit))).Sum();
        var analytic = AutoregressiveReference.LogDensityCodeGradient(AutoregressiveReference.Logits(c, w, h, rows, units), w, h, rows, units);
        var numeric = Numerics.FiniteDifferenceGradient(LogDensity, h);
        for (int i = 0; i < h.Length; i++)
            Assert.True(Math.Abs(numeric[i] - analytic[i]) <= 1e-6 * (1 + Math.Abs(numeric[i])), $"∂/∂h[{i}]: {analytic[i]}, differences {numeric[i]}");
    }

    /// <summary>Only the strictly lower triangle of W is read: filling the diagonal and the upper triangle with large
    /// values changes no logit and no draw.</summary>
    [Fact]
    public void OnlyTheStrictlyLowerTriangleIsRead()
    {
        const int rows = 9, units = 6;
        var (context, weights, h) = Inputs(rows, units, 3);
        var polluted = weights.Select((value, i) => i % units >= i / units ? 1e6f : value).ToArray();
        var key = new DrawKey(2, Philox.Streams.Sample, 5);
        var kernels = fixture.KernelSets[0];
        float[] Logits(float[] w, bool sample)
        {
            using var contextBuffer = kernels.Accelerator.Allocate1D(context);
            using var weightBuffer = kernels.Accelerator.Allocate1D(w);
            using var hBuffer = kernels.Accelerator.Allocate1D(h);
            using var logits = kernels.Accelerator.Allocate1D<float>(rows * units);
            if (sample)
                kernels.AutoregressiveSample(contextBuffer.View, weightBuffer.View, hBuffer.View, logits.View, units, key);
            else
                kernels.AutoregressiveLogits(contextBuffer.View, weightBuffer.View, hBuffer.View, logits.View, units);
            return [.. logits.GetAsArray1D(), .. hBuffer.GetAsArray1D()];
        }
        Assert.Equal(Logits(weights, sample: false), Logits(polluted, sample: false));
        Assert.Equal(Logits(weights, sample: true), Logits(polluted, sample: true));
    }

    /// <summary>
    /// The sequential sampler against the reference from the same uniforms: a row whose every threshold falls the
    /// same way in float and double draws the same units and logits (to the tolerance above); a threshold decided
    /// differently (the two sides within rounding) changes the rest of its row, which at most 1 row in 100 may do.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void TheSamplerDrawsWhatTheReferenceDraws(int rows, int units)
    {
        var (context, weights, _) = Inputs(rows, units, 7 * rows + units);
        var key = new DrawKey(4, Philox.Streams.Sample, 9);
        var (expectedH, expectedLogits) = AutoregressiveReference.Sample(Numerics.ToDouble(context), Numerics.ToDouble(weights), rows, units, key);
        foreach (var kernels in fixture.KernelSets)
        {
            using var contextBuffer = kernels.Accelerator.Allocate1D(context);
            using var weightBuffer = kernels.Accelerator.Allocate1D(weights);
            using var h = kernels.Accelerator.Allocate1D<float>(rows * units);
            using var logits = kernels.Accelerator.Allocate1D<float>(rows * units);
            kernels.AutoregressiveSample(contextBuffer.View, weightBuffer.View, h.View, logits.View, units, key);
            var gotH = h.GetAsArray1D();
            var gotLogits = logits.GetAsArray1D();
            int differing = 0;
            for (int b = 0; b < rows; b++)
            {
                bool same = Enumerable.Range(b * units, units).All(i => gotH[i] == expectedH[i]);
                if (!same)
                {
                    differing++;
                    continue;
                }
                for (int i = b * units; i < (b + 1) * units; i++)
                    Assert.True(Math.Abs(gotLogits[i] - expectedLogits[i]) <= 1e-5 * (Math.Abs(expectedLogits[i]) + units) + 1e-6,
                        $"row {b}: logit {i} = {gotLogits[i]}, reference {expectedLogits[i]}");
            }
            Assert.True(differing <= Math.Max(1, rows / 100), $"{kernels.Accelerator.AcceleratorType}: {differing} of {rows} rows differ");
        }
    }

    /// <summary>With k = 3 rows per example, each row reads its example's context and draws uniforms keyed k·K per
    /// example: against the reference drawing from the same uniforms (DARN's sampler; the same allowance of 1 row in
    /// 100 whose threshold rounds differently).</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void TheSamplerWithSeveralRowsPerExampleDrawsWhatTheReferenceDraws(int examples, int units)
    {
        const int samples = 3;
        int rows = examples * samples;
        var (context, weights, _) = Inputs(examples, units, 13 * examples + units);
        var key = new DrawKey(4, Philox.Streams.Sample, 9);
        var (expectedH, expectedLogits) = AutoregressiveReference.Sample(Numerics.ToDouble(context), Numerics.ToDouble(weights),
            BinaryLatentReference.Uniforms(key, rows, units, samples), rows, units, samples);
        foreach (var kernels in fixture.KernelSets)
        {
            using var contextBuffer = kernels.Accelerator.Allocate1D(context);
            using var weightBuffer = kernels.Accelerator.Allocate1D(weights);
            using var h = kernels.Accelerator.Allocate1D<float>(rows * units);
            using var logits = kernels.Accelerator.Allocate1D<float>(rows * units);
            kernels.AutoregressiveSample(contextBuffer.View, weightBuffer.View, h.View, logits.View, units, key, samples);
            var gotH = h.GetAsArray1D();
            var gotLogits = logits.GetAsArray1D();
            int differing = Enumerable.Range(0, rows).Count(r => !Enumerable.Range(r * units, units).All(i => gotH[i] == expectedH[i]));
            Assert.True(differing <= Math.Max(1, rows / 100), $"{kernels.Accelerator.AcceleratorType}: {differing} of {rows} rows differ");
            for (int r = 0; r < rows; r++)
                if (Enumerable.Range(r * units, units).All(i => gotH[i] == expectedH[i]))
                    for (int i = r * units; i < (r + 1) * units; i++)
                        Assert.True(Math.Abs(gotLogits[i] - expectedLogits[i]) <= 1e-5 * (Math.Abs(expectedLogits[i]) + units) + 1e-6,
                            $"row {r}: logit {i} = {gotLogits[i]}, reference {expectedLogits[i]}");
        }
    }

    /// <summary>
    /// W's gradient of the log-probability of given units: the logits' gradient is each unit's Bernoulli score
    /// h − σ(a) (the density kernel's), then W's is the masked product. Against the double reference (1e-5 of the
    /// sum of the terms' sizes: B products each) and against central differences of the double log-probability
    /// at entries below, on and above the diagonal (the last two must be exactly 0).
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void WeightGradientMatchesTheReferenceAndFiniteDifferences(int rows, int units)
    {
        var (context, weights, h) = Inputs(rows, units, 11 * rows + units);
        var expectedLogits = AutoregressiveReference.Logits(Numerics.ToDouble(context), Numerics.ToDouble(weights), Numerics.ToDouble(h), rows, units);
        var score = expectedLogits.Select((logit, i) => DistributionReference.BernoulliScore(h[i], logit)).ToArray();
        var expected = AutoregressiveReference.WeightGradient(score, Numerics.ToDouble(h), rows, units);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var contextBuffer = accelerator.Allocate1D(context);
            using var weightBuffer = accelerator.Allocate1D(weights);
            using var hBuffer = accelerator.Allocate1D(h);
            using var logits = accelerator.Allocate1D<float>(rows * units);
            using var logDensity = accelerator.Allocate1D<float>(rows * units);
            using var dLogits = accelerator.Allocate1D<float>(rows * units);
            using var dWeights = accelerator.Allocate1D<float>(units * units);
            kernels.AutoregressiveLogits(contextBuffer.View, weightBuffer.View, hBuffer.View, logits.View, units);
            kernels.BernoulliLogDensity(hBuffer.View, logits.View, logDensity.View, dLogits.View);
            kernels.AutoregressiveWeightGradient(dLogits.View, hBuffer.View, dWeights.View, rows, units);
            var got = dWeights.GetAsArray1D();
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-5 * rows + 1e-6, $"{accelerator.AcceleratorType}: dW[{i}] = {got[i]}, reference {expected[i]}");
        }
        var random = new Random(units);
        for (int check = 0; check < Math.Min(12, units * units); check++)
        {
            int entry = check < 2 && units > 1 ? (check == 0 ? units * units - 1 : units) : random.Next(units * units);
            var plus = Numerics.ToDouble(weights);
            var minus = Numerics.ToDouble(weights);
            const double h2 = 1e-6;
            plus[entry] += h2;
            minus[entry] -= h2;
            double slope = (AutoregressiveReference.LogProbability(Numerics.ToDouble(context), plus, Numerics.ToDouble(h), rows, units)
                            - AutoregressiveReference.LogProbability(Numerics.ToDouble(context), minus, Numerics.ToDouble(h), rows, units)) / (2 * h2);
            Assert.True(Math.Abs(slope - expected[entry]) <= 1e-5 * rows + 1e-6, $"entry {entry}: difference quotient {slope}, gradient {expected[entry]}");
            if (entry % units >= entry / units)
                Assert.Equal(0, expected[entry]);
        }
    }

    /// <summary>
    /// Three units with strong dependencies, 40 000 rows: each of the 8 states turns up within 4.5 standard errors of
    /// its exact probability Π_j σ(±a_j) (the draws are fixed by the seed, so this passes or fails the same way on
    /// every run); a sampler that read the units in the wrong order or a unit's own draw would miss by far more.
    /// </summary>
    [Fact]
    public void StateFrequenciesMatchTheAutoregressiveDistribution()
    {
        const int rows = 40_000, units = 3;
        float[] context1 = [0.3f, -1.1f, 0.6f];
        float[] weights = [0, 0, 0, 2.2f, 0, 0, -1.7f, 1.3f, 0];
        var kernels = fixture.KernelSets[0];
        using var context = kernels.Accelerator.Allocate1D(Enumerable.Range(0, rows * units).Select(i => context1[i % units]).ToArray());
        using var weightBuffer = kernels.Accelerator.Allocate1D(weights);
        using var h = kernels.Accelerator.Allocate1D<float>(rows * units);
        using var logits = kernels.Accelerator.Allocate1D<float>(rows * units);
        kernels.AutoregressiveSample(context.View, weightBuffer.View, h.View, logits.View, units, new DrawKey(6, Philox.Streams.Sample, 1));
        var draws = h.GetAsArray1D();
        var counts = new int[1 << units];
        for (int b = 0; b < rows; b++)
            counts[(int)(draws[b * 3] + 2 * draws[b * 3 + 1] + 4 * draws[b * 3 + 2])]++;
        for (int state = 0; state < 1 << units; state++)
        {
            var bits = Enumerable.Range(0, units).Select(j => (double)((state >> j) & 1)).ToArray();
            double probability = Math.Exp(AutoregressiveReference.LogProbability(Numerics.ToDouble(context1), Numerics.ToDouble(weights), bits, 1, units));
            double expected = rows * probability, error = Math.Sqrt(rows * probability * (1 - probability));
            Assert.True(Math.Abs(counts[state] - expected) <= 4.5 * error, $"state {state}: {counts[state]} draws, expected {expected:F0} ± {error:F0}");
        }
    }

    /// <summary>Rows first..first+3 drawn on their own with the first in the key are the whole batch's rows.</summary>
    [Fact]
    public void ASliceDrawsWhatTheWholeBatchDrawsForItsRows()
    {
        const int rows = 8, units = 7, first = 4, slice = 3;
        var (context, weights, _) = Inputs(rows, units, 5);
        var kernels = fixture.KernelSets[0];
        using var contextBuffer = kernels.Accelerator.Allocate1D(context);
        using var weightBuffer = kernels.Accelerator.Allocate1D(weights);
        using var whole = kernels.Accelerator.Allocate1D<float>(rows * units);
        using var part = kernels.Accelerator.Allocate1D<float>(slice * units);
        using var logits = kernels.Accelerator.Allocate1D<float>(rows * units);
        kernels.AutoregressiveSample(contextBuffer.View, weightBuffer.View, whole.View, logits.View, units, new DrawKey(1, Philox.Streams.Sample, 2));
        kernels.AutoregressiveSample(contextBuffer.View.SubView(first * units, slice * units), weightBuffer.View, part.View,
            logits.View.SubView(0, slice * units), units, new DrawKey(1, Philox.Streams.Sample, 2, first));
        Assert.Equal(whole.GetAsArray1D().Skip(first * units).Take(slice * units), part.GetAsArray1D());
    }
}
