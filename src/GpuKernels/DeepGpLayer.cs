using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// What a deep GP adds to the sparse GP layer (<see cref="SparseGp"/>), in double: the inner layers' fixed linear mean
/// function, one reparameterized sample per point from each layer's marginals (Salimbeni and Deisenroth 2017: the
/// sample, not the marginal, feeds the next layer), and the softmax and robust-max likelihoods for classification. Double
/// references: <see cref="Reference.DeepGpLayerReference"/>.
/// </summary>
public static class DeepGpLayer
{
    /// <summary>Variances at or below this are taken as zero by the sampler: an inner layer starts with S = 10⁻¹⁰·I and
    /// its variance at an inducing input is then of the order of the jitter minus round-off, which can dip below 0.</summary>
    public const double VarianceFloor = 1e-12;

    /// <summary>mean[n, o] += Σ_d x[n, d]·w[d, o] for x [N, D] and the fixed w [D, O]. One thread per (point, output),
    /// or with <see cref="KernelSet.GpRowKernels"/> per pair of points.</summary>
    public static void LinearMean(this KernelSet kernels, ArrayView<double> x, ArrayView<double> w, ArrayView<double> mean, int n, int dims, int outputs)
    {
        if (kernels.GpRowKernels)
            kernels.Launch(LinearMeanRowKernel, (n + 1) / 2, x, w, mean, n, dims, outputs);
        else
            kernels.Launch(LinearMeanKernel, n * outputs, x, w, mean, dims, outputs);
    }

    /// <summary>dX[n, d] += Σ_o dMean[n, o]·w[d, o], the linear mean's reverse mode into its input. One thread per (point, dimension).</summary>
    public static void LinearMeanBackward(this KernelSet kernels, ArrayView<double> dMean, ArrayView<double> w, ArrayView<double> dX, int n, int dims, int outputs) =>
        kernels.Launch(LinearMeanBackwardKernel, n * dims, dMean, w, dX, dims, outputs);

    /// <summary>
    /// f = μ + √σ²·ε per element of mean and variance [N, O] (σ² at or below <see cref="VarianceFloor"/> counts as 0),
    /// ε ~ N(0, 1) from Philox keyed by (seed, stream, step, (first + n)·O + o), first the key's first point (a chunk of
    /// a larger set draws what the whole would), and kept in epsilon for the reverse mode. One thread per element.
    /// </summary>
    public static void SampleMarginals(this KernelSet kernels, ArrayView<double> mean, ArrayView<double> variance, ArrayView<double> f, ArrayView<double> epsilon,
        int count, int outputs, DrawKey key) =>
        kernels.Launch(SampleKernel, count, mean, variance, f, epsilon, outputs, key);

    /// <summary>The sample's reverse mode: dMean = dF and dVariance = dF·ε/(2√σ²) (0 where σ² is floored), written.</summary>
    public static void SampleMarginalsBackward(this KernelSet kernels, ArrayView<double> variance, ArrayView<double> epsilon, ArrayView<double> dF,
        ArrayView<double> dMean, ArrayView<double> dVariance, int count) =>
        kernels.Launch(SampleBackwardKernel, count, variance, epsilon, dF, dMean, dVariance);

    /// <summary>
    /// The softmax likelihood of labels [N] under logits f [N, C]: ell[n] = f_ny − log Σ_c exp f_nc, and the derivative
    /// of weight·ell, dF = weight·(onehot(y) − softmax(f)), written. One thread per point.
    /// </summary>
    public static void SoftmaxLogLikelihood(this KernelSet kernels, ArrayView<double> f, ArrayView<int> labels, double weight, ArrayView<double> ell,
        ArrayView<double> dF, int n, int classes) =>
        kernels.Launch(SoftmaxKernel, n, f, labels, ell, dF, weight, classes);

