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
/// strictly lower triangular. Stacked (two layers): h1 ~ q(h1|x) as above, h2 ~ q(h2|h1) autoregressive with its
/// context from the second encoder on h1 and its own U2, the prior p(h2) as p(h) above, and p(h1|h2) autoregressive
/// with its context from the prior network on h2 and its own W1. The KL terms log q − log p are sampled per row.
/// The encoders' and U's gradients are NVIL's score-function estimates (<see cref="Nvil"/>; one layer may use the
/// Taylor-expansion baseline instead); the priors' and the decoder's are exact for the drawn units.
/// </summary>
public sealed class DarnLatent : BinaryUnitsLatent
{
    /// <summary>A column of ones (one per row) the prior's bias layer reads; log q per row; q's logits' gradient per row;
    /// the reconstruction term's gradient in h (the Taylor-expansion baseline's).</summary>
    public const string Ones = "darn.ones", LogQ = "darn.log_q", QLogitGradient = "darn.d_q_logits", CodeGradientBuffer = "darn.d_codes";

    /// <summary>Two layers: h2, log q(h2|h1) and the top KL term per row.</summary>
    public const string H2 = "darn.h2", LogQ2 = "darn.log_q2", Kl2 = "darn.kl2";

    public DarnLatent(ModelParts parts) : base(parts, "DARN")
    {
        var ones = Workspace.Floats(Ones);
        ones.View.CopyFromCPU(Enumerable.Repeat(1f, (int)ones.Length).ToArray());
    }

    private int PriorLayer => DarnFamily.PriorLayer(Layout);
    private int PriorWeights => PriorLayer + 1;
    private int EncoderWeights => PriorLayer + 2;
    private int Units2 => Config.Latent2;
    private int TopUnits => TwoLayers ? Units2 : Units;

    /// <summary>Two layers: q(h2|h1)'s U2 and p(h1|h2)'s W1.</summary>
    private int Encoder2Weights => DarnFamily.Encoder2WeightsLayer(Layout);
    private int Prior1Weights => Encoder2Weights + 1;

    /// <summary>The top layer's units (h2 with two layers).</summary>
    private ArrayView<float> Top(int rows) => TwoLayers ? Floats(H2, (long)rows * Units2) : Codes(rows);

    /// <summary>Two layers: q(h2|h1)'s context (the second encoder's output) and logits; p(h1|h2)'s context (the
    /// prior network's output) and logits.</summary>
    private ArrayView<float> Context2(int rows) => Stack.Output(Layout.Encoder2End - 1, rows);
    private ArrayView<float> QLogits2(int rows) => Stack.Output(Encoder2Weights, rows);
    private ArrayView<float> Prior1Context(int rows) => Stack.Output(Layout.DecoderStart - 1, rows);
    private ArrayView<float> Prior1Logits(int rows) => Stack.Output(Prior1Weights, rows);

    private ArrayView<float> Context(int batch) => Stack.Output(StatisticsLayer, batch);

    private bool Taylor => Config.DarnEstimator == DarnEstimatorKind.Taylor;

    /// <summary>With the Taylor-expansion baseline the decoder's backward pass writes ∂rec/∂h here.</summary>
    public override ArrayView<float> CodeGradient(int rows) => Taylor ? Floats(CodeGradientBuffer, (long)rows * Units) : Kernels.None;

    /// <summary>A masked layer's W in the parameters or the gradients.</summary>
    private ArrayView<float> Weights(string buffer, int layer) =>
        Workspace.Floats(buffer).View.SubView(Layout.Layers[layer].WeightOffset, Layout.Layers[layer].WeightCount);

