using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// q(z|x) = N(μ, C) with the rank-one precision C⁻¹ = D + uuᵀ of the deep latent Gaussian model: the encoder's
/// output is [μ | log d | u], sampled by z = μ + Rε with its closed-form KL (see <see cref="RankOne"/>).
/// </summary>
public sealed class RankOneLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, int width)
    : SampledLatent(kernels, stack, workspace, statisticsLayer, width)
{
    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        Kernels.RankOneForward(Statistics(batch), Codes(rows), Epsilon(rows), KlPerRow(rows), rows, Width, key, samples);
        return Codes(rows);
    }

    public override void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null) =>
        Kernels.RankOneBackward(Statistics(batch), Epsilon(batch * samples), CodeGradient(batch * samples),
            StatisticsGradient(batch), batch, Width, klWeight, samples, klWeightFactor);

    public override void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale)
    {
        int rows = batch * samples;
        Kernels.RankOneWeightedBackward(Statistics(batch), Codes(rows), Epsilon(rows), CodeGradient(rows), weights,
            StatisticsGradient(batch), batch, Width, samples, scale);
    }

    public override void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights)
    {
        int rows = batch * samples;
        Kernels.RankOneLogWeights(Statistics(batch), Codes(rows), Epsilon(rows), reconstructionPerRow, logWeights, rows, Width, samples);
    }

    /// <summary>μ and the log of C's diagonal, 1/d − η(u/d)², the marginal variances that active units and ELBO
    /// surgery read (the correlations are left out there).</summary>
    public override (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) => SplitStatistics(statistics, batch, Width);

    /// <summary>See <see cref="Split"/>; in double for the sums, stored as floats.</summary>
    public static (float[] Mu, float[] LogVariance) SplitStatistics(float[] statistics, int batch, int width)
    {
        var mu = new float[batch * width];
        var logVariance = new float[batch * width];
        for (int b = 0; b < batch; b++)
        {
            var (_, _, variance) = Covariance(statistics, b, width);
            for (int k = 0; k < width; k++)
            {
                mu[b * width + k] = statistics[b * 3 * width + k];
                logVariance[b * width + k] = (float)Math.Log(variance[k]);
            }
        }
        return (mu, logVariance);
    }

    /// <summary>
    /// What C = D⁻¹ − η·aaᵀ is made of for stats row <paramref name="row"/> = [μ | log d | u], in double: a = D⁻¹u,
    /// η = 1/(1 + uᵀa), and C's diagonal 1/d − η·a². Its off-diagonal entries are −η·a_i·a_j.
    /// </summary>
    public static (double[] A, double Eta, double[] Variance) Covariance(float[] statistics, int row, int width)
    {
        int at = row * 3 * width;
        var a = new double[width];
        double s = 0;
        for (int k = 0; k < width; k++)
        {
            a[k] = statistics[at + 2 * width + k] * Math.Exp(-statistics[at + width + k]);
            s += statistics[at + 2 * width + k] * a[k];
        }
        double eta = 1 / (1 + s);
        var variance = new double[width];
        for (int k = 0; k < width; k++)
            variance[k] = Math.Exp(-statistics[at + width + k]) - eta * a[k] * a[k];
        return (a, eta, variance);
    }
}
