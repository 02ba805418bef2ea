using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.OneLayer;

/// <summary>
/// One stochastic layer: encoder → latent → decoder → data term, with an objective over them. The VAE (ELBO), the
/// IWAE (importance-weighted bound), the autoencoder (a deterministic code), the InfoVAE (ELBO + MMD), target-rate
/// training and the Deep VIB (a classification term) are this model with different parts.
/// </summary>
public class OneLayerModel : FamilyModel
{
    public OneLayerModel(ModelParts parts, ILatent latent, IDataTerm dataTerm, IObjective objective) : base(parts)
    {
        Latent = latent;
        DataTerm = dataTerm;
        Objective = objective;
    }

    public ILatent Latent { get; }
    public IDataTerm DataTerm { get; }
    public IObjective Objective { get; }

    public override string? NoLikelihoodBound => Latent is CodeLatent
        ? "the autoencoder has no q(z|x), so it has no importance weights or likelihood bound"
        : DataTerm.NoLikelihoodBound;

    public override string? NoImages => DataTerm.NoImages;

    public override int EvaluationSamples => Objective.EvaluationSamples(Config.Samples);

    /// <summary>A learned prior p(z), or null for N(0, I).</summary>
    public LearnedPrior? Prior => (Latent as SampledLatent)?.Prior;

    /// <summary>What the encoder reads in a pass and its rows: the batch, or with the VampPrior the batch and the pseudo-inputs.</summary>
    private (ArrayView<float> Input, int Rows) EncoderRows(int batch) =>
        Prior?.EncoderInput(EncoderInput(batch), batch) ?? (EncoderInput(batch), batch);

    public override void Forward(int batch, DrawKey key, int samples)
    {
        Prior?.Prepare(EncoderInput(batch), batch);
        var (input, rows) = EncoderRows(batch);
        Stack.Forward(0, Layout.EncoderLayerCount, input, rows);
        DecoderForward(Latent.Sample(batch, samples, key), batch * samples);
    }

    public override void Train(Pass pass)
    {
        Objective.Train(this, pass);
        DecoderBackward(Latent.Codes(pass.Rows), Latent.CodeGradient(pass.Rows), pass.Rows);
        Objective.Backward(this, pass);
        var (input, rows) = EncoderRows(pass.Batch);
        Stack.Backward(0, Layout.EncoderLayerCount, rows, input, Prior?.EncoderInputGradient(pass.Batch) ?? Kernels.None);
        Prior?.Backward(pass.Batch);
    }

    public override float[]? PriorComponents() => Prior?.DownloadComponents();

    public override float[]? PseudoInputs() => (Prior as VampPrior)?.DownloadPseudoInputs();

    public override void Evaluate(Pass pass) => Objective.Evaluate(this, pass);

    public override void LogWeightRows(int batch, int samples)
    {
        int rows = batch * samples;
        Latent.LogWeights(batch, samples, ReconstructionPerRow(rows), LogWeights(rows));
    }

    public override (float[] Mu, float[] LogVariance) Encode(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        Kernels.Synchronize();
        return Latent.Split(Download(Stack.Output(Layout.EncoderLayerCount - 1, batch)), batch);
    }

    public override void Decode(float[] codes, int batch)
    {
        Floats(ModelBuffers.Z, codes.Length).CopyFromCPU(codes);
        DecoderForward(Z(batch), batch);
    }
}

/// <summary>The one-layer family: the VAE, IWAE, autoencoder, InfoVAE, target rate and Deep VIB.</summary>
public class OneLayerFamily : ModelFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        if (config.Model == ModelKind.Vib)
            ClassificationTerm.Plan(plan, rows);
        else if (config.Model != ModelKind.Ae)
            // log w for L_k: every model with a q(z|x) and a likelihood of x.
            plan.Floats(ModelBuffers.LogWeights, rows);
        if (config.FlowLength > 0)
            plan.Floats(PlanarFlowLatent.States, rows * config.FlowLength * config.Latent);
        LearnedPrior.Plan(plan, config, batch, rows);
        if (config.Model == ModelKind.Iwae)
            ImportanceWeighted.Plan(plan, batch, rows);
        else if (config.Model == ModelKind.InfoVae)
            MmdObjective.Plan(plan, config, batch);
        else if (config.TargetRate is not null)
            TargetRateObjective.Plan(plan, batch);
    }

    public override ReferenceModel Reference { get; } = new OneLayerModelReference();

    protected override void BuildAuxiliary(LayoutBuilder layout) => LearnedPrior.BuildLayers(layout);

    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        LearnedPrior.RowsOfLayer(layout, layer, batch) ?? base.RowsOfLayer(layout, layer, batch, samples);

    /// <summary>The Deep VIB's decoder is a softmax regression on z, as in Alemi et al.: no hidden layers, logits out.</summary>
    protected override void BuildDecoders(LayoutBuilder layout)
    {
        if (!layout.Config.Spec.Has(Models.ModelCapabilities.Labels))
        {
            base.BuildDecoders(layout);
            return;
        }
        layout.Decoder("decoder", layout.Config.Classes, mirrorHidden: false, outputActivation: ActivationKind.Identity);
        layout.EndDecoder();
    }

    public override FamilyModel Create(ModelParts parts) => new OneLayerModel(parts, LatentOf(parts), DataTermOf(parts.Config), ObjectiveOf(parts));

    /// <summary>The autoencoder's deterministic code, or a Gaussian q(z|x) with a diagonal or rank-one covariance,
    /// planar flows, or against a learned prior (CorEx's factorized marginal with either covariance).</summary>
    internal static ILatent LatentOf(ModelParts parts)
    {
        int statistics = parts.Layout.EncoderLayerCount - 1;
        return parts.Config switch
        {
            { Model: ModelKind.Ae } => new CodeLatent(parts.Stack, statistics),
            { FlowLength: > 0 } => new PlanarFlowLatent(parts.Kernels, parts.Stack, parts.Workspace, statistics, parts.Config),
            { ModelPrior: PriorKind.Factorized } => new FactorizedMarginalLatent(parts.Kernels, parts.Stack, parts.Workspace, statistics, parts.Config, LearnedPrior.Create(parts)!),
            { Covariance: CovarianceKind.RankOne } => new RankOneLatent(parts.Kernels, parts.Stack, parts.Workspace, statistics, parts.Config.Latent),
            { ModelPrior: not PriorKind.Standard } => new MixturePriorLatent(parts.Kernels, parts.Stack, parts.Workspace, statistics, parts.Config, LearnedPrior.Create(parts)!),
            _ => new GaussianLatent(parts.Kernels, parts.Stack, parts.Workspace, statistics, parts.Config.Latent),
        };
    }

    private static IDataTerm DataTermOf(VaeConfig config) =>
        config.Model == ModelKind.Vib ? new ClassificationTerm(config) : new ReconstructionTerm(config);

    protected static IObjective ObjectiveOf(ModelParts parts) => parts.Config switch
    {
        { Model: ModelKind.Iwae } => new ImportanceWeighted(),
        { Model: ModelKind.InfoVae } config => new MmdObjective(config),
        { TargetRate: { } rate } => new TargetRateObjective(rate, parts.Workspace),
        _ => new Elbo(),
    };
}
