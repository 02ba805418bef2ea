using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// A learned multimodal prior p(z) = (1/C) Σ_c N(z; μ_c, σ_c²) whose components [μ_c | log σ_c²] come from layers
/// [<see cref="ParameterLayout.AuxiliaryStart"/>, end) run on C one-hot rows (so every component's parameters are
/// ordinary weights in the flat buffer, saved, clipped and stepped by Adam with the rest). The mixture of Gaussians
/// reads its components straight from one such layer; the VampPrior's layer makes pseudo-inputs, which the encoder
/// then reads beside the batch. <see cref="MixturePriorLatent"/> samples against the components and writes their
/// gradient; this class runs the layers around that.
/// </summary>
public abstract class LearnedPrior
{
    /// <summary>The C×C identity the prior's first layer reads, and each z row's responsibilities p(c|z).</summary>
    public const string OneHotRows = "prior.one_hot", Responsibilities = "prior.responsibilities";

    protected LearnedPrior(ModelParts parts)
    {
        Kernels = parts.Kernels;
        Config = parts.Config;
        Layout = parts.Layout;
        Stack = parts.Stack;
        Workspace = parts.Workspace;
        var identity = new float[Count * Count];
        for (int c = 0; c < Count; c++)
            identity[c * Count + c] = 1f;
        OneHot.CopyFromCPU(identity);
    }

    protected KernelSet Kernels { get; }
    protected VaeConfig Config { get; }
    protected ParameterLayout Layout { get; }
    protected DenseStack Stack { get; }
    protected Workspace Workspace { get; }

    /// <summary>The components C.</summary>
    public int Count => Config.ModelPriorComponents;

    protected ArrayView<float> OneHot => Workspace.Floats(OneHotRows).View.SubView(0, (long)Count * Count);

    /// <summary>The encoder's last layer: the statistics layer.</summary>
    protected int StatisticsLayer => Layout.EncoderLayerCount - 1;

    /// <summary>The prior's own layers forward, before the encoder runs on <paramref name="batchInput"/>.</summary>
    public abstract void Prepare(ArrayView<float> batchInput, int batch);

    /// <summary>What the encoder reads in a pass over <paramref name="batch"/> examples, and its rows.</summary>
    public virtual (ArrayView<float> Input, int Rows) EncoderInput(ArrayView<float> batchInput, int batch) => (batchInput, batch);

    /// <summary>Where the encoder's backward pass writes the gradient of what it read (none: the data).</summary>
    public virtual ArrayView<float> EncoderInputGradient(int batch) => Kernels.None;

    /// <summary>The components [C, 2·latent] after the encoder's forward pass, and where their gradient goes.</summary>
    public abstract ArrayView<float> Components(int batch);

    public abstract ArrayView<float> ComponentGradient(int batch);

    /// <summary>After the encoder's backward pass: the prior's own layers back to their weights.</summary>
    public abstract void Backward(int batch);

    /// <summary>The components alone, [C, 2·latent] (waits for the device; between passes only, as it may
    /// overwrite the encoder's buffers).</summary>
    public abstract float[] DownloadComponents();

    /// <summary>The prior's layers back from the gradient in their top layer's buffer.</summary>
    protected void PriorLayersBackward() => Stack.Backward(Layout.AuxiliaryStart, Layout.Layers.Count, Count, OneHot, Kernels.None);

    protected void PriorLayersForward() => Stack.Forward(Layout.AuxiliaryStart, Layout.Layers.Count, OneHot, Count);

    /// <summary>The prior of a config, or null for N(0, I).</summary>
    public static LearnedPrior? Create(ModelParts parts) => parts.Config.ModelPrior switch
    {
        PriorKind.Mixture or PriorKind.Factorized => new MixtureOfGaussiansPrior(parts),
        PriorKind.Vamp => new VampPrior(parts),
        _ => null,
    };

    /// <summary>Its layers after every decoder: the mixture's [μ_c | log σ_c²] as one stats layer from the one-hot
    /// rows (the factorized marginal's [m | log s²] from the single row 1, so m = weight + bias), or the VampPrior's
    /// pseudo-inputs u_c = sigmoid(W e_c + b), in the data's range [0, 1].</summary>
    public static void BuildLayers(LayoutBuilder layout)
    {
        var config = layout.Config;
        if (config.ModelPrior == PriorKind.Standard)
            return;
        layout.StartAuxiliary();
        if (config.ModelPrior == PriorKind.Vamp)
            layout.Add("vamp.pseudo_inputs", config.PriorComponents, config.EncoderInputs, ActivationKind.Sigmoid);
        else
            layout.Add(config.ModelPrior == PriorKind.Mixture ? "mixture.stats" : "marginal.stats", config.ModelPriorComponents, 2 * config.Latent, ActivationKind.Identity);
    }

    /// <summary>The rows a layer sees with this prior: C in its own layers; the VampPrior's encoder also reads the
    /// C pseudo-inputs after the batch; null where the family decides.</summary>
    public static long? RowsOfLayer(ParameterLayout layout, int layer, long batch)
    {
        var config = layout.Config;
        if (config.ModelPrior == PriorKind.Standard)
            return null;
        if (layer >= layout.AuxiliaryStart)
            return config.ModelPriorComponents;
        return config.ModelPrior == PriorKind.Vamp && layer < layout.EncoderLayerCount ? batch + config.PriorComponents : null;
    }

