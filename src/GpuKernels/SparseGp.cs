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
            kernels.Launch(ProjectionRowKernel, outputs * ((inducing + 1) / 2), a, lS, b, n, inducing);
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
    /// [M, N], dM [O, M] and dLS [O, M, M], all written: one thread per element, or with
    /// <see cref="KernelSet.GpRowKernels"/> per pair of rows of dA and dK_ZX and per four rows of dm and dL_S.
    /// </summary>
    public static void MarginalsBackward(this KernelSet kernels, ArrayView<double> a, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> lS,
        ArrayView<double> b, ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dA, ArrayView<double> dKZX, ArrayView<double> dM,
        ArrayView<double> dLS, int n, int inducing, int outputs)
    {
        if (kernels.GpRowKernels)
        {
            kernels.Launch(ProjectionGradientRowKernel, (inducing + 1) / 2, kZX, m, lS, b, dMean, dVariance, dA, dKZX, a, n, inducing, outputs,
                caller: "MarginalsBackward (dA, dK_ZX)");
            kernels.Launch(PosteriorGradientRowKernel, outputs * ((inducing + 3) / 4), a, b, dMean, dVariance, dM, dLS, n, inducing, outputs,
                caller: "MarginalsBackward (dm, dL_S)");
        }
        else
        {
            kernels.Launch(ProjectionGradientKernel, inducing * n, kZX, m, lS, b, dMean, dVariance, dA, dKZX, a, n, inducing, outputs,
                caller: "MarginalsBackward (dA, dK_ZX)");
            kernels.Launch(PosteriorMeanGradientKernel, outputs * inducing, a, dMean, dM, n, inducing, outputs, caller: "MarginalsBackward (dm, dL_S)");
            kernels.Launch(PosteriorFactorGradientKernel, outputs * inducing * inducing, a, b, dVariance, dLS, n, inducing, outputs,
                caller: "MarginalsBackward (dm, dL_S)");
        }
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

    /// <summary>Rows j and j + 1 of b_o (j even; the last alone when M is odd), each adding over k in
    /// <see cref="ProjectionKernel"/>'s order, as a 2 × 4 tile in registers: each L_S entry read serves four products
    /// and each A entry two (row j + 1's sum starts at k = j + 1, so k = j goes to row j alone first).</summary>
    [Kernel]
    public static void ProjectionRowKernel(Index1D thread, ArrayView<double> a, ArrayView<double> lS, ArrayView<double> b, int n, int inducing)
    {
        int pairs = (inducing + 1) / 2, o = thread / pairs, j = 2 * (thread - o * pairs);
        long target = ((long)o * inducing + j) * n, factorColumn = (long)o * inducing * inducing + j;
        int col = 0;
        if (j + 1 < inducing)
        {
            for (; col + 4 <= n; col += 4)
            {
                double first = lS[factorColumn + (long)j * inducing];
                long source = (long)j * n + col;
                double sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0;
                sum0 += first * a[source];
                sum1 += first * a[source + 1];
                sum2 += first * a[source + 2];
                sum3 += first * a[source + 3];
                double next0 = 0, next1 = 0, next2 = 0, next3 = 0;
                for (int k = j + 1; k < inducing; k++)
                {
                    long factorRow = factorColumn + (long)k * inducing;
                    double l = lS[factorRow], lNext = lS[factorRow + 1];
                    source = (long)k * n + col;
                    double a0 = a[source], a1 = a[source + 1], a2 = a[source + 2], a3 = a[source + 3];
                    sum0 += l * a0;
                    sum1 += l * a1;
                    sum2 += l * a2;
                    sum3 += l * a3;
                    next0 += lNext * a0;
                    next1 += lNext * a1;
                    next2 += lNext * a2;
                    next3 += lNext * a3;
                }
                b[target + col] = sum0;
                b[target + col + 1] = sum1;
                b[target + col + 2] = sum2;
                b[target + col + 3] = sum3;
                b[target + n + col] = next0;
                b[target + n + col + 1] = next1;
                b[target + n + col + 2] = next2;
                b[target + n + col + 3] = next3;
            }
            for (; col < n; col++)
            {
                double sum = 0, next = 0;
                sum += lS[factorColumn + (long)j * inducing] * a[(long)j * n + col];
                for (int k = j + 1; k < inducing; k++)
                {
                    long factorRow = factorColumn + (long)k * inducing;
                    double value = a[(long)k * n + col];
                    sum += lS[factorRow] * value;
                    next += lS[factorRow + 1] * value;
                }
                b[target + col] = sum;
                b[target + n + col] = next;
            }
            return;
        }
        // The last row of an odd M: k = j alone.
        double last = lS[factorColumn + (long)j * inducing];
        for (; col < n; col++)
        {
            double sum = 0;
            sum += last * a[(long)j * n + col];
            b[target + col] = sum;
        }
    }

    /// <summary>Rows i and i + 1 of dA and dK_ZX (i even), each sum in <see cref="ProjectionGradientKernel"/>'s order,
    /// four columns at a time: (L_S,o b_o)[i.., col..col+3] and the gradients stay in registers across the outputs,
    /// and each b entry read serves both rows. When M is odd the last thread's second row repeats its first, unwritten.</summary>
    [Kernel]
    public static void ProjectionGradientRowKernel(Index1D thread, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> lS, ArrayView<double> b,
        ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dA, ArrayView<double> dKZX, ArrayView<double> a, int n, int inducing, int outputs)
    {
        int i = 2 * thread;
        bool paired = i + 1 < inducing;
        int iNext = paired ? i + 1 : i;
        long row = (long)i * n, rowNext = (long)iNext * n;
        int col = 0;
        for (; col + 4 <= n; col += 4)
        {
            double gradientA0 = 0, gradientA1 = 0, gradientA2 = 0, gradientA3 = 0, gradientK0 = 0, gradientK1 = 0, gradientK2 = 0, gradientK3 = 0;
            double nextA0 = 0, nextA1 = 0, nextA2 = 0, nextA3 = 0, nextK0 = 0, nextK1 = 0, nextK2 = 0, nextK3 = 0;
            for (int o = 0; o < outputs; o++)
            {
                double lsB0 = 0, lsB1 = 0, lsB2 = 0, lsB3 = 0, lsBNext0 = 0, lsBNext1 = 0, lsBNext2 = 0, lsBNext3 = 0;
                long factorRow = ((long)o * inducing + i) * inducing, factorRowNext = ((long)o * inducing + iNext) * inducing;
                for (int j = 0; j <= i; j++)
                {
                    double l = lS[factorRow + j], lNext = lS[factorRowNext + j];
                    long source = ((long)o * inducing + j) * n + col;
                    double b0 = b[source], b1 = b[source + 1], b2 = b[source + 2], b3 = b[source + 3];
                    lsB0 += l * b0;
                    lsB1 += l * b1;
                    lsB2 += l * b2;
                    lsB3 += l * b3;
                    lsBNext0 += lNext * b0;
                    lsBNext1 += lNext * b1;
                    lsBNext2 += lNext * b2;
                    lsBNext3 += lNext * b3;
                }
                if (paired)
                {
                    double lNext = lS[factorRowNext + i + 1];
                    long source = ((long)o * inducing + i + 1) * n + col;
                    lsBNext0 += lNext * b[source];
                    lsBNext1 += lNext * b[source + 1];
                    lsBNext2 += lNext * b[source + 2];
                    lsBNext3 += lNext * b[source + 3];
                }
                double mean = m[(long)o * inducing + i], meanNext = m[(long)o * inducing + iNext];
                long at = (long)col * outputs + o;
                double mu0 = dMean[at], v0 = dVariance[at];
                double mu1 = dMean[at + outputs], v1 = dVariance[at + outputs];
                double mu2 = dMean[at + 2 * outputs], v2 = dVariance[at + 2 * outputs];
                double mu3 = dMean[at + 3 * outputs], v3 = dVariance[at + 3 * outputs];
                gradientA0 += mean * mu0 - kZX[row + col] * v0 + 2 * lsB0 * v0;
                gradientA1 += mean * mu1 - kZX[row + col + 1] * v1 + 2 * lsB1 * v1;
                gradientA2 += mean * mu2 - kZX[row + col + 2] * v2 + 2 * lsB2 * v2;
                gradientA3 += mean * mu3 - kZX[row + col + 3] * v3 + 2 * lsB3 * v3;
                gradientK0 -= a[row + col] * v0;
                gradientK1 -= a[row + col + 1] * v1;
                gradientK2 -= a[row + col + 2] * v2;
                gradientK3 -= a[row + col + 3] * v3;
                nextA0 += meanNext * mu0 - kZX[rowNext + col] * v0 + 2 * lsBNext0 * v0;
                nextA1 += meanNext * mu1 - kZX[rowNext + col + 1] * v1 + 2 * lsBNext1 * v1;
                nextA2 += meanNext * mu2 - kZX[rowNext + col + 2] * v2 + 2 * lsBNext2 * v2;
                nextA3 += meanNext * mu3 - kZX[rowNext + col + 3] * v3 + 2 * lsBNext3 * v3;
                nextK0 -= a[rowNext + col] * v0;
                nextK1 -= a[rowNext + col + 1] * v1;
                nextK2 -= a[rowNext + col + 2] * v2;
                nextK3 -= a[rowNext + col + 3] * v3;
            }
            dA[row + col] = gradientA0;
            dA[row + col + 1] = gradientA1;
            dA[row + col + 2] = gradientA2;
            dA[row + col + 3] = gradientA3;
            dKZX[row + col] = gradientK0;
            dKZX[row + col + 1] = gradientK1;
            dKZX[row + col + 2] = gradientK2;
            dKZX[row + col + 3] = gradientK3;
            if (paired)
            {
                dA[rowNext + col] = nextA0;
                dA[rowNext + col + 1] = nextA1;
                dA[rowNext + col + 2] = nextA2;
                dA[rowNext + col + 3] = nextA3;
                dKZX[rowNext + col] = nextK0;
                dKZX[rowNext + col + 1] = nextK1;
                dKZX[rowNext + col + 2] = nextK2;
                dKZX[rowNext + col + 3] = nextK3;
            }
        }
        for (; col < n; col++)
        {
            double gradientA = 0, gradientK = 0, nextA = 0, nextK = 0;
            for (int o = 0; o < outputs; o++)
            {
                double mu = dMean[(long)col * outputs + o], v = dVariance[(long)col * outputs + o];
                long factorRow = ((long)o * inducing + i) * inducing, factorRowNext = ((long)o * inducing + iNext) * inducing;
                double lsB = 0, lsBNext = 0;
                for (int j = 0; j <= i; j++)
                {
                    double value = b[((long)o * inducing + j) * n + col];
                    lsB += lS[factorRow + j] * value;
                    lsBNext += lS[factorRowNext + j] * value;
                }
                if (paired)
                    lsBNext += lS[factorRowNext + i + 1] * b[((long)o * inducing + i + 1) * n + col];
                gradientA += m[(long)o * inducing + i] * mu - kZX[row + col] * v + 2 * lsB * v;
                gradientK -= a[row + col] * v;
                nextA += m[(long)o * inducing + iNext] * mu - kZX[rowNext + col] * v + 2 * lsBNext * v;
                nextK -= a[rowNext + col] * v;
            }
            dA[row + col] = gradientA;
            dKZX[row + col] = gradientK;
            if (paired)
            {
                dA[rowNext + col] = nextA;
                dKZX[rowNext + col] = nextK;
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

    /// <summary>dM_o,i = Σ_n A_in dMean_no, one thread per (output, i).</summary>
    [Kernel]
    public static void PosteriorMeanGradientKernel(Index1D index, ArrayView<double> a, ArrayView<double> dMean, ArrayView<double> dM, int n, int inducing,
        int outputs)
    {
        int o = index / inducing, i = index - o * inducing;
        double gradientM = 0;
        for (int col = 0; col < n; col++)
            gradientM += a[(long)i * n + col] * dMean[(long)col * outputs + o];
        dM[index] = gradientM;
    }

    /// <summary>dLS_o,ij = Σ_n 2A_in b_o,jn dVariance_no for j ≤ i (0 above the diagonal), one thread per element.</summary>
    [Kernel]
    public static void PosteriorFactorGradientKernel(Index1D index, ArrayView<double> a, ArrayView<double> b, ArrayView<double> dVariance, ArrayView<double> dLS,
        int n, int inducing, int outputs)
    {
        int j = index % inducing, row = index / inducing, i = row % inducing, o = row / inducing;
        double sum = 0;
        if (j <= i)
            for (int col = 0; col < n; col++)
                sum += 2 * a[(long)i * n + col] * b[((long)o * inducing + j) * n + col] * dVariance[(long)col * outputs + o];
        dLS[index] = sum;
    }

    /// <summary>Rows i to i + 3 (i a multiple of 4; fewer at the end) of dM_o and of dLS_o, the sums of
    /// <see cref="PosteriorMeanGradientKernel"/> and <see cref="PosteriorFactorGradientKernel"/> in their order: dLS in
    /// 4 × 4 tiles (the columns j ≤ i that all four rows have) so each A, b and dVariance entry read serves four sums,
    /// then the triangle's last columns one at a time for the four rows. Rows past M repeat the last, unwritten.</summary>
    [Kernel]
    public static void PosteriorGradientRowKernel(Index1D thread, ArrayView<double> a, ArrayView<double> b, ArrayView<double> dMean, ArrayView<double> dVariance,
        ArrayView<double> dM, ArrayView<double> dLS, int n, int inducing, int outputs)
    {
        int quads = (inducing + 3) / 4, o = thread / quads, i = 4 * (thread - o * quads);
        int lastRow = Math.Min(i + 3, inducing - 1);
        int i1 = Math.Min(i + 1, lastRow), i2 = Math.Min(i + 2, lastRow), i3 = lastRow;
        long rowA0 = (long)i * n, rowA1 = (long)i1 * n, rowA2 = (long)i2 * n, rowA3 = (long)i3 * n;
        double gradientM0 = 0, gradientM1 = 0, gradientM2 = 0, gradientM3 = 0;
        for (int col = 0; col < n; col++)
        {
            double mu = dMean[(long)col * outputs + o];
            gradientM0 += a[rowA0 + col] * mu;
            gradientM1 += a[rowA1 + col] * mu;
            gradientM2 += a[rowA2 + col] * mu;
            gradientM3 += a[rowA3 + col] * mu;
        }
        long meanRow = (long)o * inducing;
        dM[meanRow + i] = gradientM0;
        if (i + 1 <= lastRow)
            dM[meanRow + i + 1] = gradientM1;
        if (i + 2 <= lastRow)
            dM[meanRow + i + 2] = gradientM2;
        if (i + 3 <= lastRow)
            dM[meanRow + i + 3] = gradientM3;
        long target0 = ((long)o * inducing + i) * inducing, target1 = ((long)o * inducing + i1) * inducing;
        long target2 = ((long)o * inducing + i2) * inducing, target3 = ((long)o * inducing + i3) * inducing;
        int j = 0;
        for (; j + 4 <= i + 1; j += 4)
        {
            long rowB = ((long)o * inducing + j) * n;
            double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
            double s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
            for (int col = 0; col < n; col++)
            {
                double v = dVariance[(long)col * outputs + o];
                double b0 = b[rowB + col], b1 = b[rowB + n + col], b2 = b[rowB + 2 * n + col], b3 = b[rowB + 3 * n + col];
                double twiceA = 2 * a[rowA0 + col];
                s00 += twiceA * b0 * v;
                s01 += twiceA * b1 * v;
                s02 += twiceA * b2 * v;
                s03 += twiceA * b3 * v;
                twiceA = 2 * a[rowA1 + col];
                s10 += twiceA * b0 * v;
                s11 += twiceA * b1 * v;
                s12 += twiceA * b2 * v;
                s13 += twiceA * b3 * v;
                twiceA = 2 * a[rowA2 + col];
                s20 += twiceA * b0 * v;
                s21 += twiceA * b1 * v;
                s22 += twiceA * b2 * v;
                s23 += twiceA * b3 * v;
                twiceA = 2 * a[rowA3 + col];
                s30 += twiceA * b0 * v;
                s31 += twiceA * b1 * v;
                s32 += twiceA * b2 * v;
                s33 += twiceA * b3 * v;
            }
            // A row past M aliases the last row and its sums are that row's: writing them again changes nothing.
            dLS[target0 + j] = s00;
            dLS[target0 + j + 1] = s01;
            dLS[target0 + j + 2] = s02;
            dLS[target0 + j + 3] = s03;
            dLS[target1 + j] = s10;
            dLS[target1 + j + 1] = s11;
            dLS[target1 + j + 2] = s12;
            dLS[target1 + j + 3] = s13;
            dLS[target2 + j] = s20;
            dLS[target2 + j + 1] = s21;
            dLS[target2 + j + 2] = s22;
            dLS[target2 + j + 3] = s23;
            dLS[target3 + j] = s30;
            dLS[target3 + j + 1] = s31;
            dLS[target3 + j + 2] = s32;
            dLS[target3 + j + 3] = s33;
        }
        // The triangle's last columns one at a time: column j belongs to the rows r ≥ j.
        for (; j <= lastRow; j++)
        {
            long rowB = ((long)o * inducing + j) * n;
            double sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0;
            for (int col = 0; col < n; col++)
            {
                double v = dVariance[(long)col * outputs + o], value = b[rowB + col];
                sum0 += 2 * a[rowA0 + col] * value * v;
                sum1 += 2 * a[rowA1 + col] * value * v;
                sum2 += 2 * a[rowA2 + col] * value * v;
                sum3 += 2 * a[rowA3 + col] * value * v;
            }
            if (j <= i)
                dLS[target0 + j] = sum0;
            if (j <= i + 1 && i + 1 <= lastRow)
                dLS[target1 + j] = sum1;
            if (j <= i + 2 && i + 2 <= lastRow)
                dLS[target2 + j] = sum2;
            if (i + 3 <= lastRow)
                dLS[target3 + j] = sum3;
        }
        for (int row = i; row <= lastRow; row++)
        {
            long target = ((long)o * inducing + row) * inducing;
            for (int above = row + 1; above < inducing; above++)
                dLS[target + above] = 0;
        }
    }
}
