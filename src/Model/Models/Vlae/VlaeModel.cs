using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Vlae;

/// <summary>
/// Where the VLAE's rungs lie in its layout. Rung l = 1..L of the inference network is a stack of the hidden
/// widths (from x for rung 1, from h_{l−1} above it) ending in h_l, then a head [μ_l | log σ_l²] of width 2·K/L.
/// Rung l of the generative network is the hidden widths mirrored, from z_L (the top rung) or from [z̃_{l+1} | z_l],
/// ending in z̃_l; the output layer follows rung 1 and is counted in it.
/// </summary>
public sealed record VlaeRungs(int Count, int HiddenPerRung, int EncoderLayerCount, int DecoderStart, int LayerCount)
{
    public VlaeRungs(ParameterLayout layout, VaeConfig config)
        : this(config.LatentLayers, config.Hidden.Length, layout.EncoderLayerCount, layout.DecoderStart, layout.Layers.Count)
    {
    }

    /// <summary>The first hidden layer of inference rung <paramref name="rung"/>.</summary>
    public int InferenceStart(int rung) => rung == 1 ? 0 : EncoderLayerCount + (rung - 2) * (HiddenPerRung + 1);

    /// <summary>The head of inference rung <paramref name="rung"/>; h_l is the output of the layer before it.</summary>
    public int Head(int rung) => InferenceStart(rung) + HiddenPerRung;

    public int GenerativeStart(int rung) => DecoderStart + (Count - rung) * HiddenPerRung;

    /// <summary>The end of generative rung <paramref name="rung"/>: rung 1 runs on through the output layer.</summary>
    public int GenerativeEnd(int rung) => rung == 1 ? LayerCount : GenerativeStart(rung) + HiddenPerRung;
}

/// <summary>
/// The Variational Ladder Autoencoder (Zhao, Song and Ermon 2017). Every z_l ~ N(0, I) independently, so the L
/// latent layers together are one diagonal Gaussian of width K = Σ K_l with the one-layer model's sampler, KL,
/// log w and backward pass: the heads' statistics are gathered into [μ_1 … μ_L | log σ_1² … log σ_L²] and z's
/// columns (l−1)·K/L … l·K/L are z_l. What differs is where each z_l is read and written: q(z_l|x) comes from the
/// l-th hidden rung, and z_l joins the decoder at depth l, so deeper codes pass through more layers.
/// </summary>
public sealed class VlaeModel(ModelParts parts) : GatheredGaussianModel(parts)
{
    public const string Statistics = "vlae.stats", StatisticsGradient = "vlae.stats_gradient", TopCode = "vlae.top_code",
        TopCodeGradient = "vlae.top_code_gradient", HiddenGradientFromAbove = "vlae.hidden_gradient_from_above";

    /// <summary>Generative rung l's input [z̃_{l+1} | z_l] (l &lt; L) and its gradient.</summary>
    public static string Join(int rung) => $"vlae.join{rung}";
    public static string JoinGradient(int rung) => $"vlae.join{rung}_gradient";

    private readonly VlaeRungs rungs = new(parts.Layout, parts.Config);

    protected override string StatisticsBuffer => Statistics;
    protected override string StatisticsGradientBuffer => StatisticsGradient;

    private int L => Config.LatentLayers;
    /// <summary>Each layer's columns.</summary>
    private int LayerWidth => Config.Latent / Config.LatentLayers;
    private int Hidden0 => Config.Hidden[0];

    /// <summary>Each rung from the one below (rung 1 from x), its head, and the heads gathered into the stats.</summary>
    protected override void InferenceForward(int batch)
    {
        for (int rung = 1; rung <= L; rung++)
        {
            var input = rung == 1 ? EncoderInput(batch) : Stack.Output(rungs.Head(rung - 1) - 1, batch);
            Stack.Forward(rungs.InferenceStart(rung), rungs.Head(rung) + 1, input, batch);
            var head = Stack.Output(rungs.Head(rung), batch);
            for (int part = 0; part < Parts; part++)
                Kernels.CopyColumns(head, Stats(batch), HeadBlock(batch, rung, part));
        }
    }

