using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Def;

/// <summary>
/// The DEF in double: q's statistics from the encoder, every layer's draws (gamma, Poisson or Bernoulli) from the
/// same Philox key (a gamma draw depends on its shape, so the "ε" this reference takes is the key itself), the layers'
/// prior terms top down (a Bernoulli layer's logits through <see cref="ReferenceLayers"/> as a dense layer), the rates and the Bernoulli–Poisson (or Poisson) term; the loss is the mean over rows of rec + β·KL. The weights'
/// gradient is exact for the draws; q's is the score-function estimate with Rao-Blackwellization and the
/// leave-one-out baseline (marked <see cref="ReferenceVae.Result.ScoreFunction"/>).
/// </summary>
public sealed class DefModelReference : ReferenceModel
{
    /// <summary>The draw key as four numbers: the seed's two 32-bit halves, the stream and the step.</summary>
    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) =>
        [seed & 0xFFFFFFFF, seed >> 32, stream, step];

    private static DrawKey KeyOf(double[] epsilon) =>
        new(((ulong)epsilon[1] << 32) | (ulong)epsilon[0], (uint)epsilon[2], (long)epsilon[3]);

    private sealed record Layer(double[] Z, double[] LogZ, double[] LogQ, double[] Score, double[] LogPrior, double[] DMeans, double[] RowLogPrior,
        double[] Kl);

    private sealed record Pass(ReferenceLayers Layers, DefUnitKind[] Kinds, int[] Widths, Layer[] Units, double[] Reconstruction, double[] DRates, double[] Kl, int Rows);

    private static double[] Theta(ParameterLayout layout, double[] parameters, int l)
    {
        var slice = layout.Layers[layout.DecoderStart + l];
        return parameters.AsSpan(slice.WeightOffset, slice.WeightCount).ToArray();
    }

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        var kinds = DefLayerSpec.Parse(config.DefLayers).Select(layer => layer.Kind).ToArray();
        var widths = DefLayerSpec.Widths(config.DefLayers);
        var offsets = DefFamily.Offsets(widths);
        int samples = config.Samples, rows = batch * samples, total = widths.Sum();
        var statistics = layers.Run(0, layout.EncoderLayerCount, x, batch);
        var key = KeyOf(epsilon);
        var draws = Enumerable.Range(0, widths.Length).Select(l =>
        {
            var shape = new GammaLayerShape(widths[l], offsets[l], total, samples);
            return kinds[l] == DefUnitKind.Gamma
                ? DeepExponentialReference.Sample(statistics, shape, rows, key)
                : DeepExponentialReference.SampleDiscrete(kinds[l], statistics, shape, rows, key);
        }).ToArray();
        var units = new Layer[widths.Length];
        var kl = new double[rows];
        for (int l = widths.Length - 1; l >= 0; l--)
        {
            var (z, logZ, logQ, score) = draws[l];
            var means = l == widths.Length - 1 ? null
                : kinds[l] == DefUnitKind.Bernoulli ? layers.Run(layout.DecoderStart + l + 1, layout.DecoderStart + l + 2, draws[l + 1].Z, rows)
                : DeepExponentialReference.Means(Theta(layout, parameters, l + 1), draws[l + 1].Z, rows, widths[l + 1], widths[l]);
            var (logPrior, dMeans, rowLogPrior, layerKl) = kinds[l] == DefUnitKind.Gamma
                ? DeepExponentialReference.LayerTerms(z, logZ, logQ, means, widths[l], config.DefShape)
                : DeepExponentialReference.DiscreteLayerTerms(kinds[l], z, logQ, means, widths[l]);
            units[l] = new Layer(z, logZ, logQ, score, logPrior, dMeans, rowLogPrior, layerKl);
            for (int row = 0; row < rows; row++)
                kl[row] += layerKl[row];
        }
        var rates = DeepExponentialReference.Means(Theta(layout, parameters, 0), units[0].Z, rows, widths[0], config.InputSize);
        var (_, reconstruction, dRates) = config.Likelihood == LikelihoodKind.Poisson
            ? DeepExponentialReference.PoissonRateLoss(x, rates, config.InputSize, samples, 1.0 / rows)
            : DeepExponentialReference.BernoulliRateLoss(x, rates, config.InputSize, samples, 1.0 / rows);
        return new Pass(layers, kinds, widths, units, reconstruction, dRates, kl, rows);
    }

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training: false);
        return SampledKlLogWeights(pass.Reconstruction, pass.Kl);
    }

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, double beta,
        int[]? labels, bool training)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training);
        var (layers, widths, units, rows) = (pass.Layers, pass.Widths, pass.Units, pass.Rows);
        var layout = layers.Layout;
        var gradient = new double[layout.Count];
        // V_0 from the rates; V_l from −β/rows · ∂ log p(z_{l−1})/∂ parent (a real layer's W and b as a dense layer's).
        DeepExponentialReference.ThetaGradient(Theta(layout, parameters, 0), units[0].Z, pass.DRates, rows, widths[0], config.InputSize)
            .CopyTo(gradient, layout.Layers[layout.DecoderStart].WeightOffset);
        for (int l = 1; l < widths.Length; l++)
        {
            var dMeans = units[l - 1].DMeans.Select(value => -beta / rows * value).ToArray();
            if (pass.Kinds[l - 1] == DefUnitKind.Bernoulli)
            {
                layers.Backward(layout.DecoderStart + l, layout.DecoderStart + l + 1, dMeans, rows, gradient);
                continue;
            }
            DeepExponentialReference.ThetaGradient(Theta(layout, parameters, l), units[l].Z, dMeans, rows, widths[l], widths[l - 1])
                .CopyTo(gradient, layout.Layers[layout.DecoderStart + l].WeightOffset);
        }
        // q: each layer's score-function estimate, then the encoder.
        var offsets = DefFamily.Offsets(widths);
        var dStatistics = new double[batch * 2 * widths.Sum()];
        for (int l = 0; l < widths.Length; l++)
            DeepExponentialReference.ScoreGradient(units[l].Score, units[l].LogPrior, units[l].LogQ, l == 0 ? pass.Reconstruction : units[l - 1].RowLogPrior,
                pass.Reconstruction, pass.Kl, dStatistics, new GammaLayerShape(widths[l], offsets[l], widths.Sum(), config.Samples), raoBlackwell: true,
                leaveOneOut: true, beta, l == 0 ? -1 : beta, 1.0 / rows);
        layers.Backward(0, layout.EncoderLayerCount, dStatistics, batch, gradient);

        int encoderEnd = layout.Layers[layout.EncoderLayerCount - 1].End;
        double reconstructionMean = pass.Reconstruction.Average(), klMean = pass.Kl.Average();
        return new ReferenceVae.Result(reconstructionMean + beta * klMean, reconstructionMean, klMean, gradient)
        {
            ScoreFunction = index => index < encoderEnd,
        };
    }
}
