using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Models.Sbn;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.Darn;

/// <summary>
/// DARN's autoregressive binary latent (Gregor et al. 2014; <see cref="Autoregressive"/>): q(h|x) = Π_j
/// Bernoulli(h_j; σ(c_j(x) + Σ_{k&lt;j} U_jk h_k)) with the context c(x) from the encoder, drawn unit by unit; the
/// prior p(h) = Π_j Bernoulli(h_j; σ(b_j + Σ_{k&lt;j} W_jk h_k)) with b from a layer on a column of ones and W, U
/// strictly lower triangular. The KL term log q(h|x) − log p(h) is sampled per row. The encoder's and U's
/// gradients are NVIL's score-function estimates (<see cref="Nvil"/>); the prior's and the decoder's are exact for
/// the drawn h.
/// </summary>
public sealed class DarnLatent : BinaryUnitsLatent
{
    /// <summary>A column of ones (one per row) the prior's bias layer reads; log q per row; q's logits' gradient per row;
    /// the reconstruction term's gradient in h (the Taylor-expansion baseline's).</summary>
    public const string Ones = "darn.ones", LogQ = "darn.log_q", QLogitGradient = "darn.d_q_logits", CodeGradientBuffer = "darn.d_codes";

    public DarnLatent(ModelParts parts) : base(parts, "DARN")
    {
        var ones = Workspace.Floats(Ones);
        ones.View.CopyFromCPU(Enumerable.Repeat(1f, (int)ones.Length).ToArray());
    }

    private int PriorLayer => DarnFamily.PriorLayer(Layout);
    private int PriorWeights => PriorLayer + 1;
    private int EncoderWeights => PriorLayer + 2;

    private ArrayView<float> Context(int batch) => Stack.Output(StatisticsLayer, batch);

    private bool Taylor => Config.DarnEstimator == DarnEstimatorKind.Taylor;

    /// <summary>With the Taylor-expansion baseline the decoder's backward pass writes ∂rec/∂h here.</summary>
    public override ArrayView<float> CodeGradient(int rows) => Taylor ? Floats(CodeGradientBuffer, (long)rows * Units) : Kernels.None;

    /// <summary>A masked layer's W in the parameters or the gradients.</summary>
    private ArrayView<float> Weights(string buffer, int layer) =>
        Workspace.Floats(buffer).View.SubView(Layout.Layers[layer].WeightOffset, (long)Units * Units);