    /// <summary>
    /// The robust-max likelihood (Hernández-Lobato et al. 2011; GPflow's MultiClass, which the authors' MNIST runs use):
    /// p(y | f) = 1 − ε when f_y is the largest of the C latent values, else ε/(C − 1). Under independent marginals f_c ~
    /// N(μ_c, σ²_c), E[log p(y | f)] = log(ε/(C − 1)) + (log(1 − ε) − log(ε/(C − 1)))·P with P = P(f_y is the largest)
    /// = E_{f_y}[Π_{c≠y} Φ((f_y − μ_c)/σ_c)], taken by Gauss–Hermite quadrature over f_y (<paramref name="quadrature"/>:
    /// the H nodes, then the H weights of <see cref="GaussHermite.Rule"/>). Writes ell [N] and the derivatives of
    /// weight·ell in μ and σ² [N, C] (0 in σ²_c where σ²_c is at or below <see cref="VarianceFloor"/>, which is used in
    /// its place). One thread per point; C ≥ 2.
    /// </summary>
    public static void RobustMaxExpectedLogLikelihood(this KernelSet kernels, ArrayView<double> mean, ArrayView<double> variance, ArrayView<int> labels,
        ArrayView<double> quadrature, double epsilon, double weight, ArrayView<double> ell, ArrayView<double> dMean, ArrayView<double> dVariance, int n,
        int classes, int points) =>
        kernels.Launch(RobustMaxKernel, n, mean, variance, labels, quadrature, ell, dMean, dVariance, Math.Log(1 - epsilon), Math.Log(epsilon / (classes - 1)),
            weight, classes, points);

    [Kernel]
    public static void RobustMaxKernel(Index1D point, ArrayView<double> mean, ArrayView<double> variance, ArrayView<int> labels, ArrayView<double> quadrature,
        ArrayView<double> ell, ArrayView<double> dMean, ArrayView<double> dVariance, double logCorrect, double logOther, double weight, int classes, int points)
    {
        const double rootTwo = 1.4142135623730951, oneOverRootPi = 0.5641895835477563;
        long row = (long)(int)point * classes;
        int label = labels[point];
        double meanLabel = mean[row + label], sdLabel = Math.Sqrt(Math.Max(variance[row + label], VarianceFloor));
        // dMean and dVariance gather the derivatives of P in μ_c and σ_c over the nodes.
        for (int c = 0; c < classes; c++)
        {
            dMean[row + c] = 0;
            dVariance[row + c] = 0;
        }
        double probability = 0, dMeanLabel = 0, dSdLabel = 0;
        for (int h = 0; h < points; h++)
        {
            double node = quadrature[h], nodeWeight = quadrature[points + h] * oneOverRootPi;
            double value = meanLabel + rootTwo * sdLabel * node, product = 1;
            for (int c = 0; c < classes; c++)
                if (c != label)
                    product *= NormalDistribution.Cdf((value - mean[row + c]) / Math.Sqrt(Math.Max(variance[row + c], VarianceFloor)));
            probability += nodeWeight * product;
            for (int c = 0; c < classes; c++)
            {
                if (c == label)
                    continue;
                double sd = Math.Sqrt(Math.Max(variance[row + c], VarianceFloor)), u = (value - mean[row + c]) / sd, cdf = NormalDistribution.Cdf(u);
                // The product without Φ(u_c); where Φ(u_c) underflows so does φ(u_c), and the share is 0.
                double share = cdf > 0 ? nodeWeight * product / cdf * NormalDistribution.Density(u) / sd : 0;
                dMean[row + c] -= share;
                dVariance[row + c] -= share * u;
                dMeanLabel += share;
                dSdLabel += share * rootTwo * node;
            }
        }
        double gap = logCorrect - logOther, scale = weight * gap;
        ell[point] = logOther + gap * probability;
        dMean[row + label] = dMeanLabel;
        dVariance[row + label] = dSdLabel;
        // From σ_c to σ²_c: dσ_c/dσ²_c = 1/(2σ_c); nothing where the floor stands in for σ²_c.
        for (int c = 0; c < classes; c++)
        {
            double v = variance[row + c];
            dMean[row + c] *= scale;
            dVariance[row + c] = v > VarianceFloor ? scale * dVariance[row + c] / (2 * Math.Sqrt(v)) : 0;
        }
    }

    [Kernel]
    public static void LinearMeanKernel(Index1D index, ArrayView<double> x, ArrayView<double> w, ArrayView<double> mean, int dims, int outputs)
    {
        int point = index / outputs, o = index - point * outputs;
        mean[index] += LinearMeanSum(x, w, point, o, dims, outputs);
    }

    /// <summary>Σ_d x[point, d]·w[d, o], d in order.</summary>
    private static double LinearMeanSum(ArrayView<double> x, ArrayView<double> w, int point, int o, int dims, int outputs)
    {
        double sum = 0;
        for (int d = 0; d < dims; d++)
            sum += x[(long)point * dims + d] * w[(long)d * outputs + o];
        return sum;
    }

