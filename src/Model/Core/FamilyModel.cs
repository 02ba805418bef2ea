using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Core;

/// <summary>What a family's model is built from: the kernels, its config and layout, and its workspace.</summary>
public sealed record ModelParts(KernelSet Kernels, VaeConfig Config, ParameterLayout Layout, Workspace Workspace, DenseStack Stack);

/// <summary>
/// One family's computation (the one-layer model, two stochastic layers, the Ladder VAE, VCCA): its forward pass
/// from the gathered batch to the decoder's output, its objective with the gradient and backward pass, its
/// evaluation terms, log importance weights, and encode/decode. <see cref="Vae"/> runs the rest (the batch, the
/// optimiser, the totals) the same way for every family.
/// </summary>
public abstract class FamilyModel
{
    protected FamilyModel(ModelParts parts)
    {
        Kernels = parts.Kernels;
        Config = parts.Config;
        Layout = parts.Layout;
        Workspace = parts.Workspace;
        Stack = parts.Stack;
    }

    protected internal KernelSet Kernels { get; }
    protected internal VaeConfig Config { get; }
    protected internal ParameterLayout Layout { get; }
    protected internal Workspace Workspace { get; }
    protected internal DenseStack Stack { get; }

    /// <summary>Why this family has no likelihood bound of x (no importance weights), or null when it has one.</summary>
    public virtual string? NoLikelihoodBound => null;

    /// <summary>Why the decoder's output is not an image (Decode refuses), or null.</summary>
    public virtual string? NoImages => null;

    /// <summary>Samples per example when scoring a batch (the IWAE is scored by its own k-sample bound).</summary>
    public virtual int EvaluationSamples => 1;

    /// <summary>Work on the gathered batch before the encoder (VCCA splits it into its views).</summary>
    public virtual void PrepareInput(int batch)
    {
    }

    /// <summary>The encoder, the latent draws (with <paramref name="samples"/> per example) and the decoder.</summary>
    public abstract void Forward(int batch, DrawKey key, int samples);

    /// <summary>After <see cref="Forward"/>: the objective, its totals when asked, and the gradient of every parameter.</summary>
    public abstract void Train(Pass pass);

    /// <summary>After <see cref="Forward"/>: the terms of the objective, added to the totals; no gradient.</summary>
    public abstract void Evaluate(Pass pass);

    /// <summary>After <see cref="Forward"/> and the reconstruction terms: log w per latent row into the log-weights buffer.</summary>
    public virtual void LogWeightRows(int batch, int samples) => throw new InvalidOperationException(NoLikelihoodBound);

    /// <summary>q of the top latent for a gathered batch: μ and log σ² [batch, latent] (waits for the device).</summary>
    public abstract (float[] Mu, float[] LogVariance) Encode(int batch);

    /// <summary>For a model of several stochastic layers, each layer's posterior mean [batch, K_l] for a gathered batch,
    /// bottom first, on the mean path (each layer's q taken at the means of the layers it reads); null for the others
    /// (waits for the device).</summary>
    public virtual IReadOnlyList<float[]>? LayerMeans(int batch) => null;

    /// <summary>The encoder's last layer for a gathered batch, [batch, its outputs] (waits for the device): q(z|x)'s
    /// statistics as the sampler reads them.</summary>
    public virtual float[] EncoderOutput(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        Kernels.Synchronize();
        return Download(Stack.Output(Layout.EncoderLayerCount - 1, batch));
    }

    /// <summary>A learned prior's components [C, 2·latent] as [μ_c | log σ_c²] rows, or null with N(0, I) (waits
    /// for the device; between passes only).</summary>
    public virtual float[]? PriorComponents() => null;

    /// <summary><paramref name="count"/> codes drawn from the model's own prior where it is not Gaussian (the sigmoid
    /// belief network's binary units), or null to draw them as <see cref="Vae.PriorCodes"/> does (waits for the device).</summary>
    public virtual float[]? DrawPriorCodes(int count, ulong seed) => null;

    /// <summary>The mutual autoencoder's Î(x; z) = H(z) + mean log r(z|x) over <paramref name="rows"/> pairs drawn
    /// from the model with <paramref name="key"/>, or null for a model without r (waits for the device).</summary>
    public virtual float? InformationEstimate(int rows, DrawKey key) => null;

