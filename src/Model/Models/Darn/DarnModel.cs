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
public sealed class DarnLatent : ILatent
{
    /// <summary>A column of ones (one per row) the prior's bias layer reads; log q per row; q's logits' gradient per row.</summary>
    public const string Ones = "darn.ones", LogQ = "darn.log_q", QLogitGradient = "darn.d_q_logits";

    private readonly KernelSet kernels;
    private readonly DenseStack stack;
    private readonly ParameterLayout layout;
    private readonly VaeConfig config;
    private readonly Workspace workspace;
    private readonly Nvil nvil;

    public DarnLatent(ModelParts parts)
    {
        kernels = parts.Kernels;
        stack = parts.Stack;
        layout = parts.Layout;
        config = parts.Config;
        workspace = parts.Workspace;
        nvil = new Nvil(parts);
        var ones = workspace.Floats(Ones);
        ones.View.CopyFromCPU(Enumerable.Repeat(1f, (int)ones.Length).ToArray());
    }

    private int Units => config.Latent;
    private int StatisticsLayer => layout.EncoderLayerCount - 1;
    private int PriorLayer => DarnFamily.PriorLayer(layout);
    private int PriorWeights => PriorLayer + 1;
    private int EncoderWeights => PriorLayer + 2;

    private ArrayView<float> Floats(string name, long length) => workspace.Floats(name).View.SubView(0, length);
    private ArrayView<float> Context(int batch) => stack.Output(StatisticsLayer, batch);

    /// <summary>A masked layer's W in the parameters or the gradients.</summary>
    private ArrayView<float> Weights(string buffer, int layer) =>
        workspace.Floats(buffer).View.SubView(layout.Layers[layer].WeightOffset, (long)Units * Units);

    /// <summary>Logits per row: q's in U's layer output buffer, p's in W's; p's context (b per row) in the bias layer's.</summary>
    private ArrayView<float> QLogits(int rows) => stack.Output(EncoderWeights, rows);
    private ArrayView<float> PriorLogits(int rows) => stack.Output(PriorWeights, rows);
    private ArrayView<float> PriorContext(int rows) => stack.Output(PriorLayer, rows);

    public ArrayView<float> Codes(int rows) => Floats(ModelBuffers.Z, (long)rows * Units);

    /// <summary>None: the units are discrete, so the decoder's gradient of its codes is not used.</summary>
    public ArrayView<float> CodeGradient(int rows) => kernels.None;

