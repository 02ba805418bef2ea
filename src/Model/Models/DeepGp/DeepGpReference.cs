using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Model.Models.DeepGp;

/// <summary>
/// The deep GP's loss in double, written for clarity from SCIENCE.md, one output at a time through
/// <see cref="GaussianProcessReference"/>'s single-output layer: what <see cref="DeepGpModel"/> is checked against.
/// The same batch rows and the same Philox draws as the model's step.
/// </summary>
public static class DeepGpReference
{
    /// <summary>−(1/B) Σ_batch E[log p(y | f^L)] + (1/N) Σ_l Σ_o KL(q(u_lo) ‖ p(u_lo)) for the batch rows and the draws of <paramref name="key"/>.</summary>
    public static double Loss(DeepGpLayout layout, IReadOnlyList<double[]> meanWeights, double[] parameters, DeepGpData data, int[] rows, DrawKey key)
    {
        var settings = layout.Settings;
        int n = rows.Length, m = settings.Inducing;
        var x = rows.SelectMany(row => data.Inputs.Skip(row * data.Features).Take(data.Features)).ToArray();
        double kl = 0;
        double[] mean = [], variance = [], f = [];
        foreach (var layer in layout.Layers)
        {
            int din = layer.InputWidth, o = layer.OutputWidth;
            var z = Slice(parameters, layer.InducingInputs, m * din);
            var hyper = Slice(parameters, layer.Hyper, din + 1);
            mean = new double[n * o];
            variance = new double[n * o];
            var linear = layer.Inner ? DeepGpLayerReference.LinearMean(x, meanWeights[layer.Index], n, din, o) : new double[n * o];
            for (int output = 0; output < o; output++)
            {
                var means = Slice(parameters, layer.Means + output * m, m);
                var factor = Slice(parameters, layer.Factors + output * m * m, m * m);
                if (settings.Whitened)
                    (means, factor) = Unwhiten(z, hyper, means, factor, settings.Jitter, m, din);
                var (mu, sigma2) = GaussianProcessReference.Marginals(x, z, hyper, means, factor, settings.Jitter, n, m, din);
                for (int point = 0; point < n; point++)
                {
                    mean[point * o + output] = mu[point] + linear[point * o + output];
                    variance[point * o + output] = sigma2[point];
                }
                kl += GaussianProcessReference.Kl(z, hyper, means, factor, settings.Jitter, m, din);
            }
            f = DeepGpLayerReference.Sample(mean, variance, key.Offset(Philox.Streams.LayerOffset(layer.Index + 1)), o);
            x = f;
        }
        int outputs = layout.Outputs;
        double ell = 0;
        if (settings.Likelihood == DeepGpLikelihood.Gaussian)
        {
            double logNoise = parameters[layout.LogNoise], noise = Math.Exp(logNoise);
            for (int point = 0; point < n; point++)
                for (int output = 0; output < outputs; output++)
                {
                    double residual = data.Targets![rows[point] * outputs + output] - mean[point * outputs + output];
                    ell += -0.5 * (Math.Log(2 * Math.PI) + logNoise) - (residual * residual + variance[point * outputs + output]) / (2 * noise);
                }
        }
        else if (settings.Likelihood == DeepGpLikelihood.RobustMax)
            ell = DeepGpLayerReference.RobustMaxExpectedLogLikelihood(mean, variance, rows.Select(row => data.Labels![row]).ToArray(), outputs,
                settings.RobustMaxEpsilon, GaussHermite.Rule(settings.QuadraturePoints)).Sum();
        else
            ell = DeepGpLayerReference.SoftmaxLogLikelihood(f, rows.Select(row => data.Labels![row]).ToArray(), outputs).Sum();
        return -ell / n + kl / data.Rows;
    }

    /// <summary>
    /// A whitened q(v) = N(m̃, L̃L̃ᵀ) as the q(u) it stands for, u = Lv with L the factor of K_ZZ + jitter·I: m = Lm̃ and
    /// L_S = LL̃ (lower triangular, since both are), so that the whitened model is checked against the non-whitened
    /// reference rather than against itself.
    /// </summary>
    public static (double[] Means, double[] Factor) Unwhiten(double[] z, double[] hyper, double[] means, double[] factor, double jitter, int m, int dims)
    {
        var (l, failures) = LinearAlgebraReference.Cholesky(LinearAlgebraReference.Rbf(z, z, hyper, 1, m, m, dims), 1, m, jitter);
        if (failures[0] >= 0)
            throw new ArgumentException($"K_ZZ is not positive definite (pivot {failures[0]})");
        var mean = new double[m];
        var product = new double[m * m];
        for (int i = 0; i < m; i++)
            for (int k = 0; k < m; k++)
            {
                mean[i] += l[i * m + k] * means[k];
                for (int j = 0; j < m; j++)
                    product[i * m + j] += l[i * m + k] * factor[k * m + j];
            }
        return (mean, product);
    }

    private static double[] Slice(double[] values, long offset, int length) => values.AsSpan((int)offset, length).ToArray();
}
