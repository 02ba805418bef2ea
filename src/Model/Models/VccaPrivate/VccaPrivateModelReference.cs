using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.VccaPrivate;

/// <summary>
/// VCCA-private in double, as the survey writes its bound: E[log p(x|z, h_x)] + E[log p(y|z, h_y)]
/// − KL(q(z|x) ‖ p(z)) − KL(q(h_x|x) ‖ p(h_x)) − KL(q(h_y|y) ‖ p(h_y)), each row's codes drawn with its ε
/// [batch·k, K + 2P] (z, then h_x, then h_y), the decoders fed [z | h_x] and [z | h_y]. With a rank-one covariance
/// the three share one posterior N(μ, C) over [z | h_x | h_y] (<see cref="GatheredLatentReference"/>).
/// </summary>
public sealed class VccaPrivateModelReference : ReferenceModel
{
    private sealed record Pass(ReferenceLayers Layers, double[] RepeatedStats, double[] Z, double[] KlPerRow,
        double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        int shared = config.Latent, own = config.PrivateLatent, width = config.CodeWidth, samples = config.Samples, rows = batch * samples;
        var (left, right) = ViewReference.Split(x, batch, config.Views);
        var leftStats = layers.Run(0, layout.EncoderLayerCount, left, batch);
        var rightStats = layers.Run(layout.EncoderLayerCount, layout.Encoder2End, right, batch);
        int parts = config.PosteriorBlocks;
        // Each block (μ, log σ², u) of z and h_x, then of h_y.
        var stats = new double[batch * parts * width];
        GatheredLatentReference.Gather(leftStats, shared + own, stats, width, 0, batch, parts);
        GatheredLatentReference.Gather(rightStats, own, stats, width, shared + own, batch, parts);
        var repeated = ImportanceReference.RepeatRows(stats, batch, parts * width, samples);
        var (z, kl) = GatheredLatentReference.Sample(config, repeated, epsilon, rows, width);
        var leftOutput = layers.Run(layout.DecoderStart, layout.DecoderEnd, DecoderInput(z, rows, config, view: 1), rows);
        var rightOutput = layers.Run(layout.DecoderEnd, layout.Layers.Count, DecoderInput(z, rows, config, view: 2), rows);
        var output = ViewReference.Join(leftOutput, rightOutput, rows, config.Views);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, unitGradient) = LossReference.Reconstruction(config.Likelihood, target, output, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layers, repeated, z, kl, reconstruction, unitGradient, rows);
    }

    /// <summary>[z | h_x] for the left view's decoder, [z | h_y] for the right's.</summary>
    private static double[] DecoderInput(double[] z, int rows, VaeConfig config, int view)
    {
        int shared = config.Latent, own = config.PrivateLatent, width = config.CodeWidth;
        var input = new double[rows * (shared + own)];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < shared; c++)
                input[r * (shared + own) + c] = z[r * width + c];
            for (int c = 0; c < own; c++)
                input[r * (shared + own) + shared + c] = z[r * width + (view == 1 ? shared : shared + own) + c];
        }
        return input;
    }

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training: false);
        return GatheredLatentReference.LogWeights(config, pass.RepeatedStats, pass.Z, epsilon, pass.ReconstructionPerRow, pass.Rows, config.CodeWidth);
    }

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training);
        var (layers, rows) = (pass.Layers, pass.Rows);
        var layout = layers.Layout;
        int shared = config.Latent, own = config.PrivateLatent, width = config.CodeWidth, samples = config.Samples;
        double reconstruction = pass.ReconstructionPerRow.Average(), klMean = pass.KlPerRow.Average();
        var gradient = new double[layout.Count];

        var (dLeft, dRight) = ViewReference.Split(pass.ReconstructionGradient.Select(g => g / rows).ToArray(), rows, config.Views);
        var dInputLeft = layers.Backward(layout.DecoderStart, layout.DecoderEnd, dLeft, rows, gradient);
        var dInputRight = layers.Backward(layout.DecoderEnd, layout.Layers.Count, dRight, rows, gradient);
        // z is read by both decoders: its gradient is the sum of theirs; each h by its own view's.
        var dZ = new double[rows * width];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < shared; c++)
                dZ[r * width + c] = dInputLeft[r * (shared + own) + c] + dInputRight[r * (shared + own) + c];
            for (int c = 0; c < own; c++)
            {
                dZ[r * width + shared + c] = dInputLeft[r * (shared + own) + shared + c];
                dZ[r * width + shared + own + c] = dInputRight[r * (shared + own) + shared + c];
            }
        }
        // β·KL per example is β/k on each of its k rows.
        int parts = config.PosteriorBlocks;
        var dStats = ImportanceReference.SumRepeatedRows(
            GatheredLatentReference.Backward(config, pass.RepeatedStats, epsilon, dZ, rows, width, beta / rows), batch, parts * width, samples);
        var dLeftStats = GatheredLatentReference.Scatter(dStats, width, 0, shared + own, batch, parts);
        var dRightStats = GatheredLatentReference.Scatter(dStats, width, shared + own, own, batch, parts);
        layers.Backward(layout.EncoderLayerCount, layout.Encoder2End, dRightStats, batch, gradient);
        layers.Backward(0, layout.EncoderLayerCount, dLeftStats, batch, gradient);
        return new ReferenceVae.Result(reconstruction + beta * klMean, reconstruction, klMean, gradient);
    }
}
