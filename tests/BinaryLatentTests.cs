using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.Darn;
using IlgpuVae.Model.Models.Sbn;

namespace IlgpuVae.Tests;

/// <summary>
/// The sigmoid belief network's binary layer (issue 24): its kernels against their double references at odd shapes,
/// the exact parts of its gradient against finite differences, and the family's whole NVIL estimate of the encoder's
/// gradient, averaged over many draws, against the exact gradient summed over every h of a network small enough.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class BinaryLatentTests(AcceleratorFixture fixture, ITestOutputHelper output)
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
        var rowPriorLogits = Numerics.Uniform(random, rows * units, -4, 4);
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
            using var logQ = accelerator.Allocate1D<float>(rows);
            kernels.BinaryLatentSample(logitBuffer.View, h.View, logQ.View, units, samples, key);
            kernels.BinaryKl(h.View, logQ.View, priorBuffer.View, kl.View, units, priorPerRow: false);
            Assert.Equal(expectedH.Select(value => (float)value), h.GetAsArray1D());
            Numerics.AssertClose(label + " KL per row", expectedKl, kl.GetAsArray1D(), 1e-5, 2e-6 * units);
            // Against a prior of one row of logits per row (p(h1|h2)), and its elementwise gradient.
            using var rowPrior = accelerator.Upload(rowPriorLogits);
            kernels.BinaryKl(h.View, logQ.View, rowPrior.View, kl.View, units, priorPerRow: true);
            Numerics.AssertClose(label + " KL per row, prior per row",
                BinaryLatentReference.Kl(expectedH, Numerics.ToDouble(logQ.GetAsArray1D()), Numerics.ToDouble(rowPriorLogits), units, priorPerRow: true),
                kl.GetAsArray1D(), 1e-5, 2e-6 * units);
            using var dRowPrior = accelerator.Allocate1D<float>(rows * units);
            kernels.BinaryPriorRowGradient(rowPrior.View, h.View, dRowPrior.View, 0.7f / rows);
            Numerics.AssertClose(label + " prior-per-row gradient", BinaryLatentReference.PriorRowGradient(Numerics.ToDouble(rowPriorLogits), expectedH, 0.7 / rows),
                dRowPrior.GetAsArray1D(), 1e-5, 1e-7);
            kernels.BinaryKl(h.View, logQ.View, priorBuffer.View, kl.View, units, priorPerRow: false);
            // DARN's parts: log q of logits a row each, and the sum of each example's rows.
            using var rowDensity = accelerator.Allocate1D<float>(rows);
            kernels.BinaryRowLogDensity(h.View, rowPrior.View, rowDensity.View, units);
            Numerics.AssertClose(label + " log density per row", BinaryLatentReference.RowLogDensity(expectedH, Numerics.ToDouble(rowPriorLogits), units),
                rowDensity.GetAsArray1D(), 1e-5, 2e-6 * units);
            using var summed = accelerator.Allocate1D<float>(batch * units);
            kernels.SumSamples(rowPrior.View, summed.View, units, samples);
            Numerics.AssertClose(label + " sum over samples", BinaryLatentReference.SumSamples(Numerics.ToDouble(rowPriorLogits), units, samples),
                summed.GetAsArray1D(), 1e-6, 1e-6 * samples);

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
    /// scale·Σ_r −log p(h_r) in c (and of a prior with logits per row, in each row's), and the baseline's that of scale·Σ_r (l_r − b − m)² in b (both smooth in what they
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
        var rowPriorLogits = Numerics.ToDouble(Numerics.Uniform(random, rows * units, -3, 3));
        double RowPriorObjective(double[] c) => scale * Enumerable.Range(0, rows * units).Sum(e => -DistributionReference.BernoulliLogDensity(h[e], c[e]));
        Numerics.AssertClose("prior-per-row gradient", Numerics.FiniteDifferenceGradient(RowPriorObjective, rowPriorLogits),
            BinaryLatentReference.PriorRowGradient(rowPriorLogits, h, scale), 1e-6, 1e-8);

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
    /// The family's whole estimate of the encoders' gradients (the reference the kernels are checked against step for
    /// step in VaeTests), with one layer of 3 binary units on 12 pixels, or 3 under 2 more, linear layers, 2 examples,
    /// k = 2 and β = 0.8, the NVIL baseline network untrained (any b(x) keeps the estimate unbiased) and running
    /// moments that are not the signal's. The mean over 20 000 draws must be within 4.5 standard errors of the exact
    /// gradient of the loss, E_q[rec + β·KL] averaged over examples, for every parameter of q(h1|x) and q(h2|h1):
    /// summed over every (h1, h2) of each example, ∂/∂a1 = E_q[(rec + β·KL)·(h1 − σ(a1))] and ∂/∂a2(h1) =
    /// q(h1)·E_q(h2|h1)[(rec + β·KL)·(h2 − σ(a2))] (each log q's own derivative averages to zero), back through each
    /// encoder's layer (the second at its input h1). The estimate divides by max(1, √v), so the exact value is too.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void TheFamilysEncoderGradientsAreUnbiased(int stochasticLayers)
    {
        const int batch = 2, pixels = 12;
        var config = new VaeConfig
        {
            InputSize = pixels, Hidden = [], Latent = 3, Hidden2 = [], Latent2 = 2, StochasticLayers = stochasticLayers, Model = ModelKind.Sbn,
            Samples = 2, Beta = 0.8,
        };
        int units = config.Latent, units2 = stochasticLayers == 2 ? config.Latent2 : 0;
        var layout = new ParameterLayout(config);
        var parameters = Numerics.ToDouble(layout.Initialise(4));
        int scoreEnd = layout.Layers[layout.Encoder2End - 1].End;
        // Larger weights than the initialisation's in the encoders and the prior network, so the units are far from
        // fair coins and h2 matters to the loss.
        for (int i = 0; i < layout.Layers[layout.DecoderStart - 1].End; i++)
            parameters[i] *= 6;
        int moments = layout.Layers[Nvil.MomentsLayer(layout)].BiasOffset;
        (parameters[moments], parameters[moments + 1]) = (-20, 9);
        var images = VaeTests.SyntheticImages(batch, 3, 4, 7);
        var x = MinibatchReference.Gather(images.Images, [0, 1], 0, batch, pixels, false, default);
        var marked = ReferenceVae.LossAndGradient(config, parameters, x, ReferenceVae.Epsilon(config, 1, 1, batch), batch).ScoreFunction!;
        Assert.True(marked(scoreEnd - 1) && !marked(scoreEnd));

        // The exact gradient: every (h1, h2) of each example, its rec + β·KL from the reference model at those units
        // (uniforms of 0 or 1 pick a unit's 1 or 0 whatever σ(a)).
        var single = config with { Samples = 1 };
        var layers = new ReferenceLayers(config, parameters, training: false);
        var logits = layers.Run(0, layout.EncoderLayerCount, x, batch);
        var dLogits = new double[batch * units];
        var exact = new double[layout.Count];
        double normalisation = Math.Max(1, Math.Sqrt(parameters[moments + 1]));
        static double[] Bits(int state, int count) => Enumerable.Range(0, count).Select(j => (double)((state >> j) & 1)).ToArray();
        static double LogQ(double[] bits, double[] logits, int offset) =>
            bits.Select((bit, j) => DistributionReference.BernoulliLogDensity(bit, logits[offset + j])).Sum();
        for (int b = 0; b < batch; b++)
            for (int state1 = 0; state1 < 1 << units; state1++)
            {
                var h1 = Bits(state1, units);
                double logQ1 = LogQ(h1, logits, b * units);
                var logits2 = stochasticLayers == 2 ? layers.Run(layout.EncoderLayerCount, layout.Encoder2End, h1, 1) : [];
                var dLogits2 = new double[units2];
                for (int state2 = 0; state2 < 1 << units2; state2++)
                {
                    var h2 = Bits(state2, units2);
                    double q = Math.Exp(logQ1 + LogQ(h2, logits2, 0));
                    var uniforms = h1.Concat(h2).Select(bit => 1 - bit).ToArray();
                    double loss = ReferenceVae.LossAndGradient(single, parameters, x[(b * pixels)..((b + 1) * pixels)], uniforms, 1, training: false).Loss;
                    for (int j = 0; j < units; j++)
                        dLogits[b * units + j] += q * loss * (h1[j] - BinaryLatentReference.Sigmoid(logits[b * units + j])) / batch / normalisation;
                    for (int j = 0; j < units2; j++)
                        dLogits2[j] += q * loss * (h2[j] - BinaryLatentReference.Sigmoid(logits2[j])) / batch / normalisation;
                }
                if (stochasticLayers == 1)
                    continue;
                // q(h2|h1)'s parameters at this h1 (the backward pass writes, so add its share by hand).
                var share = new double[layout.Count];
                layers.Backward(layout.EncoderLayerCount, layout.Encoder2End, dLogits2, 1, share);
                for (int i = 0; i < share.Length; i++)
                    exact[i] += share[i];
            }
        var first = new double[layout.Count];
        layers.Run(0, layout.EncoderLayerCount, x, batch);
        layers.Backward(0, layout.EncoderLayerCount, dLogits, batch, first);
        for (int i = 0; i < layout.Layers[layout.EncoderLayerCount - 1].End; i++)
            exact[i] += first[i];

        int second = layout.Layers[layout.EncoderLayerCount - 1].End;
        AssertUnbiased(config, parameters, x, batch, exact, Enumerable.Range(0, scoreEnd).ToArray(), $"{stochasticLayers} layers",
            out _, out double largestError2, secondFrom: second);
        if (stochasticLayers == 2)
            Assert.True(exact.Skip(second).Take(scoreEnd - second).Max(Math.Abs) > 8 * largestError2,
                $"q(h2|h1)'s exact gradient (largest {exact.Skip(second).Take(scoreEnd - second).Max(Math.Abs)}) is too small to test");
    }

    /// <summary>
    /// DARN's estimate of the gradients of its encoder (a linear context c(x)) and of q's autoregressive U, as the
    /// test above: 3 units on 12 pixels, 2 examples, k = 2, β = 0.8, against the exact gradient summed over every h,
    /// with ∂ log q/∂c_j = h_j − σ(a_j) and ∂ log q/∂U_jk = (h_j − σ(a_j))·h_k for k &lt; j, a_j = c_j + Σ_{k&lt;j} U_jk h_k.
    /// </summary>
    [Fact]
    public void DarnsEncoderGradientIsUnbiased()
    {
        var problem = DarnProblem(DarnEstimatorKind.Nvil, decoderReadsH: true);
        // NVIL's variance normalisation divides the estimate by max(1, √v) of the running moments.
        var exact = problem.Exact.Select(value => value / problem.Normalisation).ToArray();
        var marked = ReferenceVae.LossAndGradient(problem.Config, problem.Parameters, problem.X, ReferenceVae.Epsilon(problem.Config, 1, 1, 2), 2).ScoreFunction!;
        Assert.All(problem.Indices, index => Assert.True(marked(index)));
        AssertUnbiased(problem.Config, problem.Parameters, problem.X, 2, exact, problem.Indices, "DARN", out _, out double largestErrorOfU, secondFrom: problem.UOffset);
        double largestOfU = exact.Skip(problem.UOffset).Take(9).Max(Math.Abs);
        Assert.True(largestOfU > 8 * largestErrorOfU, $"U's exact gradient (largest {largestOfU}) is too small against its standard errors (largest {largestErrorOfU}) to test");
    }

    /// <summary>
    /// Stacked DARN's estimates, as the tests above: 3 units h1 over 2 units h2 on 12 pixels, 2 examples, k = 2, β = 0.8,
    /// against the exact gradient summed over every (h1, h2) — 32 states per example — for the parameters of q(h1|x)'s
    /// context and U1 and of q(h2|h1)'s context network and U2 (∂ log q/∂U2_jk = (h2_j − σ(a2_j))·h2_k).
    /// </summary>
    [Fact]
    public void StackedDarnsEncoderGradientsAreUnbiased()
    {
        const int batch = 2, pixels = 12, units = 3, units2 = 3;
        var config = new VaeConfig
        {
            InputSize = pixels, Hidden = [], Latent = units, Hidden2 = [], Latent2 = units2, StochasticLayers = 2, Model = ModelKind.Darn, Samples = 2, Beta = 0.8,
        };
        var layout = new ParameterLayout(config);
        var parameters = Numerics.ToDouble(layout.Initialise(4));
        var u1 = layout.Layers[DarnFamily.PriorLayer(layout) + 2];
        var u2 = layout.Layers[DarnFamily.Encoder2WeightsLayer(layout)];
        // Larger weights than the initialisation's in q(h1|x), U1 and the prior network, so that h1's units are far from
        // fair coins and h2 matters to the loss, but q(h2|h1) left near even odds with a moderate U2, so that its
        // gradients are large enough to test; a decoder that reads h1 strongly.
        for (int i = 0; i < layout.Layers[layout.DecoderStart - 1].End; i++)
            parameters[i] *= i < layout.Layers[layout.EncoderLayerCount - 1].End || i >= layout.Layers[layout.Encoder2End - 1].End ? 6 : 1;
        foreach (var (masked, scale) in new[] { (u1, 8.0), (u2, 3.0) })
            for (int i = masked.WeightOffset; i < masked.End; i++)
                parameters[i] *= scale;
        for (int i = layout.Layers[layout.DecoderStart].WeightOffset; i < layout.Layers[layout.DecoderEnd - 1].End; i++)
            parameters[i] *= 4;
        int moments = layout.Layers[Nvil.MomentsLayer(layout)].BiasOffset;
        (parameters[moments], parameters[moments + 1]) = (-20, 9);
        double normalisation = Math.Max(1, Math.Sqrt(parameters[moments + 1]));
        var images = VaeTests.SyntheticImages(batch, 3, 4, 7);
        var x = MinibatchReference.Gather(images.Images, [0, 1], 0, batch, pixels, false, default);

        var single = config with { Samples = 1 };
        var layers = new ReferenceLayers(config, parameters, training: false);
        var context = layers.Run(0, layout.EncoderLayerCount, x, batch);
        double[] Slice(DenseSlice layer) => parameters[layer.WeightOffset..(layer.WeightOffset + layer.WeightCount)];
        static double[] Bits(int state, int count) => Enumerable.Range(0, count).Select(j => (double)((state >> j) & 1)).ToArray();
        var dContext = new double[batch * units];
        var exact = new double[layout.Count];
        for (int b = 0; b < batch; b++)
            for (int state1 = 0; state1 < 1 << units; state1++)
            {
                var h1 = Bits(state1, units);
                var logits1 = AutoregressiveReference.Logits(context[(b * units)..((b + 1) * units)], Slice(u1), h1, 1, units);
                double logQ1 = BinaryLatentReference.RowLogDensity(h1, logits1, units)[0];
                var context2 = layers.Run(layout.EncoderLayerCount, layout.Encoder2End, h1, 1);
                var dContext2 = new double[units2];
                for (int state2 = 0; state2 < 1 << units2; state2++)
                {
                    var h2 = Bits(state2, units2);
                    var logits2 = AutoregressiveReference.Logits(context2, Slice(u2), h2, 1, units2);
                    double q = Math.Exp(logQ1 + BinaryLatentReference.RowLogDensity(h2, logits2, units2)[0]);
                    var uniforms = h1.Concat(h2).Select(bit => 1 - bit).ToArray();
                    double loss = ReferenceVae.LossAndGradient(single, parameters, x[(b * pixels)..((b + 1) * pixels)], uniforms, 1, training: false).Loss;
                    double weight = q * loss / batch / normalisation;
                    for (int j = 0; j < units; j++)
                    {
                        double score = weight * (h1[j] - BinaryLatentReference.Sigmoid(logits1[j]));
                        dContext[b * units + j] += score;
                        for (int k = 0; k < j; k++)
                            exact[u1.WeightOffset + j * units + k] += score * h1[k];
                    }
                    for (int j = 0; j < units2; j++)
                    {
                        double score = weight * (h2[j] - BinaryLatentReference.Sigmoid(logits2[j]));
                        dContext2[j] += score;
                        for (int k = 0; k < j; k++)
                            exact[u2.WeightOffset + j * units2 + k] += score * h2[k];
                    }
                }
                // q(h2|h1)'s context network at this h1 (the backward pass writes, so add its share by hand).
                var share = new double[layout.Count];
                layers.Backward(layout.EncoderLayerCount, layout.Encoder2End, dContext2, 1, share);
                for (int i = 0; i < share.Length; i++)
                    exact[i] += share[i];
            }
        var first = new double[layout.Count];
        layers.Run(0, layout.EncoderLayerCount, x, batch);
        layers.Backward(0, layout.EncoderLayerCount, dContext, batch, first);
        for (int i = 0; i < layout.Layers[layout.EncoderLayerCount - 1].End; i++)
            exact[i] += first[i];

        int second = layout.Layers[layout.EncoderLayerCount - 1].End, encoderEnd = layout.Layers[layout.Encoder2End - 1].End;
        var indices = Enumerable.Range(0, encoderEnd).Concat(Enumerable.Range(u1.WeightOffset, units * units)).Concat(Enumerable.Range(u2.WeightOffset, units2 * units2)).ToArray();
        var marked = ReferenceVae.LossAndGradient(config, parameters, x, ReferenceVae.Epsilon(config, 1, 1, batch), batch).ScoreFunction!;
        Assert.All(indices, index => Assert.True(marked(index), $"parameter {index} is not marked as a score-function estimate"));
        AssertUnbiased(config, parameters, x, batch, exact, indices, "stacked DARN", out double largestError, out double largestErrorOfU2, secondFrom: u2.WeightOffset);
        // q(h2|h1)'s parts each have an exact gradient far enough from 0 to tell a wrong estimate apart.
        double largestOfContext2 = exact.Skip(second).Take(encoderEnd - second).Max(Math.Abs), largestOfU2 = exact.Skip(u2.WeightOffset).Take(units2 * units2).Max(Math.Abs);
        output.WriteLine($"largest exact gradient of q(h2|h1)'s context network {largestOfContext2:G4}, of U2 {largestOfU2:G4}; largest standard errors {largestError:G4}, of U2 {largestErrorOfU2:G4}");
        Assert.True(largestOfContext2 > 8 * largestError, $"q(h2|h1)'s context network's exact gradient (largest {largestOfContext2}) is too small against the standard errors (largest {largestError}) to test");
        Assert.True(largestOfU2 > 8 * largestErrorOfU2, $"U2's exact gradient (largest {largestOfU2}) is too small against its standard errors (largest {largestErrorOfU2}) to test");
    }

    /// <summary>
    /// DARN's Taylor-expansion baseline on the same problem: a biased estimate, so its mean is held not to the exact
    /// gradient but near it — within 0.15 of the exact gradient's norm, and pointing the same way (cosine above 0.98) —
    /// and its variance, summed over the encoder's and U's parameters, below a tenth of NVIL's (NVIL's estimate taken
    /// before its variance normalisation). Also with a decoder that ignores h, where the gradient is the KL term's
    /// alone (which the expansion gets exactly for independent units; q's and p's autoregressive weights couple them).
    /// The bias, the cosine and both variances are written to the test output (docs/MODELS.md).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DarnsTaylorEstimateIsNearTheGradientWithLittleVariance(bool decoderReadsH)
    {
        const int draws = 20_000;
        var taylor = DarnProblem(DarnEstimatorKind.Taylor, decoderReadsH);
        var nvil = DarnProblem(DarnEstimatorKind.Nvil, decoderReadsH);
        (double[] Mean, double Variance) Moments(VaeConfig config, double[] parameters, double[] x, double scale)
        {
            var sum = new double[taylor.Indices.Length];
            var squares = new double[taylor.Indices.Length];
            for (int draw = 0; draw < draws; draw++)
            {
                var gradient = ReferenceVae.LossAndGradient(config, parameters, x, ReferenceVae.Epsilon(config, 11, draw, 2), 2).Gradient;
                for (int n = 0; n < sum.Length; n++)
                {
                    double value = gradient[taylor.Indices[n]] * scale;
                    sum[n] += value;
                    squares[n] += value * value;
                }
            }
            var mean = sum.Select(value => value / draws).ToArray();
            return (mean, Enumerable.Range(0, sum.Length).Sum(n => (squares[n] - draws * mean[n] * mean[n]) / (draws - 1)));
        }
        var (taylorMean, taylorVariance) = Moments(taylor.Config, taylor.Parameters, taylor.X, 1);
        var (nvilMean, nvilVariance) = Moments(nvil.Config, nvil.Parameters, nvil.X, nvil.Normalisation);
        var exact = taylor.Indices.Select(index => taylor.Exact[index]).ToArray();
        double norm = Math.Sqrt(exact.Sum(value => value * value));
        double bias = Math.Sqrt(taylorMean.Zip(exact, (a, b) => (a - b) * (a - b)).Sum()) / norm;
        double cosine = taylorMean.Zip(exact, (a, b) => a * b).Sum() / norm / Math.Sqrt(taylorMean.Sum(value => value * value));
        double nvilBias = Math.Sqrt(nvilMean.Zip(exact, (a, b) => (a - b) * (a - b)).Sum()) / norm;
        output.WriteLine($"decoder reads h: {decoderReadsH}; Taylor: bias {bias:F3} of the exact gradient's norm, cosine {cosine:F3}, summed variance {taylorVariance:G4}; NVIL: bias {nvilBias:F3}, summed variance {nvilVariance:G4}");
        Assert.True(bias < 0.15 && cosine > 0.98, $"the Taylor estimate's mean is {bias:F3} of the norm from the exact gradient, cosine {cosine:F3}");
        Assert.True(taylorVariance < 0.1 * nvilVariance, $"the Taylor estimate's summed variance {taylorVariance} is not below a tenth of NVIL's {nvilVariance}");
    }

    private sealed record DarnSmallProblem(VaeConfig Config, double[] Parameters, double[] X, double[] Exact, int[] Indices, double Normalisation, int UOffset);

    /// <summary>3 DARN units on 12 pixels, 2 examples, k = 2, β = 0.8, with larger weights than the initialisation's
    /// (or a decoder that ignores h: its weights 0), and the exact gradient of the mean loss in q's encoder and U,
    /// summed over every h (without NVIL's normalisation).</summary>
    private static DarnSmallProblem DarnProblem(DarnEstimatorKind estimator, bool decoderReadsH)
    {
        const int batch = 2, pixels = 12;
        var config = new VaeConfig { InputSize = pixels, Hidden = [], Latent = 3, Model = ModelKind.Darn, Samples = 2, Beta = 0.8, DarnEstimator = estimator };
        int units = config.Latent;
        var layout = new ParameterLayout(config);
        var parameters = Numerics.ToDouble(layout.Initialise(4));
        var encoderWeights = layout.Layers[DarnFamily.PriorLayer(layout) + 2];
        // Larger encoder and autoregressive weights than the initialisation's, so the units are far from fair coins.
        for (int i = 0; i < layout.Layers[0].End; i++)
            parameters[i] *= 6;
        for (int i = encoderWeights.WeightOffset; i < encoderWeights.End; i++)
            parameters[i] *= 8;
        // And a decoder that reads h strongly, so that the loss tells the units' states apart (or not at all).
        var decoder = layout.Layers[layout.DecoderStart];
        for (int i = decoder.WeightOffset; i < layout.Layers[layout.DecoderEnd - 1].End; i++)
            parameters[i] *= decoderReadsH ? 4 : i < decoder.BiasOffset ? 0 : 1;
        int moments = layout.Layers[Nvil.MomentsLayer(layout)].BiasOffset;
        (parameters[moments], parameters[moments + 1]) = (-20, 9);
        var images = VaeTests.SyntheticImages(batch, 3, 4, 7);
        var x = MinibatchReference.Gather(images.Images, [0, 1], 0, batch, pixels, false, default);

        var single = config with { Samples = 1 };
        var layers = new ReferenceLayers(config, parameters, training: false);
        var context = layers.Run(0, layout.EncoderLayerCount, x, batch);
        var dContext = new double[batch * units];
        var exact = new double[layout.Count];
        for (int b = 0; b < batch; b++)
            for (int state = 0; state < 1 << units; state++)
            {
                var h = Enumerable.Range(0, units).Select(j => (double)((state >> j) & 1)).ToArray();
                var logits = AutoregressiveReference.Logits(context[(b * units)..((b + 1) * units)], parameters[encoderWeights.WeightOffset..(encoderWeights.WeightOffset + units * units)], h, 1, units);
                double q = Math.Exp(BinaryLatentReference.RowLogDensity(h, logits, units)[0]);
                double loss = ReferenceVae.LossAndGradient(single, parameters, x[(b * pixels)..((b + 1) * pixels)], h.Select(bit => 1 - bit).ToArray(), 1, training: false).Loss;
                for (int j = 0; j < units; j++)
                {
                    double score = q * loss * (h[j] - BinaryLatentReference.Sigmoid(logits[j])) / batch;
                    dContext[b * units + j] += score;
                    for (int k = 0; k < j; k++)
                        exact[encoderWeights.WeightOffset + j * units + k] += score * h[k];
                }
            }
        var first = new double[layout.Count];
        layers.Backward(0, layout.EncoderLayerCount, dContext, batch, first);
        for (int i = 0; i < layout.Layers[0].End; i++)
            exact[i] = first[i];
        var indices = Enumerable.Range(0, layout.Layers[0].End).Concat(Enumerable.Range(encoderWeights.WeightOffset, units * units)).ToArray();
        return new DarnSmallProblem(config, parameters, x, exact, indices, Math.Max(1, Math.Sqrt(parameters[moments + 1])), encoderWeights.WeightOffset);
    }

    /// <summary>The reference's estimate at <paramref name="indices"/>, averaged over 20 000 draws, within 4.5
    /// standard errors of <paramref name="exact"/> everywhere, and the exact gradient at least 8 of them from zero
    /// somewhere (a test that could not tell a wrong estimate from a right one would pass anything: at 8 standard
    /// errors, an estimate of half the largest component lies 4 of them away). The largest standard error, and the
    /// largest from <paramref name="secondFrom"/> on.</summary>
    /// <summary>The reference's estimate over 20 000 draws (<paramref name="draws"/>'s draws, or the model's own of
    /// seed 11, step = draw) against <paramref name="exact"/> at <paramref name="indices"/>: each mean within 4.5
    /// standard errors (and 1e-8, the exact value's own rounding where it comes from differences), and the exact
    /// gradient large enough against the errors to test. Returns the summed variance of the draws too.</summary>
    internal static double AssertUnbiased(VaeConfig config, double[] parameters, double[] x, int batch, double[] exact, int[] indices, string label,
        out double largestError, out double largestErrorFrom, int secondFrom = int.MaxValue, Func<int, double[]>? draws = null)
    {
        const int count = 20_000;
        var sum = new double[indices.Length];
        var squares = new double[indices.Length];
        double summedVariance = 0;
        for (int draw = 0; draw < count; draw++)
        {
            var epsilon = draws is null ? ReferenceVae.Epsilon(config, 11, draw, batch) : draws(draw);
            var gradient = ReferenceVae.LossAndGradient(config, parameters, x, epsilon, batch).Gradient;
            for (int n = 0; n < indices.Length; n++)
            {
                sum[n] += gradient[indices[n]];
                squares[n] += gradient[indices[n]] * gradient[indices[n]];
            }
        }
        (largestError, largestErrorFrom) = (0, 0);
        for (int n = 0; n < indices.Length; n++)
        {
            double mean = sum[n] / count, variance = Math.Max(0, (squares[n] - count * mean * mean) / (count - 1));
            double error = Math.Sqrt(variance / count), expected = exact[indices[n]];
            summedVariance += variance;
            largestError = Math.Max(largestError, error);
            if (indices[n] >= secondFrom)
                largestErrorFrom = Math.Max(largestErrorFrom, error);
            Assert.True(Math.Abs(mean - expected) <= 4.5 * error + 1e-8, $"{label}, parameter {indices[n]}: estimate {mean} ± {error}, exact {expected}");
        }
        double largestExact = indices.Max(index => Math.Abs(exact[index]));
        Assert.True(largestExact > 8 * largestError, $"{label}: the exact gradient (largest {largestExact}) is too small against the standard errors (largest {largestError}) to test");
        return summedVariance;
    }
}
