using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Models.Sbn;

/// <summary>
/// The sigmoid belief network's binary latents (see <see cref="BinaryLatent"/>): h1 ~ q(h1|x) = Π Bernoulli(σ(a))
/// from the encoder's logits a; with two layers also h2 ~ q(h2|h1) from the second encoder and p(h1|h2) from the
/// prior network. The top layer's prior p(h) is learned and factorised (its logits c from layer
/// <see cref="ParameterLayout.AuxiliaryStart"/> on the row [1]); the KL terms log q − log p are sampled and added per
/// row. The units are discrete, so no gradient reaches an encoder through them: each encoder's is NVIL's
/// score-function estimate from the learning signal l = −(rec + β·KL) per row, centred by <see cref="Nvil"/>.
/// The decoder's, the prior network's and the prior's gradients are exact for the drawn units.
/// </summary>
public sealed class BernoulliLatent : FactorisedPriorUnits
{
    /// <summary>log q of h1 per row; with two layers h2, log q(h2|h1) and the second KL term per row.</summary>
    public const string LogQ = "sbn.log_q", H2 = "sbn.h2", LogQ2 = "sbn.log_q2", Kl2 = "sbn.kl2";

    public BernoulliLatent(ModelParts parts) : base(parts, "the sigmoid belief network")
    {
    }

    private int Units2 => Config.Latent2;
    protected override int PriorLayer => SbnFamily.PriorLayer(Layout);
    private ArrayView<float> Logits(int batch) => Stack.Output(StatisticsLayer, batch);

    /// <summary>q(h2|h1)'s logits per row (the second encoder's output) and p(h1|h2)'s (the prior network's).</summary>
    private ArrayView<float> Logits2(int rows) => Stack.Output(Layout.Encoder2End - 1, rows);
    private ArrayView<float> PriorNetworkLogits(int rows) => Stack.Output(Layout.DecoderStart - 1, rows);

    private ArrayView<float> Top(int rows) => TwoLayers ? Floats(H2, (long)rows * Units2) : Codes(rows);

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        PriorForward();
        Kernels.BinaryLatentSample(Logits(batch), Codes(rows), Floats(LogQ, rows), Units, samples, key);
        if (!TwoLayers)
        {
            Kernels.BinaryKl(Codes(rows), Floats(LogQ, rows), PriorLogits, KlPerRow(rows), Units, priorPerRow: false);
            return Codes(rows);
        }
        // h2 ~ q(h2|h1) per row, drawn as the Gaussian second layers draw (a stream of its own, keyed by row).
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, Codes(rows), rows);
        Kernels.BinaryLatentSample(Logits2(rows), Top(rows), Floats(LogQ2, rows), Units2, 1, key.Offset(Philox.Streams.SecondLayerOffset).PerRow(samples));
        Kernels.BinaryKl(Top(rows), Floats(LogQ2, rows), PriorLogits, Floats(Kl2, rows), Units2, priorPerRow: false);
        Stack.Forward(Layout.Encoder2End, Layout.DecoderStart, Top(rows), rows);
        Kernels.BinaryKl(Codes(rows), Floats(LogQ, rows), PriorNetworkLogits(rows), KlPerRow(rows), Units, priorPerRow: true);
        Kernels.Add(KlPerRow(rows), Floats(Kl2, rows));
        return Codes(rows);
    }

    /// <summary>The top prior's and (with two layers) the prior network's exact gradients, then each encoder's
    /// score-function gradient, q(h2|h1)'s first.</summary>
    protected override void UnitGradients(int batch, int samples, float beta, ArrayView<float> centred)
    {
        int rows = batch * samples;
        PriorBackward(Top(rows), rows, beta / rows);
        if (TwoLayers)
        {
            Kernels.BinaryPriorRowGradient(PriorNetworkLogits(rows), Codes(rows), Stack.Gradient(Layout.DecoderStart - 1, rows), beta / rows);
            Stack.Backward(Layout.Encoder2End, Layout.DecoderStart, rows, Top(rows), Kernels.None);
            Kernels.BinaryPosteriorGradient(Logits2(rows), Top(rows), centred, Stack.Gradient(Layout.Encoder2End - 1, rows), Units2, 1, 1f / rows);
            Stack.Backward(Layout.EncoderLayerCount, Layout.Encoder2End, rows, Codes(rows), Kernels.None);
        }
        Kernels.BinaryPosteriorGradient(Logits(batch), Codes(rows), centred, Stack.Gradient(StatisticsLayer, batch), Units, samples, 1f / rows);
    }

    /// <summary>Puts top-layer codes in place and leaves h1 in <see cref="Codes"/>: the codes themselves, or with
    /// two layers p(h1|h2)'s probabilities (the mean path, as the Gaussian two-layer models decode).</summary>
    public void PlaceCodes(float[] codes, int batch)
    {
        if (!PlaceTop(codes, batch, Top(batch)))
            return;
        Kernels.Synchronize();
        Codes(batch).CopyFromCPU(Split(ArrayViewExtensions.GetAsArray1D<float>(PriorNetworkLogits(batch)), batch).Mu);
    }
}

