using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// What a deep GP adds to the sparse GP layer (<see cref="SparseGp"/>), in double: the inner layers' fixed linear mean
/// function, one reparameterized sample per point from each layer's marginals (Salimbeni and Deisenroth 2017: the
/// sample, not the marginal, feeds the next layer), and the softmax likelihood for classification. Double
/// references: <see cref="Reference.DeepGpLayerReference"/>.
/// </summary>
public static class DeepGpLayer
{
    /// <summary>Variances at or below this are taken as zero by the sampler: an inner layer starts with S = 10⁻¹⁰·I and
    /// its variance at an inducing input is then of the order of the jitter minus round-off, which can dip below 0.</summary>
    public const double VarianceFloor = 1e-12;

    /// <summary>mean[n, o] += Σ_d x[n, d]·w[d, o] for x [N, D] and the fixed w [D, O]. One thread per (point, output).</summary>
    public static void LinearMean(this KernelSet kernels, ArrayView<double> x, ArrayView<double> w, ArrayView<double> mean, int n, int dims, int outputs) =>
        kernels.Launch(LinearMeanKernel, n * outputs, x, w, mean, dims, outputs);

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

    [Kernel]
    public static void LinearMeanKernel(Index1D index, ArrayView<double> x, ArrayView<double> w, ArrayView<double> mean, int dims, int outputs)
    {
        int point = index / outputs, o = index - point * outputs;
        double sum = 0;
        for (int d = 0; d < dims; d++)
            sum += x[(long)point * dims + d] * w[(long)d * outputs + o];
        mean[index] += sum;
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
