using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Def;

/// <summary>
/// The sparse gamma deep exponential family (Ranganath et al. 2015; kernels in <see cref="DeepExponential"/>):
/// layers z_0 (bottom, <see cref="VaeConfig.Latent"/> units) … z_{L−1} (top) of gamma units, the top's prior
/// Gamma(α, α), each lower layer's Gamma(α, α/μ) with μ_l = V_{l+1}·z_{l+1} + ε, and binary pixels with
/// p(x_i = 1) = 1 − exp(−r_i), r = V_0·z_0 + ε (or with the Poisson likelihood each pixel's byte a Poisson(r_i)
/// count: Poisson factorization when there is one layer), every V = softplus(θ) ≥ 0. q(z|x) is mean-field gamma over every
/// unit of every layer, amortised: the encoder writes each unit's shape and mean parameters (the paper fits them
/// per data point; an encoder gives the same family of q and scores held-out images without an inner fit). The
/// weights V are point estimates with the exact gradient for the drawn z; q's parameters get the black-box VI
/// (score-function) estimate with each unit's Markov-blanket signal and a leave-one-out baseline over the k samples.
/// The KL terms (log q − log p of the draws) are sampled per row, so log w = −rec − KL, as for the other families
/// whose KL terms are sampled.
/// </summary>
public sealed class DefModel : FamilyModel
{
    /// <summary>The scratch gradient of a V, ε per output (the products' bias), the unused bias gradient, and what the
    /// decoder's output holds (the pixels' logits, or their expected grey levels).</summary>
    public const string WeightGradient = "def.d_weights", Floor = "def.floor", BiasGradient = "def.d_bias", DecoderOutput = "def.output";

    /// <summary>V_l = softplus(θ_l) as the products read it, made by the forward pass and read again by Train.</summary>
    public static string Weights(int l) => $"def.weights{l}";

    /// <summary>Per layer l: z, log z, log q, log p per element, the score [rows, 2K_l], and log p per row.</summary>
    public static string Draws(int layer) => $"def.z{layer}";
    public static string LogDraws(int layer) => $"def.log_z{layer}";
    public static string LogQ(int layer) => $"def.log_q{layer}";
    public static string LogPrior(int layer) => $"def.log_p{layer}";
    public static string Score(int layer) => $"def.score{layer}";
    public static string RowLogPrior(int layer) => $"def.row_log_p{layer}";

    private readonly int[] widths;
    private readonly int[] offsets;
    private readonly int totalUnits;

    public DefModel(ModelParts parts) : base(parts)
    {
        widths = DefLayerSpec.Widths(Config.DefLayers);
        offsets = DefFamily.Offsets(widths);
        totalUnits = widths.Sum();
        var floor = Workspace.Floats(Floor);
        floor.View.CopyFromCPU(Enumerable.Repeat(DeepExponential.RateFloor, (int)floor.Length).ToArray());
    }

    private int Layers => widths.Length;
    private float Alpha => (float)Config.DefShape;
    private int StatisticsLayer => Layout.EncoderLayerCount - 1;

    /// <summary>The layout's layer of V_l: V_0 writes the rates, V_l (l ≥ 1) the means of z_{l−1}.</summary>
    private int WeightLayer(int l) => Layout.DecoderStart + l;

    private GammaLayerShape Shape(int l, int samples) => new(widths[l], offsets[l], totalUnits, samples);

    private ArrayView<float> Z(int l, int rows) => Floats(Draws(l), (long)rows * widths[l]);
    private ArrayView<float> LogZ(int l, int rows) => Floats(LogDraws(l), (long)rows * widths[l]);
    private ArrayView<float> LogQView(int l, int rows) => Floats(LogQ(l), (long)rows * widths[l]);
    private ArrayView<float> LogP(int l, int rows) => Floats(LogPrior(l), (long)rows * widths[l]);
    private ArrayView<float> ScoreView(int l, int rows) => Floats(Score(l), (long)rows * 2 * widths[l]);
    private ArrayView<float> RowLogP(int l, int rows) => Floats(RowLogPrior(l), rows);