/// <summary>The sigmoid belief network's model: the one-layer model with <see cref="BernoulliLatent"/>, whose prior
/// draws are binary.</summary>
public sealed class SbnModel(ModelParts parts, BernoulliLatent latent) : OneLayerModel(parts, latent, new ReconstructionTerm(parts.Config), new Elbo())
{
    public override float[]? DrawPriorCodes(int count, ulong seed) => latent.PriorCodes(count, seed);

    /// <summary>The top layer's probabilities (h2's with two layers, on the mean path); no variance.</summary>
    public override (float[] Mu, float[] LogVariance) Encode(int batch) => (latent.TopProbabilities(batch), []);

    public override void Decode(float[] codes, int batch)
    {
        latent.PlaceCodes(codes, batch);
        DecoderForward(latent.Codes(batch), batch);
    }
}

/// <summary>
/// The sigmoid belief network's family: its encoder's last layer the K logits of h1; with two layers q(h2|h1) and
/// the prior network p(h1|h2) (each through --hidden2's widths, none by default); the decoder p(x|h1); then the top
/// prior's logits (one layer from the row [1]), then <see cref="Nvil"/>'s layers.
/// </summary>
public sealed class SbnFamily : OneLayerFamily
{
    public static int PriorLayer(ParameterLayout layout) => layout.AuxiliaryStart;

    public override void Plan(WorkspacePlan plan, VaeConfig config, ParameterLayout layout, long batch, long rows)
    {
        base.Plan(plan, config, layout, batch, rows);
        plan.Floats(LearnedPrior.OneHotRows, 1);
        Nvil.Plan(plan, rows);
        plan.Floats(BernoulliLatent.LogQ, rows);
        if (config.StochasticLayers != 2)
            return;
        plan.Floats(BernoulliLatent.H2, rows * config.Latent2);
        plan.Floats(BernoulliLatent.LogQ2, rows);
        plan.Floats(BernoulliLatent.Kl2, rows);
    }

    /// <summary>With two layers: q(h2|h1)'s logits, then p(h1|h2)'s through the same widths reversed.</summary>
    protected override void BuildMiddle(LayoutBuilder layout) => BuildSecondLayer(layout);

    /// <summary>The binary families' second layer (the sigmoid belief network's and DARN's): q(h2|h1)'s logits from h1
    /// through --hidden2's widths, then p(h1|h2)'s through the same widths reversed; nothing with one layer.</summary>
    public static void BuildSecondLayer(LayoutBuilder layout)
    {
        var config = layout.Config;
        if (config.StochasticLayers != 2)
            return;
        layout.Stage("encoder2", config.Latent, config.Hidden2, config.Latent2);
        layout.EndSecondEncoder();
        layout.Stage("prior", config.Latent2, config.Hidden2.Reverse().ToArray(), config.Latent);
    }

    protected override void BuildAuxiliary(LayoutBuilder layout)
    {
        var config = layout.Config;
        layout.StartAuxiliary();
        layout.Add("sbn.prior", 1, config.TopLatent, ActivationKind.Identity);
        Nvil.BuildLayers(layout);
    }

    /// <summary>The prior's layer and the moments see one row, the baseline network the batch's.</summary>
    public override long RowsOfLayer(ParameterLayout layout, int layer, long batch, long samples) =>
        layer == PriorLayer(layout) ? 1 : Nvil.RowsOfLayer(layout, layer, batch) ?? base.RowsOfLayer(layout, layer, batch, samples);

    public override FamilyModel Create(ModelParts parts) => new SbnModel(parts, new BernoulliLatent(parts));

    public override ReferenceModel Reference { get; } = new SbnModelReference();
}
