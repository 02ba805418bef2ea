using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.TwoLayer;

namespace IlgpuVae.Model.Models.Ladder;

/// <summary>
/// Where the Ladder VAE's stages lie in its layout and how wide each stochastic layer is. Bottom-up rung 1 is the
/// encoder (the hidden widths, then the head [μ̂1 | ρ̂1]); rung l ≥ 2 goes on from rung l−1's top hidden layer through
/// its own hidden widths to its head [μ̂l | ρ̂l]. Then the prior networks p(z_l|z_{l+1}) for l = 1..L−1 (each
/// mirrors rung l+1's hidden widths), then the decoder p(x|z1). z1 and z2 are sized by the config; each layer above
/// z2 halves z2's widths once more.
/// </summary>
public sealed record LadderRungs(int Count, int EncoderLayerCount, int Encoder2End, int UpperHiddenCount)
{
    public LadderRungs(ParameterLayout layout, VaeConfig config)
        : this(config.LadderLayers, layout.EncoderLayerCount, layout.Encoder2End, config.Hidden2.Length)
    {
    }

    /// <summary>z_l's width.</summary>
    public static int Latent(VaeConfig config, int layer) => layer == 1 ? config.Latent : config.Latent2 >> (layer - 2);

    /// <summary>Bottom-up rung l's hidden widths (and, mirrored, those of p(z_{l−1}|z_l)).</summary>
    public static int[] Hidden(VaeConfig config, int layer) =>
        layer == 1 ? config.Hidden : config.Hidden2.Select(width => width >> (layer - 2)).ToArray();

    /// <summary>The first layer of bottom-up rung <paramref name="layer"/>.</summary>
    public int InferenceStart(int layer) => layer == 1 ? 0 : EncoderLayerCount + (layer - 2) * (UpperHiddenCount + 1);

    /// <summary>Rung <paramref name="layer"/>'s head; its top hidden layer is the one before.</summary>
    public int Head(int layer) => layer == 1 ? EncoderLayerCount - 1 : InferenceStart(layer) + UpperHiddenCount;

    /// <summary>The prior network p(z_l|z_{l+1}) for l = <paramref name="layer"/> &lt; L: [start, end).</summary>
    public int PriorStart(int layer) => Encoder2End + (layer - 1) * (UpperHiddenCount + 1);

    public int PriorEnd(int layer) => PriorStart(layer) + UpperHiddenCount + 1;
}

/// <summary>
/// The Ladder VAE (Sønderby et al. 2016) with L stochastic layers. A bottom-up pass runs once per example through
/// every rung, giving q̂_l = N(μ̂_l, σ̂_l²). Top-down, per sample: z_L ~ q(z_L|x) = q̂_L; for l = L−1 … 1 the prior
/// network gives p(z_l|z_{l+1}), q(z_l|·) merges it with q̂_l by precision (see <see cref="GpuKernels.Ladder"/>), and
/// z_l is drawn from the merge; the decoder reads z1. The KL terms are sampled through log w, summed layer by layer.
/// With <see cref="VarianceForm.Softplus"/> every head and prior writes [μ | ρ] with σ² = softplus(ρ), rewritten
/// as [μ | log σ²] before use. With <see cref="CovarianceKind.RankOne"/> every head writes [μ̂ | log d̂ | û] and each
/// merged q keeps that form (see <see cref="GpuKernels.LadderRankOne"/>); the prior networks stay diagonal. With two
/// layers, log-variances and diagonal posteriors this is the two-layer Ladder VAE, launch for launch.
/// </summary>
public sealed class LadderModel(ModelParts parts) : TwoLayerModel(parts, importanceWeighted: false)
{
    public const string MergedStats = "ladder.merged_stats", MergedStatsGradient = "ladder.merged_stats_gradient",
        HiddenGradientFromAbove = "ladder.hidden_gradient_from_above";

    /// <summary>Layer l ≥ 3's z, ε and dz; layer 2 ≤ l &lt; L's merged stats and their gradient; with softplus
    /// variances, rung l's and prior l's stats as [μ | log σ²].</summary>
    public static string LayerBuffer(string what, int layer) => $"ladder.{what}{layer}";

    private readonly LadderRungs rungs = new(parts.Layout, parts.Config);

    private int L => Config.LadderLayers;
    private bool Softplus => Config.LadderVariance == VarianceForm.Softplus;
    private bool RankOne => Config.Covariance == CovarianceKind.RankOne;

