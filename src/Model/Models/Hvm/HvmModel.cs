using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.Hvm;

/// <summary>
/// The hierarchical variational model's latent (see <see cref="GpuKernels.Hvm"/>): the encoder's statistics drive the
/// planar-flow variational prior q(λ|x) (<see cref="VaeConfig.FlowLength"/> steps, none for a Gaussian q(λ|x)),
/// z = λ + τ·ε₂ with log τ² from layer <see cref="ParameterLayout.AuxiliaryStart"/> (one row), and r(λ|z) from the
/// layers after it. The KL term is the hierarchical ELBO's sampled one; its gradient reaches the encoder (through
/// the flow's backward pass), log τ², and r.
/// </summary>
public sealed class HvmLatent : SampledLatent
{
    public const string Lambda = "hvm.lambda", LambdaEpsilon = "hvm.lambda_epsilon", FlowKl = "hvm.flow_kl",
        AuxiliaryInputGradient = "hvm.dz_from_r", LambdaGradient = "hvm.d_lambda";

    /// <summary>With an inverse-flow r: y = g(λ), the steps' inputs, the r term per row and r's share of dλ.</summary>
    public const string FlowedLambda = "hvm.r_flowed_lambda", AuxiliaryStates = "hvm.r_states", AuxiliaryTerm = "hvm.r_term",
        LambdaGradientFromR = "hvm.d_lambda_from_r";

    private readonly DenseStack stack;
    private readonly ParameterLayout layout;
    private readonly VaeConfig config;

    public HvmLatent(ModelParts parts) : base(parts.Kernels, parts.Stack, parts.Workspace, parts.Layout.EncoderLayerCount - 1, parts.Config.Latent)
    {
        stack = parts.Stack;
        layout = parts.Layout;
        config = parts.Config;
        // τ's layer reads the single row [1].
        Floats(LearnedPrior.OneHotRows, 1).CopyFromCPU(new[] { 1f });
    }

    private int TauLayer => layout.AuxiliaryStart;
    private int AuxiliaryTop => layout.Layers.Count - 1;
    private FlowShape Shape(int samples) => config.PosteriorFlow(samples);
    private FlowShape AuxiliaryShape => new(Width, config.AuxiliaryFlowLength, 1);
    private bool AuxiliaryFlow => config.AuxiliaryFlowLength > 0;
    private ArrayView<float> OneRow => Floats(LearnedPrior.OneHotRows, 1);
    private ArrayView<float> LogTau => stack.Output(TauLayer, 1);
    private ArrayView<float> Rows(string name, int rows) => Floats(name, (long)rows * Width);
    private ArrayView<float> States(int rows) => Floats(PlanarFlowLatent.States, (long)rows * config.FlowLength * Width);

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        Kernels.PlanarFlowForward(Statistics(batch), Rows(Lambda, rows), Rows(LambdaEpsilon, rows), States(rows), Floats(FlowKl, rows), rows,
            Shape(samples), key);
        stack.Forward(TauLayer, TauLayer + 1, OneRow, 1);
        Kernels.HvmSample(Rows(Lambda, rows), LogTau, Codes(rows), Epsilon(rows), Width, samples, key.Offset(Philox.Streams.HvmOffset));
        stack.Forward(TauLayer + 1, layout.Layers.Count, Codes(rows), rows);
        if (AuxiliaryFlow)
        {
            Kernels.HvmInverseFlowForward(Rows(Lambda, rows), stack.Output(AuxiliaryTop, rows), Rows(FlowedLambda, rows),
                Floats(AuxiliaryStates, (long)rows * config.AuxiliaryFlowLength * Width), Floats(AuxiliaryTerm, rows), rows, AuxiliaryShape);
            Kernels.HvmKlWithAuxiliaryTerm(Floats(FlowKl, rows), Rows(Lambda, rows), Codes(rows), Epsilon(rows), LogTau, Floats(AuxiliaryTerm, rows),
                KlPerRow(rows), rows, Width);
        }
        else
            Kernels.HvmKl(Floats(FlowKl, rows), Rows(Lambda, rows), Codes(rows), Epsilon(rows), LogTau, stack.Output(AuxiliaryTop, rows), KlPerRow(rows),
                rows, Width);
        return Codes(rows);
    }

    public override void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException("the hierarchical model's KL term is sampled: it takes a fixed KL weight");
        int rows = batch * samples;
        float weight = klWeight / samples;
        // r(λ|z): its weights, and its share of z's gradient.
        if (AuxiliaryFlow)
            Kernels.HvmInverseFlowBackward(stack.Output(AuxiliaryTop, rows), Floats(AuxiliaryStates, (long)rows * config.AuxiliaryFlowLength * Width),
                Rows(FlowedLambda, rows), stack.Gradient(AuxiliaryTop, rows), Rows(LambdaGradientFromR, rows), rows, AuxiliaryShape, weight);
        else
            Kernels.HvmAuxiliaryGradient(Rows(Lambda, rows), stack.Output(AuxiliaryTop, rows), stack.Gradient(AuxiliaryTop, rows), rows, Width, weight);
        stack.Backward(TauLayer + 1, layout.Layers.Count, rows, Codes(rows), Rows(AuxiliaryInputGradient, rows));
        Kernels.Add(CodeGradient(rows), Rows(AuxiliaryInputGradient, rows));
        // τ, then λ, then through the flow to the encoder's statistics.
        Kernels.HvmTauGradient(Codes(rows), Epsilon(rows), LogTau, CodeGradient(rows), stack.Gradient(TauLayer, 1), rows, Width, weight);
        stack.Backward(TauLayer, TauLayer + 1, 1, OneRow, Kernels.None);
        if (AuxiliaryFlow)
            Kernels.HvmLambdaGradientWithAuxiliary(Rows(Lambda, rows), Codes(rows), Rows(LambdaGradientFromR, rows), CodeGradient(rows),
                Rows(LambdaGradient, rows), weight);
        else
            Kernels.HvmLambdaGradient(Rows(Lambda, rows), Codes(rows), stack.Output(AuxiliaryTop, rows), CodeGradient(rows), Rows(LambdaGradient, rows),
                Width, weight);
        Kernels.PlanarFlowBackward(Statistics(batch), Rows(Lambda, rows), Rows(LambdaEpsilon, rows), States(rows), Rows(LambdaGradient, rows),
            StatisticsGradient(batch), batch, Shape(samples), klWeight);
    }

    public override void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException("the hierarchical variational model trains with its ELBO; its importance-weighted backward pass is not built");

    public override void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights) =>
        Kernels.SampledKlLogWeights(KlPerRow(batch * samples), reconstructionPerRow, logWeights, batch * samples);

    /// <summary>μ and log σ² of the base Gaussian q(λ_0|x) (a rank-one base's marginal ones), the columns before the
    /// flow's parameters.</summary>
    public override (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) => PlanarFlowLatent.SplitBase(statistics, batch, config);
}

