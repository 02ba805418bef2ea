namespace IlgpuVae.Model.Core;

/// <summary>
/// A family's objective and gradient in double precision, built from the kernel references and written for
/// clarity: what its <see cref="FamilyModel"/> is checked against step for step. Same layout, same objective,
/// same ε. References repeat each example's stats and target once per sample and sum the samples' gradients
/// back, where the kernels index row / k instead: the two must agree.
/// </summary>
public abstract class ReferenceModel
{
    /// <summary>All the ε a model draws for <paramref name="batch"/> examples at one step, as
    /// <see cref="LossAndGradient"/> takes them: at least ε [batch·k, K] of the sampler's stream.</summary>
    public virtual double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) =>
        ReferenceVae.Epsilon(seed, step, batch * config.Samples, config.CodeWidth, stream);

    /// <summary>log w = log p(x, z) − log q(z|x) per latent row, for the given ε.</summary>
    public abstract double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch);

    /// <summary>log w = −rec − KL per row, for a family whose KL terms are sampled per row (log q − log p of the draws).</summary>
    protected static double[] SampledKlLogWeights(double[] reconstructionPerRow, double[] klPerRow) =>
        reconstructionPerRow.Select((rec, row) => -rec - klPerRow[row]).ToArray();

    /// <summary>The objective and its gradient for a batch with the given ε and KL weight β.</summary>
    public abstract ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training);
}