    /// <summary>Logits per row: q's in U's layer output buffer, p's in W's; p's context (b per row) in the bias layer's.</summary>
    private ArrayView<float> QLogits(int rows) => Stack.Output(EncoderWeights, rows);
    private ArrayView<float> PriorLogits(int rows) => Stack.Output(PriorWeights, rows);
    private ArrayView<float> PriorContext(int rows) => Stack.Output(PriorLayer, rows);

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        Kernels.AutoregressiveSample(Context(batch), Weights(ModelBuffers.Parameters, EncoderWeights), Codes(rows), QLogits(rows), Units, key, samples);
        Kernels.BinaryRowLogDensity(Codes(rows), QLogits(rows), Floats(LogQ, rows), Units);
        Stack.Forward(PriorLayer, PriorLayer + 1, Floats(Ones, rows), rows);
        Kernels.AutoregressiveLogits(PriorContext(rows), Weights(ModelBuffers.Parameters, PriorWeights), Codes(rows), PriorLogits(rows), Units);
        Kernels.BinaryKl(Codes(rows), Floats(LogQ, rows), PriorLogits(rows), Floats(ModelBuffers.KlPerRow, rows), Units, priorPerRow: true);
        return Codes(rows);
    }

    /// <summary>The prior's exact gradient (b's and W's), then the gradient of q's logits per row — NVIL's
    /// score-function estimate, or the Taylor-expansion baseline's from ∂f/∂h — which gives U's and (summed over the
    /// samples) the context's.</summary>
    protected override void UnitGradients(int batch, int samples, float beta, ArrayView<float> centred)
    {
        int rows = batch * samples;
        var priorGradient = Stack.Gradient(PriorLayer, rows);
        Kernels.BinaryPriorRowGradient(PriorLogits(rows), Codes(rows), priorGradient, beta / rows);
        Kernels.AutoregressiveWeightGradient(priorGradient, Codes(rows), Weights(ModelBuffers.Gradients, PriorWeights), rows, Units);
        Stack.Backward(PriorLayer, PriorLayer + 1, rows, Floats(Ones, rows), Kernels.None);
        var qGradient = Floats(QLogitGradient, (long)rows * Units);
        if (Taylor)
            Kernels.AutoregressiveTaylorGradient(CodeGradient(rows), Codes(rows), QLogits(rows), PriorLogits(rows), Weights(ModelBuffers.Parameters, EncoderWeights),
                Weights(ModelBuffers.Parameters, PriorWeights), qGradient, Units, beta / rows);
        else
            Kernels.BinaryPosteriorGradient(QLogits(rows), Codes(rows), centred, qGradient, Units, 1, 1f / rows);
        Kernels.AutoregressiveWeightGradient(qGradient, Codes(rows), Weights(ModelBuffers.Gradients, EncoderWeights), rows, Units);
        Kernels.SumSamples(qGradient, Stack.Gradient(StatisticsLayer, batch), Units, samples);
    }

    /// <summary><paramref name="count"/> codes h ~ p(h), drawn unit by unit on the host: unit j of code n is 1 when
    /// Philox (seed, Sample, 0, n·K + j) &lt; σ(b_j + Σ_{k&lt;j} W_jk h_k).</summary>
    public float[] PriorCodes(int count, ulong seed)
    {
        // b from its layer on one row of ones, and W: the prior's parameters alone cross to the host.
        Stack.Forward(PriorLayer, PriorLayer + 1, Floats(Ones, 1), 1);
        Kernels.Synchronize();
        var bias = ArrayViewExtensions.GetAsArray1D<float>(PriorContext(1));
        var weights = ArrayViewExtensions.GetAsArray1D<float>(Weights(ModelBuffers.Parameters, PriorWeights));
        var codes = new float[count * Units];
        for (int n = 0; n < count; n++)
            for (int j = 0; j < Units; j++)
            {
                float logit = bias[j];
                for (int k = 0; k < j; k++)
                    logit += weights[j * Units + k] * codes[n * Units + k];
                codes[n * Units + j] = Philox.Uniform(seed, Philox.Streams.Sample, 0, n * Units + j) < BinaryLatent.Probability(logit) ? 1f : 0f;
            }
        return codes;
    }
}

/// <summary>
/// DARN's model: the one-layer model with <see cref="DarnLatent"/>, whose prior draws are autoregressive. With
/// <see cref="VaeConfig.AutoregressiveDecoder"/> the pixels' logits are the decoder's output f(h) plus A·x over the
/// pixels before each (raster order, A strictly lower triangular): in a pass x is the data, so every logit is one
/// masked product and ∂/∂f is ∂/∂logit; pictures from codes draw the pixels one at a time.
/// </summary>
public sealed class DarnModel(ModelParts parts, DarnLatent latent) : OneLayerModel(parts, latent, new ReconstructionTerm(parts.Config), new Elbo())
{
    /// <summary>The pixels drawn one by one when codes are decoded (the autoregressive decoder's pictures).</summary>
    public const string DrawnPixels = "darn.drawn_pixels";

    /// <summary>Rows per example of the last forward pass: the decoder's A reads x once per example.</summary>
    private int samples = 1;

    private bool Autoregressive => Config.AutoregressiveDecoder;
    private int PixelWeightsLayer => DarnFamily.PixelWeightsLayer(Layout);
    private int Pixels => Config.InputSize;

    /// <summary>A (the pixels' strictly lower-triangular weights) in the parameters or the gradients.</summary>
    private ArrayView<float> PixelWeights(string buffer) =>
        Workspace.Floats(buffer).View.SubView(Layout.Layers[PixelWeightsLayer].WeightOffset, (long)Pixels * Pixels);

    /// <summary>f(h), the decoder's own output (the whole logit without the autoregressive decoder).</summary>
    private ArrayView<float> DecoderOutput(int rows) => Stack.Output(Layout.DecoderEnd - 1, rows);

    /// <summary>The pixels' logits: f(h) + A·x in the masked layer's output buffer, or f(h).</summary>
    public override ArrayView<float> Output(int rows) => Autoregressive ? Stack.Output(PixelWeightsLayer, rows) : DecoderOutput(rows);

