using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.TwoLayer;

/// <summary>
/// Two stochastic layers (the IWAE paper's second architecture): q(z1|x) q(z2|z1) and p(z2) p(z1|z2) p(x|z1), with
/// every KL term sampled through log w = log p(x, z1, z2) − log q(z1, z2|x) (see <see cref="GpuKernels.TwoLayer"/>).
/// As a VAE each z row weighs 1/(B·k); as an IWAE each weighs w̃/B. Layers [EncoderLayerCount, Encoder2End) are
/// q(z2|z1) and [Encoder2End, DecoderStart) the prior network p(z1|z2).
/// </summary>
public class TwoLayerModel : FamilyModel
{
    public const string Z2Buffer = "z2", Epsilon2Buffer = "epsilon2", Z2GradientBuffer = "dz2",
        Z1GradientFromEncoder2 = "dz1_from_encoder2", UnusedKl2 = "kl2_unused", EqualWeights = "equal_weights";

    public TwoLayerModel(ModelParts parts, bool importanceWeighted) : base(parts)
    {
        ImportanceWeighted = importanceWeighted;
        // Equal row weights: the VAE's share of each sample.
        if (!importanceWeighted)
            Workspace.Floats(EqualWeights).View.CopyFromCPU(Enumerable.Repeat(1f, (int)Workspace.Floats(EqualWeights).Length).ToArray());
    }

    /// <summary>Whether the objective is the importance-weighted bound (else the ELBO).</summary>
    protected bool ImportanceWeighted { get; }

    public override int EvaluationSamples => ImportanceWeighted ? Config.Samples : 1;

