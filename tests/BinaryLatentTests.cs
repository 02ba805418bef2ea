using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.Sbn;

namespace IlgpuVae.Tests;

/// <summary>
/// The sigmoid belief network's binary layer (issue 24): its kernels against their double references at odd shapes,
/// the exact parts of its gradient against finite differences, and the family's whole NVIL estimate of the encoder's
/// gradient, averaged over many draws, against the exact gradient summed over every h of a network small enough.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class BinaryLatentTests(AcceleratorFixture fixture)
{
    public static TheoryData<int, int, int> Shapes => new() { { 1, 1, 1 }, { 7, 5, 3 }, { 33, 200, 1 }, { 5, 784, 2 }, { 128, 7, 2 } };

    /// <summary>
    /// The sampler (bits, and KL per row), NVIL's signal (every centring), the posterior and prior gradients. The bits
    /// must be equal: a uniform within float rounding (about 1e-7) of σ(a) could flip one, which these seeds do not
    /// meet. The KL sums K terms of size up to 5 in order: 1e-5 relative plus 2e-6·K absolute. The signal, a few
    /// float operations on values of about 100: 1e-5 relative and 1e-4 absolute. The gradients sum k products:
    /// 1e-5 relative and 1e-6 absolute (the prior's sums B·k terms of size 1: 1e-6·rows absolute).
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void KernelsMatchTheirReferences(int batch, int units, int samples)
    {
        int rows = batch * samples;
        var random = new Random(batch * 7919 + units * 31 + samples);
        var logits = Numerics.Uniform(random, batch * units, -5, 5);
        var priorLogits = Numerics.Uniform(random, units, -3, 3);
        var reconstruction = Numerics.Uniform(random, rows, 60, 160);
        var baseline = Numerics.Uniform(random, batch, -130, -90);
        float[] moments = [-12.5f, 30f];
        var key = new DrawKey(5, Philox.Streams.Reparameterize, 3);
        var uniforms = BinaryLatentReference.Uniforms(key, rows, units, samples);
        var (expectedH, expectedKl) = BinaryLatentReference.Sample(Numerics.ToDouble(logits), Numerics.ToDouble(priorLogits), uniforms, rows, units, samples);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = $"{accelerator.AcceleratorType} B={batch} K={units} k={samples}";
            using var logitBuffer = accelerator.Upload(logits);
            using var priorBuffer = accelerator.Upload(priorLogits);
            using var h = accelerator.Allocate1D<float>(rows * units);
            using var kl = accelerator.Allocate1D<float>(rows);
            kernels.BinaryLatentSample(logitBuffer.View, priorBuffer.View, h.View, kl.View, units, samples, key);
            Assert.Equal(expectedH.Select(value => (float)value), h.GetAsArray1D());
            Numerics.AssertClose(label + " KL per row", expectedKl, kl.GetAsArray1D(), 1e-5, 2e-6 * units);

            using var reconstructionBuffer = accelerator.Upload(reconstruction);
            using var baselineBuffer = accelerator.Upload(baseline);
            using var momentBuffer = accelerator.Upload(moments);
            using var centred = accelerator.Allocate1D<float>(rows);
            using var left = accelerator.Allocate1D<float>(rows);
            using var dBaseline = accelerator.Allocate1D<float>(batch);
            foreach (bool subtractBaseline in new[] { false, true })
                foreach (bool subtractMean in new[] { false, true })
                    foreach (bool normalise in new[] { false, true })
                    {
                        const float beta = 0.7f;
                        kernels.NvilSignal(reconstructionBuffer.View, kl.View, baselineBuffer.View, momentBuffer.View, centred.View, left.View, dBaseline.View,
                            samples, beta, new SignalCentring(subtractBaseline, subtractMean, normalise), 1f / rows);
                        var expected = BinaryLatentReference.NvilSignal(Numerics.ToDouble(reconstruction), Numerics.ToDouble(kl.GetAsArray1D()),
                            Numerics.ToDouble(baseline), moments[0], moments[1], samples, beta, subtractBaseline, subtractMean, normalise, 1.0 / rows);
                        string flags = $"{label} centring {subtractBaseline}/{subtractMean}/{normalise}";
                        Numerics.AssertClose(flags + ": centred", expected.Centred, centred.GetAsArray1D(), 1e-5, 1e-4);
                        Numerics.AssertClose(flags + ": l − b", expected.SignalMinusBaseline, left.GetAsArray1D(), 1e-5, 1e-4);
                        Numerics.AssertClose(flags + ": dBaseline", expected.DBaseline, dBaseline.GetAsArray1D(), 1e-5, 1e-4);
                    }

            using var dLogits = accelerator.Allocate1D<float>(batch * units);
            kernels.BinaryPosteriorGradient(logitBuffer.View, h.View, centred.View, dLogits.View, units, samples, 1f / rows);
            Numerics.AssertClose(label + ": posterior gradient", BinaryLatentReference.PosteriorGradient(Numerics.ToDouble(logits), expectedH,
                Numerics.ToDouble(centred.GetAsArray1D()), units, samples, 1.0 / rows), dLogits.GetAsArray1D(), 1e-5, 1e-6);
            using var dPrior = accelerator.Allocate1D<float>(units);
            kernels.BinaryPriorGradient(priorBuffer.View, h.View, dPrior.View, rows, 0.7f / rows);
            Numerics.AssertClose(label + ": prior gradient", BinaryLatentReference.PriorGradient(Numerics.ToDouble(priorLogits), expectedH, rows, 0.7 / rows),
                dPrior.GetAsArray1D(), 1e-5, 1e-6 * rows);
        }
    }

    /// <summary>The exact parts in double against central differences: the prior's gradient is that of
    /// scale·Σ_r −log p(h_r) in c, and the baseline's that of scale·Σ_r (l_r − b − m)² in b (both smooth in what they
    /// differentiate; 1e-6 relative, 1e-8 absolute for steps of 1e-6).</summary>
    [Fact]
    public void ExactPartsMatchFiniteDifferences()
    {
        const int batch = 4, units = 7, samples = 3, rows = batch * samples;
        var random = new Random(3);
        var priorLogits = Numerics.ToDouble(Numerics.Uniform(random, units, -3, 3));
        var h = Enumerable.Range(0, rows * units).Select(_ => (double)random.Next(2)).ToArray();
        const double scale = 0.7 / rows;
        double PriorObjective(double[] c) =>
            scale * Enumerable.Range(0, rows * units).Sum(e => -DistributionReference.BernoulliLogDensity(h[e], c[e % units]));
        Numerics.AssertClose("prior gradient", Numerics.FiniteDifferenceGradient(PriorObjective, priorLogits),
            BinaryLatentReference.PriorGradient(priorLogits, h, rows, scale), 1e-6, 1e-8);

        var reconstruction = Numerics.ToDouble(Numerics.Uniform(random, rows, 60, 160));
        var kl = Numerics.ToDouble(Numerics.Uniform(random, rows, 0, 20));
        var baseline = Numerics.ToDouble(Numerics.Uniform(random, batch, -130, -90));
        double BaselineObjective(double[] b)
        {
            var (_, left, _) = BinaryLatentReference.NvilSignal(reconstruction, kl, b, -3, 4, samples, 0.9, true, true, true, 1.0 / rows);
            return left.Sum(value => (value + 3) * (value + 3)) / rows;
        }
        var (_, _, dBaseline) = BinaryLatentReference.NvilSignal(reconstruction, kl, baseline, -3, 4, samples, 0.9, true, true, true, 1.0 / rows);
        Numerics.AssertClose("baseline gradient", Numerics.FiniteDifferenceGradient(BaselineObjective, baseline, 1e-4), dBaseline, 1e-6, 1e-6);
    }

    /// <summary>
    /// The family's whole estimate of the encoder's gradient (the reference the kernels are checked against step for
    /// step in VaeTests): a network of 3 binary units on 12 pixels with linear layers, 2 examples, k = 2 and β = 0.8,
    /// its NVIL baseline network untrained (any b(x) keeps the estimate unbiased) and running moments that are not
    /// the signal's. The mean over 20 000 draws of h must be within 4.5 standard errors of the exact gradient of the
    /// loss, E_q[rec + β·KL] averaged over examples, for every encoder parameter: summed over all 8 h per example,
    /// ∂/∂a_bj = E_q[(rec + β·KL)·(h_j − σ(a_bj))] (the KL's own ∂ log q/∂a averages to zero), then back through the
    /// encoder's layer. The estimate divides by max(1, √v), so the exact value is divided by it too.
    /// </summary>
    [Fact]
    public void TheFamilysEncoderGradientIsUnbiased()
    {
        const int batch = 2, draws = 20_000;
        var config = new VaeConfig { InputSize = 12, Hidden = [], Latent = 3, Model = ModelKind.Sbn, Samples = 2, Beta = 0.8 };
        int units = config.Latent, samples = config.Samples, rows = batch * samples;
        var layout = new ParameterLayout(config);
        var parameters = Numerics.ToDouble(layout.Initialise(4));
        // Larger weights than the initialisation's, so the units are far from fair coins.
        for (int i = 0; i < layout.Layers[0].End; i++)
            parameters[i] *= 6;
        int moments = layout.Layers[SbnFamily.MomentsLayer(layout)].BiasOffset;
        (parameters[moments], parameters[moments + 1]) = (-20, 9);
        var images = VaeTests.SyntheticImages(batch, 3, 4, 7);
        var x = MinibatchReference.Gather(images.Images, [0, 1], 0, batch, 12, false, default);
        var reference = ReferenceVae.LossAndGradient(config, parameters, x, ReferenceVae.Epsilon(config, 1, 1, batch), batch).ScoreFunction!;
        int encoderEnd = layout.Layers[layout.EncoderLayerCount - 1].End;
        Assert.True(reference(encoderEnd - 1) && !reference(encoderEnd));

        // The exact gradient: every h of each example, its rec + β·KL from the reference model at fixed h (uniforms
        // of 0 or 1 pick h_j = 1 or 0 whatever σ(a)).
        var layers = new ReferenceLayers(config, parameters, training: false);
        var logits = layers.Run(0, layout.EncoderLayerCount, x, batch);
        var dLogits = new double[batch * units];
        var single = config with { Samples = 1 };
        for (int b = 0; b < batch; b++)
            for (int state = 0; state < 1 << units; state++)
            {
                var bits = Enumerable.Range(0, units).Select(j => (state >> j) & 1).ToArray();
                var uniforms = bits.Select(bit => bit == 1 ? 0.0 : 1.0).ToArray();
                var logWeight = ReferenceVae.LogWeights(single, parameters, x[(b * 12)..((b + 1) * 12)], uniforms, 1)[0];
                // −log w = rec + KL; the loss weighs the KL by β: rec + β·KL = −log w − (1 − β)·KL.
                double logQ = Enumerable.Range(0, units).Sum(j => DistributionReference.BernoulliLogDensity(bits[j], logits[b * units + j]));
                var priorLogits = layers.Run(SbnFamily.PriorLayer(layout), SbnFamily.PriorLayer(layout) + 1, [1.0], 1);
                double logP = Enumerable.Range(0, units).Sum(j => DistributionReference.BernoulliLogDensity(bits[j], priorLogits[j]));
                double loss = -logWeight - (1 - config.Beta) * (logQ - logP);
                for (int j = 0; j < units; j++)
                    dLogits[b * units + j] += Math.Exp(logQ) * loss * (bits[j] - BinaryLatentReference.Sigmoid(logits[b * units + j])) / batch;
            }
        double normalisation = Math.Max(1, Math.Sqrt(parameters[moments + 1]));
        var exact = new double[layout.Count];
        layers.Backward(0, layout.EncoderLayerCount, dLogits.Select(value => value / normalisation).ToArray(), batch, exact);

        var sum = new double[encoderEnd];
        var squares = new double[encoderEnd];
        for (int draw = 0; draw < draws; draw++)
        {
            var gradient = ReferenceVae.LossAndGradient(config, parameters, x, ReferenceVae.Epsilon(config, 11, draw, batch), batch).Gradient;
            for (int i = 0; i < encoderEnd; i++)
            {
                sum[i] += gradient[i];
                squares[i] += gradient[i] * gradient[i];
            }
        }
        double largestError = 0;
        for (int i = 0; i < encoderEnd; i++)
        {
            double mean = sum[i] / draws, variance = (squares[i] - draws * mean * mean) / (draws - 1);
            double error = Math.Sqrt(variance / draws);
            largestError = Math.Max(largestError, error);
            Assert.True(Math.Abs(mean - exact[i]) <= 4.5 * error + 1e-12, $"encoder parameter {i}: estimate {mean} ± {error}, exact {exact[i]}");
        }
        // A test that could not tell a wrong estimate from a right one would pass anything.
        Assert.True(exact.Take(encoderEnd).Max(Math.Abs) > 10 * largestError, "the exact gradient is too small against the standard errors to test");
    }
}