    /// <summary>V_l as the products read it (softplus of θ), and θ and its gradient in the flat buffers.</summary>
    private ArrayView<float> V(int l) => Floats(Weights(l), Layout.Layers[WeightLayer(l)].WeightCount);
    private ArrayView<float> WeightView(string buffer, int l)
    {
        var slice = Layout.Layers[WeightLayer(l)];
        return Workspace.Floats(buffer).View.SubView(slice.WeightOffset, slice.WeightCount);
    }

    private ArrayView<float> Rates(int rows) => Stack.Output(WeightLayer(0), rows);
    private ArrayView<float> RateGradient(int rows) => Stack.Gradient(WeightLayer(0), rows);

    /// <summary>The means of z_l's units (V_{l+1}·z_{l+1} + ε) and ∂ log p/∂ those means; none for the top.</summary>
    private ArrayView<float> Means(int l, int rows) => l == Layers - 1 ? Kernels.None : Stack.Output(WeightLayer(l + 1), rows);
    private ArrayView<float> MeanGradient(int l, int rows) => l == Layers - 1 ? Kernels.None : Stack.Gradient(WeightLayer(l + 1), rows);

    public override ArrayView<float> Output(int rows) => Floats(DecoderOutput, (long)rows * Config.InputSize);

    public override ArrayView<float> OutputGradient(int rows) => RateGradient(rows);

    /// <summary>V_l = softplus(θ_l) into its buffer, then output = V_l·input + ε.</summary>
    private void Product(int l, ArrayView<float> input, ArrayView<float> output, int rows)
    {
        var slice = Layout.Layers[WeightLayer(l)];
        Kernels.SoftplusWeights(WeightView(ModelBuffers.Parameters, l), V(l));
        Kernels.DenseForward(ActivationKind.Identity, input, V(l), Floats(Floor, slice.Outputs), output, rows, slice.Inputs, slice.Outputs);
    }

    public override void Forward(int batch, DrawKey key, int samples)
    {
        int rows = batch * samples;
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        var statistics = Stack.Output(StatisticsLayer, batch);
        for (int l = 0; l < Layers; l++)
            Kernels.GammaPosteriorSample(statistics, Z(l, rows), LogZ(l, rows), LogQView(l, rows), ScoreView(l, rows), Shape(l, samples), key);
        // Top down: each layer's means from the layer above, then its prior terms; the KL rows set by the top.
        for (int l = Layers - 1; l >= 0; l--)
        {
            if (l < Layers - 1)
                Product(l + 1, Z(l + 1, rows), Means(l, rows), rows);
            Kernels.GammaLayerTerms(Z(l, rows), LogZ(l, rows), LogQView(l, rows), Means(l, rows), LogP(l, rows), MeanGradient(l, rows), RowLogP(l, rows),
                KlPerRow(rows), widths[l], Alpha, first: l == Layers - 1);
        }
        Product(0, Z(0, rows), Rates(rows), rows);
    }

    private bool Counts => Config.Likelihood == LikelihoodKind.Poisson;

    /// <summary>−log p(x | z_0) per row (binary pixels through the Bernoulli–Poisson link, or Poisson counts), what
    /// the decoder's output holds (the logits, or the expected grey levels) and (scaled by 1/rows) ∂/∂r.</summary>
    protected internal override void ReconstructionLossRows(int batch, int samples)
    {
        int rows = batch * samples;
        if (Counts)
            Kernels.PoissonRateLoss(Input(batch), Rates(rows), Output(rows), ReconstructionPerRow(rows), RateGradient(rows), Config.InputSize, samples, 1f / rows);
        else
            Kernels.BernoulliRateLoss(Input(batch), Rates(rows), Output(rows), ReconstructionPerRow(rows), RateGradient(rows), Config.InputSize, samples, 1f / rows);
    }