    /// <summary>
    /// From each head's share of the stats' gradient down the rungs, top first: a head's plain gradient of h_l
    /// meets the one that came down from rung l+1, then rung l's hidden layers carry both to h_{l−1}.
    /// </summary>
    protected override void InferenceBackward(int batch)
    {
        // (One rung has no rung above it, and plans no buffer for that.)
        var fromAbove = L > 1 ? Floats(HiddenGradientFromAbove, (long)batch * Config.Hidden[^1]) : Kernels.None;
        for (int rung = L; rung >= 1; rung--)
        {
            int head = rungs.Head(rung);
            var headGradient = Stack.Gradient(head, batch);
            for (int part = 0; part < Parts; part++)
                Kernels.CopyColumns(StatsGradient(batch), headGradient, HeadBlock(batch, rung, part).Reversed());
            var hidden = Stack.Output(head - 1, batch);
            var hiddenGradient = Stack.Gradient(head - 1, batch);
            Stack.Backward(head, head + 1, batch, hidden, hiddenGradient);
            if (rung < L)
                Kernels.Add(hiddenGradient, fromAbove);
            var input = rung == 1 ? EncoderInput(batch) : Stack.Output(rungs.Head(rung - 1) - 1, batch);
            Stack.Backward(rungs.InferenceStart(rung), head, batch, input, rung == 1 ? Kernels.None : fromAbove);
        }
    }

    /// <summary>z_L through the top rung; then each rung from [z̃_{l+1} | z_l]; rung 1 ends in the output layer.</summary>
    protected override void DecoderForward(ArrayView<float> codes, int rows)
    {
        var top = Floats(TopCode, (long)rows * LayerWidth);
        Kernels.CopyColumns(codes, top, CodeBlock(rows, L, LayerWidth, 0, reverse: false));
        Stack.Forward(rungs.GenerativeStart(L), rungs.GenerativeEnd(L), top, rows);
        for (int rung = L - 1; rung >= 1; rung--)
        {
            var join = JoinView(rung, rows);
            Kernels.CopyColumns(Stack.Output(rungs.GenerativeEnd(rung + 1) - 1, rows), join, new ColumnBlock(rows, Hidden0, Hidden0, 0, Hidden0 + LayerWidth, 0));
            Kernels.CopyColumns(codes, join, CodeBlock(rows, rung, Hidden0 + LayerWidth, Hidden0, reverse: false));
            Stack.Forward(rungs.GenerativeStart(rung), rungs.GenerativeEnd(rung), join, rows);
        }
    }

    /// <summary>From the output's gradient down the rungs: each join's gradient splits into z̃_{l+1}'s (whose rung
    /// applies its own act') and z_l's columns of dz.</summary>
    protected override void DecoderBackward(ArrayView<float> codes, ArrayView<float> dCodes, int rows)
    {
        for (int rung = 1; rung < L; rung++)
        {
            var joinGradient = Floats(JoinGradient(rung), (long)rows * (Hidden0 + LayerWidth));
            Stack.Backward(rungs.GenerativeStart(rung), rungs.GenerativeEnd(rung), rows, JoinView(rung, rows), joinGradient);
            Kernels.CopyColumns(joinGradient, Stack.Gradient(rungs.GenerativeEnd(rung + 1) - 1, rows), new ColumnBlock(rows, Hidden0, Hidden0 + LayerWidth, 0, Hidden0, 0));
            Kernels.CopyColumns(joinGradient, dCodes, CodeBlock(rows, rung, Hidden0 + LayerWidth, Hidden0, reverse: true));
        }
        var topGradient = Floats(TopCodeGradient, (long)rows * LayerWidth);
        Stack.Backward(rungs.GenerativeStart(L), rungs.GenerativeEnd(L), rows, Floats(TopCode, (long)rows * LayerWidth), topGradient);
        Kernels.CopyColumns(topGradient, dCodes, CodeBlock(rows, L, LayerWidth, 0, reverse: true));
    }