    public override void Forward(int batch, DrawKey key, int samples)
    {
        int rows = batch * samples;
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        if (RankOne)
            Kernels.RankOneForward(Statistics1(batch), Z(rows), Epsilon(rows), KlPerRow(rows), rows, Config.Latent, key, samples);
        else
            Kernels.ReparameterizeForward(Statistics1(batch), Z(rows), Epsilon(rows), KlPerRow(rows), rows, Config.Latent, key, samples);
        // q(z2|z1) on every z1 row, one z2 each from the layer's own stream, then the prior network p(z1|z2).
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, Z(rows), rows);
        if (RankOne)
            Kernels.RankOneForward(Stack.Output(Layout.Encoder2End - 1, rows), Z2(rows), Epsilon2(rows), Floats(UnusedKl2, rows),
                rows, Config.Latent2, key.Offset(Philox.Streams.SecondLayerOffset).PerRow(samples));
        else
            Kernels.ReparameterizeForward(Stack.Output(Layout.Encoder2End - 1, rows), Z2(rows), Epsilon2(rows), Floats(UnusedKl2, rows),
                rows, Config.Latent2, key.Offset(Philox.Streams.SecondLayerOffset).PerRow(samples));
        Stack.Forward(Layout.Encoder2End, Layout.DecoderStart, Z2(rows), rows);
        DecoderForward(Z(rows), rows);
    }

    public override void Train(Pass pass)
    {
        int batch = pass.Batch, rows = pass.Rows;
        // Every term is sampled through log w: the IWAE weighs each row's gradient by w̃/B, the VAE by 1/(B·k).
        ImportanceRows(batch, pass.Samples);
        if (ImportanceWeighted)
            ImportanceBound(batch, pass.Samples);
        var weights = ImportanceWeighted ? NormalizedWeights(rows) : Floats(EqualWeights, rows);
        float scale = ImportanceWeighted ? 1f / batch : 1f / rows;
        WeightedReconstructionGradient(batch, pass.Samples, weights, scale);
        if (pass.Accumulate)
        {
            if (ImportanceWeighted)
                AccumulateObjective(pass);
            AccumulateLoss(pass);
        }
        Backward(batch, weights, scale * (float)(ImportanceWeighted ? 1.0 : pass.KlWeight));
    }

    public override void Evaluate(Pass pass)
    {
        ImportanceRows(pass.Batch, pass.Samples);
        if (ImportanceWeighted)
        {
            ImportanceBound(pass.Batch, pass.Samples);
            AccumulateObjective(pass);
        }
        AccumulateLoss(pass);
    }

    /// <summary>log w per z row, and the row's sampled KL terms −log w − rec into the KL rows.</summary>
    public override void LogWeightRows(int batch, int samples)
    {
        int rows = batch * samples;
        if (RankOne)
            Kernels.TwoLayerRankOneLogWeights(Statistics1(batch), Z(rows), Epsilon(rows), Stack.Output(Layout.Encoder2End - 1, rows),
                Z2(rows), Epsilon2(rows), PriorStatistics(rows), ReconstructionPerRow(rows), LogWeights(rows), KlPerRow(rows),
                rows, new LatentWidths(Config.Latent, Config.Latent2, samples));
        else
            Kernels.TwoLayerLogWeights(Statistics1(batch), Z(rows), Epsilon(rows), Stack.Output(Layout.Encoder2End - 1, rows),
                Z2(rows), Epsilon2(rows), PriorStatistics(rows), ReconstructionPerRow(rows), LogWeights(rows), KlPerRow(rows),
                rows, new LatentWidths(Config.Latent, Config.Latent2, samples));
    }

    /// <summary>
    /// The backward pass (see <see cref="GpuKernels.TwoLayer"/>): p(x|z1) to dz1; the prior network from the
    /// gradient of T; the z2 sampler (with the N(0, I) prior on z2) and q(z2|z1) to a second dz1; then the z1
    /// sampler, which adds both dz1 and T's own, and q(z1|x). Row r weighs scale·weights[r].
    /// </summary>
    protected virtual void Backward(int batch, ArrayView<float> weights, float scale)
    {
        int rows = batch * Config.Samples;
        var z1 = Z(rows);
        var priorStats = PriorStatistics(rows);
        DecoderBackward(z1, ZGradient(rows), rows);
        Kernels.PriorStatsGradient(z1, priorStats, weights, Stack.Gradient(Layout.DecoderStart - 1, rows), rows, Config.Latent, scale);
        Stack.Backward(Layout.Encoder2End, Layout.DecoderStart, rows, Z2(rows), Z2Gradient(rows));
        if (RankOne)
            Kernels.RankOneWeightedBackward(Stack.Output(Layout.Encoder2End - 1, rows), Z2(rows), Epsilon2(rows), Z2Gradient(rows), weights,
                Stack.Gradient(Layout.Encoder2End - 1, rows), rows, Config.Latent2, 1, scale);
        else
            Kernels.ImportanceBackward(Stack.Output(Layout.Encoder2End - 1, rows), Z2(rows), Epsilon2(rows), Z2Gradient(rows), weights,
                Stack.Gradient(Layout.Encoder2End - 1, rows), rows, Config.Latent2, 1, scale);
        var dZ1FromEncoder2 = Floats(Z1GradientFromEncoder2, (long)rows * Config.Latent);
        Stack.Backward(Layout.EncoderLayerCount, Layout.Encoder2End, rows, z1, dZ1FromEncoder2);
        if (RankOne)
        {
            // z1's prior is p(z1|z2), not N(0, I): its pull goes into dz1 here and the sampler adds none.
            Kernels.Add(ZGradient(rows), dZ1FromEncoder2);
            Kernels.ConditionalPriorCodeGradient(z1, priorStats, weights, ZGradient(rows), rows, Config.Latent, scale);
            Kernels.RankOneWeightedBackward(Statistics1(batch), z1, Epsilon(rows), ZGradient(rows), weights,
                Stack.Gradient(Layout.EncoderLayerCount - 1, batch), batch, Config.Latent, Config.Samples, scale, standardPrior: 0f);
        }
        else
            Kernels.FirstLayerBackward(Statistics1(batch), z1, Epsilon(rows), priorStats, ZGradient(rows), dZ1FromEncoder2, weights,
                Stack.Gradient(Layout.EncoderLayerCount - 1, batch), batch, Config.Latent, Config.Samples, scale);
        Stack.Backward(0, Layout.EncoderLayerCount, batch, EncoderInput(batch), Kernels.None);
    }

    /// <summary>The top layer's q(z2|μ1): the codes Decode takes, so encode → decode round-trips.</summary>
    public override (float[] Mu, float[] LogVariance) Encode(int batch) => EncodeBothLayers(batch).Top;

    /// <summary>μ1 of q(z1|x) (downloaded once), then q(z2|μ1).</summary>
    private (float[] Means1, (float[] Mu, float[] LogVariance) Top) EncodeBothLayers(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        Kernels.Synchronize();
        var means1 = FamilyModel.Columns(Download(Statistics1(batch)), batch, Config.PosteriorBlocks * Config.Latent, 0, Config.Latent);
        Floats(ModelBuffers.Z, means1.Length).CopyFromCPU(means1);
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, Z(batch), batch);
        return (means1, TopStatistics(batch));
    }

    /// <summary>μ1 of q(z1|x), and μ2 of q(z2|μ1).</summary>
    public override IReadOnlyList<float[]>? LayerMeans(int batch)
    {
        var (means1, top) = EncodeBothLayers(batch);
        return [means1, top.Mu];
    }

    /// <summary>Codes are z2; z1 is the mean of p(z1|z2), taken from the prior network's output on the host.</summary>
    public override void Decode(float[] codes, int batch)
    {
        Floats(Z2Buffer, codes.Length).CopyFromCPU(codes);
        Stack.Forward(Layout.Encoder2End, Layout.DecoderStart, Z2(batch), batch);
        Kernels.Synchronize();
        var means = Half(Download(PriorStatistics(batch)), batch, Config.Latent, second: false);
        Floats(ModelBuffers.Z, means.Length).CopyFromCPU(means);
        DecoderForward(Z(batch), batch);
    }

    /// <summary>q(z2|·) of the first rows after the second encoder ran: (μ2, log σ2²), with a rank-one covariance
    /// the log of C's diagonal (waits for the device).</summary>
    protected (float[] Mu, float[] LogVariance) TopStatistics(int batch)
    {
        Kernels.Synchronize();
        var stats = Download(Stack.Output(Layout.Encoder2End - 1, batch));
        return RankOne ? Latents.RankOneLatent.SplitStatistics(stats, batch, Config.Latent2)
            : (Half(stats, batch, Config.Latent2, second: false), Half(stats, batch, Config.Latent2, second: true));
    }

    /// <summary>Both q's have the rank-one precision D + uuᵀ: their rows are [μ | log d | u].</summary>
    private bool RankOne => Config.Covariance == CovarianceKind.RankOne;

    /// <summary>q(z1|x)'s statistics per example: the encoder's output.</summary>
    protected ArrayView<float> Statistics1(int batch) => Stack.Output(Layout.EncoderLayerCount - 1, batch);

    /// <summary>p(z1|z2)'s statistics per z row: the prior network's output.</summary>
    protected ArrayView<float> PriorStatistics(int rows) => Stack.Output(Layout.DecoderStart - 1, rows);

    protected ArrayView<float> Z2(int rows) => Floats(Z2Buffer, (long)rows * Config.Latent2);
    protected ArrayView<float> Epsilon2(int rows) => Floats(Epsilon2Buffer, (long)rows * Config.Latent2);
    protected ArrayView<float> Z2Gradient(int rows) => Floats(Z2GradientBuffer, (long)rows * Config.Latent2);
}

