using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Hvm;

/// <summary>
/// The hierarchical variational model in double: encoder → the flow's λ and its KL against N(0, I) → z = λ + τε₂ →
/// r(λ|z) and the hierarchical KL term → decoder → reconstruction; mean over rows of rec + β·KL, and its gradient
/// back the same way (the flow's backward pass adds the gradient of its own KL, so the λ gradient handed to it
/// carries the −λ of the term that the hierarchical KL removes; see <see cref="HvmReference.BackwardGivenAuxiliary"/>). r is a
/// Gaussian or an inverse flow (<see cref="HvmReference.AuxiliaryLogDensity"/>).
/// </summary>
public sealed class HvmModelReference : ReferenceModel
{
    /// <summary>ε₁ of λ_0 [batch·k, K] from the sampler's stream, then ε₂ of z [batch·k, K] from its HVM stream.</summary>
    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) =>
        [.. base.Epsilon(config, seed, step, batch, stream),
         .. ReferenceVae.Epsilon(seed, step, batch * config.Samples, config.Latent, stream + Philox.Streams.HvmOffset)];

    /// <summary>r's stats rows: [a | log b²] and the inverse flow's steps, if any.</summary>
    private static FlowShape AuxiliaryShape(VaeConfig config) => new(config.Latent, config.AuxiliaryFlowLength, 1);

    /// <summary>The variational prior's draw, shared by both HVMs: the encoder's statistics repeated for the k rows of
    /// each example, λ = the flow applied to λ_0 = μ + σ·ε₁, and the flow's log q(λ|x) − log N(λ; 0, I) per row.</summary>
    public static (double[] RepeatedStats, double[] Lambda, double[] FlowKl) DrawLambda(ReferenceLayers layers, VaeConfig config, double[] x,
        double[] lambdaEpsilon, int batch)
    {
        var stats = layers.Run(0, layers.Layout.EncoderLayerCount, x, batch);
        var repeated = ImportanceReference.RepeatRows(stats, batch, config.EncoderOutputs, config.Samples);
        var (lambda, flowKl) = PlanarFlowReference.Forward(repeated, lambdaEpsilon, batch * config.Samples, config.PosteriorFlow(1));
        return (repeated, lambda, flowKl);
    }

    private sealed record Pass(ReferenceLayers Layers, double[] RepeatedStats, double[] Lambda, double[] LogTau, double[] Z, double[] RStats,
        double[] Kl, double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, latent = config.Latent;
        var (lambdaEpsilon, zEpsilon) = (epsilon[..(rows * latent)], epsilon[(rows * latent)..]);
        var (repeated, lambda, flowKl) = DrawLambda(layers, config, x, lambdaEpsilon, batch);
        var logTau = layers.Run(layout.AuxiliaryStart, layout.AuxiliaryStart + 1, [1.0], 1);
        var z = HvmReference.Sample(lambda, logTau, zEpsilon, latent);
        var rStats = layers.Run(layout.AuxiliaryStart + 1, layout.Layers.Count, z, rows);
        var kl = HvmReference.KlGivenAuxiliary(flowKl, lambda, z, logTau, HvmReference.AuxiliaryLogDensity(lambda, rStats, rows, AuxiliaryShape(config)), rows, latent);
        var output = layers.Run(layout.DecoderStart, layout.DecoderEnd, z, rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, dOutput) = LossReference.Reconstruction(config.Likelihood, target, output, rows, config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layers, repeated, lambda, logTau, z, rStats, kl, reconstruction, dOutput, rows);
    }

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training: false);
        return SampledKlLogWeights(pass.ReconstructionPerRow, pass.Kl);
    }

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training);
        var (layers, rows) = (pass.Layers, pass.Rows);
        var layout = layers.Layout;
        int latent = config.Latent;
        double weight = beta / rows;
        var gradient = new double[layout.Count];
        var dZ = layers.Backward(layout.DecoderStart, layout.DecoderEnd, pass.ReconstructionGradient.Select(value => value / rows).ToArray(), rows, gradient);
        // r's weights and its share of z's gradient (r's stats enter the KL only).
        var (dLambdaFromR, dRStats) = HvmReference.AuxiliaryBackward(pass.Lambda, pass.RStats, rows, AuxiliaryShape(config), weight);
        var dZFromR = layers.Backward(layout.AuxiliaryStart + 1, layout.Layers.Count, dRStats, rows, gradient);
        dZ = dZ.Select((value, i) => value + dZFromR[i]).ToArray();
        var (dLambda, dLogTau) = HvmReference.BackwardGivenAuxiliary(pass.Lambda, pass.Z, epsilon[(rows * latent)..], pass.LogTau, dZ, dLambdaFromR,
            rows, latent, weight);
        layers.Backward(layout.AuxiliaryStart, layout.AuxiliaryStart + 1, dLogTau, 1, gradient);
        var dRepeated = PlanarFlowReference.Backward(pass.RepeatedStats, epsilon[..(rows * latent)], dLambda, rows,
            config.PosteriorFlow(1), weight);
        layers.Backward(0, layout.EncoderLayerCount, ImportanceReference.SumRepeatedRows(dRepeated, batch, config.EncoderOutputs, config.Samples), batch, gradient);
        double reconstructionMean = pass.ReconstructionPerRow.Average(), klMean = pass.Kl.Average();
        return new ReferenceVae.Result(reconstructionMean + beta * klMean, reconstructionMean, klMean, gradient);
    }
}
