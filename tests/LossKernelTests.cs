using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class LossKernelTests(AcceleratorFixture fixture)
{
    // Element-wise float kernels with exp/log: a few float roundings per value (relative ~1e-6 of each term),
    // and row sums of up to 784 terms whose rounding is bounded like a dot product's.
    private const double ElementRelative = 1e-5;
    private const double ElementAbsolute = 1e-6;

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 20)]
    [InlineData(33, 7)]
    [InlineData(5, 127)]
    public void ReparameterizeForwardAndBackwardMatchReference(int batch, int latent)
    {
        var random = new Random(batch + 100 * latent);
        float[] stats = Numerics.Uniform(random, batch * 2 * latent, -2, 2);
        float[] dZ = Numerics.Uniform(random, batch * latent);
        const ulong seed = 99;
        const long step = 12;
        const float klWeight = 0.25f;
        var epsilon = Enumerable.Range(0, batch * latent)
            .Select(i => Philox.NormalDouble(seed, Philox.Streams.Reparameterize, step, i)).ToArray();
        var (z, kl) = LossReference.ReparameterizeForward(Numerics.ToDouble(stats), epsilon, batch, latent);
        var dStats = LossReference.ReparameterizeBackward(Numerics.ToDouble(stats), epsilon, Numerics.ToDouble(dZ), batch, latent, klWeight);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var zBuffer = accelerator.Allocate1D<float>(batch * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(batch * latent);
            using var klBuffer = accelerator.Allocate1D<float>(batch);
            using var dZBuffer = accelerator.Upload(dZ);
            using var dStatsBuffer = accelerator.Allocate1D<float>(batch * 2 * latent);
            kernels.ReparameterizeForward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, klBuffer.View, batch, latent,
                new DrawKey(seed, Philox.Streams.Reparameterize, step));
            kernels.ReparameterizeBackward(statsBuffer.View, epsilonBuffer.View, dZBuffer.View, dStatsBuffer.View, batch, latent, klWeight);
            string label = $"{accelerator.AcceleratorType} reparameterize {batch}×{latent}";
            // ε itself: the device draws the same Philox bits as the host (float vs double evaluation only).
            Numerics.AssertClose(label + " ε", epsilon, epsilonBuffer.GetAsArray1D(), 1e-5, 1e-5);
            Numerics.AssertClose(label + " z", z, zBuffer.GetAsArray1D(), 2e-5, 2e-5);
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), ElementRelative, ElementAbsolute * latent);
            Numerics.AssertClose(label + " dStats", dStats, dStatsBuffer.GetAsArray1D(), 2e-5, 2e-5);
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(33, 20)]
    [InlineData(7, 127)]
    public void LogWeightsMatchReference(int batch, int latent)
    {
        var random = new Random(batch * latent + 5);
        float[] stats = Numerics.Uniform(random, batch * 2 * latent, -2, 2);
        float[] z = Numerics.Uniform(random, batch * latent, -3, 3);
        float[] epsilon = Numerics.Uniform(random, batch * latent, -3, 3);
        float[] reconstruction = Numerics.Uniform(random, batch, 50, 200);
        var expected = LossReference.LogWeights(Numerics.ToDouble(stats), Numerics.ToDouble(z), Numerics.ToDouble(epsilon), Numerics.ToDouble(reconstruction), batch, latent);
        // Scale: the sum of the magnitudes of the terms, which bounds the float rounding of their sum.
        var scale = Enumerable.Range(0, batch).Select(b => reconstruction[b] + Enumerable.Range(0, latent).Sum(k =>
            0.5 * (epsilon[b * latent + k] * epsilon[b * latent + k] + Math.Abs(stats[b * 2 * latent + latent + k]) + z[b * latent + k] * z[b * latent + k]))).ToArray();
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var zBuffer = accelerator.Upload(z);
            using var epsilonBuffer = accelerator.Upload(epsilon);
            using var recBuffer = accelerator.Upload(reconstruction);
            using var logWeights = accelerator.Allocate1D<float>(batch);
            kernels.LogWeights(statsBuffer.View, zBuffer.View, epsilonBuffer.View, recBuffer.View, logWeights.View, batch, latent);
            Numerics.AssertClose($"{accelerator.AcceleratorType} log w {batch}×{latent}", expected, logWeights.GetAsArray1D(), 1e-6, 1e-6, scale.Select(v => 10 * v).ToArray());
        }
    }

    [Fact]
    public void LogMeanExpIsStableAndExact()
    {
        Assert.Equal(Math.Log((Math.Exp(1) + Math.Exp(2) + Math.Exp(3)) / 3), LossReference.LogMeanExp([1.0, 2.0, 3.0]), 12);
        // Weights far below exp's range still give the right answer.
        Assert.Equal(-5000 + Math.Log((1 + Math.Exp(-1)) / 2), LossReference.LogMeanExp([-5000.0, -5001.0]), 9);
    }

    [Fact]
    public void ReparameterizeReferenceBackwardMatchesFiniteDifferences()
    {
        const int batch = 3, latent = 4;
        const double klWeight = 0.7;
        var random = new Random(3);
        double[] stats = Numerics.ToDouble(Numerics.Uniform(random, batch * 2 * latent, -1.5, 1.5));
        double[] epsilon = Numerics.ToDouble(Numerics.Uniform(random, batch * latent, -2, 2));
        double[] dZ = Numerics.ToDouble(Numerics.Uniform(random, batch * latent));
        double Objective(double[] s)
        {
            var (z, kl) = LossReference.ReparameterizeForward(s, epsilon, batch, latent);
            return z.Zip(dZ, (a, b) => a * b).Sum() + klWeight * kl.Sum();
        }
        Numerics.AssertClose("dStats vs finite differences", Numerics.FiniteDifferenceGradient(Objective, stats),
            LossReference.ReparameterizeBackward(stats, epsilon, dZ, batch, latent, klWeight), 1e-6, 1e-7);
    }

    [Theory]
    [InlineData(LikelihoodKind.Bernoulli, 1, 1)]
    [InlineData(LikelihoodKind.Bernoulli, 7, 784)]
    [InlineData(LikelihoodKind.Bernoulli, 33, 33)]
    [InlineData(LikelihoodKind.Gaussian, 1, 7)]
    [InlineData(LikelihoodKind.Gaussian, 7, 784)]
    [InlineData(LikelihoodKind.Gaussian, 33, 127)]
    public void ReconstructionMatchesReference(LikelihoodKind likelihood, int batch, int features)
    {
        var random = new Random(batch * 7 + features);
        float[] target = Numerics.Uniform(random, batch * features, 0, 1);
        // Bernoulli logits include large magnitudes to exercise the stable softplus; Gaussian means lie in (0, 1).
        float[] output = likelihood == LikelihoodKind.Bernoulli
            ? Numerics.Uniform(random, batch * features, -40, 40)
            : Numerics.Uniform(random, batch * features, 0, 1);
        const double variance = 0.3, gradientScale = 1.0 / 9;
        var (rec, dOutput) = LossReference.Reconstruction(likelihood, Numerics.ToDouble(target), Numerics.ToDouble(output), batch, features, variance, gradientScale);
        // Row sums: each term has relative error ~1e-6; bound by the sum of |terms| (all terms ≥ 0 for Bernoulli).
        var recScale = Enumerable.Range(0, batch).Select(b => Enumerable.Range(0, features)
            .Sum(j => Math.Abs(LossReference.NegativeLogLikelihood(likelihood, target[b * features + j], output[b * features + j], variance)))).ToArray();

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var targetBuffer = accelerator.Upload(target);
            using var outputBuffer = accelerator.Upload(output);
            using var dOutputBuffer = accelerator.Allocate1D<float>(batch * features);
            using var recBuffer = accelerator.Allocate1D<float>(batch);
            using var recOnlyBuffer = accelerator.Allocate1D<float>(batch);
            var parameters = ReconstructionParameters.For(likelihood, features, variance, gradientScale);
            kernels.ReconstructionLossGradient(likelihood, targetBuffer.View, outputBuffer.View, dOutputBuffer.View, recBuffer.View, batch, features, parameters);
            kernels.ReconstructionLoss(likelihood, targetBuffer.View, outputBuffer.View, recOnlyBuffer.View, batch, features, parameters);
            string label = $"{accelerator.AcceleratorType} {likelihood} reconstruction {batch}×{features}";
            Numerics.AssertClose(label + " value", rec, recBuffer.GetAsArray1D(), 2e-5, 1e-5, recScale);
            Numerics.AssertClose(label + " value (loss-only kernel)", rec, recOnlyBuffer.GetAsArray1D(), 2e-5, 1e-5, recScale);
            Numerics.AssertClose(label + " gradient", dOutput, dOutputBuffer.GetAsArray1D(), ElementRelative, ElementAbsolute);
        }
    }

    [Theory]
    [InlineData(LikelihoodKind.Bernoulli)]
    [InlineData(LikelihoodKind.Gaussian)]
    public void ReconstructionReferenceGradientMatchesFiniteDifferences(LikelihoodKind likelihood)
    {
        const int batch = 2, features = 5;
        var random = new Random(8);
        double[] target = Numerics.ToDouble(Numerics.Uniform(random, batch * features, 0, 1));
        double[] output = Numerics.ToDouble(Numerics.Uniform(random, batch * features, -3, 3));
        const double variance = 0.5, scale = 0.5;
        double Objective(double[] o) =>
            scale * LossReference.Reconstruction(likelihood, target, o, batch, features, variance, scale).reconstructionPerRow.Sum();
        Numerics.AssertClose("dOutput vs finite differences", Numerics.FiniteDifferenceGradient(Objective, output),
            LossReference.Reconstruction(likelihood, target, output, batch, features, variance, scale).dOutput, 1e-6, 1e-7);
    }

    [Theory]
    [InlineData(1, 0.05)]
    [InlineData(7, 0.05)]
    [InlineData(33, 100.0)]
    [InlineData(784, 0.3)]
    [InlineData(314_000, 2.0)]
    public void ClippedAdamStepMatchesReference(int count, double maxNorm)
    {
        var random = new Random(count);
        float[] parameters = Numerics.Uniform(random, count);
        float[] g = Numerics.Uniform(random, count, -0.1, 0.1);
        var (clipped, norm) = ClippingReference.Clip(Numerics.ToDouble(g), maxNorm);
        double[] p = Numerics.ToDouble(parameters), m = new double[count], v = new double[count];
        AdamReference.Step(p, clipped, m, v, 1e-3, 0.9, 0.999, 1e-8, 1);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var pBuffer = accelerator.Upload(parameters);
            using var gBuffer = accelerator.Upload(g);
            using var mBuffer = accelerator.Allocate1D<float>(count);
            using var vBuffer = accelerator.Allocate1D<float>(count);
            using var partials = accelerator.Allocate1D<float>(GradientClipping.Slots);
            using var scale = accelerator.Allocate1D<float>(2);
            mBuffer.MemSetToZero();
            vBuffer.MemSetToZero();
            kernels.ClipGradients(gBuffer.View, partials.View, scale.View, (float)maxNorm);
            kernels.AdamStep(pBuffer.View, gBuffer.View, mBuffer.View, vBuffer.View, new AdamParameters(1e-3f, 0.9f, 0.999f, 1e-8f, 1), scale.View);
            var scaleAndNorm = scale.GetAsArray1D();
            string label = $"{accelerator.AcceleratorType} clip n={count} max={maxNorm}";
            // A float sum of n squares in 256 chunks: rounding grows with the chunk length plus the 256 partials,
            // at most (n/256 + 256)·6e-8 relative (1e-4 at n = 314 000); the norm halves that.
            double normTolerance = (count / 256.0 + 256) * 6e-8 * norm;
            Assert.True(Math.Abs(scaleAndNorm[1] - norm) <= normTolerance, $"{label}: norm {scaleAndNorm[1]} vs {norm}");
            double expectedScale = Math.Min(1, maxNorm / (norm + 1e-6));
            Assert.True(Math.Abs(scaleAndNorm[0] - expectedScale) <= 2 * normTolerance / norm * expectedScale + 1e-7,
                $"{label}: scale {scaleAndNorm[0]} vs {expectedScale}");
            // The first step's second moment is (1−β2)·g², which carries the scale squared; the 3e-5 of the
            // unclipped test (1 − 0.999f) plus twice the scale's error.
            Numerics.AssertClose(label + " v", v, vBuffer.GetAsArray1D(), 3e-5 + 4 * normTolerance / norm, 1e-12);
            Numerics.AssertClose(label + " m", m, mBuffer.GetAsArray1D(), 1e-5 + 2 * normTolerance / norm, 1e-9);
            // Adam's first step moves each parameter by about lr·sign(g) whatever the scale, so the parameters
            // agree as tightly as unclipped.
            Numerics.AssertClose(label + " parameters", p, pBuffer.GetAsArray1D(), 1e-6, 1e-7);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(1001)]
    public void AdamMatchesReferenceOverSeveralSteps(int count)
    {
        var random = new Random(count);
        float[] parameters = Numerics.Uniform(random, count);
        double[] p = Numerics.ToDouble(parameters), m = new double[count], v = new double[count];
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var pBuffer = accelerator.Upload(parameters);
            using var gBuffer = accelerator.Allocate1D<float>(count);
            using var mBuffer = accelerator.Allocate1D<float>(count);
            using var vBuffer = accelerator.Allocate1D<float>(count);
            mBuffer.MemSetToZero();
            vBuffer.MemSetToZero();
            p = Numerics.ToDouble(parameters);
            m = new double[count];
            v = new double[count];
            var gradientRandom = new Random(5);
            for (int step = 1; step <= 4; step++)
            {
                float[] g = Numerics.Uniform(gradientRandom, count, -0.1, 0.1);
                gBuffer.View.CopyFromCPU(g);
                kernels.AdamStep(pBuffer.View, gBuffer.View, mBuffer.View, vBuffer.View, new AdamParameters(1e-3f, 0.9f, 0.999f, 1e-8f, step));
                AdamReference.Step(p, Numerics.ToDouble(g), m, v, 1e-3, 0.9, 0.999, 1e-8, step);
            }
            // Each step moves a parameter by about lr; float rounding of m/√v is ~1e-7 relative of that.
            Numerics.AssertClose($"{accelerator.AcceleratorType} Adam ×4, n={count}", p, pBuffer.GetAsArray1D(), 1e-6, 1e-7);
            // The moments carry the float representation error of the hyperparameters themselves: 1 − 0.999f
            // differs from 0.001 by 1.3e-5 relative, and 1 − 0.9f from 0.1 by 2.4e-7.
            Numerics.AssertClose($"{accelerator.AcceleratorType} Adam m", m, mBuffer.GetAsArray1D(), 1e-5, 1e-9);
            Numerics.AssertClose($"{accelerator.AcceleratorType} Adam v", v, vBuffer.GetAsArray1D(), 3e-5, 1e-12);
        }
    }

    [Theory]
    [InlineData(1, 1, false)]
    [InlineData(7, 33, false)]
    [InlineData(33, 784, true)]
    [InlineData(7, 127, true)]
    public void GatherMatchesReference(int batch, int features, bool binarize)
    {
        const int examples = 50;
        var random = new Random(batch + features);
        var data = new byte[examples * features];
        random.NextBytes(data);
        int[] order = Enumerable.Range(0, examples).OrderBy(_ => random.Next()).ToArray();
        const int first = 9;
        var key = new DrawKey(5, Philox.Streams.Binarize, 3);
        var expected = MinibatchReference.Gather(data, order, first, batch, features, binarize, key);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var dataBuffer = accelerator.Upload(data);
            using var orderBuffer = accelerator.Upload(order);
            using var xBuffer = accelerator.Allocate1D<float>(batch * features);
            kernels.Gather(dataBuffer.View, orderBuffer.View, xBuffer.View, first, batch, features, binarize, key);
            // Grey levels are exact to float rounding; binary values must agree exactly.
            Numerics.AssertClose($"{accelerator.AcceleratorType} gather {batch}×{features} binarize={binarize}", expected, xBuffer.GetAsArray1D(), 1e-7, 0);
            if (binarize)
                Assert.Contains(1f, xBuffer.GetAsArray1D());
        }
    }

    [Fact]
    public void LossTotalsAccumulateAcrossBatches()
    {
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var rec = accelerator.Upload(new[] { 1f, 2f, 3f });
            using var kl = accelerator.Upload(new[] { 0.5f, 0.25f, 0.125f });
            using var totals = accelerator.Allocate1D<double>(3);
            totals.MemSetToZero();
            kernels.AccumulateLoss(rec.View, kl.View, totals.View, 3);
            kernels.AccumulateLoss(rec.View.SubView(0, 2), kl.View.SubView(0, 2), totals.View, 2);
            Assert.Equal([9.0, 1.625, 5.0], totals.GetAsArray1D());
        }
    }
}
