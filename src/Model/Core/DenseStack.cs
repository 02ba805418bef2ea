using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Core;

/// <summary>
/// Every dense layer of a model over one flat parameter buffer (see <see cref="ParameterLayout"/>): the forward
/// and backward passes of any contiguous range of layers, each layer writing its own output and gradient
/// buffers in the workspace. Families compose their networks from ranges of this stack.
/// </summary>
public sealed class DenseStack
{
    private readonly KernelSet kernels;
    private readonly Workspace workspace;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> parameters, gradients;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] outputs, layerGradients;

    public DenseStack(KernelSet kernels, ParameterLayout layout, Workspace workspace)
    {
        this.kernels = kernels;
        this.workspace = workspace;
        Layout = layout;
        parameters = workspace.Floats(ModelBuffers.Parameters);
        gradients = workspace.Floats(ModelBuffers.Gradients);
        outputs = Enumerable.Range(0, layout.Layers.Count).Select(i => workspace.Floats(ModelBuffers.LayerOutput(i))).ToArray();
        layerGradients = Enumerable.Range(0, layout.Layers.Count).Select(i => workspace.Floats(ModelBuffers.LayerGradient(i))).ToArray();
    }

    public ParameterLayout Layout { get; }

    /// <summary>Whether batch-normalised layers use the batch's statistics (a training pass) or the running averages.</summary>
    public bool TrainingPass { get; set; }

    /// <summary>The first <paramref name="rows"/> rows of layer <paramref name="layer"/>'s output.</summary>
    public ArrayView<float> Output(int layer, long rows) => outputs[layer].View.SubView(0, rows * Layout.Layers[layer].Outputs);

    /// <summary>The first <paramref name="rows"/> rows of the gradient with respect to layer <paramref name="layer"/>'s output.</summary>
    public ArrayView<float> Gradient(int layer, long rows) => layerGradients[layer].View.SubView(0, rows * Layout.Layers[layer].Outputs);

    /// <summary>Runs layers [from, to) forward from <paramref name="input"/>, each into its output buffer.</summary>
    public void Forward(int from, int to, ArrayView<float> input, int rows)
    {
        for (int i = from; i < to; i++)
        {
            var layer = Layout.Layers[i];
            var output = Output(i, rows);
            if (layer.BatchNorm)
            {
                var preActivation = PreActivation(i, rows);
                kernels.DenseForward(ActivationKind.Identity, input, Weights(parameters, layer), Bias(parameters, layer),
                    preActivation, rows, layer.Inputs, layer.Outputs);
                kernels.BatchNormForward(layer.Activation, preActivation, Norm(parameters, layer, 4), output,
                    NormStatistics(i), new BatchNormShape(rows, layer.Outputs, TrainingPass));
            }
            else
                kernels.DenseForward(layer.Activation, input, Weights(parameters, layer), Bias(parameters, layer),
                    output, rows, layer.Inputs, layer.Outputs);
            input = output;
        }
    }

    /// <summary>
    /// Layers to−1 down to from, on <paramref name="rows"/> rows, from the gradient in layer to−1's gradient buffer
    /// (with respect to its output). Layer <paramref name="from"/> reads <paramref name="input"/> and writes its
    /// plain input gradient to <paramref name="dInput"/> (<see cref="KernelSet.None"/> for the data); the others use
    /// the buffers of the layer below, into which each input-gradient product already multiplies the layer below's act'.
    /// </summary>
    /// <summary>Told each layer whose weight and bias gradients a backward pass has just enqueued (a
    /// data-parallel step's gradient exchange sends them from there); null outside such steps.</summary>
    public Action<int>? GradientReady { get; set; }

    public void Backward(int from, int to, int rows, ArrayView<float> input, ArrayView<float> dInput)
    {
        // The stack's own gradient came from outside (a loss, a sampler, or two branches added), so its act' is
        // applied here; batch norm's backward pass applies it itself.
        var top = Layout.Layers[to - 1];
        if (!top.BatchNorm)
            kernels.ActivationGradient(top.Activation, Output(to - 1, rows), Gradient(to - 1, rows));
        for (int i = to - 1; i >= from; i--)
        {
            var layer = Layout.Layers[i];
            var layerInput = i == from ? input : Output(i - 1, rows);
            var layerDInput = i == from ? dInput : Gradient(i - 1, rows);
            var dPre = Gradient(i, rows);
            if (layer.BatchNorm)
            {
                // Through the activation and the normalisation to the product, in place; the rest is a linear layer.
                kernels.BatchNormBackward(layer.Activation, PreActivation(i, rows), Norm(parameters, layer, 4),
                    Output(i, rows), NormStatistics(i), dPre, Norm(gradients, layer, 2),
                    new BatchNormShape(rows, layer.Outputs, TrainingPass));
            }
            // The layer below's act', fused into its gradient's product, unless its batch norm applies it.
            var below = i == from || Layout.Layers[i - 1].BatchNorm ? ActivationKind.Identity : Layout.Layers[i - 1].Activation;
            // A batch-normalised layer's bias gradient goes nowhere that Adam reads (see ParameterLayout).
            ArrayView<float> dBias = layer.BatchNorm ? workspace.Floats(ModelBuffers.UnusedBiasGradient).View.SubView(0, layer.Outputs) : Bias(gradients, layer);
            kernels.DenseBackward(layerInput, Weights(parameters, layer), dPre, layerDInput, below,
                Weights(gradients, layer), dBias, rows, layer.Inputs, layer.Outputs);
            GradientReady?.Invoke(i);
        }
    }

    /// <summary>Adds the buffers of <paramref name="layout"/>'s layers to a plan, with the rows each layer sees.</summary>
    public static void Plan(WorkspacePlan plan, ParameterLayout layout, Func<int, long> rowsOfLayer)
    {
        for (int i = 0; i < layout.Layers.Count; i++)
        {
            var layer = layout.Layers[i];
            long layerRows = rowsOfLayer(i);
            plan.Floats(ModelBuffers.LayerOutput(i), layerRows * layer.Outputs);
            plan.Floats(ModelBuffers.LayerGradient(i), layerRows * layer.Outputs);
            if (layer.BatchNorm)
            {
                plan.Floats(ModelBuffers.PreActivation(i), layerRows * layer.Outputs);
                plan.Floats(ModelBuffers.NormStatistics(i), 2 * layer.Outputs);
            }
        }
        if (layout.Layers.Any(layer => layer.BatchNorm))
            plan.Floats(ModelBuffers.UnusedBiasGradient, layout.Layers.Where(layer => layer.BatchNorm).Max(layer => layer.Outputs));
    }

    // A batch-normalised layer's product before normalisation, and [mean | 1/σ] per column of the last pass.
    private ArrayView<float> PreActivation(int layer, long rows) =>
        workspace.Floats(ModelBuffers.PreActivation(layer)).View.SubView(0, rows * Layout.Layers[layer].Outputs);

    private ArrayView<float> NormStatistics(int layer) => workspace.Floats(ModelBuffers.NormStatistics(layer)).View;

    private static ArrayView<float> Weights(MemoryBuffer1D<float, Stride1D.Dense> buffer, DenseSlice layer) =>
        buffer.View.SubView(layer.WeightOffset, layer.WeightCount);

    private static ArrayView<float> Bias(MemoryBuffer1D<float, Stride1D.Dense> buffer, DenseSlice layer) =>
        buffer.View.SubView(layer.BiasOffset, layer.Outputs);

    /// <summary>The first <paramref name="rows"/> of a batch-normalised layer's [γ | β | running mean | running
    /// variance]: all four in the parameters, [dγ | dβ] in the gradients.</summary>
    private static ArrayView<float> Norm(MemoryBuffer1D<float, Stride1D.Dense> buffer, DenseSlice layer, int rows) =>
        buffer.View.SubView(layer.NormOffset, rows * layer.Outputs);
}
