using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Vlae;

/// <summary>
/// The VLAE in double, layer by layer as the paper writes it: h_l = g_l(h_{l−1}), q(z_l|x) = N(μ_l(h_l), σ_l²(h_l)),
/// z_l = μ_l + σ_l·ε_l; z̃_L = f_L(z_L), z̃_l = f_l([z̃_{l+1}, z_l]), x ~ p(x | f_0(z̃_1)); the loss is the mean over
/// rows of rec + β·Σ_l KL(q(z_l|x) ‖ N(0, I)). ε [batch·k, K] holds every layer's draws side by side, layer l in
/// columns (l−1)·K/L onwards, which is how the model draws them.
/// </summary>
public sealed class VlaeModelReference : ReferenceModel
{
    /// <summary>The forward pass: each layer's stats repeated per sample, z_l, ε_l and KL_l per row, the
    /// generative rungs' joined inputs, and each row's reconstruction with its unit gradient.</summary>
    private sealed record Pass(ReferenceLayers Layers, VlaeRungs Rungs, double[][] RowStats, double[][] Z, double[][] Epsilon,
        double[] KlPerRow, double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var rungs = new VlaeRungs(layers.Layout, config);
        int count = config.LatentLayers, width = config.Latent / count, samples = config.Samples, rows = batch * samples;
        var rowStats = new double[count][];
        var z = new double[count][];
        var epsilons = new double[count][];
        var kl = new double[rows];
        var hidden = x;
        for (int l = 1; l <= count; l++)
        {
            hidden = layers.Run(rungs.InferenceStart(l), rungs.Head(l), hidden, batch);
            var stats = layers.Run(rungs.Head(l), rungs.Head(l) + 1, hidden, batch);
            rowStats[l - 1] = ImportanceReference.RepeatRows(stats, batch, 2 * width, samples);
            epsilons[l - 1] = Columns(epsilon, rows, config.Latent, (l - 1) * width, width);
            (z[l - 1], var layerKl) = LossReference.ReparameterizeForward(rowStats[l - 1], epsilons[l - 1], rows, width);
            for (int r = 0; r < rows; r++)
                kl[r] += layerKl[r];
        }
        var generated = layers.Run(rungs.GenerativeStart(count), rungs.GenerativeEnd(count), z[count - 1], rows);
        for (int l = count - 1; l >= 1; l--)
            generated = layers.Run(rungs.GenerativeStart(l), rungs.GenerativeEnd(l), SideBySide(generated, z[l - 1], rows), rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, unitGradient) = LossReference.Reconstruction(config.Likelihood, target, generated, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layers, rungs, rowStats, z, epsilons, kl, reconstruction, unitGradient, rows);
    }

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training: false);
        // log w = −rec + Σ_l (log p(z_l) − log q(z_l|x)): each layer's term with no reconstruction, then rec once.
        var logWeights = pass.ReconstructionPerRow.Select(rec => -rec).ToArray();
        int width = config.Latent / config.LatentLayers;
        for (int l = 0; l < config.LatentLayers; l++)
        {
            var layerTerm = LossReference.LogWeights(pass.RowStats[l], pass.Z[l], pass.Epsilon[l], new double[pass.Rows], pass.Rows, width);
            for (int r = 0; r < pass.Rows; r++)
                logWeights[r] += layerTerm[r];
        }
        return logWeights;
    }

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training);
        var (layers, rungs, rows) = (pass.Layers, pass.Rungs, pass.Rows);
        int count = config.LatentLayers, width = config.Latent / count, samples = config.Samples, hiddenTop = config.Hidden[0];
        double reconstruction = pass.ReconstructionPerRow.Average(), klMean = pass.KlPerRow.Average();
        var gradient = new double[layers.Layout.Count];

        // Down the generative rungs: each join's gradient is z̃_{l+1}'s (its first columns) and z_l's (the rest).
        var dGenerated = pass.ReconstructionGradient.Select(g => g / rows).ToArray();
        var dZ = new double[count][];
        for (int l = 1; l < count; l++)
        {
            var dJoin = layers.Backward(rungs.GenerativeStart(l), rungs.GenerativeEnd(l), dGenerated, rows, gradient);
            dGenerated = Columns(dJoin, rows, hiddenTop + width, 0, hiddenTop);
            dZ[l - 1] = Columns(dJoin, rows, hiddenTop + width, hiddenTop, width);
        }
        dZ[count - 1] = layers.Backward(rungs.GenerativeStart(count), rungs.GenerativeEnd(count), dGenerated, rows, gradient);

        // Up the inference rungs from the top: h_l's gradient is its head's plus the one from rung l+1.
        double[]? dFromAbove = null;
        for (int l = count; l >= 1; l--)
        {
            // β·KL per example is β/k on each of its k rows.
            var dRowStats = LossReference.ReparameterizeBackward(pass.RowStats[l - 1], pass.Epsilon[l - 1], dZ[l - 1], rows, width, beta / rows);
            var dStats = ImportanceReference.SumRepeatedRows(dRowStats, batch, 2 * width, samples);
            var dHidden = layers.Backward(rungs.Head(l), rungs.Head(l) + 1, dStats, batch, gradient);
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
