using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;

namespace IlgpuVae.Model.Models.Mutual;

/// <summary>
/// The mutual autoencoder in double: the VAE's objective and gradient (the one-layer reference), then the
/// information term on B = batch pairs drawn from the model with the given draws: x from the decoder, r(z|x), Î,
/// the gradient of C·|Î − M| by the decoder (pathwise through x for the Gaussian decoder, REINFORCE for the
/// Bernoulli one) and of −mean log r by r's layers. The objective of r's parameters is −mean log r, that of the
/// others −ELBO + C·|Î − M| (see <see cref="ReferenceVae.Result.ObjectiveOf"/>).
/// </summary>
public sealed class MutualModelReference : OneLayerModelReference
{
    /// <summary>ε of the data's samples, then z [B, K] of the generated pairs and x's noise [B, D] (Gaussian draws,
    /// or the Bernoulli uniforms), from the streams the model draws them from.</summary>
    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream)
    {
        var dataEpsilon = base.Epsilon(config, seed, step, batch, stream);
        var z = ReferenceVae.Epsilon(seed, step, batch, config.Latent, stream + Philox.Streams.MutualPriorOffset);
        uint noiseStream = stream + Philox.Streams.MutualObservationOffset;
        var noise = Enumerable.Range(0, batch * config.InputSize).Select(element => config.Likelihood == LikelihoodKind.Bernoulli
            ? Philox.Uniform(seed, noiseStream, step, element)
            : Philox.NormalDouble(seed, noiseStream, step, element)).ToArray();
        return [.. dataEpsilon, .. z, .. noise];
    }

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch) =>
        base.LogWeights(config, parameters, x, epsilon[..(batch * config.Samples * config.Latent)], batch);

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        int dataLength = batch * config.Samples * config.Latent, latent = config.Latent, features = config.InputSize;
        var elbo = base.LossAndGradient(config, parameters, x, epsilon[..dataLength], batch, beta, labels, training);
        var z = epsilon[dataLength..(dataLength + batch * latent)];
        var noise = epsilon[(dataLength + batch * latent)..];

        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        bool bernoulli = config.Likelihood == LikelihoodKind.Bernoulli;
        var output = layers.Run(layout.DecoderStart, layout.DecoderEnd, z, batch);
        var generated = output.Select((value, element) => bernoulli
            ? (noise[element] < 1 / (1 + Math.Exp(-value)) ? 1.0 : 0.0)
            : value + Math.Sqrt(config.GaussianVariance) * noise[element]).ToArray();
        var rStats = layers.Run(layout.AuxiliaryStart, layout.Layers.Count, generated, batch);
        var logDensity = MutualInformationReference.LogDensity(rStats, z, batch, latent);
        var (estimate, factor) = MutualInformationReference.Step(logDensity, latent, config.MutualInformation, config.MiWeight);

        var gradient = new double[layout.Count];
        var dGenerated = layers.Backward(layout.AuxiliaryStart, layout.Layers.Count,
            MutualInformationReference.NegativeLogDensityGradient(rStats, z, batch, latent), batch, gradient);
        var dOutput = bernoulli
            ? MutualInformationReference.Reinforce(output, generated, logDensity, factor)
            : dGenerated.Select(value => -factor * value).ToArray();
        layers.Backward(layout.DecoderStart, layout.DecoderEnd, dOutput, batch, gradient);
        for (int i = 0; i < gradient.Length; i++)
            gradient[i] += elbo.Gradient[i];
        return elbo with
        {
            Gradient = gradient,
            Penalty = elbo.Penalty + config.MiWeight * Math.Abs(estimate - config.MutualInformation),
            AuxiliaryObjective = -logDensity.Average(),
            AuxiliaryFrom = layout.Layers[layout.AuxiliaryStart].WeightOffset,
        };
    }
}
