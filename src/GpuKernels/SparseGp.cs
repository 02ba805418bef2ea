using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// A sparse GP layer's marginals at its inputs, in double, for O output dimensions that share the layer's kernel:
/// from the projection A = K⁻¹K_ZX [M, N] and K_ZX [M, N], with q(u_o) = N(m_o, L_S,o L_S,oᵀ) (m [O, M], L_S [O, M, M]),
/// μ_no = Σ_i A_in m_oi and σ²_no = σ_f² − Σ_i K_ZX,in A_in + Σ_j B_ojn², B_o = L_S,oᵀA. Double references:
/// <see cref="Reference.GaussianProcessReference.MarginalsFromProjection"/> and its backward.
/// </summary>
public static class SparseGp
{
    /// <summary>b [O, M, N] = L_S,oᵀA per output. One thread per element, or per row of b (<see cref="KernelSet.GpRowKernels"/>).</summary>
    public static void CovarianceProjection(this KernelSet kernels, ArrayView<double> a, ArrayView<double> lS, ArrayView<double> b, int n, int inducing,
        int outputs)
    {
        if (kernels.GpRowKernels)
            kernels.Launch(ProjectionRowKernel, outputs * inducing, a, lS, b, n, inducing);
        else
            kernels.Launch(ProjectionKernel, outputs * inducing * n, a, lS, b, n, inducing);
    }

    /// <summary>mean and variance [N, O] from A, K_ZX, m and b (from <see cref="CovarianceProjection"/>); the signal
    /// variance σ_f² = exp(hyper[dims]) is read on the device (the RBF kernel's layout, <see cref="LinearAlgebra.Rbf"/>).
    /// One thread per (point, output).</summary>
    public static void Marginals(this KernelSet kernels, ArrayView<double> a, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> b, ArrayView<double> hyper,
        int dims, ArrayView<double> mean, ArrayView<double> variance, int n, int inducing, int outputs) =>
        kernels.Launch(MarginalsKernel, n * outputs, a, kZX, m, b, mean, variance, hyper, dims, n, inducing, outputs);

    /// <summary>The variances' direct share of the signal variance's gradient: dHyper[dims] += σ_f²·Σ dVariance over
    /// <paramref name="count"/> elements (K_ZX's share comes from <see cref="LinearAlgebra.RbfBackward"/>). One thread.</summary>
    public static void SignalVarianceGradient(this KernelSet kernels, ArrayView<double> dVariance, ArrayView<double> hyper, ArrayView<double> dHyper, int dims,
        int count) =>
        kernels.Launch(SignalGradientKernel, 1, dVariance, hyper, dHyper, dims, count);

    /// <summary>
    /// The marginals' reverse mode for dMean and dVariance [N, O] (b as the forward pass left it): dA and dKZX
    /// [M, N] (one thread per element; with <see cref="KernelSet.GpRowKernels"/> one per row, with
    /// <paramref name="scratch"/> [M, N] then required), dM [O, M] and dLS [O, M, M] (one thread per (output, row of
    /// L_S)); all written.
    /// </summary>
    public static void MarginalsBackward(this KernelSet kernels, ArrayView<double> a, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> lS,
        ArrayView<double> b, ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dA, ArrayView<double> dKZX, ArrayView<double> dM,
        ArrayView<double> dLS, int n, int inducing, int outputs, ArrayView<double>? scratch = null)
    {
        if (kernels.GpRowKernels)
            kernels.Launch(ProjectionGradientRowKernel, inducing, kZX, m, lS, b, dMean, dVariance, dA, dKZX, a,
                scratch ?? throw new ArgumentException("the row kernels of the marginals' reverse mode need a scratch buffer of [M, N]", nameof(scratch)),
                n, inducing, outputs);
        else
            kernels.Launch(ProjectionGradientKernel, inducing * n, kZX, m, lS, b, dMean, dVariance, dA, dKZX, a, n, inducing, outputs);
        kernels.Launch(PosteriorGradientKernel, outputs * inducing, a, b, dMean, dVariance, dM, dLS, n, inducing, outputs);
    }

    /// <summary>
    /// KL(q(u_o) ‖ p(u_o)) per output from the layer's solves: with V_o = L⁻¹L_S,o [O, M, M] and w_o = L⁻¹m_o [O, M] (L
    /// the factor of K_ZZ + jitter·I, shared), kl[o] = ½(‖V_o‖² + ‖w_o‖² − M + log det K − 2 Σ_i log|L_S,o,ii|).
    /// One thread per output.
    /// </summary>
    public static void PosteriorKl(this KernelSet kernels, ArrayView<double> v, ArrayView<double> w, ArrayView<double> logDeterminant, ArrayView<double> lS,
        ArrayView<double> kl, int inducing, int outputs) =>
        kernels.Launch(KlKernel, outputs, v, w, logDeterminant, lS, kl, inducing);