    /// <summary>Logits per row: q's in U's layer output buffer, p's in W's; p's context (b per row) in the bias layer's.</summary>
    private ArrayView<float> QLogits(int rows) => Stack.Output(EncoderWeights, rows);
    private ArrayView<float> PriorLogits(int rows) => Stack.Output(PriorWeights, rows);
    private ArrayView<float> PriorContext(int rows) => Stack.Output(PriorLayer, rows);

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        Kernels.AutoregressiveSample(Context(batch), Weights(ModelBuffers.Parameters, EncoderWeights), Codes(rows), QLogits(rows), Units, key, samples);
        Kernels.BinaryRowLogDensity(Codes(rows), QLogits(rows), Floats(LogQ, rows), Units);
        if (TwoLayers)
        {
            // h2 ~ q(h2|h1) per row, on the second layer's stream keyed by row (as the sigmoid belief network's h2).
            Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, Codes(rows), rows);
            Kernels.AutoregressiveSample(Context2(rows), Weights(ModelBuffers.Parameters, Encoder2Weights), Top(rows), QLogits2(rows), Units2,
                key.Offset(Philox.Streams.SecondLayerOffset).PerRow(samples));
            Kernels.BinaryRowLogDensity(Top(rows), QLogits2(rows), Floats(LogQ2, rows), Units2);
        }
        Stack.Forward(PriorLayer, PriorLayer + 1, Floats(Ones, rows), rows);
        Kernels.AutoregressiveLogits(PriorContext(rows), Weights(ModelBuffers.Parameters, PriorWeights), Top(rows), PriorLogits(rows), TopUnits);
        if (!TwoLayers)
        {
            Kernels.BinaryKl(Codes(rows), Floats(LogQ, rows), PriorLogits(rows), Floats(ModelBuffers.KlPerRow, rows), Units, priorPerRow: true);
            return Codes(rows);
        }
        // The top term log q(h2|h1) − log p(h2), then h1's against p(h1|h2): the prior network's context and W1.
        Kernels.BinaryKl(Top(rows), Floats(LogQ2, rows), PriorLogits(rows), Floats(Kl2, rows), Units2, priorPerRow: true);
        Stack.Forward(Layout.Encoder2End, Layout.DecoderStart, Top(rows), rows);
        Kernels.AutoregressiveLogits(Prior1Context(rows), Weights(ModelBuffers.Parameters, Prior1Weights), Codes(rows), Prior1Logits(rows), Units);
        Kernels.BinaryKl(Codes(rows), Floats(LogQ, rows), Prior1Logits(rows), Floats(ModelBuffers.KlPerRow, rows), Units, priorPerRow: true);
        Kernels.Add(Floats(ModelBuffers.KlPerRow, rows), Floats(Kl2, rows));
        return Codes(rows);
    }

    /// <summary>The prior's exact gradient (b's and W's), then the gradient of q's logits per row — NVIL's
    /// score-function estimate, or the Taylor-expansion baseline's from ∂f/∂h — which gives U's and (summed over the
    /// samples) the context's.</summary>
    protected override void UnitGradients(int batch, int samples, float beta, ArrayView<float> centred)
    {
        int rows = batch * samples;
        var priorGradient = Stack.Gradient(PriorLayer, rows);
        Kernels.BinaryPriorRowGradient(PriorLogits(rows), Top(rows), priorGradient, beta / rows);
        Kernels.AutoregressiveWeightGradient(priorGradient, Top(rows), Weights(ModelBuffers.Gradients, PriorWeights), rows, TopUnits);
        Stack.Backward(PriorLayer, PriorLayer + 1, rows, Floats(Ones, rows), Kernels.None);
        if (TwoLayers)
        {
            // p(h1|h2): exact, W1's and the prior network's; then q(h2|h1)'s score-function gradient, U2's and the second encoder's.
            var prior1Gradient = Stack.Gradient(Layout.DecoderStart - 1, rows);
            Kernels.BinaryPriorRowGradient(Prior1Logits(rows), Codes(rows), prior1Gradient, beta / rows);
            Kernels.AutoregressiveWeightGradient(prior1Gradient, Codes(rows), Weights(ModelBuffers.Gradients, Prior1Weights), rows, Units);
            Stack.Backward(Layout.Encoder2End, Layout.DecoderStart, rows, Top(rows), Kernels.None);
            var q2Gradient = Stack.Gradient(Layout.Encoder2End - 1, rows);
            Kernels.BinaryPosteriorGradient(QLogits2(rows), Top(rows), centred, q2Gradient, Units2, 1, 1f / rows);
            Kernels.AutoregressiveWeightGradient(q2Gradient, Top(rows), Weights(ModelBuffers.Gradients, Encoder2Weights), rows, Units2);
            Stack.Backward(Layout.EncoderLayerCount, Layout.Encoder2End, rows, Codes(rows), Kernels.None);
        }
        var qGradient = Floats(QLogitGradient, (long)rows * Units);
        if (Taylor)
            Kernels.AutoregressiveTaylorGradient(CodeGradient(rows), Codes(rows), QLogits(rows), PriorLogits(rows), Weights(ModelBuffers.Parameters, EncoderWeights),
                Weights(ModelBuffers.Parameters, PriorWeights), qGradient, Units, beta / rows);
        else
            Kernels.BinaryPosteriorGradient(QLogits(rows), Codes(rows), centred, qGradient, Units, 1, 1f / rows);
        Kernels.AutoregressiveWeightGradient(qGradient, Codes(rows), Weights(ModelBuffers.Gradients, EncoderWeights), rows, Units);
        Kernels.SumSamples(qGradient, Stack.Gradient(StatisticsLayer, batch), Units, samples);
    }

    /// <summary><paramref name="count"/> top-layer codes h ~ p(h) (h2's with two layers), drawn unit by unit on the
    /// host: unit j of code n is 1 when Philox (seed, Sample, 0, n·K + j) &lt; σ(b_j + Σ_{k&lt;j} W_jk h_k).</summary>
    public float[] PriorCodes(int count, ulong seed)
    {
        // b from its layer on one row of ones, and W: the prior's parameters alone cross to the host.
        Stack.Forward(PriorLayer, PriorLayer + 1, Floats(Ones, 1), 1);
        Kernels.Synchronize();
        var bias = ArrayViewExtensions.GetAsArray1D<float>(PriorContext(1));
        var weights = ArrayViewExtensions.GetAsArray1D<float>(Weights(ModelBuffers.Parameters, PriorWeights));
        int units = TopUnits;
        var codes = new float[count * units];
        for (int n = 0; n < count; n++)
            for (int j = 0; j < units; j++)
            {
                float logit = bias[j];
                for (int k = 0; k < j; k++)
                    logit += weights[j * units + k] * codes[n * units + k];
                codes[n * units + j] = Philox.Uniform(seed, Philox.Streams.Sample, 0, n * units + j) < BinaryLatent.Probability(logit) ? 1f : 0f;
            }
        return codes;
    }

    /// <summary>Puts top-layer codes in place and leaves h1 in <see cref="BinaryUnitsLatent.Codes"/>: the codes
    /// themselves, or with two layers h1 drawn unit by unit from p(h1|h2) (Philox (0, Sample, 2) at n·K + j).</summary>
    public void PlaceCodes(float[] codes, int batch)
    {
        if (PlaceTop(codes, batch, Top(batch)))
            Kernels.AutoregressiveSample(Prior1Context(batch), Weights(ModelBuffers.Parameters, Prior1Weights), Codes(batch), Prior1Logits(batch), Units,
                new DrawKey(0, Philox.Streams.Sample, 2));
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

    /// <summary>The top layer's probabilities (h2's with two layers, on the mean path); no variance.</summary>
    public override (float[] Mu, float[] LogVariance) Encode(int batch) => (latent.TopProbabilities(batch), []);

    /// <summary>Codes (h2's with two layers, h1 then drawn from p(h1|h2)) down the decoder; with the autoregressive decoder each pixel is then drawn in raster order from
    /// σ(f_i(h) + Σ_{k&lt;i} A_ik·x_k), Philox (0, Sample, 1) at element n·D + i, and the output holds those logits:
    /// each pixel's probability given the pixels drawn before it.</summary>
    public override void Decode(float[] codes, int batch)
    {
        latent.PlaceCodes(codes, batch);
        DecoderForward(latent.Codes(batch), batch);
        if (Autoregressive)
            Kernels.AutoregressiveSample(DecoderOutput(batch), PixelWeights(ModelBuffers.Parameters), Floats(DrawnPixels, (long)batch * Pixels), Output(batch),
                Pixels, new DrawKey(0, Philox.Streams.Sample, 1));
    }

    public override float[]? DrawPriorCodes(int count, ulong seed) => latent.PriorCodes(count, seed);
}