    /// <summary>Columns per z of a q's stats: [μ | log σ²], or the rank-one [μ | log d | u].</summary>
    private int Blocks => Config.PosteriorBlocks;
    private int Width(int layer) => LadderRungs.Latent(Config, layer);

    public override void Forward(int batch, DrawKey key, int samples)
    {
        int rows = batch * samples;
        BottomUp(batch);
        Sample(UpStatistics(L, batch), L, rows, Floats(UnusedKl2, rows), key, samples);
        for (int layer = L - 1; layer >= 1; layer--)
        {
            PriorForward(layer, rows);
            Merge(layer, batch, rows, samples);
            // The KL this writes is the merged Gaussian's against N(0, I), which the Ladder VAE does not use: its KL
            // terms are sampled through log w.
            Sample(MergedOf(layer, rows), layer, rows, layer == 1 ? KlPerRow(rows) : Floats(UnusedKl2, rows), key.PerRow(samples), 1);
        }
        DecoderForward(Z(rows), rows);
    }

    /// <summary>z_l from q's stats (per example with <paramref name="samples"/> rows each), diagonal or rank-one.</summary>
    private void Sample(ArrayView<float> stats, int layer, int rows, ArrayView<float> unusedKl, DrawKey key, int samples)
    {
        var layerKey = key.Offset(Philox.Streams.LayerOffset(layer));
        if (RankOne)
            Kernels.RankOneForward(stats, ZOf(layer, rows), EpsilonOf(layer, rows), unusedKl, rows, Width(layer), layerKey, samples);
        else
            Kernels.ReparameterizeForward(stats, ZOf(layer, rows), EpsilonOf(layer, rows), unusedKl, rows, Width(layer), layerKey, samples);
    }

    /// <summary>p(z_l|z_{l+1}) on each row's z above, as [μ | log σ²].</summary>
    private void PriorForward(int layer, int rows)
    {
        Stack.Forward(rungs.PriorStart(layer), rungs.PriorEnd(layer), ZOf(layer + 1, rows), rows);
        if (Softplus)
            Kernels.LadderSoftplusVariance(Stack.Output(rungs.PriorEnd(layer) - 1, rows), PriorStatisticsOf(layer, rows), rows, Width(layer));
    }

    /// <summary>q(z_l|·) per row: q̂_l merged with the prior by precision.</summary>
    private void Merge(int layer, int batch, int rows, int samples)
    {
        if (RankOne)
            Kernels.LadderRankOneMerge(UpStatistics(layer, batch), PriorStatisticsOf(layer, rows), MergedOf(layer, rows), rows, Width(layer), samples);
        else
            Kernels.LadderMerge(UpStatistics(layer, batch), PriorStatisticsOf(layer, rows), MergedOf(layer, rows), rows, Width(layer), samples);
    }

    /// <summary>log w summed layer by layer, bottom first, then the reconstruction taken off.</summary>
    public override void LogWeightRows(int batch, int samples)
    {
        int rows = batch * samples;
        var sum = LogWeights(rows);
        for (int layer = 1; layer < L; layer++)
        {
            if (RankOne)
                Kernels.LadderRankOnePriorLogWeights(sum, MergedOf(layer, rows), ZOf(layer, rows), EpsilonOf(layer, rows), PriorStatisticsOf(layer, rows),
                    rows, Width(layer), layer == 1 ? 1 : 0);
            else
                Kernels.LadderPriorLogWeights(sum, MergedOf(layer, rows), ZOf(layer, rows), EpsilonOf(layer, rows), PriorStatisticsOf(layer, rows),
                    rows, Width(layer), layer == 1 ? 1 : 0);
        }
        if (RankOne)
            Kernels.LadderRankOneTopLogWeights(sum, UpStatistics(L, batch), ZOf(L, rows), EpsilonOf(L, rows), rows, Width(L), samples);
        else
            Kernels.LadderTopLogWeights(sum, UpStatistics(L, batch), ZOf(L, rows), EpsilonOf(L, rows), rows, Width(L), samples);
        Kernels.LadderFinishLogWeights(sum, ReconstructionPerRow(rows), KlPerRow(rows), rows);
    }