    /// <summary>
    /// The KL's reverse mode for a weight κ on Σ_o kl[o]: dV = κV and dW = κw (written), dLS_o,ii −= κ/L_S,o,ii (added,
    /// to L_S's other gradients), and dLogDeterminant[0] = ½κO (written; one factor for the layer). One thread per
    /// (output, row).
    /// </summary>
    public static void PosteriorKlBackward(this KernelSet kernels, ArrayView<double> v, ArrayView<double> w, ArrayView<double> lS, double weight, ArrayView<double> dV,
        ArrayView<double> dW, ArrayView<double> dLS, ArrayView<double> dLogDeterminant, int inducing, int outputs) =>
        kernels.Launch(KlBackwardKernel, outputs * inducing, v, w, lS, dV, dW, dLS, dLogDeterminant, weight, inducing, outputs);

    /// <summary>
    /// The Gaussian likelihood's expected log density under the marginals, per point: ell[n] = Σ_o −½ log 2πs² −
    /// ((y_no − μ_no)² + σ²_no)/(2s²) for y, mean and variance [N, O] and noise variance s² = exp(logNoise[0]) (read
    /// on the device); the derivatives of weight·ell: dMean = weight·(y − μ)/s² and dVariance = −weight/(2s²) per
    /// element, and per point the derivative in log s², dLogNoise[n] = weight·Σ_o (−½ + ((y − μ)² + σ²)/(2s²)) (summed by
    /// the caller). One thread per point.
    /// </summary>
    public static void GaussianExpectedLogLikelihood(this KernelSet kernels, ArrayView<double> y, ArrayView<double> mean, ArrayView<double> variance,
        ArrayView<double> logNoise, double weight, ArrayView<double> ell, ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dLogNoise, int n,
        int outputs) =>
        kernels.Launch(ExpectedLogLikelihoodKernel, n, y, mean, variance, ell, dMean, dVariance, dLogNoise, logNoise, weight, outputs);

    [Kernel]
    public static void ExpectedLogLikelihoodKernel(Index1D point, ArrayView<double> y, ArrayView<double> mean, ArrayView<double> variance, ArrayView<double> ell,
        ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dLogNoise, ArrayView<double> logNoise, double weight, int outputs)
    {
        const double logTwoPi = 1.8378770664093453;
        double noiseVariance = Math.Exp(logNoise[0]);
        double sum = 0, noiseGradient = 0, logNormaliser = -0.5 * (logTwoPi + logNoise[0]);
        for (int o = 0; o < outputs; o++)
        {
            long at = (long)(int)point * outputs + o;
            double residual = y[at] - mean[at], squared = (residual * residual + variance[at]) / (2 * noiseVariance);
            sum += logNormaliser - squared;
            noiseGradient += squared - 0.5;
            dMean[at] = weight * residual / noiseVariance;
            dVariance[at] = -0.5 * weight / noiseVariance;
        }
        ell[point] = sum;
        dLogNoise[point] = weight * noiseGradient;
    }

    [Kernel]
    public static void SignalGradientKernel(Index1D thread, ArrayView<double> dVariance, ArrayView<double> hyper, ArrayView<double> dHyper, int dims, int count)
    {
        double sum = 0;
        for (int at = 0; at < count; at++)
            sum += dVariance[at];
        dHyper[dims] += Math.Exp(hyper[dims]) * sum;
    }

    [Kernel]
    public static void KlKernel(Index1D o, ArrayView<double> v, ArrayView<double> w, ArrayView<double> logDeterminant, ArrayView<double> lS, ArrayView<double> kl,
        int inducing)
    {
        long block = (long)(int)o * inducing * inducing;
        double squares = 0, logDiagonal = 0;
        for (int at = 0; at < inducing * inducing; at++)
            squares += v[block + at] * v[block + at];
        for (int i = 0; i < inducing; i++)
        {
            double value = w[(long)(int)o * inducing + i];
            squares += value * value;
            logDiagonal += Math.Log(Math.Abs(lS[block + i * inducing + i]));
        }
        kl[o] = 0.5 * (squares - inducing + logDeterminant[0] - 2 * logDiagonal);
    }

    [Kernel]
    public static void KlBackwardKernel(Index1D index, ArrayView<double> v, ArrayView<double> w, ArrayView<double> lS, ArrayView<double> dV, ArrayView<double> dW,
        ArrayView<double> dLS, ArrayView<double> dLogDeterminant, double weight, int inducing, int outputs)
    {
        int o = index / inducing, i = index - o * inducing;
        long row = ((long)o * inducing + i) * inducing;
        for (int j = 0; j < inducing; j++)
            dV[row + j] = weight * v[row + j];
        dW[index] = weight * w[index];
        dLS[row + i] -= weight / lS[row + i];
        if (index == 0)
            dLogDeterminant[0] = 0.5 * weight * outputs;
    }

    [Kernel]
    public static void ProjectionKernel(Index1D index, ArrayView<double> a, ArrayView<double> lS, ArrayView<double> b, int n, int inducing)
    {
        int col = index % n, row = index / n, j = row % inducing, o = row / inducing;
        double sum = 0;
        for (int k = j; k < inducing; k++)
            sum += lS[((long)o * inducing + k) * inducing + j] * a[(long)k * n + col];
        b[index] = sum;
    }

