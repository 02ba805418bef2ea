using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.StackedCorex;

/// <summary>
/// Stacked (hierarchical) auto-encoding CorEx (Gao et al. 2019, after Ver Steeg and Galstyan's hierarchical bound
/// TC(x) ≥ Σ_l TC(z^(l−1); z^(l))): two CorEx layers, each a factorized encoder against a learned factorized
/// marginal, the second treating the first's codes as its data. Layer 1: z1 ~ q(z1|x), KL(q(z1|x) ‖ r1(z1)),
/// x reconstructed by p(x|z1); layer 2: z2 ~ q(z2|z1) on every z1 row, KL(q(z2|z1) ‖ r2(z2)), z1 reconstructed by
/// a factorized Gaussian q(z1|z2) against r1 as z1's marginal (<see cref="GpuKernels.StackedCorex"/>). The loss per z
/// row is rec + β·(KL1 + KL2 − log q(z1|z2) + log r1(z1)); each layer trains on its own bound, the second taking z1
/// as its data (no gradient from layer 2 reaches z1, layer 1's encoder or r1): trained jointly through z1, the
/// second layer's term refunds the first layer's KL for information passed up to z2, and z1 sharpened without limit
/// (see docs/MODELS.md).
/// rec + KL1 alone is the one-layer CorEx bound with prior r1, so <c>eval</c>'s L_k uses layer 1's weights against r1.
/// Layers: [EncoderLayerCount, Encoder2End) q(z2|z1), [Encoder2End, DecoderStart) q(z1|z2), then p(x|z1), then r1
/// and r2 (one row each, from [1]). AnchorVAE's anchors are layer 1's. With rank-one posteriors both q(z1|x) and
/// q(z2|z1) are rank-one against their factorized marginals (<see cref="GpuKernels.RankOneMarginal"/>; no anchors),
/// and q(z1|z2), a decoder of z1, stays factorized.
/// </summary>
public sealed class StackedCorexModel : FamilyModel
{
    public const string Z2Buffer = "stacked_corex.z2", Epsilon2Buffer = "stacked_corex.epsilon2", Z2GradientBuffer = "stacked_corex.dz2",
        Kl2Buffer = "stacked_corex.kl2", ReconstructionOfZ1 = "stacked_corex.z1_reconstruction";

    private readonly ReconstructionTerm reconstruction;

    public StackedCorexModel(ModelParts parts) : base(parts)
    {
        reconstruction = new ReconstructionTerm(parts.Config);
        // Both marginals' layers read the single row [1]; layer 2's rows weigh the same.
        Floats(LearnedPrior.OneHotRows, 1).CopyFromCPU(new[] { 1f });
        var equalWeights = Workspace.Floats(TwoLayer.TwoLayerModel.EqualWeights).View;
        equalWeights.CopyFromCPU(Enumerable.Repeat(1f, (int)equalWeights.Length).ToArray());
    }

    private int K1 => Config.Latent;
    private int K2 => Config.Latent2;
    private int Marginal1Layer => Layout.AuxiliaryStart;
    private int Marginal2Layer => Layout.AuxiliaryStart + 1;
    private ArrayView<float> One => Floats(LearnedPrior.OneHotRows, 1);
    private ArrayView<float> Marginal1 => Stack.Output(Marginal1Layer, 1);
    private ArrayView<float> Marginal2 => Stack.Output(Marginal2Layer, 1);
    private MarginalShape Shape1(int samples) => new(K1, samples, Config.Anchors, (float)(1 - Config.AnchorWeight));
    private MarginalShape Shape2 => new(K2, 1, 0, 1f);
    private bool RankOne => Config.Covariance == CovarianceKind.RankOne;
    private int Blocks => Config.PosteriorBlocks;
    private ArrayView<float> Statistics1(int batch) => Stack.Output(Layout.EncoderLayerCount - 1, batch);
    private ArrayView<float> Statistics2(int rows) => Stack.Output(Layout.Encoder2End - 1, rows);
    private ArrayView<float> Z1Statistics(int rows) => Stack.Output(Layout.DecoderStart - 1, rows);
    private ArrayView<float> Rows(string name, int rows, int width) => Floats(name, (long)rows * width);