    /// <summary>
    /// p(x|z1) to dz1. Then per layer l &lt; L, bottom first: T_l's gradient into the prior's output; the z_l
    /// sampler (prior N(m, e^u), no other reader of z_l) to the merged stats; the merge to the bottom-up stats of
    /// z_l (per example) and, added, the prior's output; the prior network to dz_{l+1}. The top sampler (N(0, I)
    /// prior, k samples per example) to its bottom-up stats. Last the bottom-up rungs, top first, each rung's top
    /// hidden layer meeting the gradient that came down from the rung above.
    /// </summary>
    protected override void Backward(int batch, ArrayView<float> weights, float scale)
    {
        int samples = Config.Samples, rows = batch * samples;
        DecoderBackward(Z(rows), ZGradient(rows), rows);
        for (int layer = 1; layer < L; layer++)
        {
            int k = Width(layer);
            var z = ZOf(layer, rows);
            var prior = PriorStatisticsOf(layer, rows);
            var dPrior = Stack.Gradient(rungs.PriorEnd(layer) - 1, rows);
            var dMerged = MergedGradientOf(layer, rows);
            var dUp = Stack.Gradient(rungs.Head(layer), batch);
            Kernels.PriorStatsGradient(z, prior, weights, dPrior, rows, k, scale);
            if (RankOne)
            {
                // The prior's pull on z_l goes into dz_l, then the rank-one sampler and log|C| to the merged stats.
                Kernels.ConditionalPriorCodeGradient(z, prior, weights, ZGradientOf(layer, rows), rows, k, scale);
                Kernels.RankOneWeightedBackward(MergedOf(layer, rows), z, EpsilonOf(layer, rows), ZGradientOf(layer, rows), weights, dMerged,
                    rows, k, 1, scale, standardPrior: 0f);
                Kernels.LadderRankOneMergeBackward(UpStatistics(layer, batch), prior, dMerged, dUp, dPrior, batch, k, samples);
            }
            else
            {
                Kernels.FirstLayerBackward(MergedOf(layer, rows), z, EpsilonOf(layer, rows), prior, ZGradientOf(layer, rows), Kernels.None, weights,
                    dMerged, rows, k, 1, scale);
                Kernels.LadderMergeBackward(UpStatistics(layer, batch), prior, dMerged, dUp, dPrior, batch, k, samples);
            }
            if (Softplus)
            {
                Kernels.LadderSoftplusVarianceBackward(Stack.Output(rungs.Head(layer), batch), dUp, batch, k, RankOne);
                Kernels.LadderSoftplusVarianceBackward(Stack.Output(rungs.PriorEnd(layer) - 1, rows), dPrior, rows, k);
            }
            Stack.Backward(rungs.PriorStart(layer), rungs.PriorEnd(layer), rows, ZOf(layer + 1, rows), ZGradientOf(layer + 1, rows));
        }
        var dTop = Stack.Gradient(rungs.Head(L), batch);
        if (RankOne)
            Kernels.RankOneWeightedBackward(UpStatistics(L, batch), ZOf(L, rows), EpsilonOf(L, rows), ZGradientOf(L, rows), weights, dTop, batch, Width(L), samples, scale);
        else
            Kernels.ImportanceBackward(UpStatistics(L, batch), ZOf(L, rows), EpsilonOf(L, rows), ZGradientOf(L, rows), weights, dTop, batch, Width(L), samples, scale);
        if (Softplus)
            Kernels.LadderSoftplusVarianceBackward(Stack.Output(rungs.Head(L), batch), dTop, batch, Width(L), RankOne);
        for (int layer = L; layer >= 1; layer--)
        {
            int head = rungs.Head(layer);
            var input = RungInput(layer, batch);
            var inputGradient = layer == 1 ? Kernels.None : FromAbove(layer - 1, batch);
            if (layer < L)
            {
                // The head's own gradient of the top hidden layer, plus what came down from the rung above.
                var dHidden = Stack.Gradient(head - 1, batch);
                Stack.Backward(head, head + 1, batch, Stack.Output(head - 1, batch), dHidden);
                Kernels.Add(dHidden, FromAbove(layer, batch));
                Stack.Backward(rungs.InferenceStart(layer), head, batch, input, inputGradient);
            }
            else
                Stack.Backward(rungs.InferenceStart(layer), head + 1, batch, input, inputGradient);
        }
    }

    /// <summary>The top layer's q(z_L|x): the bottom-up pass's own.</summary>
    public override (float[] Mu, float[] LogVariance) Encode(int batch)
    {
        BottomUp(batch);
        Kernels.Synchronize();
        var stats = Download(UpStatistics(L, batch));
        return RankOne
            ? Latents.RankOneLatent.SplitStatistics(stats, batch, Width(L))
            : (Half(stats, batch, Width(L), second: false), Half(stats, batch, Width(L), second: true));
    }