    public override void Train(Pass pass)
    {
        int rows = pass.Rows;
        float beta = (float)pass.KlWeight;
        ReconstructionLossRows(pass.Batch, pass.Samples);
        if (pass.Accumulate)
            AccumulateLoss(pass);
        // The weights: exact for the drawn z. V_0 from the rates' gradient, V_l from −β/rows·∂ log p(z_{l−1})/∂μ.
        WeightBackward(0, Z(0, rows), RateGradient(rows), rows, 1f);
        for (int l = 1; l < Layers; l++)
            WeightBackward(l, Z(l, rows), MeanGradient(l - 1, rows), rows, -beta / rows);
        // q's statistics: each layer's score-function estimate into its columns, then the encoder.
        var dStatistics = Stack.Gradient(StatisticsLayer, pass.Batch);
        for (int l = 0; l < Layers; l++)
            Kernels.GammaScoreGradient(ScoreView(l, rows), LogP(l, rows), LogQView(l, rows), l == 0 ? ReconstructionPerRow(rows) : RowLogP(l - 1, rows),
                ReconstructionPerRow(rows), KlPerRow(rows), dStatistics, Shape(l, pass.Samples), GammaEstimator.Full, beta, l == 0 ? -1f : beta, 1f / rows);
        Stack.Backward(0, Layout.EncoderLayerCount, pass.Batch, EncoderInput(pass.Batch), Kernels.None);
    }

    /// <summary>θ_l's gradient: scale·(dOutputᵀ·input)·σ(θ), through the scratch dV; V_l is the forward pass's.</summary>
    private void WeightBackward(int l, ArrayView<float> input, ArrayView<float> dOutput, int rows, float scale)
    {
        var slice = Layout.Layers[WeightLayer(l)];
        var dV = Floats(WeightGradient, slice.WeightCount);
        Kernels.DenseBackward(input, V(l), dOutput, Kernels.None, ActivationKind.Identity, dV, Floats(BiasGradient, slice.Outputs), rows, slice.Inputs,
            slice.Outputs);
        Kernels.SoftplusWeightGradient(WeightView(ModelBuffers.Parameters, l), dV, WeightView(ModelBuffers.Gradients, l), scale);
    }

    public override void Evaluate(Pass pass)
    {
        ReconstructionLossRows(pass.Batch, pass.Samples);
        AccumulateLoss(pass);
    }

    public override void LogWeightRows(int batch, int samples)
    {
        int rows = batch * samples;
        Kernels.SampledKlLogWeights(KlPerRow(rows), ReconstructionPerRow(rows), LogWeights(rows), rows);
    }

    /// <summary>q's means of every layer [batch, T] for a gathered batch (waits for the device).</summary>
    private float[] PosteriorMeans(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        Kernels.Synchronize();
        var statistics = Download(Stack.Output(StatisticsLayer, batch));
        var means = new float[batch * totalUnits];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < totalUnits; t++)
                means[b * totalUnits + t] = DeepExponential.Mean(statistics[b * 2 * totalUnits + totalUnits + t]);
        return means;
    }

    /// <summary>The top layer's q means; no variance.</summary>
    public override (float[] Mu, float[] LogVariance) Encode(int batch) =>
        (Columns(PosteriorMeans(batch), batch, totalUnits, offsets[^1], widths[^1]), []);

    public override IReadOnlyList<float[]>? LayerMeans(int batch)
    {
        var means = PosteriorMeans(batch);
        return Enumerable.Range(0, Layers).Select(l => Columns(means, batch, totalUnits, offsets[l], widths[l])).ToArray();
    }

    /// <summary>Top-layer codes down the mean path (each layer at its prior mean given the one above) to the logits.</summary>
    public override void Decode(float[] codes, int batch)
    {
        Z(Layers - 1, batch).CopyFromCPU(codes);
        for (int l = Layers - 1; l >= 1; l--)
            Product(l, Z(l, batch), Z(l - 1, batch), batch);
        Product(0, Z(0, batch), Rates(batch), batch);
        if (Counts)
            Kernels.RateMeans(Rates(batch), Output(batch));
        else
            Kernels.RateLogits(Rates(batch), Output(batch));
    }

    /// <summary>Unit j of layer l as the rates it adds to the pixels: V_0·V_1·…·V_l·e_j, from θ on the host (double).</summary>
    public override IReadOnlyList<float[]>? LayerComponents()
    {
        var parameters = Download(Workspace.Floats(ModelBuffers.Parameters).View);
        double[] V(int l)
        {
            var slice = Layout.Layers[WeightLayer(l)];
            return parameters.AsSpan(slice.WeightOffset, slice.WeightCount).ToArray().Select(theta => StableMath.Softplus((double)theta)).ToArray();
        }
        int pixels = Config.InputSize;
        // Down from layer l: [pixels, K_l], V_0 first, then each product with the next V ([K_{l−1}, K_l]).
        var down = V(0);
        var components = new List<float[]>();
        for (int l = 0; l < Layers; l++)
        {
            if (l > 0)
            {
                var next = V(l);
                var product = new double[pixels * widths[l]];
                for (int i = 0; i < pixels; i++)
                    for (int j = 0; j < widths[l]; j++)
                    {
                        double sum = 0;
                        for (int k = 0; k < widths[l - 1]; k++)
                            sum += down[i * widths[l - 1] + k] * next[k * widths[l] + j];
                        product[i * widths[l] + j] = sum;
                    }
                down = product;
            }
            var layer = new float[widths[l] * pixels];
            for (int j = 0; j < widths[l]; j++)
                for (int i = 0; i < pixels; i++)
                    layer[j * pixels + i] = (float)down[i * widths[l] + j];
            components.Add(layer);
        }
        return components;
    }

    /// <summary><paramref name="count"/> top-layer codes from Gamma(α, α): element i from the stream (seed,
    /// Sample, 0) at counter i.</summary>
    public override float[]? DrawPriorCodes(int count, ulong seed)
    {
        var key = new DrawKey(seed, Philox.Streams.Sample, 0);
        return Enumerable.Range(0, count * widths[^1]).Select(i => Distributions.SampleGamma(Alpha, Alpha, key, i)).ToArray();
    }
}

