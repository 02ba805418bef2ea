using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// q(z|x) = N(μ, diag σ²) against a learned factorized marginal r(z) = Π_j N(m_j, s_j²) (auto-encoding CorEx; see
/// <see cref="FactorizedPrior"/>): the KL term in closed form per dimension, weighted per dimension for AnchorVAE's
/// anchors, its gradient reaching both the encoder's statistics and r's [m | log s²]. Trains on the ELBO (the
/// importance-weighted backward pass is not built); log w for L_k is against r.
/// </summary>
public sealed class FactorizedMarginalLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, VaeConfig config, LearnedPrior marginal)
    : SampledLatent(kernels, stack, workspace, statisticsLayer, config.Latent)
{
    public override LearnedPrior Prior => marginal;

    private MarginalShape Shape(int samples) => new(Width, samples, config.Anchors, (float)(1 - config.AnchorWeight));

    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        Kernels.FactorizedPriorForward(Statistics(batch), marginal.Components(batch), Codes(rows), Epsilon(rows), KlPerRow(rows), rows, Shape(samples), key);
        return Codes(rows);
    }

    public override void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        if (klWeightFactor is not null)
            throw new InvalidOperationException("the factorized marginal's KL term takes a fixed KL weight");
        int rows = batch * samples;
        Kernels.FactorizedPriorBackward(Statistics(batch), marginal.Components(batch), Epsilon(rows), CodeGradient(rows), StatisticsGradient(batch),
            batch, Shape(samples), klWeight);
        Kernels.FactorizedMarginalBackward(Statistics(batch), marginal.Components(batch), marginal.ComponentGradient(batch), batch, Shape(samples), klWeight);
    }

    public override void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException("CorEx trains with its ELBO; the importance-weighted backward pass against r(z) is not built");

    public override void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights)
    {
        int rows = batch * samples;
        Kernels.FactorizedPriorLogWeights(Statistics(batch), marginal.Components(batch), Codes(rows), Epsilon(rows), reconstructionPerRow,
            logWeights, rows, Shape(samples));
    }
}