    /// <summary>Row (o, j) of b, adding over k in <see cref="ProjectionKernel"/>'s order.</summary>
    [Kernel]
    public static void ProjectionRowKernel(Index1D row, ArrayView<double> a, ArrayView<double> lS, ArrayView<double> b, int n, int inducing)
    {
        int j = row % inducing, o = row / inducing;
        long target = (long)(int)row * n;
        for (int col = 0; col < n; col++)
            b[target + col] = 0;
        for (int k = j; k < inducing; k++)
        {
            double l = lS[((long)o * inducing + k) * inducing + j];
            long source = (long)k * n;
            for (int col = 0; col < n; col++)
                b[target + col] += l * a[source + col];
        }
    }

    /// <summary>Row i of dA and dK_ZX, each sum in <see cref="ProjectionGradientKernel"/>'s order; scratch row i holds
    /// (L_S,o b_o)[i, ·] for one output at a time.</summary>
    [Kernel]
    public static void ProjectionGradientRowKernel(Index1D index, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> lS, ArrayView<double> b,
        ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dA, ArrayView<double> dKZX, ArrayView<double> a, ArrayView<double> scratch, int n,
        int inducing, int outputs)
    {
        int i = index;
        long row = (long)i * n;
        for (int col = 0; col < n; col++)
        {
            dA[row + col] = 0;
            dKZX[row + col] = 0;
        }
        for (int o = 0; o < outputs; o++)
        {
            for (int col = 0; col < n; col++)
                scratch[row + col] = 0;
            for (int j = 0; j <= i; j++)
            {
                double l = lS[((long)o * inducing + i) * inducing + j];
                long source = ((long)o * inducing + j) * n;
                for (int col = 0; col < n; col++)
                    scratch[row + col] += l * b[source + col];
            }
            double mean = m[(long)o * inducing + i];
            for (int col = 0; col < n; col++)
            {
                double mu = dMean[(long)col * outputs + o], v = dVariance[(long)col * outputs + o];
                dA[row + col] += mean * mu - kZX[row + col] * v + 2 * scratch[row + col] * v;
                dKZX[row + col] -= a[row + col] * v;
            }
        }
    }

    [Kernel]
    public static void MarginalsKernel(Index1D index, ArrayView<double> a, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> b, ArrayView<double> mean,
        ArrayView<double> variance, ArrayView<double> hyper, int dims, int n, int inducing, int outputs)
    {
        double signalVariance = Math.Exp(hyper[dims]);
        int col = index / outputs, o = index - col * outputs;
        double mu = 0, reduction = 0, added = 0;
        for (int i = 0; i < inducing; i++)
        {
            double projection = a[(long)i * n + col];
            mu += projection * m[(long)o * inducing + i];
            reduction += kZX[(long)i * n + col] * projection;
            double bValue = b[((long)o * inducing + i) * n + col];
            added += bValue * bValue;
        }
        mean[index] = mu;
        variance[index] = signalVariance - reduction + added;
    }

    [Kernel]
    public static void ProjectionGradientKernel(Index1D index, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> lS, ArrayView<double> b,
        ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dA, ArrayView<double> dKZX, ArrayView<double> a, int n, int inducing, int outputs)
    {
        int i = index / n, col = index - i * n;
        double gradientA = 0, gradientK = 0;
        for (int o = 0; o < outputs; o++)
        {
            double mu = dMean[(long)col * outputs + o], v = dVariance[(long)col * outputs + o];
            double lsB = 0;
            for (int j = 0; j <= i; j++)
                lsB += lS[((long)o * inducing + i) * inducing + j] * b[((long)o * inducing + j) * n + col];
            gradientA += m[(long)o * inducing + i] * mu - kZX[index] * v + 2 * lsB * v;
            gradientK -= a[index] * v;
        }
        dA[index] = gradientA;
        dKZX[index] = gradientK;
    }

    [Kernel]
    public static void PosteriorGradientKernel(Index1D index, ArrayView<double> a, ArrayView<double> b, ArrayView<double> dMean, ArrayView<double> dVariance,
        ArrayView<double> dM, ArrayView<double> dLS, int n, int inducing, int outputs)
    {
        int o = index / inducing, i = index - o * inducing;
        double gradientM = 0;
        for (int col = 0; col < n; col++)
            gradientM += a[(long)i * n + col] * dMean[(long)col * outputs + o];
        dM[index] = gradientM;
        for (int j = 0; j < inducing; j++)
        {
            double sum = 0;
            if (j <= i)
                for (int col = 0; col < n; col++)
                    sum += 2 * a[(long)i * n + col] * b[((long)o * inducing + j) * n + col] * dVariance[(long)col * outputs + o];
            dLS[((long)o * inducing + i) * inducing + j] = sum;
        }
    }
}