    public override void Forward(int batch, DrawKey key, int samples)
    {
        int rows = batch * samples;
        Stack.Forward(Marginal1Layer, Marginal1Layer + 1, One, 1);
        Stack.Forward(Marginal2Layer, Marginal2Layer + 1, One, 1);
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        MarginalTerms.Forward(Kernels, RankOne, Statistics1(batch), Marginal1, Z(rows), Epsilon(rows), KlPerRow(rows), rows, Shape1(samples), key);
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, Z(rows), rows);
        MarginalTerms.Forward(Kernels, RankOne, Statistics2(rows), Marginal2, Rows(Z2Buffer, rows, K2), Rows(Epsilon2Buffer, rows, K2), Floats(Kl2Buffer, rows),
            rows, Shape2, key.Offset(Philox.Streams.SecondLayerOffset).PerRow(samples));
        Stack.Forward(Layout.Encoder2End, Layout.DecoderStart, Rows(Z2Buffer, rows, K2), rows);
        Kernels.LayerReconstruction(Z(rows), Z1Statistics(rows), Marginal1, Floats(ReconstructionOfZ1, rows), rows, K1);
        // The rate: KL1 + KL2 − log q(z1|z2) + log r1(z1), every term β weighs.
        Kernels.Add(KlPerRow(rows), Floats(Kl2Buffer, rows));
        Kernels.Add(KlPerRow(rows), Floats(ReconstructionOfZ1, rows));
        DecoderForward(Z(rows), rows);
    }

    /// <summary>
    /// p(x|z1) to dz1; layer 2's term to q(z1|z2)'s output; q(z1|z2)'s network to dz2; layer 2's sampler and KL to
    /// q(z2|z1)'s stats and r2; q(z2|z1)'s network to its weights (z1 is its data); layer 1's sampler and KL to the
    /// encoder's stats and r1. Every row's layer terms weigh β/rows, layer 1's KL β/batch per example.
    /// </summary>
    public override void Train(Pass pass)
    {
        int batch = pass.Batch, rows = pass.Rows;
        reconstruction.TrainGradient(this, pass);
        if (pass.Accumulate)
            AccumulateLoss(pass);
        float perRow = (float)(pass.KlWeight / rows), perExample = (float)(pass.KlWeight / batch);
        DecoderBackward(Z(rows), ZGradient(rows), rows);
        // −log q(z1|z2)'s gradient by q's [m | u] is the two-layer prior network's, every row weighing the same.
        Kernels.PriorStatsGradient(Z(rows), Z1Statistics(rows), Floats(TwoLayer.TwoLayerModel.EqualWeights, rows), Stack.Gradient(Layout.DecoderStart - 1, rows),
            rows, K1, perRow);
        Stack.Backward(Layout.Encoder2End, Layout.DecoderStart, rows, Rows(Z2Buffer, rows, K2), Rows(Z2GradientBuffer, rows, K2));
        MarginalTerms.Backward(Kernels, RankOne, Statistics2(rows), Marginal2, Rows(Epsilon2Buffer, rows, K2), Rows(Z2GradientBuffer, rows, K2),
            Stack.Gradient(Layout.Encoder2End - 1, rows), Stack.Gradient(Marginal2Layer, 1), rows, Shape2, perRow);
        // z1 is layer 2's data: its network takes no gradient back into z1.
        Stack.Backward(Layout.EncoderLayerCount, Layout.Encoder2End, rows, Z(rows), Kernels.None);
        MarginalTerms.Backward(Kernels, RankOne, Statistics1(batch), Marginal1, Epsilon(rows), ZGradient(rows), Stack.Gradient(Layout.EncoderLayerCount - 1, batch),
            Stack.Gradient(Marginal1Layer, 1), batch, Shape1(pass.Samples), perExample);
        Stack.Backward(0, Layout.EncoderLayerCount, batch, EncoderInput(batch), Kernels.None);
        Stack.Backward(Marginal1Layer, Marginal1Layer + 1, 1, One, Kernels.None);
        Stack.Backward(Marginal2Layer, Marginal2Layer + 1, 1, One, Kernels.None);
    }

    public override void Evaluate(Pass pass)
    {
        reconstruction.Evaluate(this, pass);
        AccumulateLoss(pass);
    }

    /// <summary>Layer 1's weights against r1: −rec + log r1(z1) − log q(z1|x).</summary>
    public override void LogWeightRows(int batch, int samples)
    {
        int rows = batch * samples;
        MarginalTerms.LogWeights(Kernels, RankOne, Statistics1(batch), Marginal1, Z(rows), Epsilon(rows), ReconstructionPerRow(rows), LogWeights(rows),
            rows, Shape1(samples));
    }

    /// <summary>The top layer, q(z2|μ1): the codes Decode takes.</summary>
    public override (float[] Mu, float[] LogVariance) Encode(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        Kernels.CopyColumns(Statistics1(batch), Z(batch), new ColumnBlock(batch, K1, Blocks * K1, 0, K1, 0));
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, Z(batch), batch);
        Kernels.Synchronize();
        var stats = Download(Statistics2(batch));
        return RankOne ? RankOneLatent.SplitStatistics(stats, batch, K2) : (Half(stats, batch, K2, second: false), Half(stats, batch, K2, second: true));
    }

    /// <summary>μ1 of q(z1|x) (left in z1's buffer by <see cref="Encode"/>), and μ2 of q(z2|μ1).</summary>
    public override IReadOnlyList<float[]>? LayerMeans(int batch)
    {
        var (mu2, _) = Encode(batch);
        return [Download(Z(batch)), mu2];
    }

    /// <summary>Codes are z2; z1 is the mean of q(z1|z2).</summary>
    public override void Decode(float[] codes, int batch)
    {
        Rows(Z2Buffer, batch, K2).CopyFromCPU(codes);
        Stack.Forward(Layout.Encoder2End, Layout.DecoderStart, Rows(Z2Buffer, batch, K2), batch);
        Kernels.CopyColumns(Z1Statistics(batch), Z(batch), new ColumnBlock(batch, K1, 2 * K1, 0, K1, 0));
        DecoderForward(Z(batch), batch);
    }

    /// <summary>The codes' prior: r2 as one component [m | log s²].</summary>
    public override float[]? PriorComponents()
    {
        Stack.Forward(Marginal2Layer, Marginal2Layer + 1, One, 1);
        Kernels.Synchronize();
        return Download(Marginal2);
    }
}