    /// <summary>Top-down on the means: μ̂_L, then each layer's merged mean with the prior network at the mean above.</summary>
    public override IReadOnlyList<float[]>? LayerMeans(int batch)
    {
        MeanPath(batch);
        Kernels.Synchronize();
        var means = new float[L][];
        for (int layer = 1; layer <= L; layer++)
            means[layer - 1] = Download(ZOf(layer, batch));
        return means;
    }

    /// <summary>With rank-one posteriors, q(z1|·)'s merged [μ | log d' | u] on the mean path (the posterior of z1 whose
    /// correlations eval reports); otherwise the first rung's head.</summary>
    public override float[] EncoderOutput(int batch)
    {
        if (!RankOne)
            return base.EncoderOutput(batch);
        MeanPath(batch);
        Kernels.Synchronize();
        return Download(MergedOf(1, batch));
    }

    /// <summary>Each layer's mean into its z buffer, top first, one row per example: μ̂_L, then each merged mean with
    /// the prior network at the mean above (the merged stats left in place).</summary>
    private void MeanPath(int batch)
    {
        BottomUp(batch);
        Kernels.CopyColumns(UpStatistics(L, batch), ZOf(L, batch), new ColumnBlock(batch, Width(L), Blocks * Width(L), 0, Width(L), 0));
        for (int layer = L - 1; layer >= 1; layer--)
        {
            int k = Width(layer);
            PriorForward(layer, batch);
            Merge(layer, batch, batch, 1);
            Kernels.CopyColumns(MergedOf(layer, batch), ZOf(layer, batch), new ColumnBlock(batch, k, Blocks * k, 0, k, 0));
        }
    }

    /// <summary>Codes are z_L; each layer below is the mean of p(z_l|z_{l+1}) at the one above.</summary>
    public override void Decode(float[] codes, int batch)
    {
        ZOf(L, batch).CopyFromCPU(codes);
        for (int layer = L - 1; layer >= 1; layer--)
        {
            Stack.Forward(rungs.PriorStart(layer), rungs.PriorEnd(layer), ZOf(layer + 1, batch), batch);
            int k = Width(layer);
            Kernels.CopyColumns(Stack.Output(rungs.PriorEnd(layer) - 1, batch), ZOf(layer, batch), new ColumnBlock(batch, k, 2 * k, 0, k, 0));
        }
        DecoderForward(Z(batch), batch);
    }

    /// <summary>Every rung once per example, each from the top hidden layer of the one below; with softplus
    /// variances each head's stats rewritten as [μ | log σ²].</summary>
    private void BottomUp(int batch)
    {
        for (int layer = 1; layer <= L; layer++)
        {
            Stack.Forward(rungs.InferenceStart(layer), rungs.Head(layer) + 1, RungInput(layer, batch), batch);
            if (Softplus)
                Kernels.LadderSoftplusVariance(Stack.Output(rungs.Head(layer), batch), UpStatistics(layer, batch), batch, Width(layer), RankOne);
        }
    }

    /// <summary>x for rung 1, else the top hidden layer of the rung below.</summary>
    private ArrayView<float> RungInput(int layer, int batch) =>
        layer == 1 ? EncoderInput(batch) : Stack.Output(rungs.Head(layer - 1) - 1, batch);

    /// <summary>The gradient of rung <paramref name="layer"/>'s top hidden layer from rung layer + 1.</summary>
    private ArrayView<float> FromAbove(int layer, int batch) =>
        Floats(HiddenGradientFromAbove, (long)batch * LadderRungs.Hidden(Config, layer)[^1]);

    /// <summary>q̂_l per example as [μ | log σ²] (or [μ | log d | u]): the head's output, or its softplus rewrite.</summary>
    private ArrayView<float> UpStatistics(int layer, int batch) => Softplus
        ? Floats(LayerBuffer("bottom_up", layer), (long)batch * Blocks * Width(layer))
        : Stack.Output(rungs.Head(layer), batch);

    /// <summary>p(z_l|z_{l+1}) per z row as [μ | log σ²].</summary>
    private ArrayView<float> PriorStatisticsOf(int layer, int rows) => Softplus
        ? Floats(LayerBuffer("prior", layer), (long)rows * 2 * Width(layer))
        : Stack.Output(rungs.PriorEnd(layer) - 1, rows);

