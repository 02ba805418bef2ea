using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;

namespace IlgpuVae.Model.Models.Sbn;

/// <summary>
/// The sigmoid belief network in double: encoder logits a → h from the uniforms → decoder → reconstruction, the KL
/// term log q(h|x) − log p(h) per row; the loss is the mean over rows of rec + β·KL. Its gradient is NVIL's
/// estimate: exact for the decoder and the prior given h, the score-function estimate for the encoder (so the
/// encoder's entries are not derivatives of the loss at fixed uniforms: <see cref="ReferenceVae.Result.ScoreFunction"/>
/// marks them), and the baseline network's the derivative of its own objective, mean (l − b(x) − m)².
/// </summary>
public sealed class SbnModelReference : ReferenceModel
{
    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) => Uniforms(config, seed, step, batch, stream);

    /// <summary>The binary families' sampler uniforms [batch·k, K] (not normal draws), keyed as the Bernoulli samplers
    /// (k·K per example); with two layers then h2's [batch·k, K2] from the second layer's stream, keyed by row.</summary>
    public static double[] Uniforms(VaeConfig config, ulong seed, long step, int batch, uint stream)
    {
        int rows = batch * config.Samples;
        var first = BinaryLatentReference.Uniforms(new DrawKey(seed, stream, step), rows, config.Latent, config.Samples);
        return config.StochasticLayers == 2
            ? [.. first, .. BinaryLatentReference.Uniforms(new DrawKey(seed, stream + Philox.Streams.SecondLayerOffset, step), rows, config.Latent2, 1)]
            : first;
    }

    /// <summary>A forward pass: h1 (and h2), the top prior's logits, p(h1|h2)'s per row, q(h2|h1)'s logits per row.</summary>
    private sealed record Pass(ReferenceLayers Layers, double[] Logits, double[] PriorLogits, double[] H, double[] Kl,
        double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows)
    {
        public double[] H2 { get; init; } = [];
        public double[] Logits2 { get; init; } = [];
        public double[] PriorNetworkLogits { get; init; } = [];
    }

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] uniforms, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, prior = SbnFamily.PriorLayer(layout);
        var logits = layers.Run(0, layout.EncoderLayerCount, x, batch);
        var priorLogits = layers.Run(prior, prior + 1, [1.0], 1);
        int first = rows * config.Latent;
        var (h, logQ) = BinaryLatentReference.Sample(logits, uniforms[..first], rows, config.Latent, samples);
        double[] kl, h2 = [], logits2 = [], priorNetworkLogits = [];
        if (config.StochasticLayers == 2)
        {
            // q(h2|h1) per row against the learned p(h2); h1's KL against p(h1|h2) from the prior network.
            logits2 = layers.Run(layout.EncoderLayerCount, layout.Encoder2End, h, rows);
            (h2, var logQ2) = BinaryLatentReference.Sample(logits2, uniforms[first..], rows, config.Latent2, 1);
            var kl2 = BinaryLatentReference.Kl(h2, logQ2, priorLogits, config.Latent2, priorPerRow: false);
            priorNetworkLogits = layers.Run(layout.Encoder2End, layout.DecoderStart, h2, rows);
            kl = BinaryLatentReference.Kl(h, logQ, priorNetworkLogits, config.Latent, priorPerRow: true).Select((value, r) => value + kl2[r]).ToArray();
        }
        else
            kl = BinaryLatentReference.Kl(h, logQ, priorLogits, config.Latent, priorPerRow: false);
        var output = layers.Run(layout.DecoderStart, layout.DecoderEnd, h, rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, dOutput) = LossReference.Reconstruction(config.Likelihood, target, output, rows, config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layers, logits, priorLogits, h, kl, reconstruction, dOutput, rows)
        {
            H2 = h2, Logits2 = logits2, PriorNetworkLogits = priorNetworkLogits,
        };
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
        int prior = SbnFamily.PriorLayer(layout);
        var gradient = new double[layout.Count];
        layers.Backward(layout.DecoderStart, layout.DecoderEnd, pass.ReconstructionGradient.Select(value => value / rows).ToArray(), rows, gradient);

        var (centred, baselineObjective, baselineFrom, moments) = NvilReference.Center(layers, config, parameters, x, pass.ReconstructionPerRow, pass.Kl,
            batch, beta, gradient);
        bool twoLayers = config.StochasticLayers == 2;
        layers.Backward(prior, prior + 1, BinaryLatentReference.PriorGradient(pass.PriorLogits, twoLayers ? pass.H2 : pass.H, rows, beta / rows), 1, gradient);
        if (twoLayers)
        {
            layers.Backward(layout.Encoder2End, layout.DecoderStart, BinaryLatentReference.PriorRowGradient(pass.PriorNetworkLogits, pass.H, beta / rows), rows, gradient);
            layers.Backward(layout.EncoderLayerCount, layout.Encoder2End,
                BinaryLatentReference.PosteriorGradient(pass.Logits2, pass.H2, centred, config.Latent2, 1, 1.0 / rows), rows, gradient);
        }
        layers.Backward(0, layout.EncoderLayerCount, BinaryLatentReference.PosteriorGradient(pass.Logits, pass.H, centred, config.Latent, config.Samples, 1.0 / rows),
            batch, gradient);

        // Both encoders' gradients are score-function estimates: [0, the end of q(h2|h1)'s last layer).
        int encoderEnd = layout.Layers[layout.Encoder2End - 1].End;
        double reconstructionMean = pass.ReconstructionPerRow.Average(), klMean = pass.Kl.Average();
        return new ReferenceVae.Result(reconstructionMean + beta * klMean, reconstructionMean, klMean, gradient,
            training ? moments : null)
        {
            AuxiliaryObjective = baselineObjective,
            AuxiliaryFrom = baselineFrom,
            ScoreFunction = index => index < encoderEnd,
        };
    }
}