/// <summary>The hierarchical variational model's family: the one-layer model with <see cref="HvmLatent"/>, and log τ²
/// and r(λ|z) after its decoder.</summary>
public sealed class HvmFamily : OneLayerFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        base.Plan(plan, config, layout, batch, rows);
        PlanLambda(plan, config, rows);
        plan.Floats(HvmLatent.AuxiliaryInputGradient, rows * config.Latent);
        if (config.AuxiliaryFlowLength > 0)
        {
            plan.Floats(HvmLatent.FlowedLambda, rows * config.Latent);
            plan.Floats(HvmLatent.LambdaGradientFromR, rows * config.Latent);
            plan.Floats(HvmLatent.AuxiliaryStates, rows * config.AuxiliaryFlowLength * config.Latent);
            plan.Floats(HvmLatent.AuxiliaryTerm, rows);
        }
    }

    /// <summary>What both HVMs plan for λ ~ q(λ|x): λ, its ε and gradient per row, log q(λ|x) − log N(λ; 0, I) per
    /// row, the flow's states (a one-element stand-in without steps: the flow kernels take the buffer even then),
    /// and the row [1] that a layer of the auxiliary block reads (log τ², or the Bernoulli prior's logits).</summary>
    public static void PlanLambda(WorkspacePlan plan, VaeConfig config, long rows)
    {
        if (config.FlowLength == 0)
            plan.Floats(PlanarFlowLatent.States, 1);
        foreach (var name in new[] { HvmLatent.Lambda, HvmLatent.LambdaEpsilon, HvmLatent.LambdaGradient })
            plan.Floats(name, rows * config.Latent);
        plan.Floats(HvmLatent.FlowKl, rows);
        plan.Floats(LearnedPrior.OneHotRows, 1);
    }

    /// <summary>log τ² (one layer from the row [1]), then r(λ|z): an encoder-shaped network from z to [a | log b²],
    /// followed by the inverse flow's (u, w, b) per step when it has one.</summary>
    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.StartAuxiliary();
        layout.Add("hvm.tau", 1, config.Latent, ActivationKind.Identity);
        layout.Stage("hvm.r", config.Latent, config.Hidden, new FlowShape(config.Latent, config.AuxiliaryFlowLength, 1).StatsWidth);
    }

    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer == layout.AuxiliaryStart ? 1 : base.RowsOfLayer(layout, layer, batch, samples);

    public override FamilyModel Create(ModelParts parts) => new OneLayerModel(parts, new HvmLatent(parts), new ReconstructionTerm(parts.Config), new Elbo());

    public override ReferenceModel Reference { get; } = new HvmModelReference();
}
