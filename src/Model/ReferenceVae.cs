using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Model;

/// <summary>
/// The whole VAE objective and its gradient in double precision, built from the kernel references: the pipeline
/// against which <see cref="Vae"/> is checked step for step. Same layout, same objective (batch mean of
/// rec + β·KL), same ε.
/// </summary>
public static class ReferenceVae
{
    public sealed record Result(double Loss, double Reconstruction, double Kl, double[] Gradient);

    /// <summary>The ε that <see cref="Vae"/> draws for training step <paramref name="step"/>, in double.</summary>
    public static double[] Epsilon(ulong seed, long step, int batch, int latent) =>
        Enumerable.Range(0, batch * latent)
            .Select(element => Philox.NormalDouble(seed, Philox.Streams.Reparameterize, step, element)).ToArray();

    /// <summary>The forward pass in double: each layer's input and output, z, and the per-row KL and
    /// reconstruction terms.</summary>
    private sealed record Pass(ParameterLayout Layout, double[][] Inputs, double[][] Outputs, double[] Z,
        double[] KlPerRow, double[] ReconstructionPerRow, double[] DOutput);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var layout = new ParameterLayout(config);
        var layers = layout.Layers;
        var inputs = new double[layers.Count][];
        var outputs = new double[layers.Count][];
        double[] current = x;
        double[] kl = [];
        double[] z = [];
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            if (i == layout.EncoderLayerCount)
            {
                (z, kl) = LossReference.ReparameterizeForward(current, epsilon, batch, config.Latent);
                current = z;
            }
            inputs[i] = current;
            outputs[i] = DenseReference.Forward(layer.Activation, current, Weights(parameters, layer), Bias(parameters, layer),
                batch, layer.Inputs, layer.Outputs);
            current = outputs[i];
        }
        var (reconstructionPerRow, dOutput) = LossReference.Reconstruction(config.Likelihood, x, current, batch,
            config.InputSize, config.GaussianVariance, 1.0 / batch);
        return new Pass(layout, inputs, outputs, z, kl, reconstructionPerRow, dOutput);
    }

    /// <summary>log w = log p(x|z) + log p(z) − log q(z|x) per row, for the given ε.</summary>
    public static double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch);
        return LossReference.LogWeights(pass.Outputs[pass.Layout.EncoderLayerCount - 1], pass.Z, epsilon, pass.ReconstructionPerRow, batch, config.Latent);
    }

    public static Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch);
        var (layout, inputs, outputs) = (pass.Layout, pass.Inputs, pass.Outputs);
        var layers = layout.Layers;
        double reconstruction = pass.ReconstructionPerRow.Sum() / batch;
        double klMean = pass.KlPerRow.Sum() / batch;
        double[] dOutput = pass.DOutput;

        var gradient = new double[layout.Count];
        double[] dCurrent = dOutput;
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            var layer = layers[i];
            var (dInput, dWeights, dBias) = DenseReference.Backward(layer.Activation, inputs[i],
                Weights(parameters, layer), Bias(parameters, layer), dCurrent, batch, layer.Inputs, layer.Outputs);
            dWeights.CopyTo(gradient, layer.WeightOffset);
            dBias.CopyTo(gradient, layer.BiasOffset);
            dCurrent = dInput;
            if (i == layout.EncoderLayerCount)
                dCurrent = LossReference.ReparameterizeBackward(outputs[i - 1], epsilon, dCurrent, batch, config.Latent, config.Beta / batch);
        }
        return new Result(reconstruction + config.Beta * klMean, reconstruction, klMean, gradient);
    }

    private static double[] Weights(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.WeightOffset, layer.WeightCount).ToArray();

    private static double[] Bias(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.BiasOffset, layer.Outputs).ToArray();
}
