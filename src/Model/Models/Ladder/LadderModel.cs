using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.TwoLayer;

namespace IlgpuVae.Model.Models.Ladder;

/// <summary>
/// The Ladder VAE (Sønderby et al. 2016): a bottom-up pass once per example through both encoders (the second,
/// [EncoderLayerCount, Encoder2End), starts at the first's top hidden layer and gives q(z2|x)), then per sample
/// z2, the top-down prior p(z1|z2), q(z1|x, z2) by precision-weighted merging of the bottom-up and top-down
/// statistics (see <see cref="GpuKernels.Ladder"/>), z1 from it, and the decoder. Its KL terms are sampled
/// through log w as in the two-layer model, whose streams it shares.
/// </summary>
public sealed class LadderModel(ModelParts parts) : TwoLayerModel(parts, importanceWeighted: false)
{
    public const string MergedStats = "ladder.merged_stats", MergedStatsGradient = "ladder.merged_stats_gradient",
        HiddenGradientFromAbove = "ladder.hidden_gradient_from_above";

    public override void Forward(int batch, DrawKey key, int samples)
    {
        int rows = batch * samples;
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, TopHidden(batch), batch);
        Kernels.ReparameterizeForward(Statistics2(batch), Z2(rows), Epsilon2(rows), Floats(UnusedKl2, rows),
            rows, Config.Latent2, key.Offset(Philox.Streams.SecondLayerOffset), samples);
        Stack.Forward(Layout.Encoder2End, Layout.DecoderStart, Z2(rows), rows);
        Kernels.LadderMerge(Statistics1(batch), PriorStatistics(rows), Merged(rows), rows, Config.Latent, samples);
        // The KL this writes is the merged Gaussian's against N(0, I), which the Ladder VAE does not use: its KL
        // terms are sampled through log w.
        Kernels.ReparameterizeForward(Merged(rows), Z(rows), Epsilon(rows), KlPerRow(rows), rows, Config.Latent, key);
        DecoderForward(Z(rows), rows);
    }

    /// <summary>q(z1|·) is merged per z row and q(z2|x) is per example: the other way round from the two-layer model.</summary>
    public override void LogWeightRows(int batch, int samples)
    {
        int rows = batch * samples;
        Kernels.TwoLayerLogWeights(Merged(rows), Z(rows), Epsilon(rows), Statistics2(batch), Z2(rows), Epsilon2(rows),
            PriorStatistics(rows), ReconstructionPerRow(rows), LogWeights(rows), KlPerRow(rows),
            rows, new LatentWidths(Config.Latent, Config.Latent2, 1, samples));
    }

    /// <summary>
    /// p(x|z1) to dz1; T's gradient into the prior's output; the z1 sampler (prior N(m, e^u), no other reader of z1)
    /// to the merged stats; the merge to the bottom-up stats of z1 (per example) and, added, the prior's output;
    /// the prior network to dz2; the z2 sampler (N(0, I) prior, k samples per example) to the bottom-up stats of z2;
    /// both bottom-up stages, their gradients meeting at the encoder's top hidden layer.
    /// </summary>
    protected override void Backward(int batch, ArrayView<float> weights, float scale)
    {
        int samples = Config.Samples, rows = batch * samples, k1 = Config.Latent, k2 = Config.Latent2;
        var z1 = Z(rows);
        var priorStats = PriorStatistics(rows);
        var dPriorStats = Stack.Gradient(Layout.DecoderStart - 1, rows);
        var dMerged = Floats(MergedStatsGradient, (long)rows * 2 * k1);
        DecoderBackward(z1, ZGradient(rows), rows);
        Kernels.PriorStatsGradient(z1, priorStats, weights, dPriorStats, rows, k1, scale);
        Kernels.FirstLayerBackward(Merged(rows), z1, Epsilon(rows), priorStats, ZGradient(rows), Kernels.None, weights,
            dMerged, rows, k1, 1, scale);
        Kernels.LadderMergeBackward(Statistics1(batch), priorStats, dMerged, Stack.Gradient(Layout.EncoderLayerCount - 1, batch), dPriorStats,
            batch, k1, samples);
        Stack.Backward(Layout.Encoder2End, Layout.DecoderStart, rows, Z2(rows), Z2Gradient(rows));
        Kernels.ImportanceBackward(Statistics2(batch), Z2(rows), Epsilon2(rows), Z2Gradient(rows), weights,
            Stack.Gradient(Layout.Encoder2End - 1, batch), batch, k2, samples, scale);
        var dTopHidden = Stack.Gradient(Layout.EncoderLayerCount - 2, batch);
        var dTopHiddenFromAbove = Floats(HiddenGradientFromAbove, (long)batch * Config.Hidden[^1]);
        Stack.Backward(Layout.EncoderLayerCount, Layout.Encoder2End, batch, TopHidden(batch), dTopHiddenFromAbove);
        Stack.Backward(Layout.EncoderLayerCount - 1, Layout.EncoderLayerCount, batch, TopHidden(batch), dTopHidden);
        Kernels.Add(dTopHidden, dTopHiddenFromAbove);
        Stack.Backward(0, Layout.EncoderLayerCount - 1, batch, EncoderInput(batch), Kernels.None);
    }

    /// <summary>The top layer's q(z2|x): the bottom-up pass's own.</summary>
    public override (float[] Mu, float[] LogVariance) Encode(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, TopHidden(batch), batch);
        return TopStatistics(batch);
    }

    /// <summary>The encoder's last hidden layer, where the second bottom-up stage starts.</summary>
    private ArrayView<float> TopHidden(int batch) => Stack.Output(Layout.EncoderLayerCount - 2, batch);

    private ArrayView<float> Statistics2(int batch) => Stack.Output(Layout.Encoder2End - 1, batch);

    private ArrayView<float> Merged(int rows) => Floats(MergedStats, (long)rows * 2 * Config.Latent);
}

/// <summary>The Ladder VAE's family: the two-layer buffers without q(z2|z1)'s gradient of z1, plus the merge's.</summary>
public sealed class LadderFamily : TwoLayerFamily
{
    protected override void PlanOwn(WorkspacePlan plan, VaeConfig config, long batch, long rows)
    {
        plan.Floats(LadderModel.MergedStats, rows * 2 * config.Latent);
        plan.Floats(LadderModel.MergedStatsGradient, rows * 2 * config.Latent);
        plan.Floats(LadderModel.HiddenGradientFromAbove, batch * config.Hidden[^1]);
    }

    /// <summary>The second bottom-up stage goes on from the encoder's last hidden layer instead of from z1.</summary>
    protected override int SecondStageInputs(VaeConfig config) => config.Hidden[^1];

    /// <summary>Both bottom-up stages run once per example.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer < layout.Encoder2End ? batch : batch * samples;

    public override ReferenceModel Reference { get; } = new LadderModelReference();

    public override FamilyModel Create(ModelParts parts) => new LadderModel(parts);
}