/// <summary>The two-layer family: the VAE and the IWAE with two stochastic layers.</summary>
public class TwoLayerFamily : ModelFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        bool importance = config.Model == ModelKind.Iwae;
        plan.Floats(ModelBuffers.LogWeights, rows);
        if (importance)
            Objectives.ImportanceWeighted.Plan(plan, batch, rows);
        plan.Floats(TwoLayerModel.Z2Buffer, rows * config.Latent2);
        plan.Floats(TwoLayerModel.Epsilon2Buffer, rows * config.Latent2);
        plan.Floats(TwoLayerModel.Z2GradientBuffer, rows * config.Latent2);
        plan.Floats(TwoLayerModel.UnusedKl2, rows);
        if (!importance)
            plan.Floats(TwoLayerModel.EqualWeights, rows);
        PlanOwn(plan, config, batch, rows);
    }

    /// <summary>q(z2|z1), then the prior network p(z1|z2) mirroring it, to the
    /// means and log-variances of z1.</summary>
    protected override void BuildMiddle(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.Stage("encoder2", config.Latent, config.Hidden2, config.PosteriorBlocks * config.Latent2, posterior: true);
        layout.EndSecondEncoder();
        layout.Stage("prior", config.Latent2, config.Hidden2.Reverse().ToArray(), 2 * config.Latent);
    }

    /// <summary>The buffers of this family alone: the gradient of z1 that flows back from q(z2|z1).</summary>
    protected virtual void PlanOwn(WorkspacePlan plan, VaeConfig config, long batch, long rows) =>
        plan.Floats(TwoLayerModel.Z1GradientFromEncoder2, rows * config.Latent);

    public override ReferenceModel Reference { get; } = new TwoLayerModelReference();

    public override FamilyModel Create(ModelParts parts) => new TwoLayerModel(parts, parts.Config.Model == ModelKind.Iwae);
}