    /// <summary>z_l's columns of z [rows, K] to (or, reversed, from) a table <paramref name="width"/> wide at <paramref name="column"/>.</summary>
    private ColumnBlock CodeBlock(int rows, int rung, int width, int column, bool reverse)
    {
        var block = new ColumnBlock(rows, LayerWidth, Config.Latent, (rung - 1) * LayerWidth, width, column);
        return reverse ? block.Reversed() : block;
    }

    /// <summary>Head l's μ (part 0), log σ² (1) or u (2, rank-one) columns to their place in the gathered stats
    /// [batch, parts·K].</summary>
    private ColumnBlock HeadBlock(int batch, int rung, int part) =>
        new(batch, LayerWidth, Parts * LayerWidth, part * LayerWidth, Parts * Config.Latent, part * Config.Latent + (rung - 1) * LayerWidth);

    private ArrayView<float> JoinView(int rung, int rows) => Floats(Join(rung), (long)rows * (Hidden0 + LayerWidth));
}

/// <summary>The VLAE's family: its rungs' layers, the gathered stats, the joins and their gradients, and log w.</summary>
public sealed class VlaeFamily : ModelFamily
{
    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        int width = config.Latent / config.LatentLayers;
        plan.Floats(ModelBuffers.LogWeights, rows);
        int parts = config.PosteriorBlocks;
        plan.Floats(VlaeModel.Statistics, batch * parts * config.Latent);
        plan.Floats(VlaeModel.StatisticsGradient, batch * parts * config.Latent);
        plan.Floats(VlaeModel.TopCode, rows * width);
        plan.Floats(VlaeModel.TopCodeGradient, rows * width);
        if (config.LatentLayers > 1)
            plan.Floats(VlaeModel.HiddenGradientFromAbove, batch * config.Hidden[^1]);
        for (int rung = 1; rung < config.LatentLayers; rung++)
        {
            plan.Floats(VlaeModel.Join(rung), rows * (config.Hidden[0] + width));
            plan.Floats(VlaeModel.JoinGradient(rung), rows * (config.Hidden[0] + width));
        }
    }

    /// <summary>Rung 1's head: the statistics of z_1 alone.</summary>
    protected override int EncoderOutputs(VaeConfig config) => config.PosteriorBlocks * (config.Latent / config.LatentLayers);

    /// <summary>Inference rungs 2..L, each from the hidden layer below it to its own head.</summary>
    protected override void BuildMiddle(LayoutBuilder layout)
    {
        var config = layout.Config;
        int width = config.Latent / config.LatentLayers;
        for (int rung = 2; rung <= config.LatentLayers; rung++)
            layout.Stage($"rung{rung}.encoder", config.Hidden[^1], config.Hidden, config.PosteriorBlocks * width, posterior: true);
        layout.EndSecondEncoder();
    }

    /// <summary>Generative rungs L..1, each the hidden widths mirrored (from z_L, or from [z̃_{l+1} | z_l]), then the output layer.</summary>
    protected override void BuildDecoders(LayoutBuilder layout)
    {
        var config = layout.Config;
        int width = config.Latent / config.LatentLayers;
        for (int rung = config.LatentLayers; rung >= 1; rung--)
        {
            int inputs = rung == config.LatentLayers ? width : config.Hidden[0] + width;
            for (int i = config.Hidden.Length - 1; i >= 0; i--)
            {
                layout.Add($"rung{rung}.decoder.{config.Hidden.Length - 1 - i}", inputs, config.Hidden[i], config.Activation, hidden: true);
                inputs = config.Hidden[i];
            }
        }
        layout.Add("decoder.out", config.Hidden[0], config.OutputSize, config.OutputActivation);
        layout.EndDecoder();
    }

    /// <summary>Every inference rung sees one row per example; the decoder one per sample.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer < layout.Encoder2End ? batch : batch * samples;

    public override ReferenceModel Reference { get; } = new VlaeModelReference();

    public override FamilyModel Create(ModelParts parts) => new VlaeModel(parts);
}