/// <summary>
/// The DEF's family: the encoder writes q's [shape parameters | mean parameters] of every unit (bottom layer first),
/// then V_0 (the pixels' rates from z_0) and V_1 … V_{L−1} (each layer's means from the one above), positive weights
/// that are never run as dense layers.
/// </summary>
public sealed class DefFamily : ModelFamily
{
    /// <summary>Where each layer's units start among all of them.</summary>
    public static int[] Offsets(int[] widths)
    {
        var offsets = new int[widths.Length];
        for (int l = 1; l < widths.Length; l++)
            offsets[l] = offsets[l - 1] + widths[l - 1];
        return offsets;
    }

    protected override int EncoderOutputs(VaeConfig config) => 2 * DefLayerSpec.Widths(config.DefLayers).Sum();

    protected override void BuildDecoders(LayoutBuilder layout)
    {
        var config = layout.Config;
        var widths = DefLayerSpec.Widths(config.DefLayers);
        layout.AddPositive("def.weights0", widths[0], config.InputSize);
        for (int l = 1; l < widths.Length; l++)
            layout.AddPositive($"def.weights{l}", widths[l], widths[l - 1]);
        layout.EndDecoder();
    }

    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        var widths = DefLayerSpec.Widths(config.DefLayers);
        var weightLayers = layout.Layers.Skip(layout.DecoderStart).Take(layout.DecoderEnd - layout.DecoderStart).ToArray();
        for (int l = 0; l < weightLayers.Length; l++)
            plan.Floats(DefModel.Weights(l), weightLayers[l].WeightCount);
        plan.Floats(DefModel.WeightGradient, weightLayers.Max(layer => layer.WeightCount));
        plan.Floats(DefModel.Floor, weightLayers.Max(layer => layer.Outputs));
        plan.Floats(DefModel.BiasGradient, weightLayers.Max(layer => layer.Outputs));
        plan.Floats(DefModel.DecoderOutput, rows * config.InputSize);
        plan.Floats(ModelBuffers.LogWeights, rows);
        for (int l = 0; l < widths.Length; l++)
        {
            foreach (var name in new[] { DefModel.Draws(l), DefModel.LogDraws(l), DefModel.LogQ(l), DefModel.LogPrior(l) })
                plan.Floats(name, rows * widths[l]);
            plan.Floats(DefModel.Score(l), rows * 2 * widths[l]);
            plan.Floats(DefModel.RowLogPrior(l), rows);
        }
    }

    public override FamilyModel Create(ModelParts parts) => new DefModel(parts);

    public override ReferenceModel Reference { get; } = new DefModelReference();
}
