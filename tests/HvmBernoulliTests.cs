using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.Sbn;

namespace IlgpuVae.Tests;

/// <summary>
/// The hierarchical variational model with Bernoulli mean-field latents (issue 24, item 5): its two kernels against
/// their double references at odd shapes, λ's gradient against finite differences at a fixed z, and the family's
/// whole estimate (pathwise through λ, score-function through z's draw) against the exact gradient of a model small
/// enough to sum over every z.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class HvmBernoulliTests(AcceleratorFixture fixture, ITestOutputHelper output)
{
    /// <summary>
    /// At a fixed binary z and centred signal c per row: f(λ) = w·Σ_rows (KL_r − flowKl_r) − scale·Σ_{r,k} s_rk·log q(z_rk|λ_rk)
    /// with each unit's signal s_rk = c_r − β·(log q(z_rk|λ_rk) − log p(z_rk)) held at the given λ (the estimator does not
    /// differentiate its signal), r Gaussian or an inverse flow, by central differences (1e-6 relative, double): the
    /// pathwise part w·(z − σ(λ) − λ) + r's share and the score-function part −scale·s·(z − σ(λ)) together.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(3, 4, 0)]
    [InlineData(2, 7, 2)]
    public void ReferenceLambdaGradientMatchesFiniteDifferences(int rows, int latent, int auxiliarySteps)
    {
        var random = new Random(rows * 11 + latent + auxiliarySteps);
        var shape = new FlowShape(latent, auxiliarySteps, 1);
        var lambda = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var z = Numerics.Uniform(random, rows * latent, -1, 1).Select(value => value > 0 ? 1.0 : 0.0).ToArray();
        var priorLogits = Numerics.ToDouble(Numerics.Uniform(random, latent, -1, 1));
        var rStats = Numerics.ToDouble(Numerics.Uniform(random, rows * shape.StatsWidth));
        var flowKl = Numerics.ToDouble(Numerics.Uniform(random, rows));
        var centred = Numerics.ToDouble(Numerics.Uniform(random, rows, -3, 3));
        const double weight = 0.6, scale = 0.25, beta = 0.7;
        var signal = Enumerable.Range(0, rows * latent).Select(at => centred[at / latent]
            - beta * (DistributionReference.BernoulliLogDensity(z[at], lambda[at]) - DistributionReference.BernoulliLogDensity(z[at], priorLogits[at % latent]))).ToArray();
        double Objective(double[] values)
        {
            var (kl, _) = HvmReference.BernoulliKl(flowKl, values, z, priorLogits, HvmReference.AuxiliaryLogDensity(values, rStats, rows, shape), rows, latent);
            double score = Enumerable.Range(0, rows * latent).Sum(at => signal[at] * DistributionReference.BernoulliLogDensity(z[at], values[at]));
            return weight * kl.Select((value, row) => value - flowKl[row]).Sum() - scale * score;
        }
        var (dLambdaFromR, _) = HvmReference.AuxiliaryBackward(lambda, rStats, rows, shape, weight);
        var dLambda = HvmReference.BernoulliLambdaGradient(lambda, z, priorLogits, dLambdaFromR, centred, latent, beta, weight, scale);
        Numerics.AssertClose($"Bernoulli HVM dλ {rows}×{latent}, {auxiliarySteps} r steps", Numerics.FiniteDifferenceGradient(Objective, lambda), dLambda, 1e-6, 1e-7);
    }

    /// <summary>
    /// Float against double, z drawn by the kernel from λ and fed to both: the KL term per row and its shared part
    /// within 5e-5 relative and 5e-5·K absolute (K-term sums of values near 1), and dλ within 5e-5 of its largest
    /// (three terms per element).
    /// </summary>
    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(7, 7, 0)]
    [InlineData(33, 20, 2)]
    [InlineData(5, 200, 1)]
    public void KernelsMatchTheReference(int rows, int latent, int auxiliarySteps)
    {
        var random = new Random(rows + latent * 5 + auxiliarySteps);
        var shape = new FlowShape(latent, auxiliarySteps, 1);
        float[] lambda = Numerics.Uniform(random, rows * latent, -2, 2);
        float[] priorLogits = Numerics.Uniform(random, latent, -1, 1);
        float[] rStats = Numerics.Uniform(random, rows * shape.StatsWidth);
        float[] flowKl = Numerics.Uniform(random, rows, -3, 3);
        float[] dLambdaFromR = Numerics.Uniform(random, rows * latent);
        float[] centred = Numerics.Uniform(random, rows, -4, 4);
        const float weight = 0.35f, scale = 0.125f, beta = 0.8f;
        var key = new DrawKey(3, Philox.Streams.Reparameterize + Philox.Streams.HvmOffset, 2);
        var lambdaDouble = Numerics.ToDouble(lambda);
        var (z, _) = BinaryLatentReference.Sample(lambdaDouble, BinaryLatentReference.Uniforms(key, rows, latent, 1), rows, latent, 1);
        var logR = HvmReference.AuxiliaryLogDensity(lambdaDouble, Numerics.ToDouble(rStats), rows, shape);
        var (kl, shared) = HvmReference.BernoulliKl(Numerics.ToDouble(flowKl), lambdaDouble, z, Numerics.ToDouble(priorLogits), logR, rows, latent);
        var dLambda = HvmReference.BernoulliLambdaGradient(lambdaDouble, z, Numerics.ToDouble(priorLogits), Numerics.ToDouble(dLambdaFromR), Numerics.ToDouble(centred), latent,
            beta, weight, scale);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var lambdaBuffer = accelerator.Upload(lambda);
            using var priorBuffer = accelerator.Upload(priorLogits);
            using var rStatsBuffer = accelerator.Upload(rStats);
            using var flowKlBuffer = accelerator.Upload(flowKl);
            using var fromRBuffer = accelerator.Upload(dLambdaFromR);
            using var centredBuffer = accelerator.Upload(centred);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var logQ = accelerator.Allocate1D<float>(rows);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var flowed = accelerator.Allocate1D<float>(rows * latent);
            using var states = accelerator.Allocate1D<float>(Math.Max(1, rows * auxiliarySteps * latent));
            using var rTerm = accelerator.Allocate1D<float>(rows);
            using var sharedBuffer = accelerator.Allocate1D<float>(rows);
            using var dLambdaBuffer = accelerator.Allocate1D<float>(rows * latent);
            kernels.BinaryLatentSample(lambdaBuffer.View, zBuffer.View, logQ.View, latent, 1, key);
            kernels.BinaryKl(zBuffer.View, logQ.View, priorBuffer.View, klBuffer.View, latent, priorPerRow: false);
            kernels.HvmInverseFlowForward(lambdaBuffer.View, rStatsBuffer.View, flowed.View, states.View, rTerm.View, rows, shape);
            kernels.HvmBernoulliKl(flowKlBuffer.View, lambdaBuffer.View, rTerm.View, klBuffer.View, sharedBuffer.View, rows, latent);
            kernels.HvmBernoulliLambdaGradient(lambdaBuffer.View, zBuffer.View, priorBuffer.View, fromRBuffer.View, centredBuffer.View, dLambdaBuffer.View, latent,
                beta, weight, scale);
            string label = $"{accelerator.AcceleratorType} Bernoulli HVM {rows}×{latent}, {auxiliarySteps} r steps";
            Assert.Equal(z, zBuffer.GetAsArray1D().Select(value => (double)value));
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            // The shared part: log q(λ|x) − log r(λ|z), the KL term without the units' own log q(z_k|λ_k) − log p(z_k).
            Numerics.AssertClose(label + " shared KL", shared, sharedBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            Numerics.AssertClose(label + " dλ", dLambda, dLambdaBuffer.GetAsArray1D(), 5e-5, 5e-5 * dLambda.Max(Math.Abs));
        }
    }

    /// <summary>
    /// The family's whole estimate, conditional on λ's draw ε (so unbiased for every ε, hence over ε too): 3 binary
    /// units on 6 pixels, linear layers, 2 examples, k = 2, β = 0.8, flow steps and r as given, the weights three times
    /// the initialisation's, NVIL's baseline network untrained and its running mean not the signal's (any b(x) and m
    /// keep the estimate unbiased). The exact gradient is the derivative of F(θ) = mean over rows of
    /// Σ_z q(z|λ_r(θ))·(rec + β·KL)(θ, z), summed over all 8 z of each row with the reference model at that z (uniforms
    /// 1 − z pick it whatever σ(λ)), by central differences. The mean of 20 000 estimates (fresh uniforms, the same ε)
    /// must be within 4.5 standard errors of it for every parameter outside NVIL's: the encoder's (pathwise and
    /// score-function), the decoder's, the prior's and r's. The encoder's part is then checked again, and its variance
    /// reported, centred by a constant at the signal's mean and not centred at all.
    /// </summary>
    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    public void TheFamilysGradientIsUnbiasedForEveryLambdaDraw(int flowLength, int auxiliaryFlowLength)
    {
        const int batch = 2, pixels = 6, samples = 2, units = 3, rows = batch * samples;
        var config = new VaeConfig
        {
            InputSize = pixels, Hidden = [], Latent = units, Model = ModelKind.HvmBernoulli, Samples = samples, Beta = 0.8,
            FlowLength = flowLength, AuxiliaryFlowLength = auxiliaryFlowLength,
        };
        var layout = new ParameterLayout(config);
        var parameters = Numerics.ToDouble(layout.Initialise(5));
        int nvilFrom = layout.Layers[Nvil.MomentsLayer(layout)].WeightOffset, moments = layout.Layers[Nvil.MomentsLayer(layout)].BiasOffset;
        for (int i = 0; i < nvilFrom; i++)
            parameters[i] *= 3;
        parameters[moments] = -20;
        var images = VaeTests.SyntheticImages(batch, 2, 3, 9);
        var x = MinibatchReference.Gather(images.Images, [0, 1], 0, batch, pixels, false, default);
        var lambdaEpsilon = ReferenceVae.Epsilon(config, 11, 0, batch)[..(rows * units)];
        double[] Draws(int draw) => [.. lambdaEpsilon, .. ReferenceVae.Epsilon(config, 11, draw + 1, batch)[(rows * units)..]];
        int encoderEnd = layout.Layers[layout.EncoderLayerCount - 1].End;
        var marked = ReferenceVae.LossAndGradient(config, parameters, x, Draws(0), batch).ScoreFunction!;
        Assert.True(marked(encoderEnd - 1) && !marked(encoderEnd));

        var single = config with { Samples = 1 };
        // F(θ), and the mean of what NVIL centres, rec + β·(KL − Σ_k (log q(z_k|λ_k) − log p(z_k))).
        (double Loss, double SharedSignal) Expected(double[] theta)
        {
            var layers = new ReferenceLayers(config, theta, training: false);
            var priorLogits = layers.Run(layout.AuxiliaryStart, layout.AuxiliaryStart + 1, [1.0], 1);
            var (_, lambda, _) = IlgpuVae.Model.Models.Hvm.HvmModelReference.DrawLambda(layers, config, x, lambdaEpsilon, batch);
            double total = 0, shared = 0;
            for (int r = 0; r < rows; r++)
                for (int state = 0; state < 1 << units; state++)
                {
                    var z = Enumerable.Range(0, units).Select(j => (double)((state >> j) & 1)).ToArray();
                    double q = Math.Exp(z.Select((bit, j) => DistributionReference.BernoulliLogDensity(bit, lambda[r * units + j])).Sum());
                    double[] epsilon = [.. lambdaEpsilon[(r * units)..((r + 1) * units)], .. z.Select(bit => 1 - bit)];
                    int b = r / samples;
                    var result = ReferenceVae.LossAndGradient(single, theta, x[(b * pixels)..((b + 1) * pixels)], epsilon, 1, training: false);
                    total += q * result.Loss;
                    double own = z.Select((bit, j) => DistributionReference.BernoulliLogDensity(bit, lambda[r * units + j])
                        - DistributionReference.BernoulliLogDensity(bit, priorLogits[j])).Sum();
                    shared += q * (result.Reconstruction + config.Beta * (result.Kl - own));
                }
            return (total / rows, shared / rows);
        }
        var exact = Numerics.FiniteDifferenceGradient(theta => Expected(theta).Loss, parameters, 1e-5);
        var indices = Enumerable.Range(0, nvilFrom).ToArray();
        string label = $"Bernoulli HVM, {flowLength} flow steps, {auxiliaryFlowLength} r steps";
        BinaryLatentTests.AssertUnbiased(config, parameters, x, batch, exact, indices, label, out _, out _, draws: Draws);
        // The encoder's part alone (its exact gradient large enough to test on its own), centred by a constant at the mean
        // of NVIL's shared signal, as a trained running mean would be, and not centred at all (b(x) and m at 0).
        var encoderIndices = Enumerable.Range(0, encoderEnd).ToArray();
        var baselineOut = layout.Layers[^1];
        var constantOnly = (double[])parameters.Clone();
        Array.Clear(constantOnly, baselineOut.WeightOffset, baselineOut.WeightCount + baselineOut.Outputs);
        constantOnly[moments] = -Expected(parameters).SharedSignal;
        double centredVariance = BinaryLatentTests.AssertUnbiased(config, constantOnly, x, batch, exact, encoderIndices, label + ", encoder, centred", out _, out _,
            draws: Draws);
        var uncentred = (double[])constantOnly.Clone();
        uncentred[moments] = 0;
        double rawVariance = BinaryLatentTests.AssertUnbiased(config, uncentred, x, batch, exact, encoderIndices, label + ", encoder, not centred", out _, out _,
            draws: Draws);
        output.WriteLine($"{label}: summed variance of the encoder's estimate over {encoderIndices.Length} parameters: centred at the signal's mean {centredVariance:G4}, not centred {rawVariance:G4}");
    }
}