    public static void Plan(WorkspacePlan plan, VaeConfig config, long batch, long rows)
    {
        if (config.ModelPrior == PriorKind.Standard)
            return;
        long count = config.ModelPriorComponents;
        plan.Floats(OneHotRows, count * count);
        if (config.ModelPrior != PriorKind.Factorized)
            plan.Floats(Responsibilities, rows * count); // the mixture latent's p(c|z) per z row
        if (config.ModelPrior == PriorKind.Vamp)
        {
            plan.Floats(VampPrior.EncoderRows, (batch + count) * config.EncoderInputs);
            plan.Floats(VampPrior.EncoderRowsGradient, (batch + count) * config.EncoderInputs);
        }
    }
}

/// <summary>The mixture of Gaussians: one layer from the one-hot rows to [μ_c | log σ_c²]; with one component,
/// CorEx's factorized marginal.</summary>
public sealed class MixtureOfGaussiansPrior(ModelParts parts) : LearnedPrior(parts)
{
    public override void Prepare(ArrayView<float> batchInput, int batch) => PriorLayersForward();

    public override ArrayView<float> Components(int batch) => Stack.Output(Layout.AuxiliaryStart, Count);

    public override ArrayView<float> ComponentGradient(int batch) => Stack.Gradient(Layout.AuxiliaryStart, Count);

    public override void Backward(int batch) => PriorLayersBackward();

    public override float[] DownloadComponents()
    {
        PriorLayersForward();
        Kernels.Synchronize();
        return ArrayViewExtensions.GetAsArray1D<float>(Components(0));
    }
}

/// <summary>
/// The VampPrior: components q(z|u_c) of C learned pseudo-inputs. Each pass the encoder reads [batch | u_1 … u_C]
/// as one matrix, so its weights' gradient sums the batch's and the prior's terms in one product; the rows after the
/// batch's are the components, and the gradient of the pseudo-input rows flows back into their layer.
/// </summary>
public sealed class VampPrior(ModelParts parts) : LearnedPrior(parts)
{
    /// <summary>[batch + C, encoder inputs]: the encoder's input, and its gradient.</summary>
    public const string EncoderRows = "vamp.encoder_rows", EncoderRowsGradient = "vamp.encoder_rows_gradient";

    private int Width => Config.EncoderInputs;

    private ColumnBlock Rows(int rows) => new(rows, Width, Width, 0, Width, 0);

    private ArrayView<float> Combined(string name, int batch) => Workspace.Floats(name).View.SubView(0, (long)(batch + Count) * Width);

    /// <summary>The pseudo-inputs' layer (the prior's only one), [C, encoder inputs].</summary>
    private ArrayView<float> PseudoInputs => Stack.Output(Layout.AuxiliaryStart, Count);

    public override void Prepare(ArrayView<float> batchInput, int batch)
    {
        PriorLayersForward();
        var combined = Combined(EncoderRows, batch);
        Kernels.CopyColumns(batchInput, combined.SubView(0, (long)batch * Width), Rows(batch));
        Kernels.CopyColumns(PseudoInputs, combined.SubView((long)batch * Width, (long)Count * Width), Rows(Count));
    }

    public override (ArrayView<float> Input, int Rows) EncoderInput(ArrayView<float> batchInput, int batch) =>
        (Combined(EncoderRows, batch), batch + Count);

    public override ArrayView<float> EncoderInputGradient(int batch) => Combined(EncoderRowsGradient, batch);

    private ArrayView<float> AfterBatch(ArrayView<float> rows, int batch) =>
        rows.SubView((long)batch * 2 * Config.Latent, (long)Count * 2 * Config.Latent);

    public override ArrayView<float> Components(int batch) => AfterBatch(Stack.Output(StatisticsLayer, batch + Count), batch);

    public override ArrayView<float> ComponentGradient(int batch) => AfterBatch(Stack.Gradient(StatisticsLayer, batch + Count), batch);

    public override void Backward(int batch)
    {
        Kernels.CopyColumns(EncoderInputGradient(batch).SubView((long)batch * Width, (long)Count * Width), Stack.Gradient(Layout.AuxiliaryStart, Count), Rows(Count));
        PriorLayersBackward();
    }

    /// <summary>The pseudo-inputs u_c, [C, encoder inputs] (waits for the device).</summary>
    public float[] DownloadPseudoInputs()
    {
        PriorLayersForward();
        Kernels.Synchronize();
        return ArrayViewExtensions.GetAsArray1D<float>(PseudoInputs);
    }

    public override float[] DownloadComponents()
    {
        PriorLayersForward();
        Stack.Forward(0, Layout.EncoderLayerCount, PseudoInputs, Count);
        Kernels.Synchronize();
        return ArrayViewExtensions.GetAsArray1D<float>(Stack.Output(StatisticsLayer, Count));
    }
}
