using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// q(z|x) = N(μ, diag σ²) against a learned mixture prior (see <see cref="MixturePrior"/> and <see cref="LearnedPrior"/>):
/// the KL term is sampled at the drawn z, and its gradient reaches both the encoder's statistics and the prior's
/// components. Trains on the ELBO or the importance-weighted bound; log w is −rec − the sampled KL.
/// </summary>
public sealed class MixturePriorLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, VaeConfig config, LearnedPrior prior)
    : SampledLatent(kernels, stack, workspace, statisticsLayer, config.Latent)
{
    public override LearnedPrior Prior => prior;

    private MixtureShape Shape(int samples) => new(Width, prior.Count, samples);

    private ArrayView<float> Responsibilities(int rows) => Floats(LearnedPrior.Responsibilities, (long)rows * prior.Count);

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        Kernels.MixturePriorForward(Statistics(batch), prior.Components(batch), Codes(rows), Epsilon(rows), KlPerRow(rows),
            Responsibilities(rows), rows, Shape(samples), key);
        return Codes(rows);
    }

    public override void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException("the mixture prior's KL term is sampled: it takes a fixed KL weight");
        int rows = batch * samples;
        Kernels.MixturePriorBackward(Statistics(batch), prior.Components(batch), Codes(rows), Epsilon(rows), Responsibilities(rows),
            CodeGradient(rows), StatisticsGradient(batch), batch, Shape(samples), klWeight);
        Kernels.MixturePriorComponentsBackward(prior.Components(batch), Codes(rows), Responsibilities(rows), prior.ComponentGradient(batch),
            rows, Shape(samples), klWeight);
    }

    /// <summary>The importance-weighted bound's: row r's dz and sampled KL weighted by scale·w̃_r.</summary>
    public override void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale)
    {
        int rows = batch * samples;
        Kernels.MixturePriorBackward(Statistics(batch), prior.Components(batch), Codes(rows), Epsilon(rows), Responsibilities(rows),
            CodeGradient(rows), StatisticsGradient(batch), batch, Shape(samples), scale, weights);
        Kernels.MixturePriorComponentsBackward(prior.Components(batch), Codes(rows), Responsibilities(rows), prior.ComponentGradient(batch),
            rows, Shape(samples), scale, weights);
    }

    public override void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights)
    {
        int rows = batch * samples;
        Kernels.SampledKlLogWeights(KlPerRow(rows), reconstructionPerRow, logWeights, rows);
    }
}
