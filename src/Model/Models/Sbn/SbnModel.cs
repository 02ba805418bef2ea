using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.Sbn;

/// <summary>
/// The sigmoid belief network's binary latent (see <see cref="BinaryLatent"/>): h ~ q(h|x) = Π Bernoulli(σ(a)) from
/// the encoder's logits a, the KL term log q(h|x) − log p(h) sampled against a learned factorised prior p(h) (its
/// logits c from layer <see cref="ParameterLayout.AuxiliaryStart"/> on the row [1]). h is discrete, so no gradient
/// reaches the encoder through it: the encoder's is NVIL's score-function estimate from the learning signal
/// l = −(rec + β·KL) per row, centred by the baseline network b(x) (the layers after the running moments,
/// trained on mean (l − b(x) − m)²), the running mean m and the running variance v (held in the parameter buffer
/// as state, updated after each training batch with NVIL's decay 0.8). The decoder's and the prior's gradients
/// are exact for the drawn h.
/// </summary>
public sealed class BernoulliLatent : ILatent
{
    /// <summary>The learning signal centred per row, and l − b(x) per row (what the moments are updated from).</summary>
    public const string Centred = "sbn.centred", SignalMinusBaseline = "sbn.signal_minus_baseline";

    /// <summary>NVIL's decay of the running moments (Mnih and Gregor's α).</summary>
    public const float MomentDecay = 0.8f;

    /// <summary>Every NVIL device on: the baseline network, the running mean and the variance normalisation.</summary>
    public static readonly SignalCentring Nvil = new(subtractBaseline: true, subtractRunningMean: true, normalise: true);

    private readonly KernelSet kernels;
    private readonly DenseStack stack;
    private readonly ParameterLayout layout;
    private readonly VaeConfig config;
    private readonly Workspace workspace;

    public BernoulliLatent(ModelParts parts)
    {
        kernels = parts.Kernels;
        stack = parts.Stack;
        layout = parts.Layout;
        config = parts.Config;
        workspace = parts.Workspace;
        // The prior's layer reads the single row [1].
        Floats(LearnedPrior.OneHotRows, 1).CopyFromCPU(new[] { 1f });
    }

    private int Units => config.Latent;
    private int StatisticsLayer => layout.EncoderLayerCount - 1;
    private int PriorLayer => SbnFamily.PriorLayer(layout);
    private int MomentsLayer => SbnFamily.MomentsLayer(layout);
    private int BaselineStart => MomentsLayer + 1;
    private int BaselineEnd => layout.Layers.Count;
    private ArrayView<float> OneRow => Floats(LearnedPrior.OneHotRows, 1);
    private ArrayView<float> PriorLogits => stack.Output(PriorLayer, 1);
    private ArrayView<float> Logits(int batch) => stack.Output(StatisticsLayer, batch);

    /// <summary>[running mean, running variance] of l − b(x), in the parameter buffer.</summary>
    private ArrayView<float> Moments => workspace.Floats(ModelBuffers.Parameters).View.SubView(layout.Layers[MomentsLayer].BiasOffset, 2);

    private ArrayView<float> Input(int batch) => Floats(ModelBuffers.Input, (long)batch * config.InputSize);
    private ArrayView<float> KlPerRow(int rows) => Floats(ModelBuffers.KlPerRow, rows);
    private ArrayView<float> Floats(string name, long length) => workspace.Floats(name).View.SubView(0, length);

    public ArrayView<float> Codes(int rows) => Floats(ModelBuffers.Z, (long)rows * Units);

    /// <summary>None: h is discrete, so the decoder's gradient of its codes is not used.</summary>
    public ArrayView<float> CodeGradient(int rows) => kernels.None;

