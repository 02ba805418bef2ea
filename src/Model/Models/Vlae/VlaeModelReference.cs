using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Vlae;

/// <summary>
/// The VLAE in double, as the paper writes it: h_l = g_l(h_{l−1}), q(z_l|x) = N(μ_l(h_l), σ_l²(h_l)), z_l = μ_l + σ_l·ε_l;
/// z̃_L = f_L(z_L), z̃_l = f_l([z̃_{l+1}, z_l]), x ~ p(x | f_0(z̃_1)); the loss is the mean over rows of
/// rec + β·Σ_l KL(q(z_l|x) ‖ N(0, I)). The heads' statistics are gathered side by side, layer l in columns (l−1)·K/L
/// onwards of each block, and ε [batch·k, K] likewise, which is how the model draws them; a diagonal q over the
/// gathered row is the product of the layers' own. With a rank-one covariance the row is [μ | log d | u] and q one
/// N(μ, C) over all the layers' codes (<see cref="GatheredLatentReference"/>).
/// </summary>
public sealed class VlaeModelReference : ReferenceModel
{
    /// <summary>The forward pass: the gathered statistics repeated per sample, z (all layers, and each layer's
    /// columns), the KL per row, and each row's reconstruction with its unit gradient.</summary>
    private sealed record Pass(ReferenceLayers Layers, VlaeRungs Rungs, double[] RepeatedStats, double[] Codes, double[][] Z,
        double[] KlPerRow, double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var rungs = new VlaeRungs(layers.Layout, config);
        int count = config.LatentLayers, latent = config.Latent, width = latent / count, samples = config.Samples, rows = batch * samples;
        int parts = config.PosteriorBlocks;
        var stats = new double[batch * parts * latent];
        var hidden = x;
        for (int l = 1; l <= count; l++)
        {
            hidden = layers.Run(rungs.InferenceStart(l), rungs.Head(l), hidden, batch);
            GatheredLatentReference.Gather(layers.Run(rungs.Head(l), rungs.Head(l) + 1, hidden, batch), width, stats, latent, (l - 1) * width, batch, parts);
        }
        var repeated = ImportanceReference.RepeatRows(stats, batch, parts * latent, samples);
        var (codes, kl) = GatheredLatentReference.Sample(config, repeated, epsilon, rows, latent);
        var z = Enumerable.Range(1, count).Select(l => Columns(codes, rows, latent, (l - 1) * width, width)).ToArray();
        var generated = layers.Run(rungs.GenerativeStart(count), rungs.GenerativeEnd(count), z[count - 1], rows);
        for (int l = count - 1; l >= 1; l--)
            generated = layers.Run(rungs.GenerativeStart(l), rungs.GenerativeEnd(l), SideBySide(generated, z[l - 1], rows), rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, unitGradient) = LossReference.Reconstruction(config.Likelihood, target, generated, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layers, rungs, repeated, codes, z, kl, reconstruction, unitGradient, rows);
    }

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training: false);
        return GatheredLatentReference.LogWeights(config, pass.RepeatedStats, pass.Codes, epsilon, pass.ReconstructionPerRow, pass.Rows, config.Latent);
    }

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training);
        var (layers, rungs, rows) = (pass.Layers, pass.Rungs, pass.Rows);
        int count = config.LatentLayers, latent = config.Latent, width = latent / count, samples = config.Samples, hiddenTop = config.Hidden[0];
        int parts = config.PosteriorBlocks;
        double reconstruction = pass.ReconstructionPerRow.Average(), klMean = pass.KlPerRow.Average();
        var gradient = new double[layers.Layout.Count];

        // Down the generative rungs: each join's gradient is z̃_{l+1}'s (its first columns) and z_l's (the rest).
        var dGenerated = pass.ReconstructionGradient.Select(g => g / rows).ToArray();
        var dCodes = new double[rows * latent];
        void PutColumns(double[] dZ, int l)
        {
            for (int r = 0; r < rows; r++)
                Array.Copy(dZ, r * width, dCodes, r * latent + (l - 1) * width, width);
        }
        for (int l = 1; l < count; l++)
        {
            var dJoin = layers.Backward(rungs.GenerativeStart(l), rungs.GenerativeEnd(l), dGenerated, rows, gradient);
            dGenerated = Columns(dJoin, rows, hiddenTop + width, 0, hiddenTop);
            PutColumns(Columns(dJoin, rows, hiddenTop + width, hiddenTop, width), l);
        }
        PutColumns(layers.Backward(rungs.GenerativeStart(count), rungs.GenerativeEnd(count), dGenerated, rows, gradient), count);

        // β·KL per example is β/k on each of its k rows; then up the inference rungs from the top: h_l's gradient is
        // its head's plus the one from rung l+1.
        var dStats = ImportanceReference.SumRepeatedRows(
            GatheredLatentReference.Backward(config, pass.RepeatedStats, epsilon, dCodes, rows, latent, beta / rows), batch, parts * latent, samples);
        double[]? dFromAbove = null;
        for (int l = count; l >= 1; l--)
        {
            var dHead = GatheredLatentReference.Scatter(dStats, latent, (l - 1) * width, width, batch, parts);
            var dHidden = layers.Backward(rungs.Head(l), rungs.Head(l) + 1, dHead, batch, gradient);
            if (dFromAbove is not null)
                dHidden = dHidden.Select((d, i) => d + dFromAbove[i]).ToArray();
            dFromAbove = layers.Backward(rungs.InferenceStart(l), rungs.Head(l), dHidden, batch, gradient);
        }
        return new ReferenceVae.Result(reconstruction + beta * klMean, reconstruction, klMean, gradient);
    }

    /// <summary>Columns [first, first + count) of a table [rows, width].</summary>
    private static double[] Columns(double[] table, int rows, int width, int first, int count)
    {
        var result = new double[rows * count];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < count; c++)
                result[r * count + c] = table[r * width + first + c];
        return result;
    }

    /// <summary>Rows of <paramref name="left"/> and <paramref name="right"/> side by side.</summary>
    private static double[] SideBySide(double[] left, double[] right, int rows)
    {
        int leftWidth = left.Length / rows, rightWidth = right.Length / rows;
        var result = new double[rows * (leftWidth + rightWidth)];
        for (int r = 0; r < rows; r++)
        {
            Array.Copy(left, r * leftWidth, result, r * (leftWidth + rightWidth), leftWidth);
            Array.Copy(right, r * rightWidth, result, r * (leftWidth + rightWidth) + leftWidth, rightWidth);
        }
        return result;
    }
}
