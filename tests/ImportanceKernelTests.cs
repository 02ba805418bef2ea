using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// The kernels of k samples per example (batch×k rows, example-major) and of the IWAE bound, against the double
/// references, which repeat each example's rows k times where the kernels index row / k; and the bound's
/// reference gradient against finite differences.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ImportanceKernelTests(AcceleratorFixture fixture)
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 20, 5)]
    [InlineData(3, 7, 50)]
    [InlineData(33, 3, 2)]
    public void SamplerWithKSamplesMatchesReference(int batch, int latent, int samples)
    {
        int rows = batch * samples;
        var random = new Random(batch + 10 * latent + 1000 * samples);
        float[] stats = Numerics.Uniform(random, batch * 2 * latent, -2, 2);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        float[] weights = Numerics.Uniform(random, rows, 0, 1);
        const ulong seed = 5;
        const long step = 3;
        const float klWeight = 0.4f, scale = 0.125f;
        var epsilon = Enumerable.Range(0, rows * latent)
            .Select(i => Philox.NormalDouble(seed, Philox.Streams.Reparameterize, step, i)).ToArray();
        var repeated = ImportanceReference.RepeatRows(Numerics.ToDouble(stats), batch, 2 * latent, samples);
        var (z, kl) = LossReference.ReparameterizeForward(repeated, epsilon, rows, latent);
        // The KL weight per example is spread as klWeight/k over its k rows in the reference.
        var dStats = ImportanceReference.SumRepeatedRows(
            LossReference.ReparameterizeBackward(repeated, epsilon, Numerics.ToDouble(dZ), rows, latent, klWeight / samples), batch, 2 * latent, samples);
        var dStatsImportance = ImportanceReference.SumRepeatedRows(
            ImportanceReference.SamplerBackward(repeated, z, epsilon, Numerics.ToDouble(dZ), Numerics.ToDouble(weights), rows, latent, scale),
            batch, 2 * latent, samples);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var dZBuffer = accelerator.Upload(dZ);
            using var weightBuffer = accelerator.Upload(weights);
            using var dStatsBuffer = accelerator.Allocate1D<float>(batch * 2 * latent);
            using var dStatsImportanceBuffer = accelerator.Allocate1D<float>(batch * 2 * latent);
            kernels.ReparameterizeForward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, klBuffer.View, rows, latent,
                new DrawKey(seed, Philox.Streams.Reparameterize, step), samples);
            kernels.ReparameterizeBackward(statsBuffer.View, epsilonBuffer.View, dZBuffer.View, dStatsBuffer.View, batch, latent, klWeight, samples);
            kernels.ImportanceBackward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, dZBuffer.View, weightBuffer.View,
                dStatsImportanceBuffer.View, batch, latent, samples, scale);
            string label = $"{accelerator.AcceleratorType} {batch}×{latent}, k={samples}";
            Numerics.AssertClose(label + " z", z, zBuffer.GetAsArray1D(), 2e-5, 2e-5);
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 1e-5, 1e-6 * latent);
            // Sums of k float products of O(1) terms: rounding grows like k·6e-8 of the largest term.
            double sumTolerance = 2e-5 * samples;
            Numerics.AssertClose(label + " dStats", dStats, dStatsBuffer.GetAsArray1D(), 2e-5, sumTolerance);
            Numerics.AssertClose(label + " IWAE dStats", dStatsImportance, dStatsImportanceBuffer.GetAsArray1D(), 2e-5, sumTolerance);
        }
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 33, 5)]
    [InlineData(2, 3, 50)]
    public void LogWeightsWithKSamplesMatchReference(int batch, int latent, int samples)
    {
        int rows = batch * samples;
        var random = new Random(batch * latent * samples);
        float[] stats = Numerics.Uniform(random, batch * 2 * latent, -2, 2);
        float[] z = Numerics.Uniform(random, rows * latent, -3, 3);
        float[] epsilon = Numerics.Uniform(random, rows * latent, -3, 3);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 200);
        var repeated = ImportanceReference.RepeatRows(Numerics.ToDouble(stats), batch, 2 * latent, samples);
        var expected = LossReference.LogWeights(repeated, Numerics.ToDouble(z), Numerics.ToDouble(epsilon), Numerics.ToDouble(reconstruction), rows, latent);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var zBuffer = accelerator.Upload(z);
            using var epsilonBuffer = accelerator.Upload(epsilon);
            using var recBuffer = accelerator.Upload(reconstruction);
            using var logWeights = accelerator.Allocate1D<float>(rows);
            kernels.LogWeights(statsBuffer.View, zBuffer.View, epsilonBuffer.View, recBuffer.View, logWeights.View, rows, latent, samples);
            // Terms up to ~200 + 10·latent in magnitude, summed in float: 1e-6 of that bounds the rounding.
            Numerics.AssertClose($"{accelerator.AcceleratorType} log w {batch}×{latent}, k={samples}", expected,
                logWeights.GetAsArray1D(), 1e-6, 1e-6 * (200 + 10 * latent));
        }
    }

    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(7, 5, 3)]
    [InlineData(33, 50, 40)]
    [InlineData(2, 5000, 10)]
    [InlineData(3, 7, 900)]
    public void BoundAndWeightsMatchReference(int examples, int samples, double spread)
    {
        // MNIST log-weights sit near −100 and spread by a few nats; 900 nats of spread puts all weight on one
        // sample and makes every other exp underflow, which the max subtraction must survive.
        var random = new Random(examples + samples);
        float[] logWeights = Numerics.Uniform(random, examples * samples, -100 - spread, -100);
        var (negativeBound, normalized) = ImportanceReference.Bound(Numerics.ToDouble(logWeights), examples, samples);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var logWeightBuffer = accelerator.Upload(logWeights);
            using var weightBuffer = accelerator.Allocate1D<float>(examples * samples);
            using var boundBuffer = accelerator.Allocate1D<float>(examples);
            kernels.ImportanceBound(logWeightBuffer.View, weightBuffer.View, boundBuffer.View, examples, samples);
            string label = $"{accelerator.AcceleratorType} bound {examples}×{samples} spread {spread}";
            var bound = boundBuffer.GetAsArray1D();
            Assert.All(bound, value => Assert.True(float.IsFinite(value), $"{label}: −L_k {value}"));
            // −L_k ≈ 100 to 1000 computed from one float log and a sum of ≤ 5000 exps: a few ulps of its magnitude
            // plus k·6e-8 relative from the sum.
            Numerics.AssertClose(label + " −L_k", negativeBound, bound, 1e-6, 1e-7 * samples + 1e-5);
            // Each weight is exp(float difference of ~1000-nat values): 1e-4 absolute error in the exponent is
            // 1e-4 relative in the weight.
            Numerics.AssertClose(label + " w̃", normalized, weightBuffer.GetAsArray1D(), 2e-4, 1e-7);
        }
    }

    [Fact]
    public void GradientTermsUnderTwoToTheMinus64AreZeroNotSubnormal()
    {
        // StableMath.NegligibleGradient is 2^-64 = e^-44.36. Weights e^-30 and e^-43 must survive to float
        // accuracy; e^-46 (a normal float) and e^-100 (subnormal, 3.7e-44, when computed without the rule) must be
        // exactly 0. Likewise the Bernoulli gradient sigmoid(ℓ) − 0 at ℓ = −30 survives and at ℓ = −60 (8.8e-27)
        // and ℓ = −100 (subnormal) is 0, and a row weighted by a zeroed w̃ is all zeros.
        float[] logWeights = [-100, -130, -143, -146, -200];
        float[] expectedWeights = logWeights.Select(value => value < -144 ? 0f : MathF.Exp(value + 100)).ToArray();
        const int features = 4;
        float[] logits = [-30, -60, -100, 5];
        float[] target = new float[features];
        float[] output = [.. logits, .. logits, .. logits, .. logits, .. logits];
        var parameters = ReconstructionParameters.For(LikelihoodKind.Bernoulli, features, 1, 1);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = accelerator.AcceleratorType.ToString();
            using var logWeightBuffer = accelerator.Upload(logWeights);
            using var weightBuffer = accelerator.Allocate1D<float>(logWeights.Length);
            using var boundBuffer = accelerator.Allocate1D<float>(1);
            kernels.ImportanceBound(logWeightBuffer.View, weightBuffer.View, boundBuffer.View, 1, logWeights.Length);
            var weights = weightBuffer.GetAsArray1D();
            for (int i = 0; i < weights.Length; i++)
            {
                if (expectedWeights[i] == 0f)
                    Assert.True(weights[i] == 0f, $"{label}: w̃ of log w {logWeights[i]} is {weights[i]:E3}, not 0");
                else
                    Assert.True(Math.Abs(weights[i] - expectedWeights[i]) <= 1e-5 * expectedWeights[i], $"{label}: w̃ of log w {logWeights[i]} is {weights[i]:E3}, not {expectedWeights[i]:E3}");
            }

            using var targetBuffer = accelerator.Upload(target);
            using var outputBuffer = accelerator.Upload(output);
            using var dOutputBuffer = accelerator.Allocate1D<float>(output.Length);
            using var recBuffer = accelerator.Allocate1D<float>(logWeights.Length);
            kernels.ReconstructionWeightedGradient(LikelihoodKind.Bernoulli, targetBuffer.View, outputBuffer.View, dOutputBuffer.View,
                weightBuffer.View, logWeights.Length, features, parameters, samples: logWeights.Length);
            var weighted = dOutputBuffer.GetAsArray1D();
            kernels.ReconstructionLossGradient(LikelihoodKind.Bernoulli, targetBuffer.View, outputBuffer.View, dOutputBuffer.View,
                recBuffer.View, 1, features, parameters);
            var fused = dOutputBuffer.GetAsArray1D()[..features];
            for (int j = 0; j < features; j++)
            {
                double expected = j is 1 or 2 ? 0 : StableMath.Sigmoid((double)logits[j]);
                Assert.True(Math.Abs(fused[j] - expected) <= 1e-6 * expected, $"{label}: gradient at logit {logits[j]} is {fused[j]:E3}, not {expected:E3}");
                for (int row = 0; row < logWeights.Length; row++)
                {
                    double expectedWeighted = expectedWeights[row] * expected;
                    if (expectedWeighted < StableMath.NegligibleGradient)
                        expectedWeighted = 0;
                    float actual = weighted[row * features + j];
                    Assert.True(Math.Abs(actual - expectedWeighted) <= 1e-5 * expectedWeighted,
                        $"{label}: weighted gradient at log w {logWeights[row]}, logit {logits[j]} is {actual:E3}, not {expectedWeighted:E3}");
                }
            }
            Assert.DoesNotContain(weighted, float.IsSubnormal);
        }
    }

    [Fact]
    public void BoundReferenceGradientIsTheNormalizedWeights()
    {
        // d(−L_k)/d log w_i = −w̃_i: the reason the IWAE gradient weights each sample by w̃.
        var random = new Random(3);
        var logWeights = Enumerable.Range(0, 7).Select(_ => -90 - 5 * random.NextDouble()).ToArray();
        var (_, weights) = ImportanceReference.Bound(logWeights, 1, 7);
        const double h = 1e-6;
        for (int i = 0; i < logWeights.Length; i++)
        {
            var plus = (double[])logWeights.Clone();
            var minus = (double[])logWeights.Clone();
            plus[i] += h;
            minus[i] -= h;
            double slope = (ImportanceReference.Bound(plus, 1, 7).NegativeBound[0] - ImportanceReference.Bound(minus, 1, 7).NegativeBound[0]) / (2 * h);
            Assert.Equal(-weights[i], slope, 1e-8);
        }
        Assert.Equal(1.0, weights.Sum(), 1e-12);
    }

    [Theory]
    [InlineData(LikelihoodKind.Bernoulli, 1, 1, 1)]
    [InlineData(LikelihoodKind.Bernoulli, 3, 784, 5)]
    [InlineData(LikelihoodKind.Gaussian, 7, 33, 2)]
    public void ReconstructionWithKSamplesMatchesReference(LikelihoodKind likelihood, int batch, int features, int samples)
    {
        int rows = batch * samples;
        var random = new Random(features + samples);
        float[] target = Numerics.Uniform(random, batch * features, 0, 1);
        float[] output = Numerics.Uniform(random, rows * features, likelihood == LikelihoodKind.Bernoulli ? -5 : 0, likelihood == LikelihoodKind.Bernoulli ? 5 : 1);
        float[] weights = Numerics.Uniform(random, rows, 0, 1);
        const double variance = 0.3, scale = 0.25;
        var repeatedTarget = ImportanceReference.RepeatRows(Numerics.ToDouble(target), batch, features, samples);
        var (rec, unitGradient) = LossReference.Reconstruction(likelihood, repeatedTarget, Numerics.ToDouble(output), rows, features, variance, 1.0);
        var weightedGradient = unitGradient.Select((g, i) => scale * weights[i / features] * g).ToArray();
        var parameters = ReconstructionParameters.For(likelihood, features, variance, scale);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var targetBuffer = accelerator.Upload(target);
            using var outputBuffer = accelerator.Upload(output);
            using var weightBuffer = accelerator.Upload(weights);
            using var recBuffer = accelerator.Allocate1D<float>(rows);
            using var fusedGradient = accelerator.Allocate1D<float>(rows * features);
            using var weightedBuffer = accelerator.Allocate1D<float>(rows * features);
            using var lossOnly = accelerator.Allocate1D<float>(rows);
            kernels.ReconstructionLossGradient(likelihood, targetBuffer.View, outputBuffer.View, fusedGradient.View, recBuffer.View,
                rows, features, parameters, samples);
            kernels.ReconstructionLoss(likelihood, targetBuffer.View, outputBuffer.View, lossOnly.View, rows, features, parameters, samples);
            kernels.ReconstructionWeightedGradient(likelihood, targetBuffer.View, outputBuffer.View, weightedBuffer.View, weightBuffer.View,
                rows, features, parameters, samples);
            string label = $"{accelerator.AcceleratorType} {likelihood} {batch}×{features}, k={samples}";
            // Row sums of ≤ 784 terms of magnitude ≤ 6: float rounding below 1e-5 of the sum of magnitudes.
            var rowScale = Enumerable.Range(0, rows).Select(r => 6.0 * features).ToArray();
            Numerics.AssertClose(label + " rec (fused)", rec, recBuffer.GetAsArray1D(), 1e-5, 1e-6, rowScale);
            Numerics.AssertClose(label + " rec (loss only)", rec, lossOnly.GetAsArray1D(), 1e-5, 1e-6, rowScale);
            Numerics.AssertClose(label + " gradient (fused)", unitGradient.Select(g => scale * g).ToArray(), fusedGradient.GetAsArray1D(), 1e-5, 1e-7);
            Numerics.AssertClose(label + " gradient (weighted)", weightedGradient, weightedBuffer.GetAsArray1D(), 1e-5, 1e-7);
        }
    }
}
