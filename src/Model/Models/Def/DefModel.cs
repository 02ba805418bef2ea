using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Def;

/// <summary>
/// The deep exponential family (Ranganath et al. 2015; kernels in <see cref="DeepExponential"/> and
/// <see cref="DeepExponentialDiscrete"/>): layers z_0 (bottom, <see cref="VaeConfig.Latent"/> units) … z_{L−1} (top)
/// of sparse gamma, Poisson or sigmoid-belief-net units. The top's prior is Gamma(α, α), Poisson(1) or Bernoulli(½);
/// a lower gamma layer's is Gamma(α, α/μ), a Poisson layer's Poisson(μ), with μ_l = V_{l+1}·z_{l+1} + ε and
/// V_{l+1} = softplus(θ) ≥ 0; a sigmoid-belief-net layer's is Bernoulli(σ(η)), η_l = W_{l+1}·z_{l+1} + b with real
/// W and b. Binary pixels have
/// p(x_i = 1) = 1 − exp(−r_i), r = V_0·z_0 + ε (or with the Poisson likelihood each pixel's byte a Poisson(r_i)
/// count: Poisson factorization when there is one gamma layer), V_0 ≥ 0 whatever the bottom layer's type. q(z|x) is
/// mean-field over every unit of every layer, each unit's q of its prior's family, amortised: the encoder writes each
/// unit's shape and mean parameters (a Poisson or Bernoulli unit reads only the mean column; the paper fits them
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
    private readonly DefUnitKind[] kinds;
    private readonly int[] offsets;
    private readonly int totalUnits;

    public DefModel(ModelParts parts) : base(parts)
    {
        var layers = DefLayerSpec.Parse(Config.DefLayers);
        widths = layers.Select(layer => layer.Width).ToArray();
        kinds = layers.Select(layer => layer.Kind).ToArray();
        offsets = DefFamily.Offsets(widths);
        totalUnits = widths.Sum();
        var floor = Workspace.Floats(Floor);
        floor.View.CopyFromCPU(Enumerable.Repeat(DeepExponential.RateFloor, (int)floor.Length).ToArray());
    }

    private int Layers => widths.Length;
    private float Alpha => (float)Config.DefShape;
    private int StatisticsLayer => Layout.EncoderLayerCount - 1;

    /// <summary>The layout's layer of V_l: V_0 writes the rates, V_l (l ≥ 1) the parents of z_{l−1} (the means of
    /// gamma and Poisson units, through positive weights; the logits of Bernoulli units, through real ones).</summary>
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

    private ArrayView<float> BiasView(string buffer, int l)
    {
        var slice = Layout.Layers[WeightLayer(l)];
        return Workspace.Floats(buffer).View.SubView(slice.BiasOffset, slice.Outputs);
    }

    private ArrayView<float> Rates(int rows) => Stack.Output(WeightLayer(0), rows);
    private ArrayView<float> RateGradient(int rows) => Stack.Gradient(WeightLayer(0), rows);

    /// <summary>The parents of z_l's units (μ = V_{l+1}·z_{l+1} + ε, or η = W_{l+1}·z_{l+1} + b for Bernoulli units)
    /// and ∂ log p/∂ those parents; none for the top.</summary>
    private ArrayView<float> Means(int l, int rows) => l == Layers - 1 ? Kernels.None : Stack.Output(WeightLayer(l + 1), rows);
    private ArrayView<float> MeanGradient(int l, int rows) => l == Layers - 1 ? Kernels.None : Stack.Gradient(WeightLayer(l + 1), rows);

    public override ArrayView<float> Output(int rows) => Floats(DecoderOutput, (long)rows * Config.InputSize);

    public override ArrayView<float> OutputGradient(int rows) => RateGradient(rows);

    /// <summary>Positive weights: V_l = softplus(θ_l) into its buffer, then output = act(V_l·input + ε); real ones
    /// (below them a Bernoulli layer): output = act(W_l·input + b).</summary>
    private void Product(int l, ArrayView<float> input, ArrayView<float> output, int rows, ActivationKind activation = ActivationKind.Identity)
    {
        var slice = Layout.Layers[WeightLayer(l)];
        if (!slice.Positive)
        {
            Kernels.DenseForward(activation, input, WeightView(ModelBuffers.Parameters, l), BiasView(ModelBuffers.Parameters, l), output, rows,
                slice.Inputs, slice.Outputs);
            return;
        }
        Kernels.SoftplusWeights(WeightView(ModelBuffers.Parameters, l), V(l));
        Kernels.DenseForward(activation, input, V(l), Floats(Floor, slice.Outputs), output, rows, slice.Inputs, slice.Outputs);
    }

    public override void Forward(int batch, DrawKey key, int samples)
    {
        int rows = batch * samples;
        Stack.Forward(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        var statistics = Stack.Output(StatisticsLayer, batch);
        for (int l = 0; l < Layers; l++)
        {
            if (kinds[l] == DefUnitKind.Gamma)
                Kernels.GammaPosteriorSample(statistics, Z(l, rows), LogZ(l, rows), LogQView(l, rows), ScoreView(l, rows), Shape(l, samples), key);
            else
                Kernels.DiscretePosteriorSample(kinds[l], statistics, Z(l, rows), LogZ(l, rows), LogQView(l, rows), ScoreView(l, rows), Shape(l, samples), key);
        }
        // Top down: each layer's parents from the layer above, then its prior terms; the KL rows set by the top.
        for (int l = Layers - 1; l >= 0; l--)
        {
            if (l < Layers - 1)
                Product(l + 1, Z(l + 1, rows), Means(l, rows), rows);
            if (kinds[l] == DefUnitKind.Gamma)
                Kernels.GammaLayerTerms(Z(l, rows), LogZ(l, rows), LogQView(l, rows), Means(l, rows), LogP(l, rows), MeanGradient(l, rows), RowLogP(l, rows),
                    KlPerRow(rows), widths[l], Alpha, first: l == Layers - 1);
            else
                Kernels.DiscreteLayerTerms(kinds[l], Z(l, rows), LogQView(l, rows), Means(l, rows), LogP(l, rows), MeanGradient(l, rows), RowLogP(l, rows),
                    KlPerRow(rows), widths[l], first: l == Layers - 1);
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
        // The weights: exact for the drawn z. V_0 from the rates' gradient, V_l from −β/rows·∂ log p(z_{l−1})/∂ parent.
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

    /// <summary>θ_l's gradient: scale·(dOutputᵀ·input)·σ(θ), through the scratch dV; V_l is the forward pass's. Real
    /// weights: dOutput scaled in place (nothing reads it after), then W's and b's gradients as a dense layer's.</summary>
    private void WeightBackward(int l, ArrayView<float> input, ArrayView<float> dOutput, int rows, float scale)
    {
        var slice = Layout.Layers[WeightLayer(l)];
        if (!slice.Positive)
        {
            Kernels.ScaleInPlace(dOutput, scale);
            Kernels.DenseBackward(input, WeightView(ModelBuffers.Parameters, l), dOutput, Kernels.None, ActivationKind.Identity,
                WeightView(ModelBuffers.Gradients, l), BiasView(ModelBuffers.Gradients, l), rows, slice.Inputs, slice.Outputs);
            return;
        }
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
        for (int l = 0; l < Layers; l++)
            for (int b = 0; b < batch; b++)
                for (int t = offsets[l]; t < offsets[l] + widths[l]; t++)
                    means[b * totalUnits + t] = DeepExponentialDiscrete.PosteriorMean(kinds[l], statistics[b * 2 * totalUnits + totalUnits + t]);
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

    /// <summary>Top-layer codes down the mean path (each layer at its prior mean given the one above: μ, or σ(η) for
    /// Bernoulli units) to the logits.</summary>
    public override void Decode(float[] codes, int batch)
    {
        Z(Layers - 1, batch).CopyFromCPU(codes);
        for (int l = Layers - 1; l >= 1; l--)
            Product(l, Z(l, batch), Z(l - 1, batch), batch, MeanActivation(l - 1));
        Product(0, Z(0, batch), Rates(batch), batch);
        if (Counts)
            Kernels.RateMeans(Rates(batch), Output(batch));
        else
            Kernels.RateLogits(Rates(batch), Output(batch));
    }

    /// <summary>A layer's prior mean as a function of its parent: the parent itself (μ), or σ(η) for Bernoulli units.</summary>
    private ActivationKind MeanActivation(int l) => kinds[l] == DefUnitKind.Bernoulli ? ActivationKind.Sigmoid : ActivationKind.Identity;

    /// <summary>Unit j of layer l as the rates it adds to the pixels: the mean path (see <see cref="Decode"/>) from
    /// layer l with only unit j at 1, less the path from layer l at 0, in double on the host. Through positive weights
    /// alone this is V_0·V_1·…·V_l·e_j.</summary>
    public override IReadOnlyList<float[]>? LayerComponents()
    {
        var parameters = Download(Workspace.Floats(ModelBuffers.Parameters).View);
        var weights = new double[Layers][];
        var biases = new double[Layers][];
        for (int l = 0; l < Layers; l++)
        {
            var slice = Layout.Layers[WeightLayer(l)];
            var raw = parameters.AsSpan(slice.WeightOffset, slice.WeightCount).ToArray().Select(value => (double)value);
            weights[l] = (slice.Positive ? raw.Select(StableMath.Softplus) : raw).ToArray();
            biases[l] = slice.Positive
                ? Enumerable.Repeat((double)DeepExponential.RateFloor, slice.Outputs).ToArray()
                : parameters.AsSpan(slice.BiasOffset, slice.Outputs).ToArray().Select(value => (double)value).ToArray();
        }
        double[] Down(int from, double[] codes)
        {
            for (int l = from; l >= 0; l--)
            {
                var slice = Layout.Layers[WeightLayer(l)];
                var next = new double[slice.Outputs];
                for (int o = 0; o < slice.Outputs; o++)
                {
                    double sum = biases[l][o];
                    for (int i = 0; i < slice.Inputs; i++)
                        sum += weights[l][o * slice.Inputs + i] * codes[i];
                    next[o] = l > 0 ? ActivationReference.Forward(MeanActivation(l - 1), sum) : sum;
                }
                codes = next;
            }
            return codes;
        }
        int pixels = Config.InputSize;
        var components = new List<float[]>();
        for (int l = 0; l < Layers; l++)
        {
            var baseline = Down(l, new double[widths[l]]);
            var layer = new float[widths[l] * pixels];
            for (int j = 0; j < widths[l]; j++)
            {
                var unit = new double[widths[l]];
                unit[j] = 1;
                var rates = Down(l, unit);
                for (int i = 0; i < pixels; i++)
                    layer[j * pixels + i] = (float)(rates[i] - baseline[i]);
            }
            components.Add(layer);
        }
        return components;
    }

    /// <summary><paramref name="count"/> top-layer codes from the top's prior, Gamma(α, α), Poisson(1) or
    /// Bernoulli(½): element i from the stream (seed, Sample, 0) at counter i.</summary>
    public override float[]? DrawPriorCodes(int count, ulong seed)
    {
        var key = new DrawKey(seed, Philox.Streams.Sample, 0);
        var top = kinds[^1];
        return Enumerable.Range(0, count * widths[^1]).Select(i => top switch
        {
            DefUnitKind.Poisson => Distributions.SamplePoisson(1f, key, i),
            DefUnitKind.Bernoulli => Philox.Uniform(key.Seed, key.Stream, key.Step, i) < 0.5f ? 1f : 0f,
            _ => Distributions.SampleGamma(Alpha, Alpha, key, i),
        }).ToArray();
    }
}

/// <summary>
/// The DEF's family: the encoder writes q's [shape parameters | mean parameters] of every unit (bottom layer first),
/// then V_0 (the pixels' rates from z_0) and V_1 … V_{L−1} (each layer's parents from the one above): positive
/// weights that are never run as dense layers, or for a Bernoulli layer below, a real dense layer with a bias.
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
        var layers = DefLayerSpec.Parse(config.DefLayers);
        layout.AddPositive("def.weights0", layers[0].Width, config.InputSize);
        for (int l = 1; l < layers.Length; l++)
        {
            // A Bernoulli layer's logits take real weights and a bias; gamma and Poisson means positive weights.
            if (layers[l - 1].Kind == DefUnitKind.Bernoulli)
                layout.Add($"def.weights{l}", layers[l].Width, layers[l - 1].Width, ActivationKind.Identity);
            else
                layout.AddPositive($"def.weights{l}", layers[l].Width, layers[l - 1].Width);
        }
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
