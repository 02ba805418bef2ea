using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Model;

/// <summary>
/// The whole objective (VAE, IWAE or autoencoder) and its gradient in double precision, built from the kernel
/// references: the pipeline against which <see cref="Vae"/> is checked step for step. Same layout, same
/// objective, same ε. It repeats each example's stats and target once per sample and sums the samples'
/// gradients back, where the kernels index row / k instead: the two must agree.
/// </summary>
public static class ReferenceVae
{
    public sealed record Result(double Loss, double Reconstruction, double Kl, double[] Gradient);

    /// <summary>The ε that <see cref="Vae"/> draws for training step <paramref name="step"/>, in double.</summary>
    public static double[] Epsilon(ulong seed, long step, int batch, int latent) =>
        Enumerable.Range(0, batch * latent)
            .Select(element => Philox.NormalDouble(seed, Philox.Streams.Reparameterize, step, element)).ToArray();

    /// <summary>The forward pass in double: each layer's input and output, the stats (or the autoencoder's code),
    /// the stats repeated once per sample, z, and the per-row KL and reconstruction terms (rows = batch·k).</summary>
    private sealed record Pass(ParameterLayout Layout, double[][] Inputs, double[][] Outputs, double[] RepeatedStats,
        double[] Z, double[] KlPerRow, double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var layout = new ParameterLayout(config);
        var layers = layout.Layers;
        int samples = config.Samples, rows = batch * samples, latent = config.Latent;
        var inputs = new double[layers.Count][];
        var outputs = new double[layers.Count][];
        double[] current = x;
        double[] repeatedStats = [], z = [], kl = new double[rows];
        int currentRows = batch;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            if (i == layout.EncoderLayerCount && config.Model != ModelKind.Ae)
            {
                // Each example's q(z|x) sampled k times: its stats row repeated, one ε row per sample.
                repeatedStats = ImportanceReference.RepeatRows(current, batch, 2 * latent, samples);
                (z, kl) = LossReference.ReparameterizeForward(repeatedStats, epsilon, rows, latent);
                current = z;
                currentRows = rows;
            }
            inputs[i] = current;
            outputs[i] = DenseReference.Forward(layer.Activation, current, Weights(parameters, layer), Bias(parameters, layer),
                currentRows, layer.Inputs, layer.Outputs);
            current = outputs[i];
        }
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstructionPerRow, dOutput) = LossReference.Reconstruction(config.Likelihood, target, current, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layout, inputs, outputs, repeatedStats, z, kl, reconstructionPerRow, dOutput, rows);
    }

    /// <summary>log w = log p(x|z) + log p(z) − log q(z|x) per row, for the given ε.</summary>
    public static double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch);
        return LossReference.LogWeights(pass.RepeatedStats, pass.Z, epsilon, pass.ReconstructionPerRow, pass.Rows, config.Latent);
    }

    /// <summary>
    /// The objective and its gradient for a batch with ε [batch·k, latent] (none for the autoencoder):
    /// VAE: mean over examples and samples of rec + β·KL (β = <paramref name="klWeight"/>, default the config's);
    /// IWAE: mean over examples of −L_k; autoencoder: mean rec with z the code. Reconstruction and Kl are means per
    /// z row.
    /// </summary>
    public static Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch,
        double? klWeight = null)
    {
        double beta = klWeight ?? config.Beta;
        var pass = Forward(config, parameters, x, epsilon, batch);
        var (layout, inputs, rows) = (pass.Layout, pass.Inputs, pass.Rows);
        int samples = config.Samples, latent = config.Latent;
        double reconstruction = pass.ReconstructionPerRow.Average();
        double klMean = pass.KlPerRow.Average();

        double loss;
        double[] rowWeights; // d loss / d rec_r
        double[] normalizedWeights = [];
        if (config.Model == ModelKind.Iwae)
        {
            var logWeights = LossReference.LogWeights(pass.RepeatedStats, pass.Z, epsilon, pass.ReconstructionPerRow, rows, latent);
            (var negativeBound, normalizedWeights) = ImportanceReference.Bound(logWeights, batch, samples);
            loss = negativeBound.Average();
            rowWeights = normalizedWeights.Select(w => w / batch).ToArray();
        }
        else
        {
            loss = reconstruction + beta * klMean;
            rowWeights = Enumerable.Repeat(1.0 / rows, rows).ToArray();
        }
        var dOutput = new double[pass.ReconstructionGradient.Length];
        for (int i = 0; i < dOutput.Length; i++)
            dOutput[i] = rowWeights[i / config.InputSize] * pass.ReconstructionGradient[i];

        var layers = layout.Layers;
        var gradient = new double[layout.Count];
        double[] dCurrent = dOutput;
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            var layer = layers[i];
            int layerRows = i < layout.EncoderLayerCount || config.Model == ModelKind.Ae ? batch : rows;
            var (dInput, dWeights, dBias) = DenseReference.Backward(layer.Activation, inputs[i],
                Weights(parameters, layer), Bias(parameters, layer), dCurrent, layerRows, layer.Inputs, layer.Outputs);
            dWeights.CopyTo(gradient, layer.WeightOffset);
            dBias.CopyTo(gradient, layer.BiasOffset);
            dCurrent = dInput;
            if (i == layout.EncoderLayerCount && config.Model != ModelKind.Ae)
                dCurrent = StatsGradient(config, pass, epsilon, dCurrent, normalizedWeights, batch, beta);
        }
        return new Result(loss, reconstruction, klMean, gradient);
    }

    /// <summary>From d loss/dz [batch·k, latent] to d loss/d stats [batch, 2·latent].</summary>
    private static double[] StatsGradient(VaeConfig config, Pass pass, double[] epsilon, double[] dZ,
        double[] normalizedWeights, int batch, double beta)
    {
        int samples = config.Samples, latent = config.Latent, rows = pass.Rows;
        double[] dRepeatedStats;
        if (config.Model == ModelKind.Iwae)
        {
            dRepeatedStats = ImportanceReference.SamplerBackward(pass.RepeatedStats, pass.Z, epsilon, dZ, normalizedWeights,
                rows, latent, 1.0 / batch);
        }
        else
        {
            // β·KL per example is β/k·KL on each of its k rows.
            dRepeatedStats = LossReference.ReparameterizeBackward(pass.RepeatedStats, epsilon, dZ, rows, latent, beta / rows);
        }
        return ImportanceReference.SumRepeatedRows(dRepeatedStats, batch, 2 * latent, samples);
    }

    private static double[] Weights(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.WeightOffset, layer.WeightCount).ToArray();

    private static double[] Bias(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.BiasOffset, layer.Outputs).ToArray();
}