    /// <summary>Points p and p + 1 (p even; the last alone when N is odd), four outputs at a time, each sum in
    /// <see cref="LinearMeanKernel"/>'s order: each x entry read serves four products and each w entry two (MNIST's
    /// first layer maps 784 inputs to 30 outputs for every point of the batch). The outputs past the last four go one by
    /// one.</summary>
    [Kernel]
    public static void LinearMeanRowKernel(Index1D thread, ArrayView<double> x, ArrayView<double> w, ArrayView<double> mean, int n, int dims, int outputs)
    {
        int point = 2 * thread;
        bool paired = point + 1 < n;
        long row = (long)point * dims, rowNext = paired ? row + dims : row;
        long target = (long)point * outputs, targetNext = target + outputs;
        int o = 0;
        for (; o + 4 <= outputs; o += 4)
        {
            double sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0, next0 = 0, next1 = 0, next2 = 0, next3 = 0;
            for (int d = 0; d < dims; d++)
            {
                double value = x[row + d], valueNext = x[rowNext + d];
                long weights = (long)d * outputs + o;
                double w0 = w[weights], w1 = w[weights + 1], w2 = w[weights + 2], w3 = w[weights + 3];
                sum0 += value * w0;
                sum1 += value * w1;
                sum2 += value * w2;
                sum3 += value * w3;
                next0 += valueNext * w0;
                next1 += valueNext * w1;
                next2 += valueNext * w2;
                next3 += valueNext * w3;
            }
            mean[target + o] += sum0;
            mean[target + o + 1] += sum1;
            mean[target + o + 2] += sum2;
            mean[target + o + 3] += sum3;
            if (paired)
            {
                mean[targetNext + o] += next0;
                mean[targetNext + o + 1] += next1;
                mean[targetNext + o + 2] += next2;
                mean[targetNext + o + 3] += next3;
            }
        }
        for (; o < outputs; o++)
        {
            mean[target + o] += LinearMeanSum(x, w, point, o, dims, outputs);
            if (paired)
                mean[targetNext + o] += LinearMeanSum(x, w, point + 1, o, dims, outputs);
        }
    }

    [Kernel]
    public static void LinearMeanBackwardKernel(Index1D index, ArrayView<double> dMean, ArrayView<double> w, ArrayView<double> dX, int dims, int outputs)
    {
        int point = index / dims, d = index - point * dims;
        double sum = 0;
        for (int o = 0; o < outputs; o++)
            sum += dMean[(long)point * outputs + o] * w[(long)d * outputs + o];
        dX[index] += sum;
    }

    [Kernel]
    public static void SampleKernel(Index1D index, ArrayView<double> mean, ArrayView<double> variance, ArrayView<double> f, ArrayView<double> epsilon, int outputs,
        DrawKey key)
    {
        double eps = Philox.NormalDouble(key.Seed, key.Stream, key.Step, key.Counter(index, outputs));
        double v = variance[index];
        epsilon[index] = eps;
        f[index] = mean[index] + (v > VarianceFloor ? Math.Sqrt(v) : 0) * eps;
    }

    [Kernel]
    public static void SampleBackwardKernel(Index1D index, ArrayView<double> variance, ArrayView<double> epsilon, ArrayView<double> dF, ArrayView<double> dMean,
        ArrayView<double> dVariance)
    {
        double v = variance[index];
        dMean[index] = dF[index];
        dVariance[index] = v > VarianceFloor ? dF[index] * epsilon[index] / (2 * Math.Sqrt(v)) : 0;
    }

    [Kernel]
    public static void SoftmaxKernel(Index1D point, ArrayView<double> f, ArrayView<int> labels, ArrayView<double> ell, ArrayView<double> dF, double weight,
        int classes)
    {
        long row = (long)(int)point * classes;
        double largest = f[row];
        for (int c = 1; c < classes; c++)
            largest = Math.Max(largest, f[row + c]);
        double sum = 0;
        for (int c = 0; c < classes; c++)
            sum += Math.Exp(f[row + c] - largest);
        double logNormaliser = largest + Math.Log(sum);
        int label = labels[point];
        ell[point] = f[row + label] - logNormaliser;
        for (int c = 0; c < classes; c++)
            dF[row + c] = weight * ((c == label ? 1.0 : 0.0) - Math.Exp(f[row + c] - logNormaliser));
    }
}