    public ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        stack.Forward(PriorLayer, PriorLayer + 1, OneRow, 1);
        kernels.BinaryLatentSample(Logits(batch), PriorLogits, Codes(rows), KlPerRow(rows), Units, samples, key);
        return Codes(rows);
    }

    /// <summary>After the decoder's backward pass (which wrote each row's reconstruction term): the baseline
    /// network's forward and backward pass, the prior's exact gradient, the encoder logits' score-function gradient,
    /// then the running moments. <paramref name="klWeight"/> is β/batch, as the ELBO hands it to every latent.</summary>
    public void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException("the sigmoid belief network's KL term is sampled: it takes a fixed KL weight");
        int rows = batch * samples;
        float beta = klWeight * batch;
        var input = Input(batch);
        stack.Forward(BaselineStart, BaselineEnd, input, batch);
        kernels.NvilSignal(Floats(ModelBuffers.ReconstructionPerRow, rows), KlPerRow(rows), stack.Output(BaselineEnd - 1, batch), Moments,
            Floats(Centred, rows), Floats(SignalMinusBaseline, rows), stack.Gradient(BaselineEnd - 1, batch), samples, beta, Nvil, 1f / rows);
        stack.Backward(BaselineStart, BaselineEnd, batch, input, kernels.None);
        kernels.BinaryPriorGradient(PriorLogits, Codes(rows), stack.Gradient(PriorLayer, 1), rows, beta / rows);
        stack.Backward(PriorLayer, PriorLayer + 1, 1, OneRow, kernels.None);
        kernels.BinaryPosteriorGradient(Logits(batch), Codes(rows), Floats(Centred, rows), stack.Gradient(StatisticsLayer, batch), Units, samples, 1f / rows);
        // After the batch has used them, so that the centring never depends on its own draws.
        kernels.UpdateSignalMoments(Floats(SignalMinusBaseline, rows), Floats(SignalMinusBaseline, rows), Moments, MomentDecay, subtractBaseline: 0);
    }

    public void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException("the sigmoid belief network trains with its ELBO; an importance-weighted backward pass is not built for it");

    public void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights) =>
        kernels.SampledKlLogWeights(KlPerRow(batch * samples), reconstructionPerRow, logWeights, batch * samples);

    /// <summary>The probabilities q(h_j = 1|x) = σ(a_j) of the encoder's logits; no variance.</summary>
    public (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) =>
        (statistics.Select(BinaryLatent.Probability).ToArray(), []);

    /// <summary><paramref name="count"/> codes h ~ p(h): element i is 1 when Philox (seed, Sample, 0, i) &lt; σ(c_j).</summary>
    public float[] PriorCodes(int count, ulong seed)
    {
        stack.Forward(PriorLayer, PriorLayer + 1, OneRow, 1);
        kernels.Synchronize();
        var priorLogits = ArrayViewExtensions.GetAsArray1D<float>(PriorLogits);
        var codes = new float[count * Units];
        for (int i = 0; i < codes.Length; i++)
            codes[i] = Philox.Uniform(seed, Philox.Streams.Sample, 0, i) < BinaryLatent.Probability(priorLogits[i % Units]) ? 1f : 0f;
        return codes;
    }
}

/// <summary>The sigmoid belief network's model: the one-layer model with <see cref="BernoulliLatent"/>, whose prior
/// draws are binary.</summary>
public sealed class SbnModel(ModelParts parts, BernoulliLatent latent) : OneLayerModel(parts, latent, new ReconstructionTerm(parts.Config), new Elbo())
{
    public override float[]? DrawPriorCodes(int count, ulong seed) => latent.PriorCodes(count, seed);
}

/// <summary>
/// The sigmoid belief network's family: the one-layer layout (its encoder's last layer the K logits), then the
/// prior's logits (one layer from the row [1]), NVIL's running moments (state) and its baseline network
/// x → <see cref="BaselineHidden"/> tanh units → b(x), as Mnih and Gregor's MNIST models have it.
/// </summary>
public sealed class SbnFamily : OneLayerFamily
{
    /// <summary>The baseline network's hidden units (NVIL's 100).</summary>
    public const int BaselineHidden = 100;

    public static int PriorLayer(ParameterLayout layout) => layout.AuxiliaryStart;
    public static int MomentsLayer(ParameterLayout layout) => layout.AuxiliaryStart + 1;

    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        base.Plan(plan, config, layout, batch, rows);
        plan.Floats(LearnedPrior.OneHotRows, 1);
        plan.Floats(BernoulliLatent.Centred, rows);
        plan.Floats(BernoulliLatent.SignalMinusBaseline, rows);
    }

    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.StartAuxiliary();
        layout.Add("sbn.prior", 1, config.Latent, ActivationKind.Identity);
        layout.AddState("nvil.signal_moments", 2);
        layout.Add("nvil.baseline.0", config.EncoderInputs, BaselineHidden, ActivationKind.Tanh);
        layout.Add("nvil.baseline.out", BaselineHidden, 1, ActivationKind.Identity);
    }

    /// <summary>The prior's layer and the moments see one row, the baseline network the batch's.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer == PriorLayer(layout) || layer == MomentsLayer(layout) ? 1
        : layer > MomentsLayer(layout) ? batch
        : base.RowsOfLayer(layout, layer, batch, samples);

    public override FamilyModel Create(ModelParts parts) => new SbnModel(parts, new BernoulliLatent(parts));

    public override ReferenceModel Reference { get; } = new SbnModelReference();
}