    /// <summary>For a model whose latent units add to the pixels' rates through positive weights (the DEF), each
    /// layer's units as images, bottom first, [K_l, pixels] each: the rates one unit adds at value 1, the others 0,
    /// down the weights; null for the others (waits for the device).</summary>
    public virtual IReadOnlyList<float[]>? LayerComponents() => null;

    /// <summary>The VampPrior's pseudo-inputs [C, encoder inputs], or null without one (waits for the device).</summary>
    public virtual float[]? PseudoInputs() => null;

    /// <summary>Puts <paramref name="codes"/> of the top latent in place and runs the decoder on them.</summary>
    public abstract void Decode(float[] codes, int batch);

    /// <summary>What the encoder reads: the batch, or VCCA's first view of it.</summary>
    public virtual ArrayView<float> EncoderInput(int batch) => Input(batch);

    /// <summary>The decoder's output rows [rows, input] and their gradient.</summary>
    public virtual ArrayView<float> Output(int rows) => Stack.Output(Layout.AuxiliaryStart - 1, rows);

    public virtual ArrayView<float> OutputGradient(int rows) => Stack.Gradient(Layout.AuxiliaryStart - 1, rows);

    /// <summary>p(x|z) from <paramref name="codes"/>, [rows, latent].</summary>
    protected virtual void DecoderForward(ArrayView<float> codes, int rows) =>
        Stack.Forward(Layout.DecoderStart, Layout.DecoderEnd, codes, rows);

    /// <summary>From the gradient in <see cref="OutputGradient"/> back through p(x|z) to <paramref name="dCodes"/>.</summary>
    protected virtual void DecoderBackward(ArrayView<float> codes, ArrayView<float> dCodes, int rows) =>
        Stack.Backward(Layout.DecoderStart, Layout.DecoderEnd, rows, codes, dCodes);

    /// <summary>The reconstruction term of each output row after a forward pass, without a gradient.</summary>
    protected internal virtual void ReconstructionLossRows(int batch, int samples)
    {
        int rows = batch * samples;
        var reconstruction = ReconstructionParameters.For(Config.Likelihood, Config.InputSize, Config.GaussianVariance, 1.0);
        Kernels.ReconstructionLoss(Config.Likelihood, Input(batch), Output(rows), ReconstructionPerRow(rows), rows,
            Config.InputSize, reconstruction, samples);
    }

    /// <summary>The reconstruction gradient with row r weighted by scale·weights[r] (the IWAE's w̃, or equal shares).</summary>
    protected internal void WeightedReconstructionGradient(int batch, int samples, ArrayView<float> weights, double scale)
    {
        int rows = batch * samples;
        var weighted = ReconstructionParameters.For(Config.Likelihood, Config.InputSize, Config.GaussianVariance, scale);
        Kernels.ReconstructionWeightedGradient(Config.Likelihood, Input(batch), Output(rows), OutputGradient(rows), weights,
            rows, Config.InputSize, weighted, samples);
    }

    /// <summary>−L_k and the normalised weights per example from the log weights.</summary>
    protected internal void ImportanceBound(int batch, int samples)
    {
        int rows = batch * samples;
        Kernels.ImportanceBound(LogWeights(rows), NormalizedWeights(rows), ObjectivePerExample(batch), batch, samples);
    }

    /// <summary>Adds the rows' reconstruction and KL terms to the pass's totals.</summary>
    protected internal void AccumulateLoss(Pass pass) =>
        Kernels.AccumulateLoss(ReconstructionPerRow(pass.Rows), KlPerRow(pass.Rows), pass.Totals, pass.Rows);

    /// <summary>Adds the batch's per-example objective (−L_k, InfoVAE or target rate) to the pass's totals.</summary>
    protected internal void AccumulateObjective(Pass pass) =>
        Kernels.AccumulateBound(ObjectivePerExample(pass.Batch), pass.Totals, pass.Batch);

    /// <summary>The first <paramref name="length"/> floats of the workspace buffer <paramref name="name"/>.</summary>
    protected internal ArrayView<float> Floats(string name, long length) => Workspace.Floats(name).View.SubView(0, length);

