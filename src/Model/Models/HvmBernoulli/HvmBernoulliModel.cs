using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Models.Hvm;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Models.Sbn;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.HvmBernoulli;

/// <summary>
/// The hierarchical variational model with Bernoulli mean-field factors (Ranganath, Tran and Blei 2016, their
/// discrete case): λ ~ q(λ|x), the planar-flow variational prior of the Gaussian HVM, z_k ~ Bernoulli(σ(λ_k)),
/// a learned factorised prior p(z) (logits from layer <see cref="ParameterLayout.AuxiliaryStart"/> on the row [1])
/// and r(λ|z, x) from the layers after it (a Gaussian, or an inverse flow) reading [z | x]: the encoder is amortized,
/// so r may read x as q does (the bound holds for any r normalised over λ), and without it r would have to guess
/// which x's λ it is from z's few bits alone, a gap of many nats that shrinking q(λ|x) only widens. The sampled KL
/// term per row is log q(λ|x) + log q(z|λ) − log p(z) − log r(λ|z, x). The gradients of the decoder, the prior and r are exact for the
/// drawn (λ, z); λ's is the pathwise one at the drawn z plus the score-function one through z's draw, each unit's
/// signal Rao-Blackwellized (rec, log q(λ|x) − log r and its own log q − log p), the shared part centred by
/// NVIL's baseline network and running mean but not divided by its running deviation (that would rescale the
/// score-function part against the pathwise one); the flow's backward pass carries it to the encoder.
/// </summary>
public sealed class HvmBernoulliLatent : FactorisedPriorUnits
{
    /// <summary>log q(z|λ) per row, log q(λ|x) − log r(λ|z, x) per row (less the 2π terms that cancel), and r's input
    /// [z | x] per row.</summary>
    public const string LogQ = "hvm_bernoulli.log_q", SharedKl = "hvm_bernoulli.shared_kl", AuxiliaryInput = "hvm_bernoulli.r_input";

    public HvmBernoulliLatent(ModelParts parts) : base(parts, "the Bernoulli hierarchical variational model", normaliseSignal: false)
    {
    }

    protected override int PriorLayer => Layout.AuxiliaryStart;
    private int AuxiliaryTop => Nvil.MomentsLayer(Layout) - 1;
    private FlowShape Shape(int samples) => Config.PosteriorFlow(samples);
    private FlowShape AuxiliaryShape => new(Units, Config.AuxiliaryFlowLength, 1);
    private ArrayView<float> Statistics(int batch) => Stack.Output(StatisticsLayer, batch);
    private ArrayView<float> Rows(string name, int rows) => Floats(name, (long)rows * Units);
    private ArrayView<float> States(int rows) => Floats(PlanarFlowLatent.States, Math.Max(1, (long)rows * Config.FlowLength * Units));
    private ArrayView<float> AuxiliaryStates(int rows) => Floats(HvmLatent.AuxiliaryStates, Math.Max(1, (long)rows * Config.AuxiliaryFlowLength * Units));

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        PriorForward();
        Kernels.PlanarFlowForward(Statistics(batch), Rows(HvmLatent.Lambda, rows), Rows(HvmLatent.LambdaEpsilon, rows), States(rows),
            Floats(HvmLatent.FlowKl, rows), rows, Shape(samples), key);
        // z ~ Bernoulli(σ(λ)) per row, on the HVM's stream, keyed by row as the second layers' draws are.
        Kernels.BinaryLatentSample(Rows(HvmLatent.Lambda, rows), Codes(rows), Floats(LogQ, rows), Units, 1,
            key.Offset(Philox.Streams.HvmOffset).PerRow(samples));
        Kernels.BinaryKl(Codes(rows), Floats(LogQ, rows), PriorLogits, KlPerRow(rows), Units, priorPerRow: false);
        PlaceAuxiliaryInput(batch, samples);
        Stack.Forward(PriorLayer + 1, AuxiliaryTop + 1, AuxiliaryRows(rows), rows);
        Kernels.HvmInverseFlowForward(Rows(HvmLatent.Lambda, rows), Stack.Output(AuxiliaryTop, rows), Rows(HvmLatent.FlowedLambda, rows),
            AuxiliaryStates(rows), Floats(HvmLatent.AuxiliaryTerm, rows), rows, AuxiliaryShape);
        Kernels.HvmBernoulliKl(Floats(HvmLatent.FlowKl, rows), Rows(HvmLatent.Lambda, rows), Floats(HvmLatent.AuxiliaryTerm, rows), KlPerRow(rows),
            Floats(SharedKl, rows), rows, Units);
        return Codes(rows);
    }

    /// <summary>NVIL centres −(rec + β·(log q(λ|x) − log r(λ|z))), what every unit's signal shares; each unit's own
    /// log q − log p is added per element by <see cref="Hvm.HvmBernoulliLambdaGradient"/>.</summary>
    protected override ArrayView<float> SignalKl(int rows) => Floats(SharedKl, rows);

    /// <summary>The prior's and r's exact gradients, then λ's (pathwise and score-function), through the flow to the
    /// encoder's statistics.</summary>
    protected override void UnitGradients(int batch, int samples, float beta, ArrayView<float> centred)
    {
        int rows = batch * samples;
        float weight = beta / rows;
        PriorBackward(Codes(rows), rows, weight);
        Kernels.HvmInverseFlowBackward(Stack.Output(AuxiliaryTop, rows), AuxiliaryStates(rows), Rows(HvmLatent.FlowedLambda, rows),
            Stack.Gradient(AuxiliaryTop, rows), Rows(HvmLatent.LambdaGradientFromR, rows), rows, AuxiliaryShape, weight);
        // r reads the discrete z and the data: nothing flows back to either.
        Stack.Backward(PriorLayer + 1, AuxiliaryTop + 1, rows, AuxiliaryRows(rows), Kernels.None);
        Kernels.HvmBernoulliLambdaGradient(Rows(HvmLatent.Lambda, rows), Codes(rows), PriorLogits, Rows(HvmLatent.LambdaGradientFromR, rows), centred,
            Rows(HvmLatent.LambdaGradient, rows), Units, beta, weight, 1f / rows);
        Kernels.PlanarFlowBackward(Statistics(batch), Rows(HvmLatent.Lambda, rows), Rows(HvmLatent.LambdaEpsilon, rows), States(rows),
            Rows(HvmLatent.LambdaGradient, rows), Stack.Gradient(StatisticsLayer, batch), batch, Shape(samples), beta / batch);
    }

    private int AuxiliaryWidth => Units + Config.EncoderInputs;
    private ArrayView<float> AuxiliaryRows(int rows) => Floats(AuxiliaryInput, (long)rows * AuxiliaryWidth);

    /// <summary>r's input per row, [z | x] with x the row's example (rows are example-major, k per example).</summary>
    private void PlaceAuxiliaryInput(int batch, int samples)
    {
        int rows = batch * samples, inputs = Config.EncoderInputs;
        Kernels.CopyColumns(Codes(rows), AuxiliaryRows(rows), new ColumnBlock(rows, Units, Units, 0, AuxiliaryWidth, 0));
        // Seen as one row per example of k·(K + D) columns, sample s's x sits at column s·(K + D) + K.
        for (int s = 0; s < samples; s++)
            Kernels.CopyColumns(Input(batch), AuxiliaryRows(rows), new ColumnBlock(batch, inputs, inputs, 0, samples * AuxiliaryWidth, s * AuxiliaryWidth + Units));
    }

    /// <summary>σ(λ) on the mean path, λ the flow applied to the base mean (ε = 0), in double from the encoder's
    /// statistics (waits for the device).</summary>
    public float[] MeanProbabilities(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, Input(batch), batch);
        Kernels.Synchronize();
        var statistics = ArrayViewExtensions.GetAsArray1D<float>(Statistics(batch)).Select(value => (double)value).ToArray();
        var (lambda, _) = PlanarFlowReference.Forward(statistics, new double[batch * Units], batch, Config.PosteriorFlow(1));
        return lambda.Select(value => (float)BinaryLatentReference.Sigmoid(value)).ToArray();
    }
}

