using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// Auto-encoding CorEx with a rank-one posterior: q(z|x) = N(μ, C), C⁻¹ = D + uuᵀ (the stats [μ | log d | u] and the
/// sampler of <see cref="RankOneLatent"/>), against the learned factorized marginal r(z) = Π_j N(m_j, s_j²) (see
/// <see cref="RankOneMarginal"/>): the KL in closed form, its gradient reaching the statistics and r's [m | log s²].
/// Trains on the ELBO (no anchors: their per-dimension KL weights have no meaning for a KL that does not split by
/// dimension); log w for L_k is against r.
/// </summary>
public sealed class RankOneMarginalLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, int width, LearnedPrior marginal)
    : SampledLatent(kernels, stack, workspace, statisticsLayer, width)
{
    public override LearnedPrior Prior => marginal;

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        // The rank-one sampler writes the KL against N(0, I); the row's KL against r replaces it.
        Kernels.RankOneForward(Statistics(batch), Codes(rows), Epsilon(rows), KlPerRow(rows), rows, Width, key, samples);
        Kernels.RankOneMarginalKl(Statistics(batch), marginal.Components(batch), KlPerRow(rows), rows, Width, samples);
        return Codes(rows);
    }

    public override void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException("the factorized marginal's KL term takes a fixed KL weight");
        int rows = batch * samples;
        Kernels.RankOneBackward(Statistics(batch), Epsilon(rows), CodeGradient(rows), StatisticsGradient(batch), batch, Width, klWeight: 0f, samples);
        Kernels.RankOneMarginalKlBackward(Statistics(batch), marginal.Components(batch), StatisticsGradient(batch), batch, Width, klWeight);
        Kernels.RankOneMarginalBackward(Statistics(batch), marginal.Components(batch), marginal.ComponentGradient(batch), batch, Width, klWeight);
    }

    public override void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException("CorEx trains with its ELBO; the importance-weighted backward pass against r(z) is not built");

    public override void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights)
    {
        int rows = batch * samples;
        Kernels.RankOneMarginalLogWeights(Statistics(batch), marginal.Components(batch), Codes(rows), Epsilon(rows), reconstructionPerRow,
            logWeights, rows, Width, samples);
    }

    /// <summary>μ and the log of C's diagonal, as <see cref="RankOneLatent.Split"/> gives them.</summary>
    public override (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) => RankOneLatent.SplitStatistics(statistics, batch, Width);
}
