using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// q(z|x) a diagonal (or rank-one) Gaussian pushed through <see cref="VaeConfig.FlowLength"/> planar flow steps whose parameters
/// the encoder writes beside μ and log σ² (see <see cref="PlanarFlow"/>); the KL term is sampled at the flow's end.
/// Trains on the ELBO (the importance-weighted backward pass is not built); log w for L_k is −rec − the sampled KL.
/// </summary>
public sealed class PlanarFlowLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, VaeConfig config)
    : SampledLatent(kernels, stack, workspace, statisticsLayer, config.Latent)
{
    /// <summary>Each row's z_0 … z_{L−1}, kept for the backward pass.</summary>
    public const string States = "flow.states";

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        Kernels.PlanarFlowForward(Statistics(batch), Codes(rows), Epsilon(rows), Floats(States, (long)rows * config.FlowLength * Width),
            KlPerRow(rows), rows, config.PosteriorFlow(samples), key);
        return Codes(rows);
    }

    public override void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException("the planar flow's KL term is sampled: it takes a fixed KL weight");
        int rows = batch * samples;
        Kernels.PlanarFlowBackward(Statistics(batch), Codes(rows), Epsilon(rows), Floats(States, (long)rows * config.FlowLength * Width),
            CodeGradient(rows), StatisticsGradient(batch), batch, config.PosteriorFlow(samples), klWeight);
    }

    public override void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException("the planar flow posterior trains with the ELBO; its importance-weighted backward pass is not built");

    public override void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights)
    {
        int rows = batch * samples;
        Kernels.SampledKlLogWeights(KlPerRow(rows), reconstructionPerRow, logWeights, rows);
    }

    /// <summary>μ and log σ² of the flow's base Gaussian q_0(z_0|x), the columns before the flow's parameters.</summary>
    public override (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) => SplitBase(statistics, batch, config);

    /// <summary>μ and the log-variances of a flow's base q_0 (a rank-one base's marginal ones, the diagonal of C).</summary>
    public static (float[] Mu, float[] LogVariance) SplitBase(float[] statistics, int batch, VaeConfig config)
    {
        int width = config.Latent, stride = config.PosteriorFlow(1).StatsWidth;
        if (config.Covariance == CovarianceKind.RankOne)
            return RankOneLatent.SplitStatistics(FamilyModel.Columns(statistics, batch, stride, 0, 3 * width), batch, width);
        return (FamilyModel.Columns(statistics, batch, stride, 0, width), FamilyModel.Columns(statistics, batch, stride, width, width));
    }
}