    private ArrayView<float> ZOf(int layer, int rows) => layer switch
    {
        1 => Z(rows),
        2 => Z2(rows),
        _ => Floats(LayerBuffer("z", layer), (long)rows * Width(layer)),
    };

    private ArrayView<float> EpsilonOf(int layer, int rows) => layer switch
    {
        1 => Epsilon(rows),
        2 => Epsilon2(rows),
        _ => Floats(LayerBuffer("epsilon", layer), (long)rows * Width(layer)),
    };

    private ArrayView<float> ZGradientOf(int layer, int rows) => layer switch
    {
        1 => ZGradient(rows),
        2 => Z2Gradient(rows),
        _ => Floats(LayerBuffer("dz", layer), (long)rows * Width(layer)),
    };

    private ArrayView<float> MergedOf(int layer, int rows) =>
        Floats(layer == 1 ? MergedStats : LayerBuffer("merged", layer), (long)rows * Blocks * Width(layer));

    private ArrayView<float> MergedGradientOf(int layer, int rows) =>
        Floats(layer == 1 ? MergedStatsGradient : LayerBuffer("merged_gradient", layer), (long)rows * Blocks * Width(layer));
}

/// <summary>The Ladder VAE's family: the two-layer buffers without q(z2|z1)'s gradient of z1, plus the merges', the
/// layers above z2 and, with softplus variances, the rewritten stats.</summary>
public sealed class LadderFamily : TwoLayerFamily
{
    protected override void PlanOwn(WorkspacePlan plan, VaeConfig config, long batch, long rows)
    {
        int layers = config.LadderLayers, blocks = config.PosteriorBlocks;
        plan.Floats(LadderModel.MergedStats, rows * blocks * config.Latent);
        plan.Floats(LadderModel.MergedStatsGradient, rows * blocks * config.Latent);
        // Every rung but the top takes a gradient from the one above, one rung at a time.
        int widestBelowTop = Enumerable.Range(1, layers - 1).Max(layer => LadderRungs.Hidden(config, layer)[^1]);
        plan.Floats(LadderModel.HiddenGradientFromAbove, batch * widestBelowTop);
        for (int layer = 2; layer <= layers; layer++)
        {
            long width = LadderRungs.Latent(config, layer);
            if (layer >= 3)
                foreach (string what in new[] { "z", "epsilon", "dz" })
                    plan.Floats(LadderModel.LayerBuffer(what, layer), rows * width);
            if (layer < layers)
            {
                plan.Floats(LadderModel.LayerBuffer("merged", layer), rows * blocks * width);
                plan.Floats(LadderModel.LayerBuffer("merged_gradient", layer), rows * blocks * width);
            }
        }
        if (config.LadderVariance != VarianceForm.Softplus)
            return;
        for (int layer = 1; layer <= layers; layer++)
        {
            long width = LadderRungs.Latent(config, layer);
            plan.Floats(LadderModel.LayerBuffer("bottom_up", layer), batch * blocks * width);
            if (layer < layers)
                plan.Floats(LadderModel.LayerBuffer("prior", layer), rows * 2 * width);
        }
    }

    /// <summary>Bottom-up rungs 2..L, each from the top hidden layer of the one below, then the prior networks
    /// p(z_l|z_{l+1}) for l = 1..L−1, each mirroring rung l+1 ("prior" for p(z1|z2), then "prior2", …).</summary>
    protected override void BuildMiddle(LayoutBuilder layout)
    {
        var config = layout.Config;
        for (int layer = 2; layer <= config.LadderLayers; layer++)
            layout.Stage($"encoder{layer}", LadderRungs.Hidden(config, layer - 1)[^1], LadderRungs.Hidden(config, layer), config.PosteriorBlocks * LadderRungs.Latent(config, layer), posterior: true);
        layout.EndSecondEncoder();
        for (int layer = 1; layer < config.LadderLayers; layer++)
            layout.Stage(layer == 1 ? "prior" : $"prior{layer}", LadderRungs.Latent(config, layer + 1),
                LadderRungs.Hidden(config, layer + 1).Reverse().ToArray(), 2 * LadderRungs.Latent(config, layer));
    }

    /// <summary>The bottom-up rungs run once per example.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer < layout.Encoder2End ? batch : batch * samples;

    public override ReferenceModel Reference { get; } = new LadderModelReference();

    public override FamilyModel Create(ModelParts parts) => new LadderModel(parts);
}