/// <summary>The Bernoulli HVM's model: the one-layer model with <see cref="HvmBernoulliLatent"/>, whose prior draws
/// are binary and whose encode reports q(z = 1) on the mean path.</summary>
public sealed class HvmBernoulliModel(ModelParts parts, HvmBernoulliLatent latent)
    : OneLayerModel(parts, latent, new ReconstructionTerm(parts.Config), new Elbo())
{
    public override float[]? DrawPriorCodes(int count, ulong seed) => latent.PriorCodes(count, seed);

    public override (float[] Mu, float[] LogVariance) Encode(int batch) => (latent.MeanProbabilities(batch), []);
}

/// <summary>
/// The Bernoulli HVM's family: the encoder's statistics of q(λ|x) (the base Gaussian's and the flow's, as
/// <see cref="VaeConfig.PosteriorFlow"/> lays them out), the decoder p(x|z), then the prior's logits (one layer from
/// the row [1]), r(λ|z, x) (an encoder-shaped network from [z | x] to [a | log b²] and the inverse flow's steps), then
/// <see cref="Nvil"/>'s layers.
/// </summary>
public sealed class HvmBernoulliFamily : OneLayerFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        base.Plan(plan, config, layout, batch, rows);
        HvmFamily.PlanLambda(plan, config, rows);
        // r's inverse-flow buffers whether or not it has steps: its kernels run either way.
        plan.Floats(HvmLatent.FlowedLambda, rows * config.Latent);
        plan.Floats(HvmLatent.LambdaGradientFromR, rows * config.Latent);
        plan.Floats(HvmLatent.AuxiliaryStates, Math.Max(1, rows * config.AuxiliaryFlowLength * config.Latent));
        plan.Floats(HvmLatent.AuxiliaryTerm, rows);
        plan.Floats(HvmBernoulliLatent.LogQ, rows);
        plan.Floats(HvmBernoulliLatent.SharedKl, rows);
        plan.Floats(HvmBernoulliLatent.AuxiliaryInput, rows * (config.Latent + config.EncoderInputs));
        Nvil.Plan(plan, rows);
    }

    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.StartAuxiliary();
        layout.Add("hvm.prior", 1, config.Latent, ActivationKind.Identity);
        layout.Stage("hvm.r", config.Latent + config.EncoderInputs, config.Hidden, new FlowShape(config.Latent, config.AuxiliaryFlowLength, 1).StatsWidth);
        Nvil.BuildLayers(layout);
    }

    /// <summary>The prior's layer and the moments see one row, the baseline network the batch's.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer == layout.AuxiliaryStart ? 1 : Nvil.RowsOfLayer(layout, layer, batch) ?? base.RowsOfLayer(layout, layer, batch, samples);

    public override FamilyModel Create(ModelParts parts) => new HvmBernoulliModel(parts, new HvmBernoulliLatent(parts));

    public override ReferenceModel Reference { get; } = new HvmBernoulliModelReference();
}
