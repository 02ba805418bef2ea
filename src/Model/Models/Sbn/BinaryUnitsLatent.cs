using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;

namespace IlgpuVae.Model.Models.Sbn;

/// <summary>
/// What the latents of binary units (the sigmoid belief network's, DARN's) share: h1 in the codes buffer
/// (<see cref="VaeConfig.Latent"/> columns), no gradient through the discrete units, the ELBO's backward pass as
/// NVIL's centring, then the family's own score-function and exact gradients, then the running moments; log w from
/// the sampled KL terms; the encoders' logits read as probabilities.
/// </summary>
public abstract class BinaryUnitsLatent : ILatent
{
    /// <param name="normaliseSignal">Whether NVIL divides the centred signal by its running standard deviation: right
    /// when every encoder gradient is a score-function one (a common scale), not when the signal's term is added to
    /// a pathwise one.</param>
    protected BinaryUnitsLatent(ModelParts parts, string modelName, bool normaliseSignal = true)
    {
        Kernels = parts.Kernels;
        Stack = parts.Stack;
        Layout = parts.Layout;
        Config = parts.Config;
        Workspace = parts.Workspace;
        Nvil = new Nvil(parts, normaliseSignal);
        ModelName = modelName;
    }

    protected KernelSet Kernels { get; }
    protected DenseStack Stack { get; }
    protected ParameterLayout Layout { get; }
    protected VaeConfig Config { get; }
    protected Workspace Workspace { get; }
    protected Nvil Nvil { get; }

    /// <summary>How messages name the model ("DARN").</summary>
    private string ModelName { get; }

    protected int Units => Config.Latent;
    protected int StatisticsLayer => Layout.EncoderLayerCount - 1;
    protected ArrayView<float> Floats(string name, long length) => Workspace.Floats(name).View.SubView(0, length);
    protected ArrayView<float> Input(int batch) => Floats(ModelBuffers.Input, (long)batch * Config.InputSize);
    protected ArrayView<float> KlPerRow(int rows) => Floats(ModelBuffers.KlPerRow, rows);

    /// <summary>h1, what the decoder reads.</summary>
    public ArrayView<float> Codes(int rows) => Floats(ModelBuffers.Z, (long)rows * Units);

    /// <summary>None: the units are discrete, so the decoder's gradient of its codes is not used (unless an estimator
    /// reads it, as DARN's Taylor-expansion baseline does).</summary>
    public virtual ArrayView<float> CodeGradient(int rows) => Kernels.None;

    public abstract ArrayView<float> Sample(int batch, int samples, DrawKey key);

    /// <summary>After the decoder's backward pass (which wrote each row's reconstruction term): NVIL's centring of
    /// l = −(rec + β·KL), <see cref="UnitGradients"/>, then the running moments. <paramref name="klWeight"/> is
    /// β/batch, as the ELBO hands it to every latent.</summary>
    public void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException($"{ModelName}'s KL term is sampled: it takes a fixed KL weight");
        int rows = batch * samples;
        float beta = klWeight * batch;
        Nvil.Center(Input(batch), batch, samples, beta, SignalKl(rows));
        UnitGradients(batch, samples, beta, Nvil.CentredSignal(rows));
        Nvil.UpdateMoments(rows);
    }

    /// <summary>What stands for the KL term in NVIL's signal −(rec + β·KL) per row: the KL term itself unless a family
    /// leaves out terms that its score functions do not depend on.</summary>
    protected virtual ArrayView<float> SignalKl(int rows) => KlPerRow(rows);

    /// <summary>The family's gradients given the centred signal per row: the priors' exact ones and the encoders'
    /// score-function estimates (written into the encoder's output gradient for its backward pass).</summary>
    protected abstract void UnitGradients(int batch, int samples, float beta, ArrayView<float> centred);

    public void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException($"{ModelName} trains with its ELBO; an importance-weighted backward pass is not built for it");

    public void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights) =>
        Kernels.SampledKlLogWeights(KlPerRow(batch * samples), reconstructionPerRow, logWeights, batch * samples);

    /// <summary>With two layers, q(h2|h1) and p(h1|h2) between the encoder and the decoder (see <see cref="SbnFamily.BuildSecondLayer"/>).</summary>
    protected bool TwoLayers => Config.StochasticLayers == 2;

    /// <summary>The top layer's probabilities for a gathered batch, on the mean path: σ of the encoder's last layer
    /// (q(h1|x)'s logits, or DARN's context), and with two layers σ of q(h2|h1)'s read at h1 = those probabilities
    /// (waits for the device).</summary>
    public float[] TopProbabilities(int batch)
    {
        Stack.Forward(0, Layout.EncoderLayerCount, Input(batch), batch);
        Kernels.Synchronize();
        var first = Split(ArrayViewExtensions.GetAsArray1D<float>(Stack.Output(StatisticsLayer, batch)), batch).Mu;
        if (!TwoLayers)
            return first;
        Codes(batch).CopyFromCPU(first);
        Stack.Forward(Layout.EncoderLayerCount, Layout.Encoder2End, Codes(batch), batch);
        Kernels.Synchronize();
        return Split(ArrayViewExtensions.GetAsArray1D<float>(Stack.Output(Layout.Encoder2End - 1, batch)), batch).Mu;
    }

    /// <summary>Puts top-layer codes in place for decoding: into h1 with one layer (false), or into
    /// <paramref name="top"/> (h2) with the prior network run on them (true: the caller sets h1 from its output).</summary>
    protected bool PlaceTop(float[] codes, int batch, ArrayView<float> top)
    {
        if (!TwoLayers)
        {
            Codes(batch).CopyFromCPU(codes);
            return false;
        }
        top.CopyFromCPU(codes);
        Stack.Forward(Layout.Encoder2End, Layout.DecoderStart, top, batch);
        return true;
    }

    /// <summary>The probabilities σ(a_j) of an encoder's logits; no variance.</summary>
    public (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) =>
        (statistics.Select(BinaryLatent.Probability).ToArray(), []);
}
