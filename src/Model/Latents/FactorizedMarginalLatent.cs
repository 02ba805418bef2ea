using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// q(z|x) against a learned factorized marginal r(z) = Π_j N(m_j, s_j²) (auto-encoding CorEx): a diagonal
/// N(μ, diag σ²) with the KL in closed form per dimension, weighted per dimension for AnchorVAE's anchors (see
/// <see cref="FactorizedPrior"/>), or a rank-one N(μ, C) with its KL against r (see <see cref="RankOneMarginal"/>;
/// no anchors); the gradient reaches both the encoder's statistics and r's [m | log s²]. Trains on the ELBO (the
/// importance-weighted backward pass is not built); log w for L_k is against r.
/// </summary>
public sealed class FactorizedMarginalLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, VaeConfig config, LearnedPrior marginal)
    : SampledLatent(kernels, stack, workspace, statisticsLayer, config.Latent)
{
    private readonly bool rankOne = config.Covariance == CovarianceKind.RankOne;

    public override LearnedPrior Prior => marginal;

    private MarginalShape Shape(int samples) => new(Width, samples, config.Anchors, (float)(1 - config.AnchorWeight));

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        MarginalTerms.Forward(Kernels, rankOne, Statistics(batch), marginal.Components(batch), Codes(rows), Epsilon(rows), KlPerRow(rows), rows, Shape(samples), key);
        return Codes(rows);
    }

    public override void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException("the factorized marginal's KL term takes a fixed KL weight");
        int rows = batch * samples;
        MarginalTerms.Backward(Kernels, rankOne, Statistics(batch), marginal.Components(batch), Epsilon(rows), CodeGradient(rows), StatisticsGradient(batch),
            marginal.ComponentGradient(batch), batch, Shape(samples), klWeight);
    }

    public override void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException("CorEx trains with its ELBO; the importance-weighted backward pass against r(z) is not built");

    public override void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights)
    {
        int rows = batch * samples;
        MarginalTerms.LogWeights(Kernels, rankOne, Statistics(batch), marginal.Components(batch), Codes(rows), Epsilon(rows), reconstructionPerRow,
            logWeights, rows, Shape(samples));
    }

    /// <summary>μ and log σ² (a rank-one q's marginal ones, the diagonal of C).</summary>
    public override (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) =>
        rankOne ? RankOneLatent.SplitStatistics(statistics, batch, Width) : base.Split(statistics, batch);
}

/// <summary>
/// One CorEx layer's terms against its learned factorized marginal, for a diagonal or a rank-one q: the codes and
/// KL, the backward pass to the stats and the marginal (klWeight per example), and log w. Shared by one-layer CorEx
/// (<see cref="FactorizedMarginalLatent"/>) and both layers of stacked CorEx.
/// </summary>
public static class MarginalTerms
{
    public static void Forward(KernelSet kernels, bool rankOne, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> kl, int rows, MarginalShape shape, DrawKey key)
    {
        if (rankOne)
        {
            // The rank-one sampler writes the KL against N(0, I); the row's KL against r replaces it.
            kernels.RankOneForward(stats, z, epsilon, kl, rows, shape.Latent, key, shape.Samples);
            kernels.RankOneMarginalKl(stats, marginal, kl, rows, shape.Latent, shape.Samples);
        }
        else
            kernels.FactorizedPriorForward(stats, marginal, z, epsilon, kl, rows, shape, key);
    }

    public static void Backward(KernelSet kernels, bool rankOne, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> epsilon,
        ArrayView<float> dZ, ArrayView<float> dStats, ArrayView<float> dMarginal, int examples, MarginalShape shape, float klWeight)
    {
        if (rankOne)
        {
            kernels.RankOneBackward(stats, epsilon, dZ, dStats, examples, shape.Latent, 0f, shape.Samples);
            kernels.RankOneMarginalKlBackward(stats, marginal, dStats, examples, shape.Latent, klWeight);
            kernels.RankOneMarginalBackward(stats, marginal, dMarginal, examples, shape.Latent, klWeight);
        }
        else
        {
            kernels.FactorizedPriorBackward(stats, marginal, epsilon, dZ, dStats, examples, shape, klWeight);
            kernels.FactorizedMarginalBackward(stats, marginal, dMarginal, examples, shape, klWeight);
        }
    }

    public static void LogWeights(KernelSet kernels, bool rankOne, ArrayView<float> stats, ArrayView<float> marginal, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, int rows, MarginalShape shape)
    {
        if (rankOne)
            kernels.RankOneMarginalLogWeights(stats, marginal, z, epsilon, reconstructionPerRow, logWeights, rows, shape.Latent, shape.Samples);
        else
            kernels.FactorizedPriorLogWeights(stats, marginal, z, epsilon, reconstructionPerRow, logWeights, rows, shape);
    }
}