    protected internal ArrayView<float> Input(int batch) => Floats(ModelBuffers.Input, (long)batch * Config.InputSize);
    protected internal ArrayView<float> Z(int rows) => Floats(ModelBuffers.Z, (long)rows * Config.CodeWidth);
    protected internal ArrayView<float> Epsilon(int rows) => Floats(ModelBuffers.Epsilon, (long)rows * Config.CodeWidth);
    protected internal ArrayView<float> ZGradient(int rows) => Floats(ModelBuffers.ZGradient, (long)rows * Config.CodeWidth);
    protected internal ArrayView<float> KlPerRow(int rows) => Floats(ModelBuffers.KlPerRow, rows);
    protected internal ArrayView<float> ReconstructionPerRow(int rows) => Floats(ModelBuffers.ReconstructionPerRow, rows);
    protected internal ArrayView<float> LogWeights(int rows) => Floats(ModelBuffers.LogWeights, rows);
    protected internal ArrayView<float> NormalizedWeights(int rows) => Floats(ModelBuffers.NormalizedWeights, rows);
    protected internal ArrayView<float> ObjectivePerExample(int batch) => Floats(ModelBuffers.ObjectivePerExample, batch);

    /// <summary>The log weights of <paramref name="rows"/> rows after <see cref="LogWeightRows"/> (waits for the device).</summary>
    public float[] DownloadLogWeights(int rows)
    {
        Kernels.Synchronize();
        return Download(LogWeights(rows));
    }

    /// <summary>Reconstruction terms then log w, for importance sampling.</summary>
    public void ImportanceRows(int batch, int samples)
    {
        ReconstructionLossRows(batch, samples);
        LogWeightRows(batch, samples);
    }

    protected static float[] Download(ArrayView<float> view) => ArrayViewExtensions.GetAsArray1D<float>(view);

    /// <summary>One half of rows of Gaussian stats [rows, 2·width]: the means (first) or the log-variances.</summary>
    protected internal static float[] Half(float[] stats, int rows, int width, bool second) =>
        Columns(stats, rows, 2 * width, second ? width : 0, width);

    /// <summary>Columns [first, first + width) of each of <paramref name="rows"/> rows <paramref name="stride"/> wide.</summary>
    protected internal static float[] Columns(float[] table, int rows, int stride, int first, int width)
    {
        var columns = new float[rows * width];
        for (int row = 0; row < rows; row++)
            Array.Copy(table, row * stride + first, columns, row * width, width);
        return columns;
    }
}

/// <summary>
/// A family as the model layer sees it before any model exists: the buffers its models need (which are also its
/// memory plan) and how to build one. One per folder under Models/.
/// </summary>
public abstract class ModelFamily
{
    /// <summary>Adds this family's own buffers (beyond <see cref="ModelBuffers.PlanShared"/>) for a batch and its latent rows.</summary>
    public abstract void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows);

    /// <summary>
    /// The family's dense layers in order: the encoder q(z|x) (its stats layer [μ | log σ²], or the code alone
    /// without a posterior), then whatever lies between (<see cref="BuildMiddle"/>), then the decoders
    /// (<see cref="BuildDecoders"/>). Checkpoints name the layers, so a family keeps its order once released.
    /// </summary>
    public void BuildLayout(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.Stage("encoder", config.EncoderInputs, config.Hidden, EncoderOutputs(config), posterior: config.Spec.GaussianStatistics);
        layout.EndEncoder();
        BuildMiddle(layout);
        layout.StartDecoder();
        BuildDecoders(layout);
        BuildAuxiliary(layout);
    }

    /// <summary>Auxiliary networks after the decoders, a learned prior's or r(z|x) (see <see cref="ParameterLayout.AuxiliaryStart"/>); none by default.</summary>
    protected virtual void BuildAuxiliary(LayoutBuilder layout)
    {
    }

    /// <summary>Columns of the encoder's last layer: the config's (all of z's statistics, or the code).</summary>
    protected virtual int EncoderOutputs(VaeConfig config) => config.EncoderOutputs;

    /// <summary>Layers between the encoder and the decoder (a second stochastic layer's); none by default.</summary>
    protected virtual void BuildMiddle(LayoutBuilder layout)
    {
    }

    /// <summary>p(x|z) mirroring the encoder, to the config's output columns.</summary>
    protected virtual void BuildDecoders(LayoutBuilder layout)
    {
        layout.Decoder("decoder", layout.Config.OutputSize);
        layout.EndDecoder();
    }

    /// <summary>Rows layer <paramref name="layer"/> sees: one per example in the encoder, one per sample above it.</summary>
    public virtual long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer < layout.EncoderLayerCount ? batch : batch * samples;

    public abstract FamilyModel Create(ModelParts parts);

    /// <summary>The family's objective in double precision, which its model is checked against.</summary>
    public abstract ReferenceModel Reference { get; }
}