/// <summary>
/// DARN's family: the encoder writes q's context c(x) (K columns), with two layers q(h2|h1)'s and p(h1|h2)'s context
/// networks follow, the decoder reads h1; then the top prior's bias b (a layer on a column of ones), the prior's
/// autoregressive W and q's U (strictly lower triangular, never run as dense layers), with the autoregressive
/// decoder the pixels' A (the same), with two layers U2 and W1 (the same), and <see cref="Nvil"/>'s layers.
/// </summary>
public sealed class DarnFamily : OneLayerFamily
{
    public static int PriorLayer(ParameterLayout layout) => layout.AuxiliaryStart;

    /// <summary>The autoregressive decoder's A [D, D] over the pixels, after q's U (when the config has it).</summary>
    public static int PixelWeightsLayer(ParameterLayout layout) => layout.AuxiliaryStart + 3;

    /// <summary>Two layers: q(h2|h1)'s U2, after the pixels' A where there is one; p(h1|h2)'s W1 follows.</summary>
    public static int Encoder2WeightsLayer(ParameterLayout layout) => layout.AuxiliaryStart + (layout.Config.AutoregressiveDecoder ? 4 : 3);

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
        if (config.StochasticLayers == 2)
        {
            plan.Floats(DarnLatent.H2, rows * config.Latent2);
            plan.Floats(DarnLatent.LogQ2, rows);
            plan.Floats(DarnLatent.Kl2, rows);
        }
        Nvil.Plan(plan, rows);
    }

    /// <summary>With two layers: q(h2|h1)'s context, then p(h1|h2)'s, through --hidden2's widths (as the sigmoid
    /// belief network's).</summary>
    protected override void BuildMiddle(LayoutBuilder layout) => SbnFamily.BuildSecondLayer(layout);

    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        var config = layout.Config;
        int units = config.Latent, top = config.StochasticLayers == 2 ? config.Latent2 : units;
        layout.StartAuxiliary();
        layout.Add("darn.prior", 1, top, ActivationKind.Identity);
        layout.AddAutoregressive("darn.prior.autoregressive", top);
        layout.AddAutoregressive("darn.encoder.autoregressive", units);
        if (config.AutoregressiveDecoder)
            layout.AddAutoregressive("darn.decoder.autoregressive", config.InputSize);
        if (config.StochasticLayers == 2)
        {
            layout.AddAutoregressive("darn.encoder2.autoregressive", config.Latent2);
            layout.AddAutoregressive("darn.prior1.autoregressive", units);
        }
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
