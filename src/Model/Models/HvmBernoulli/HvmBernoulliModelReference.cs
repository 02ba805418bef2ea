using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.Hvm;
using IlgpuVae.Model.Models.Sbn;

namespace IlgpuVae.Model.Models.HvmBernoulli;

/// <summary>
/// The Bernoulli hierarchical variational model in double: encoder → the flow's λ and its KL against N(0, I) →
/// z_k = [u_k &lt; σ(λ_k)] → r(λ|z, x) from [z | x] → decoder; the loss is the mean over rows of rec + β·KL with KL = log q(λ|x) +
/// log q(z|λ) − log p(z) − log r(λ|z, x). Its gradient: exact for the decoder, the prior and r given (λ, z); for the
/// encoder the pathwise derivative at the drawn z plus the score-function term through z's draw, each unit's signal
/// −(rec + β·(log q(λ|x) − log r(λ|z) + log q(z_k|λ_k) − log p(z_k))) with the shared part centred by NVIL (baseline network and running
/// mean, no division), so the encoder's entries are estimates
/// (<see cref="ReferenceVae.Result.ScoreFunction"/> marks them); the baseline network's is that of its own objective.
/// </summary>
public sealed class HvmBernoulliModelReference : ReferenceModel
{
    /// <summary>ε of λ_0 [batch·k, K] from the sampler's stream, then z's uniforms [batch·k, K] from its HVM stream,
    /// keyed by row.</summary>
    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) =>
        [.. base.Epsilon(config, seed, step, batch, stream),
         .. BinaryLatentReference.Uniforms(new DrawKey(seed, stream + Philox.Streams.HvmOffset, step), batch * config.Samples, config.Latent, 1)];

    private static FlowShape AuxiliaryShape(VaeConfig config) => new(config.Latent, config.AuxiliaryFlowLength, 1);

    private sealed record Pass(ReferenceLayers Layers, double[] RepeatedStats, double[] Lambda, double[] PriorLogits, double[] Z, double[] RStats,
        double[] Kl, double[] Shared, double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, latent = config.Latent, prior = layout.AuxiliaryStart;
        var (lambdaEpsilon, uniforms) = (epsilon[..(rows * latent)], epsilon[(rows * latent)..]);
        var (repeated, lambda, flowKl) = HvmModelReference.DrawLambda(layers, config, x, lambdaEpsilon, batch);
        var priorLogits = layers.Run(prior, prior + 1, [1.0], 1);
        var (z, _) = BinaryLatentReference.Sample(lambda, uniforms, rows, latent, 1);
        // r reads [z | x] per row.
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var rInput = Enumerable.Range(0, rows).SelectMany(row => z[(row * latent)..((row + 1) * latent)].Concat(target[(row * config.InputSize)..((row + 1) * config.InputSize)]))
            .ToArray();
        var rStats = layers.Run(prior + 1, Nvil.MomentsLayer(layout), rInput, rows);
        var logR = HvmReference.AuxiliaryLogDensity(lambda, rStats, rows, AuxiliaryShape(config));
        var (kl, shared) = HvmReference.BernoulliKl(flowKl, lambda, z, priorLogits, logR, rows, latent);
        var output = layers.Run(layout.DecoderStart, layout.DecoderEnd, z, rows);
        var (reconstruction, dOutput) = LossReference.Reconstruction(config.Likelihood, target, output, rows, config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layers, repeated, lambda, priorLogits, z, rStats, kl, shared, reconstruction, dOutput, rows);
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
        int latent = config.Latent, prior = layout.AuxiliaryStart;
        double weight = beta / rows;
        var gradient = new double[layout.Count];
        layers.Backward(layout.DecoderStart, layout.DecoderEnd, pass.ReconstructionGradient.Select(value => value / rows).ToArray(), rows, gradient);
        // NVIL centres −(rec + β·shared), shared = log q(λ|x) − log r(λ|z, x); each unit adds its own log q(z_k|λ_k) − log p(z_k).
        var (centred, baselineObjective, baselineFrom, moments) = NvilReference.Center(layers, config, parameters, x, pass.ReconstructionPerRow, pass.Shared,
            batch, beta, gradient, normalise: false);
        layers.Backward(prior, prior + 1, BinaryLatentReference.PriorGradient(pass.PriorLogits, pass.Z, rows, weight), 1, gradient);
        var (dLambdaFromR, dRStats) = HvmReference.AuxiliaryBackward(pass.Lambda, pass.RStats, rows, AuxiliaryShape(config), weight);
        layers.Backward(prior + 1, Nvil.MomentsLayer(layout), dRStats, rows, gradient);
        var dLambda = HvmReference.BernoulliLambdaGradient(pass.Lambda, pass.Z, pass.PriorLogits, dLambdaFromR, centred, latent, beta, weight, 1.0 / rows);
        var dRepeated = PlanarFlowReference.Backward(pass.RepeatedStats, epsilon[..(rows * latent)], dLambda, rows, config.PosteriorFlow(1), weight);
        layers.Backward(0, layout.EncoderLayerCount, ImportanceReference.SumRepeatedRows(dRepeated, batch, config.EncoderOutputs, config.Samples), batch, gradient);

        int encoderEnd = layout.Layers[layout.EncoderLayerCount - 1].End;
        double reconstructionMean = pass.ReconstructionPerRow.Average(), klMean = pass.Kl.Average();
        return new ReferenceVae.Result(reconstructionMean + beta * klMean, reconstructionMean, klMean, gradient, training ? moments : null)
        {
            AuxiliaryObjective = baselineObjective,
            AuxiliaryFrom = baselineFrom,
            ScoreFunction = index => index < encoderEnd,
        };
    }
}
