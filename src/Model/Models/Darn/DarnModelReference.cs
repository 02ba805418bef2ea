using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Models.Sbn;

namespace IlgpuVae.Model.Models.Darn;

/// <summary>
/// DARN in double: the encoder's context c(x), h drawn unit by unit from the uniforms with q's autoregressive U,
/// log q per row, p's logits b + W·h (lower triangles only), the KL term per row, the decoder and reconstruction;
/// with the autoregressive decoder the pixels' A·x added to the decoder's logits; the loss is the mean over rows of
/// rec + β·KL. Its gradient is NVIL's estimate: exact for the decoder and the prior (b and W) given h, the
/// score-function estimate (or with the Taylor-expansion baseline its estimate from ∂rec/∂h and the autoregressive
/// densities' ∂/∂h) for the encoder and U (marked
/// <see cref="ReferenceVae.Result.ScoreFunction"/>), the baseline network's that of its own objective.
/// </summary>
public sealed class DarnModelReference : ReferenceModel
{
    /// <summary>The units' uniforms, as the sigmoid belief network's (h1's, then h2's with two layers).</summary>
    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) =>
        SbnModelReference.Uniforms(config, seed, step, batch, stream);

    /// <summary>A forward pass: h1, q's logits, the top prior's logits (h2's with two layers) and, with two layers, h2,
    /// q(h2|h1)'s logits and p(h1|h2)'s.</summary>
    private sealed record Pass(ReferenceLayers Layers, double[] H, double[] QLogits, double[] PriorLogits, double[] Kl,
        double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows)
    {
        public double[] H2 { get; init; } = [];
        public double[] QLogits2 { get; init; } = [];
        public double[] Prior1Logits { get; init; } = [];
    }

    private static double[] Weights(ParameterLayout layout, double[] parameters, int layer) =>
        parameters.AsSpan(layout.Layers[layer].WeightOffset, layout.Layers[layer].WeightCount).ToArray();

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] uniforms, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, units = config.Latent, prior = DarnFamily.PriorLayer(layout);
        var context = layers.Run(0, layout.EncoderLayerCount, x, batch);
        int first = rows * units;
        var (h, qLogits) = AutoregressiveReference.Sample(context, Weights(layout, parameters, prior + 2), uniforms[..first], rows, units, samples);
        var logQ = BinaryLatentReference.RowLogDensity(h, qLogits, units);
        var priorContext = layers.Run(prior, prior + 1, Enumerable.Repeat(1.0, rows).ToArray(), rows);
        double[] kl, priorLogits, h2 = [], qLogits2 = [], prior1Logits = [];
        if (config.StochasticLayers == 2)
        {
            // h2 ~ q(h2|h1) per row against p(h2); h1's term against p(h1|h2), the prior network's context and W1.
            int units2 = config.Latent2, encoder2 = DarnFamily.Encoder2WeightsLayer(layout);
            var context2 = layers.Run(layout.EncoderLayerCount, layout.Encoder2End, h, rows);
            (h2, qLogits2) = AutoregressiveReference.Sample(context2, Weights(layout, parameters, encoder2), uniforms[first..], rows, units2, 1);
            priorLogits = AutoregressiveReference.Logits(priorContext, Weights(layout, parameters, prior + 1), h2, rows, units2);
            var kl2 = BinaryLatentReference.Kl(h2, BinaryLatentReference.RowLogDensity(h2, qLogits2, units2), priorLogits, units2, priorPerRow: true);
            var prior1Context = layers.Run(layout.Encoder2End, layout.DecoderStart, h2, rows);
            prior1Logits = AutoregressiveReference.Logits(prior1Context, Weights(layout, parameters, encoder2 + 1), h, rows, units);
            kl = BinaryLatentReference.Kl(h, logQ, prior1Logits, units, priorPerRow: true).Select((value, r) => value + kl2[r]).ToArray();
        }
        else
        {
            priorLogits = AutoregressiveReference.Logits(priorContext, Weights(layout, parameters, prior + 1), h, rows, units);
            kl = BinaryLatentReference.Kl(h, logQ, priorLogits, units, priorPerRow: true);
        }
        var output = layers.Run(layout.DecoderStart, layout.DecoderEnd, h, rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        // The autoregressive decoder: each pixel's logit also reads the pixels before it, A·x with A's lower triangle.
        if (config.AutoregressiveDecoder)
            output = AutoregressiveReference.Logits(output, Weights(layout, parameters, DarnFamily.PixelWeightsLayer(layout)), x, rows, config.InputSize, samples);
        var (reconstruction, dOutput) = LossReference.Reconstruction(config.Likelihood, target, output, rows, config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layers, h, qLogits, priorLogits, kl, reconstruction, dOutput, rows) { H2 = h2, QLogits2 = qLogits2, Prior1Logits = prior1Logits };
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
        int units = config.Latent, prior = DarnFamily.PriorLayer(layout);
        var gradient = new double[layout.Count];
        var dOutput = pass.ReconstructionGradient.Select(value => value / rows).ToArray();
        var dCodes = layers.Backward(layout.DecoderStart, layout.DecoderEnd, dOutput, rows, gradient);
        if (config.AutoregressiveDecoder)
            AutoregressiveReference.WeightGradient(dOutput, x, rows, config.InputSize, config.Samples)
                .CopyTo(gradient, layout.Layers[DarnFamily.PixelWeightsLayer(layout)].WeightOffset);
        var (centred, baselineObjective, baselineFrom, moments) = NvilReference.Center(layers, config, parameters, x, pass.ReconstructionPerRow, pass.Kl,
            batch, beta, gradient);

        // The top prior: b through its layer on the ones, W from the same logits' gradient.
        bool twoLayers = config.StochasticLayers == 2;
        var (top, topUnits) = twoLayers ? (pass.H2, config.Latent2) : (pass.H, units);
        var dPrior = BinaryLatentReference.PriorRowGradient(pass.PriorLogits, top, beta / rows);
        AutoregressiveReference.WeightGradient(dPrior, top, rows, topUnits).CopyTo(gradient, layout.Layers[prior + 1].WeightOffset);
        layers.Backward(prior, prior + 1, dPrior, rows, gradient);
        int encoder2 = DarnFamily.Encoder2WeightsLayer(layout);
        if (twoLayers)
        {
            // p(h1|h2), exact: W1 and the prior network; q(h2|h1), NVIL's estimate: U2 and the second encoder.
            var dPrior1 = BinaryLatentReference.PriorRowGradient(pass.Prior1Logits, pass.H, beta / rows);
            AutoregressiveReference.WeightGradient(dPrior1, pass.H, rows, units).CopyTo(gradient, layout.Layers[encoder2 + 1].WeightOffset);
            layers.Backward(layout.Encoder2End, layout.DecoderStart, dPrior1, rows, gradient);
            var dQ2 = BinaryLatentReference.PosteriorGradient(pass.QLogits2, pass.H2, centred, config.Latent2, 1, 1.0 / rows);
            AutoregressiveReference.WeightGradient(dQ2, pass.H2, rows, config.Latent2).CopyTo(gradient, layout.Layers[encoder2].WeightOffset);
            layers.Backward(layout.EncoderLayerCount, layout.Encoder2End, dQ2, rows, gradient);
        }
        // q: the score-function gradient of each row's logits, U's from it, the context's summed over the samples.
        var dQ = config.DarnEstimator == DarnEstimatorKind.Taylor
            ? AutoregressiveReference.TaylorGradient(dCodes, pass.H, pass.QLogits, pass.PriorLogits, Weights(layout, parameters, prior + 2),
                Weights(layout, parameters, prior + 1), rows, units, beta / rows)
            : BinaryLatentReference.PosteriorGradient(pass.QLogits, pass.H, centred, units, 1, 1.0 / rows);
        AutoregressiveReference.WeightGradient(dQ, pass.H, rows, units).CopyTo(gradient, layout.Layers[prior + 2].WeightOffset);
        layers.Backward(0, layout.EncoderLayerCount, BinaryLatentReference.SumSamples(dQ, units, config.Samples), batch, gradient);

        // Score-function estimates: both encoders ([0, the end of q(h2|h1)'s last layer)), U and U2.
        int encoderEnd = layout.Layers[layout.Encoder2End - 1].End;
        var encoderWeights = layout.Layers[prior + 2];
        var encoder2Weights = twoLayers ? layout.Layers[encoder2] : encoderWeights;
        double reconstructionMean = pass.ReconstructionPerRow.Average(), klMean = pass.Kl.Average();
        return new ReferenceVae.Result(reconstructionMean + beta * klMean, reconstructionMean, klMean, gradient, training ? moments : null)
        {
            AuxiliaryObjective = baselineObjective,
            AuxiliaryFrom = baselineFrom,
            ScoreFunction = index => index < encoderEnd || (index >= encoderWeights.WeightOffset && index < encoderWeights.End)
                || (index >= encoder2Weights.WeightOffset && index < encoder2Weights.End),
        };
    }
}