    public override void Forward(int batch, DrawKey key, int samples)
    {
        base.Forward(batch, key, samples);
        this.samples = samples;
        if (Autoregressive)
            Kernels.AutoregressiveLogits(DecoderOutput(batch * samples), PixelWeights(ModelBuffers.Parameters), Input(batch), Output(batch * samples), Pixels,
                samples);
    }

    /// <summary>A's gradient from the logits' (which is f's, in <see cref="FamilyModel.OutputGradient"/>), then the decoder's.</summary>
    protected override void DecoderBackward(ArrayView<float> codes, ArrayView<float> dCodes, int rows)
    {
        if (Autoregressive)
            Kernels.AutoregressiveWeightGradient(OutputGradient(rows), Input(rows / samples), PixelWeights(ModelBuffers.Gradients), rows, Pixels, samples);
        base.DecoderBackward(codes, dCodes, rows);
    }

    /// <summary>Codes down the decoder; with the autoregressive decoder each pixel is then drawn in raster order from
    /// σ(f_i(h) + Σ_{k&lt;i} A_ik·x_k), Philox (0, Sample, 1) at element n·D + i, and the output holds those logits:
    /// each pixel's probability given the pixels drawn before it.</summary>
    public override void Decode(float[] codes, int batch)
    {
        base.Decode(codes, batch);
        if (Autoregressive)
            Kernels.AutoregressiveSample(DecoderOutput(batch), PixelWeights(ModelBuffers.Parameters), Floats(DrawnPixels, (long)batch * Pixels), Output(batch),
                Pixels, new DrawKey(0, Philox.Streams.Sample, 1));
    }

    public override float[]? DrawPriorCodes(int count, ulong seed) => latent.PriorCodes(count, seed);
}

/// <summary>
/// DARN's family: the encoder writes q's context c(x) (K columns), the decoder reads h; then the prior's bias b (a
/// layer on a column of ones), the prior's autoregressive W and q's U (strictly lower triangular, never run as dense
/// layers), with the autoregressive decoder the pixels' A (the same), and <see cref="Nvil"/>'s layers.
/// </summary>
public sealed class DarnFamily : OneLayerFamily
{
    public static int PriorLayer(ParameterLayout layout) => layout.AuxiliaryStart;

    /// <summary>The autoregressive decoder's A [D, D] over the pixels, after q's U (when the config has it).</summary>
    public static int PixelWeightsLayer(ParameterLayout layout) => layout.AuxiliaryStart + 3;

    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        base.Plan(plan, config, layout, batch, rows);
        plan.Floats(DarnLatent.Ones, rows);
        plan.Floats(DarnLatent.LogQ, rows);
        plan.Floats(DarnLatent.QLogitGradient, rows * config.Latent);
        if (config.DarnEstimator == DarnEstimatorKind.Taylor)
            plan.Floats(DarnLatent.CodeGradientBuffer, rows * config.Latent);
        if (config.AutoregressiveDecoder)
            plan.Floats(DarnModel.DrawnPixels, rows * config.InputSize);
        Nvil.Plan(plan, rows);
    }

    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        int units = layout.Config.Latent;
        layout.StartAuxiliary();
        layout.Add("darn.prior", 1, units, ActivationKind.Identity);
        layout.AddAutoregressive("darn.prior.autoregressive", units);
        layout.AddAutoregressive("darn.encoder.autoregressive", units);
        if (layout.Config.AutoregressiveDecoder)
            layout.AddAutoregressive("darn.decoder.autoregressive", layout.Config.InputSize);
        Nvil.BuildLayers(layout);
    }

    /// <summary>The prior's bias layer and the masked layers (whose output buffers hold p's and q's logits, and the
    /// pixels') see every row; NVIL's its own.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        Nvil.RowsOfLayer(layout, layer, batch)
        ?? (layer >= PriorLayer(layout) ? batch * samples : base.RowsOfLayer(layout, layer, batch, samples));

    public override FamilyModel Create(ModelParts parts) => new DarnModel(parts, new DarnLatent(parts));

    public override ReferenceModel Reference { get; } = new DarnModelReference();
}