/// <summary>Stacked CorEx's family: CorEx's encoder and decoder, q(z2|z1) and q(z1|z2) between them, and the two
/// marginals after the decoder.</summary>
public sealed class StackedCorexFamily : ModelFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        plan.Floats(ModelBuffers.LogWeights, rows);
        foreach (var name in new[] { StackedCorexModel.Z2Buffer, StackedCorexModel.Epsilon2Buffer, StackedCorexModel.Z2GradientBuffer })
            plan.Floats(name, rows * config.Latent2);
        plan.Floats(StackedCorexModel.Kl2Buffer, rows);
        plan.Floats(StackedCorexModel.ReconstructionOfZ1, rows);
        plan.Floats(LearnedPrior.OneHotRows, 1);
        plan.Floats(TwoLayer.TwoLayerModel.EqualWeights, rows);
    }

    /// <summary>q(z2|z1) through the second widths, then q(z1|z2) mirroring them back to [m | u] of z1.</summary>
    protected override void BuildMiddle(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.Stage("encoder2", config.Latent, config.Hidden2, config.PosteriorBlocks * config.Latent2, posterior: true);
        layout.EndSecondEncoder();
        layout.Stage("z1_decoder", config.Latent2, config.Hidden2.Reverse().ToArray(), 2 * config.Latent);
    }

    /// <summary>r1 and r2, [m | log s²] each from the row [1] (m = weight + bias).</summary>
    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.StartAuxiliary();
        layout.Add("marginal.stats", 1, 2 * config.Latent, ActivationKind.Identity);
        layout.Add("marginal2.stats", 1, 2 * config.Latent2, ActivationKind.Identity);
    }

    /// <summary>The encoder sees one row per example, the marginals one row, the rest one per sample.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer >= layout.AuxiliaryStart ? 1 : layer < layout.EncoderLayerCount ? batch : batch * samples;

    public override ReferenceModel Reference { get; } = new StackedCorexModelReference();

    public override FamilyModel Create(ModelParts parts) => new StackedCorexModel(parts);
}
