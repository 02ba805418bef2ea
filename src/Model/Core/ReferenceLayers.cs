using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Model.Core;

/// <summary>Dense layers run in double, batch norm included: every layer's input and output, and for a
/// batch-normalised layer its product before normalisation, the statistics it normalised with, and in a
/// training pass the running averages after it (keyed by their offset in the parameters).</summary>
public sealed class ReferenceLayers
{
    private readonly double[] parameters;
    private readonly bool training;

    public ReferenceLayers(VaeConfig config, double[] parameters, bool training)
    {
        Layout = new ParameterLayout(config);
        Inputs = new double[Layout.Layers.Count][];
        Outputs = new double[Layout.Layers.Count][];
        this.parameters = parameters;
        this.training = training;
    }

    public ParameterLayout Layout { get; }
    public double[][] Inputs { get; }
    public double[][] Outputs { get; }
    private readonly Dictionary<int, (double[] PreActivation, BatchNormReference.Statistics Statistics)> normalised = [];
    public Dictionary<int, double[]> RunningAverages { get; } = [];

    /// <summary>Layers [from, to) forward from <paramref name="input"/> on <paramref name="rows"/> rows.</summary>
    public double[] Run(int from, int to, double[] input, int rows)
    {
        for (int i = from; i < to; i++)
        {
            var layer = Layout.Layers[i];
            Inputs[i] = input;
            if (layer.BatchNorm)
            {
                var preActivation = DenseReference.Forward(ActivationKind.Identity, input, Weights(parameters, layer),
                    Bias(parameters, layer), rows, layer.Inputs, layer.Outputs);
                (Outputs[i], var statistics) = BatchNormReference.Forward(layer.Activation, preActivation, Norm(parameters, layer),
                    rows, layer.Outputs, training);
                normalised[i] = (preActivation, statistics);
                if (training)
                    RunningAverages[layer.NormOffset + 2 * layer.Outputs] = [.. statistics.RunningMean, .. statistics.RunningVariance];
            }
            else
                Outputs[i] = DenseReference.Forward(layer.Activation, input, Weights(parameters, layer), Bias(parameters, layer),
                    rows, layer.Inputs, layer.Outputs);
            input = Outputs[i];
        }
        return input;
    }

    /// <summary>Layers to−1 down to from, writing their parameters' gradients; returns d input of layer from.</summary>
    public double[] Backward(int from, int to, double[] dOutput, int rows, double[] gradient)
    {
        for (int i = to - 1; i >= from; i--)
        {
            var layer = Layout.Layers[i];
            var activation = layer.Activation;
            if (layer.BatchNorm)
            {
                var (preActivation, statistics) = normalised[i];
                (dOutput, var dNorm) = BatchNormReference.Backward(layer.Activation, preActivation, Norm(parameters, layer),
                    statistics, dOutput, rows, layer.Outputs, training);
                dNorm.CopyTo(gradient, layer.NormOffset);
                activation = ActivationKind.Identity;
            }
            var (dInput, dWeights, dBias) = DenseReference.Backward(activation, Inputs[i],
                Weights(parameters, layer), Bias(parameters, layer), dOutput, rows, layer.Inputs, layer.Outputs);
            dWeights.CopyTo(gradient, layer.WeightOffset);
            if (!layer.BatchNorm)
                dBias.CopyTo(gradient, layer.BiasOffset); // (normalisation removes the bias: it stays 0)
            dOutput = dInput;
        }
        return dOutput;
    }

    private static double[] Norm(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.NormOffset, 4 * layer.Outputs).ToArray();

    private static double[] Weights(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.WeightOffset, layer.WeightCount).ToArray();

    private static double[] Bias(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.BiasOffset, layer.Outputs).ToArray();
}
