using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Objectives;

namespace IlgpuVae.Model.Core;

/// <summary>
/// A model whose codes are several Gaussian latents with independent N(0, I) priors, each from its own encoder head
/// (the VLAE's layers; VCCA-private's z, h_x and h_y). Their statistics are gathered into one row
/// [μ_1 … μ_n | log σ_1² … log σ_n²], <see cref="VaeConfig.TopLatent"/> wide, so the codes are one diagonal Gaussian
/// with the VAE's sampler, KL, log w and backward pass, trained on the ELBO; a family says where the heads are
/// (<see cref="InferenceForward"/>, <see cref="InferenceBackward"/>) and how the decoder reads the codes. With
/// <see cref="CovarianceKind.RankOne"/> every head writes a third block u and the gathered row is [μ | log d | u]:
/// one rank-one precision D + uuᵀ over all the codes together (the deep latent Gaussian model's posterior, which
/// may correlate the latents with each other), with that model's sampler, closed-form KL, log w and backward pass.
/// </summary>
public abstract class GatheredGaussianModel(ModelParts parts) : FamilyModel(parts)
{
    private readonly ReconstructionTerm reconstruction = new(parts.Config);

    /// <summary>The codes' columns.</summary>
    protected int Width => Config.TopLatent;

    /// <summary>The gathered statistics [batch, 2·Width] and their gradient, under the family's buffer names.</summary>
    protected abstract string StatisticsBuffer { get; }
    protected abstract string StatisticsGradientBuffer { get; }

    /// <summary>Every encoder head on the gathered batch, and its statistics gathered into <see cref="Stats"/>.</summary>
    protected abstract void InferenceForward(int batch);

    /// <summary>From <see cref="StatsGradient"/> back through every head and encoder.</summary>
    protected abstract void InferenceBackward(int batch);

    /// <summary>Blocks of the gathered row: μ and log σ², and u with a rank-one covariance.</summary>
    protected int Parts => Config.PosteriorBlocks;

    private bool RankOne => Config.Covariance == CovarianceKind.RankOne;

    public override void Forward(int batch, DrawKey key, int samples)
    {
        int rows = batch * samples;
        InferenceForward(batch);
        if (RankOne)
            Kernels.RankOneForward(Stats(batch), Z(rows), Epsilon(rows), KlPerRow(rows), rows, Width, key, samples);
        else
            Kernels.ReparameterizeForward(Stats(batch), Z(rows), Epsilon(rows), KlPerRow(rows), rows, Width, key, samples);
        DecoderForward(Z(rows), rows);
    }

    public override void Train(Pass pass)
    {
        int batch = pass.Batch, rows = pass.Rows;
        reconstruction.TrainGradient(this, pass);
        if (pass.Accumulate)
            AccumulateLoss(pass);
        DecoderBackward(Z(rows), ZGradient(rows), rows);
        // β·KL per example is β/k on each of its k rows, as in the one-layer model's ELBO.
        if (RankOne)
            Kernels.RankOneBackward(Stats(batch), Epsilon(rows), ZGradient(rows), StatsGradient(batch), batch, Width,
                (float)(pass.KlWeight / batch), pass.Samples, null);
        else
            Kernels.ReparameterizeBackward(Stats(batch), Epsilon(rows), ZGradient(rows), StatsGradient(batch), batch, Width,
                (float)(pass.KlWeight / batch), pass.Samples);
        InferenceBackward(batch);
    }

    public override void Evaluate(Pass pass)
    {
        reconstruction.Evaluate(this, pass);
        AccumulateLoss(pass);
    }

    public override void LogWeightRows(int batch, int samples)
    {
        int rows = batch * samples;
        if (RankOne)
            Kernels.RankOneLogWeights(Stats(batch), Z(rows), Epsilon(rows), ReconstructionPerRow(rows), LogWeights(rows), rows, Width, samples);
        else
            Kernels.LogWeights(Stats(batch), Z(rows), Epsilon(rows), ReconstructionPerRow(rows), LogWeights(rows), rows, Width, samples);
    }

    /// <summary>The gathered statistics, as the sampler reads them.</summary>
    public override float[] EncoderOutput(int batch)
    {
        InferenceForward(batch);
        Kernels.Synchronize();
        return Download(Stats(batch));
    }

    /// <summary>All the latents' q side by side: μ and log σ² (with a rank-one covariance, the log of C's
    /// diagonal), each [batch, Width].</summary>
    public override (float[] Mu, float[] LogVariance) Encode(int batch)
    {
        var stats = EncoderOutput(batch);
        return RankOne ? Latents.RankOneLatent.SplitStatistics(stats, batch, Width)
            : (Half(stats, batch, Width, second: false), Half(stats, batch, Width, second: true));
    }

    public override void Decode(float[] codes, int batch)
    {
        Floats(ModelBuffers.Z, codes.Length).CopyFromCPU(codes);
        DecoderForward(Z(batch), batch);
    }

    protected ArrayView<float> Stats(int batch) => Floats(StatisticsBuffer, (long)batch * Parts * Width);
    protected ArrayView<float> StatsGradient(int batch) => Floats(StatisticsGradientBuffer, (long)batch * Parts * Width);
}
