using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

/// <summary>The mutual autoencoder: its kernels against the double reference, the gradient of −mean log r against
/// finite differences, the REINFORCE estimator's mean against the exact gradient of a model small enough to sum,
/// and the whole model's gradient on both sides of M for both decoders.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class MutualAutoencoderTests(AcceleratorFixture fixture)
{
    /// <summary>Central differences of −mean log r by r's stats: 1e-6 relative (double).</summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 4)]
    [InlineData(5, 7)]
    public void NegativeLogDensityGradientMatchesFiniteDifferences(int rows, int latent)
    {
        var random = new Random(rows * 3 + latent);
        var stats = Numerics.ToDouble(Numerics.Uniform(random, rows * 2 * latent));
        var z = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        double Objective(double[] values) => -MutualInformationReference.LogDensity(values, z, rows, latent).Average();
        Numerics.AssertClose($"−mean log r gradient {rows}×{latent}", Numerics.FiniteDifferenceGradient(Objective, stats),
            MutualInformationReference.NegativeLogDensityGradient(stats, z, rows, latent), 1e-6, 1e-7);
    }

    /// <summary>Float against double: the draws exactly where they do not straddle a threshold (Bernoulli) and to
    /// 1e-6 (Gaussian), log r and Î within 5e-5 of each value (K-term sums), the gradients within 5e-5 of the largest.</summary>
    [Theory]
    [InlineData(1, 1, 1, true)]
    [InlineData(7, 3, 12, true)]
    [InlineData(33, 20, 7, false)]
    [InlineData(6, 5, 33, false)]
    public void KernelsMatchTheReference(int rows, int latent, int features, bool bernoulli)
    {
        var random = new Random(rows + latent * 5 + features);
        float[] output = Numerics.Uniform(random, rows * features, -2, 2);
        float[] rStats = Numerics.Uniform(random, rows * 2 * latent);
        float[] z = Numerics.Uniform(random, rows * latent, -2, 2);
        float[] dX = Numerics.Uniform(random, rows * features);
        const float noiseScale = 0.6f, target = 3f, weight = 2.5f;
        var key = new DrawKey(9, Philox.Streams.Reparameterize + Philox.Streams.MutualObservationOffset, 4);
        var x = output.Select((value, element) => bernoulli
            ? (Philox.Uniform(key.Seed, key.Stream, key.Step, element) < 1 / (1 + Math.Exp(-value)) ? 1.0 : 0.0)
            : value + noiseScale * Philox.NormalDouble(key.Seed, key.Stream, key.Step, element)).ToArray();
        var logDensity = MutualInformationReference.LogDensity(Numerics.ToDouble(rStats), Numerics.ToDouble(z), rows, latent);
        var (estimate, factor) = MutualInformationReference.Step(logDensity, latent, target, weight);
        var dStats = MutualInformationReference.NegativeLogDensityGradient(Numerics.ToDouble(rStats), Numerics.ToDouble(z), rows, latent);
        var dOutput = bernoulli
            ? MutualInformationReference.Reinforce(Numerics.ToDouble(output), x, logDensity, factor)
            : dX.Select(value => -factor * value).ToArray();
        var shape = new MutualShape(rows, latent, target, weight);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var outputBuffer = accelerator.Upload(output);
            using var xBuffer = accelerator.Allocate1D<float>(rows * features);
            using var rStatsBuffer = accelerator.Upload(rStats);
            using var zBuffer = accelerator.Upload(z);
            using var logDensityBuffer = accelerator.Allocate1D<float>(rows);
            using var information = accelerator.Allocate1D<float>(3);
            using var dStatsBuffer = accelerator.Allocate1D<float>(rows * 2 * latent);
            using var dXBuffer = accelerator.Upload(dX);
            using var dOutputBuffer = accelerator.Allocate1D<float>(rows * features);
            kernels.SampleObservations(outputBuffer.View, xBuffer.View, bernoulli, noiseScale, key);
            kernels.GaussianLogDensityRows(rStatsBuffer.View, zBuffer.View, logDensityBuffer.View, rows, latent);
            kernels.MutualInformationStep(logDensityBuffer.View, information.View, shape);
            kernels.NegativeLogDensityGradient(rStatsBuffer.View, zBuffer.View, dStatsBuffer.View, rows, latent);
            if (bernoulli)
                kernels.MutualReinforceGradient(outputBuffer.View, xBuffer.View, logDensityBuffer.View, information.View, dOutputBuffer.View, shape);
            else
                kernels.MutualPathwiseGradient(dXBuffer.View, information.View, dOutputBuffer.View);
            string label = $"{accelerator.AcceleratorType} mutual information {rows}×{latent}×{features} {(bernoulli ? "Bernoulli" : "Gaussian")}";
            Numerics.AssertClose(label + " x", x, xBuffer.GetAsArray1D(), 1e-6, 1e-6);
            Numerics.AssertClose(label + " log r", logDensity, logDensityBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            var info = information.GetAsArray1D();
            Numerics.AssertClose(label + " Î, C·sign, Σ log r", [estimate, factor, logDensity.Sum()], info, 5e-5, 5e-5 * latent * rows);
            Numerics.AssertClose(label + " d(−mean log r)", dStats, dStatsBuffer.GetAsArray1D(), 5e-5, 5e-5 * dStats.Max(Math.Abs));
            Numerics.AssertClose(label + " d/d output", dOutput, dOutputBuffer.GetAsArray1D(), 5e-5, 5e-5 * dOutput.Max(Math.Abs));
        }
    }

    /// <summary>
    /// REINFORCE with the leave-one-out baseline is unbiased: three Bernoulli pixels with fixed logits (one z) and a
    /// fixed score f(x) in place of log r, so E_x[f(x)·∇_logits log p(x)] = Σ_x p(x) f(x)(x − sigmoid(logits)) can be
    /// summed over the 8 images exactly. 4096 draws through the kernels estimate it; each component's mean must lie
    /// within 4 standard errors of the exact value (the per-draw spread estimated from the same draws).
    /// </summary>
    [Fact]
    public void ReinforceEstimateIsUnbiasedOnAModelSmallEnoughToSum()
    {
        const int rows = 4096, features = 3;
        double[] logits = [0.7, -1.2, 0.1];
        double Score(int image) => new[] { -3.0, -1.5, 0.5, -2.0, 1.0, -0.5, 2.0, -4.0 }[image];
        double Sigmoid(double value) => 1 / (1 + Math.Exp(-value));
        var exact = new double[features];
        for (int image = 0; image < 8; image++)
        {
            double probability = 1;
            for (int d = 0; d < features; d++)
                probability *= ((image >> d) & 1) == 1 ? Sigmoid(logits[d]) : 1 - Sigmoid(logits[d]);
            for (int d = 0; d < features; d++)
                exact[d] += probability * Score(image) * (((image >> d) & 1) - Sigmoid(logits[d]));
        }
        var kernels = fixture.KernelSets[0];
        var accelerator = kernels.Accelerator;
        var output = Enumerable.Range(0, rows * features).Select(element => (float)logits[element % features]).ToArray();
        using var outputBuffer = accelerator.Upload(output);
        using var xBuffer = accelerator.Allocate1D<float>(rows * features);
        kernels.SampleObservations(outputBuffer.View, xBuffer.View, bernoulli: true, 0f, new DrawKey(3, Philox.Streams.Reparameterize, 1));
        var x = xBuffer.GetAsArray1D();
        var scores = Enumerable.Range(0, rows).Select(row =>
            (float)Score(Enumerable.Range(0, features).Sum(d => (int)x[row * features + d] << d))).ToArray();
        using var scoreBuffer = accelerator.Upload(scores);
        using var information = accelerator.Allocate1D<float>(3);
        using var dOutput = accelerator.Allocate1D<float>(rows * features);
        // Weight 1 and a target far below Î make C·sign(Î − M) = 1, so the kernel's rows sum to the estimate.
        var shape = new MutualShape(rows, 1, -1e6f, 1f);
        kernels.MutualInformationStep(scoreBuffer.View, information.View, shape);
        kernels.MutualReinforceGradient(outputBuffer.View, xBuffer.View, scoreBuffer.View, information.View, dOutput.View, shape);
        var perRow = dOutput.GetAsArray1D();
        for (int d = 0; d < features; d++)
        {
            // Row i's term is (1/B)·(its own estimate): their sum is the mean of the per-draw estimates.
            var draws = Enumerable.Range(0, rows).Select(row => rows * (double)perRow[row * features + d]).ToArray();
            double mean = draws.Average(), spread = Math.Sqrt(draws.Sum(value => (value - mean) * (value - mean)) / (rows - 1));
            double standardError = spread / Math.Sqrt(rows);
            Assert.True(Math.Abs(mean - exact[d]) <= 4 * standardError,
                $"pixel {d}: REINFORCE mean {mean:F4} against the exact {exact[d]:F4} (standard error {standardError:F4})");
        }
    }

    /// <summary>The whole step's gradient on the device against the reference, for both decoders and with M below
    /// and above the model's Î at the start, so that sign(Î − M) takes both values; for the Gaussian decoder also the
    /// reference against finite differences of each parameter's own objective.</summary>
    [Theory]
    [InlineData(LikelihoodKind.Bernoulli, true)]
    [InlineData(LikelihoodKind.Bernoulli, false)]
    [InlineData(LikelihoodKind.Gaussian, true)]
    [InlineData(LikelihoodKind.Gaussian, false)]
    public void GradientMatchesTheReferenceOnBothSidesOfTheTarget(LikelihoodKind likelihood, bool targetBelow)
    {
        const int batch = 6;
        const ulong seed = 13;
        const long step = 2;
        var baseConfig = new VaeConfig
        {
            InputSize = 12, Hidden = [7], Latent = 3, Model = ModelKind.Mutual, Likelihood = likelihood, GaussianVariance = 0.4, MiWeight = 1,
        };
        var random = new Random(4);
        var pixels = new byte[batch * 12];
        random.NextBytes(pixels);
        var images = new ImageDataset("synthetic", pixels, new byte[batch], batch, 3, 4);
        var x = MinibatchReference.Gather(images.Images, Enumerable.Range(0, batch).ToArray(), 0, batch, 12, false, default);
        var parameters = Numerics.ToDouble(new ParameterLayout(baseConfig).Initialise(seed));
        var epsilon = ReferenceVae.Epsilon(baseConfig, seed, step, batch);
        // At initialisation r knows nothing of z and Î is about 0; descend on every parameter's own objective with M
        // high (r learns to find z in x, the decoder to put it there) until Î is well above 0, so M can lie below it.
        var raising = baseConfig with { MutualInformation = 100, MiWeight = 20 };
        for (int i = 0; i < 100; i++)
        {
            var gradient = ReferenceVae.LossAndGradient(raising, parameters, x, epsilon, batch).Gradient;
            for (int j = 0; j < parameters.Length; j++)
                parameters[j] -= 0.01 * gradient[j];
        }
        // The penalty beyond the ELBO is C·|Î − M|: at M = 100 it is C·(100 − Î).
        double estimate = 100 - ReferenceVae.LossAndGradient(raising, parameters, x, epsilon, batch).Penalty / raising.MiWeight;
        var config = baseConfig with { MutualInformation = Math.Max(0, estimate + (targetBelow ? -0.5 : 0.5)), MiWeight = 3 };
        Assert.True(targetBelow ? estimate > config.MutualInformation : estimate < config.MutualInformation,
            $"Î = {estimate:F3} must lie on the {(targetBelow ? "upper" : "lower")} side of M = {config.MutualInformation:F3}");
        // The device holds the parameters in float: the reference starts from the same rounded values.
        parameters = parameters.Select(value => (double)(float)value).ToArray();
        var reference = ReferenceVae.LossAndGradient(config, parameters, x, epsilon, batch);
        if (likelihood == LikelihoodKind.Gaussian)
        {
            var layout = new ParameterLayout(config);
            var sample = layout.Layers.SelectMany(layer => new[] { layer.WeightOffset, layer.End - 1 }).ToArray();
            var finiteDifferences = sample.Select(index =>
            {
                double Objective(double value)
                {
                    var probe = (double[])parameters.Clone();
                    probe[index] = value;
                    return ReferenceVae.LossAndGradient(config, probe, x, epsilon, batch).ObjectiveOf(index);
                }
                return (Objective(parameters[index] + 1e-6) - Objective(parameters[index] - 1e-6)) / 2e-6;
            }).ToArray();
            Numerics.AssertClose($"Gaussian mutual autoencoder, M {(targetBelow ? "below" : "above")} Î: reference vs finite differences",
                finiteDifferences, sample.Select(index => reference.Gradient[index]).ToArray(), 1e-5, 1e-7);
        }
        foreach (var kernels in fixture.KernelSets)
        {
            using var data = new DeviceDataset(kernels.Accelerator, images);
            using var vae = new Vae(kernels, config, batch, seed);
            var floats = parameters.Select(value => (float)value).ToArray();
            vae.RestoreState(floats, new float[floats.Length], new float[floats.Length], 0);
            vae.ComputeGradient(data, 0, batch, step);
            // As the model tests: float through five layers and back, 2e-4 of the largest gradient.
            Numerics.AssertClose($"{kernels.Accelerator.AcceleratorType} {likelihood} mutual autoencoder, M {(targetBelow ? "below" : "above")} Î: kernel gradient vs reference",
                reference.Gradient, vae.GetGradients(), 1e-4, 2e-4 * reference.Gradient.Max(Math.Abs));
        }
    }
}
