using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Sbn;

/// <summary>
/// NVIL's variance reduction (Mnih and Gregor 2014) for the families of binary units (the sigmoid belief network,
/// DARN): the learning signal l = −(rec + β·KL) per row, centred by a baseline network b(x) of
/// <see cref="BaselineHidden"/> tanh units (trained on mean (l − b(x) − m)²), the running mean m and divided by the
/// running standard deviation √v when above 1. m and v are state in the parameter buffer, updated with decay 0.8
/// after each training batch has used them (the division only when <paramref name="normaliseSignal"/>). Its layers
/// are the last three of a layout: the moments, then the baseline network's two.
/// </summary>
public sealed class Nvil(ModelParts parts, bool normaliseSignal = true)
{
    /// <summary>The learning signal centred per row, and l − b(x) per row (what the moments are updated from).</summary>
    public const string Centred = "nvil.centred", SignalMinusBaseline = "nvil.signal_minus_baseline";

    /// <summary>The baseline network's hidden units (NVIL's 100).</summary>
    public const int BaselineHidden = 100;

    /// <summary>NVIL's decay of the running moments (Mnih and Gregor's α).</summary>
    public const float MomentDecay = 0.8f;

    /// <summary>NVIL's devices: the baseline network, the running mean and (when asked) the variance normalisation.</summary>
    public static SignalCentring Devices(bool normalise) => new(subtractBaseline: true, subtractRunningMean: true, normalise: normalise);

    /// <summary>The moments (state), then x → 100 tanh → b(x): call last when building a layout.</summary>
    public static void BuildLayers(LayoutBuilder layout)
    {
        layout.AddState("nvil.signal_moments", 2);
        layout.Add("nvil.baseline.0", layout.Config.EncoderInputs, BaselineHidden, ActivationKind.Tanh);
        layout.Add("nvil.baseline.out", BaselineHidden, 1, ActivationKind.Identity);
    }

    public static int MomentsLayer(ParameterLayout layout) => layout.Layers.Count - 3;

    /// <summary>The rows NVIL's layers see (one for the moments, the batch's for the baseline network), or null
    /// for a layer before them.</summary>
    public static long? RowsOfLayer(ParameterLayout layout, int layer, long batch) =>
        layer == MomentsLayer(layout) ? 1 : layer > MomentsLayer(layout) ? batch : null;

    public static void Plan(WorkspacePlan plan, long rows)
    {
        plan.Floats(Centred, rows);
        plan.Floats(SignalMinusBaseline, rows);
    }

    private readonly KernelSet kernels = parts.Kernels;
    private readonly DenseStack stack = parts.Stack;
    private readonly ParameterLayout layout = parts.Layout;
    private readonly Workspace workspace = parts.Workspace;

    private int BaselineStart => MomentsLayer(layout) + 1;
    private int BaselineEnd => layout.Layers.Count;

    /// <summary>[running mean, running variance] of l − b(x), in the parameter buffer.</summary>
    private ArrayView<float> Moments => workspace.Floats(ModelBuffers.Parameters).View.SubView(layout.Layers[MomentsLayer(layout)].BiasOffset, 2);

    private ArrayView<float> Floats(string name, long length) => workspace.Floats(name).View.SubView(0, length);

    /// <summary>The centred signal per row after <see cref="Center"/>.</summary>
    public ArrayView<float> CentredSignal(int rows) => Floats(Centred, rows);

    /// <summary>After the reconstruction and KL terms of each row are written: the baseline network forward on the
    /// batch's input, the centred signal, and the baseline network's gradient. The signal is −(rec + β·KL) per row, or
    /// with <paramref name="signalKl"/> the terms given there in place of the KL term.</summary>
    public void Center(ArrayView<float> input, int batch, int samples, float beta, ArrayView<float>? signalKl = null)
    {
        int rows = batch * samples;
        stack.Forward(BaselineStart, BaselineEnd, input, batch);
        kernels.NvilSignal(Floats(ModelBuffers.ReconstructionPerRow, rows), signalKl ?? Floats(ModelBuffers.KlPerRow, rows), stack.Output(BaselineEnd - 1, batch), Moments,
            Floats(Centred, rows), Floats(SignalMinusBaseline, rows), stack.Gradient(BaselineEnd - 1, batch), samples, beta, Devices(normaliseSignal), 1f / rows);
        stack.Backward(BaselineStart, BaselineEnd, batch, input, kernels.None);
    }

    /// <summary>After the batch has used them, so that the centring never depends on its own draws.</summary>
    public void UpdateMoments(int rows) =>
        kernels.UpdateSignalMoments(Floats(SignalMinusBaseline, rows), Floats(SignalMinusBaseline, rows), Moments, MomentDecay, subtractBaseline: 0);
}

/// <summary><see cref="Nvil"/> in double, for the families' references.</summary>
public static class NvilReference
{
    /// <summary>The centred signal per row; writes the baseline network's gradient; returns the baseline's objective
    /// (mean (l − b − m)²), where its parameters start, and the moments after the batch (offset → values).</summary>
    public static (double[] Centred, double BaselineObjective, int BaselineFrom, Dictionary<int, double[]> Moments) Center(ReferenceLayers layers,
        VaeConfig config, double[] parameters, double[] x, double[] reconstruction, double[] kl, int batch, double beta, double[] gradient,
        bool normalise = true)
    {
        var layout = layers.Layout;
        int rows = reconstruction.Length, momentsLayer = Nvil.MomentsLayer(layout);
        int offset = layout.Layers[momentsLayer].BiasOffset;
        double runningMean = parameters[offset], runningVariance = parameters[offset + 1];
        var baseline = layers.Run(momentsLayer + 1, layout.Layers.Count, x, batch);
        var (centred, left, dBaseline) = BinaryLatentReference.NvilSignal(reconstruction, kl, baseline, runningMean, runningVariance,
            config.Samples, beta, subtractBaseline: true, subtractRunningMean: true, normalise: normalise, baselineScale: 1.0 / rows);
        layers.Backward(momentsLayer + 1, layout.Layers.Count, dBaseline, batch, gradient);
        var (mean, variance) = ScoreFunctionReference.UpdateMoments(left, null, runningMean, runningVariance, Nvil.MomentDecay);
        return (centred, left.Average(value => (value - runningMean) * (value - runningMean)), layout.Layers[momentsLayer + 1].WeightOffset,
            new Dictionary<int, double[]> { [offset] = [mean, variance] });
    }
}