    public ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        kernels.AutoregressiveSample(Context(batch), Weights(ModelBuffers.Parameters, EncoderWeights), Codes(rows), QLogits(rows), Units, key, samples);
        kernels.BinaryRowLogDensity(Codes(rows), QLogits(rows), Floats(LogQ, rows), Units);
        stack.Forward(PriorLayer, PriorLayer + 1, Floats(Ones, rows), rows);
        kernels.AutoregressiveLogits(PriorContext(rows), Weights(ModelBuffers.Parameters, PriorWeights), Codes(rows), PriorLogits(rows), Units);
        kernels.BinaryKl(Codes(rows), Floats(LogQ, rows), PriorLogits(rows), Floats(ModelBuffers.KlPerRow, rows), Units, priorPerRow: true);
        return Codes(rows);
    }

    /// <summary>After the decoder's backward pass: NVIL's centring, the prior's exact gradient (b's and W's), the
    /// score-function gradient of q's logits per row, which gives U's and (summed over the samples) the context's,
    /// then the running moments. <paramref name="klWeight"/> is β/batch.</summary>
    public void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException("DARN's KL term is sampled: it takes a fixed KL weight");
        int rows = batch * samples;
        float beta = klWeight * batch;
        nvil.Center(Floats(ModelBuffers.Input, (long)batch * config.InputSize), batch, samples, beta);
        var priorGradient = stack.Gradient(PriorLayer, rows);
        kernels.BinaryPriorRowGradient(PriorLogits(rows), Codes(rows), priorGradient, beta / rows);
        kernels.AutoregressiveWeightGradient(priorGradient, Codes(rows), Weights(ModelBuffers.Gradients, PriorWeights), rows, Units);
        stack.Backward(PriorLayer, PriorLayer + 1, rows, Floats(Ones, rows), kernels.None);
        var qGradient = Floats(QLogitGradient, (long)rows * Units);
        kernels.BinaryPosteriorGradient(QLogits(rows), Codes(rows), nvil.CentredSignal(rows), qGradient, Units, 1, 1f / rows);
        kernels.AutoregressiveWeightGradient(qGradient, Codes(rows), Weights(ModelBuffers.Gradients, EncoderWeights), rows, Units);
        kernels.SumSamples(qGradient, stack.Gradient(StatisticsLayer, batch), Units, samples);
        nvil.UpdateMoments(rows);
    }

    public void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException("DARN trains with its ELBO; an importance-weighted backward pass is not built for it");

    public void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights) =>
        kernels.SampledKlLogWeights(Floats(ModelBuffers.KlPerRow, batch * samples), reconstructionPerRow, logWeights, batch * samples);

    /// <summary>σ(c(x)): each unit's probability under q with the units before it all 0; no variance.</summary>
    public (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) =>
        (statistics.Select(BinaryLatent.Probability).ToArray(), []);

    /// <summary><paramref name="count"/> codes h ~ p(h), drawn unit by unit on the host: unit j of code n is 1 when
    /// Philox (seed, Sample, 0, n·K + j) &lt; σ(b_j + Σ_{k&lt;j} W_jk h_k).</summary>
    public float[] PriorCodes(int count, ulong seed)
    {
        kernels.Synchronize();
        var parameters = ArrayViewExtensions.GetAsArray1D<float>(workspace.Floats(ModelBuffers.Parameters).View);
        var biasLayer = layout.Layers[PriorLayer];
        int weights = layout.Layers[PriorWeights].WeightOffset;
        var codes = new float[count * Units];
        for (int n = 0; n < count; n++)
            for (int j = 0; j < Units; j++)
            {
                // The bias layer reads the constant 1: its weight and bias add.
                float logit = parameters[biasLayer.WeightOffset + j] + parameters[biasLayer.BiasOffset + j];
                for (int k = 0; k < j; k++)
                    logit += parameters[weights + j * Units + k] * codes[n * Units + k];
                codes[n * Units + j] = Philox.Uniform(seed, Philox.Streams.Sample, 0, n * Units + j) < BinaryLatent.Probability(logit) ? 1f : 0f;
            }
        return codes;
    }
}

/// <summary>DARN's model: the one-layer model with <see cref="DarnLatent"/>, whose prior draws are autoregressive.</summary>
public sealed class DarnModel(ModelParts parts, DarnLatent latent) : OneLayerModel(parts, latent, new ReconstructionTerm(parts.Config), new Elbo())
{
    public override float[]? DrawPriorCodes(int count, ulong seed) => latent.PriorCodes(count, seed);
}

/// <summary>
/// DARN's family: the encoder writes q's context c(x) (K columns), the decoder reads h; then the prior's bias b (a
/// layer on a column of ones), the prior's autoregressive W and q's U (strictly lower triangular, never run as dense
/// layers), and <see cref="Nvil"/>'s layers.
/// </summary>
public sealed class DarnFamily : OneLayerFamily
{
    public static int PriorLayer(ParameterLayout layout) => layout.AuxiliaryStart;

    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        base.Plan(plan, config, layout, batch, rows);
        plan.Floats(DarnLatent.Ones, rows);
        plan.Floats(DarnLatent.LogQ, rows);
        plan.Floats(DarnLatent.QLogitGradient, rows * config.Latent);
        Nvil.Plan(plan, rows);
    }

    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        int units = layout.Config.Latent;
        layout.StartAuxiliary();
        layout.Add("darn.prior", 1, units, ActivationKind.Identity);
        layout.AddAutoregressive("darn.prior.autoregressive", units);
        layout.AddAutoregressive("darn.encoder.autoregressive", units);
        Nvil.BuildLayers(layout);
    }

    /// <summary>The prior's bias layer and the masked layers (whose output buffers hold p's and q's logits) see
    /// every row; NVIL's its own.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        Nvil.RowsOfLayer(layout, layer, batch)
        ?? (layer >= PriorLayer(layout) ? batch * samples : base.RowsOfLayer(layout, layer, batch, samples));

    public override FamilyModel Create(ModelParts parts) => new DarnModel(parts, new DarnLatent(parts));

    public override ReferenceModel Reference { get; } = new DarnModelReference();
}
