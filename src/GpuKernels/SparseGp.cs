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
            kernels.Launch(ProjectionRowKernel, outputs * ((inducing + 3) / 4), a, lS, b, n, inducing);
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
    /// <see cref="KernelSet.GpRowKernels"/> per four rows of dA and dK_ZX and per four rows of dm and dL_S.
    /// </summary>
    public static void MarginalsBackward(this KernelSet kernels, ArrayView<double> a, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> lS,
        ArrayView<double> b, ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dA, ArrayView<double> dKZX, ArrayView<double> dM,
        ArrayView<double> dLS, int n, int inducing, int outputs)
    {
        if (kernels.GpRowKernels)
        {
            kernels.Launch(ProjectionGradientRowKernel, (inducing + 3) / 4, kZX, m, lS, b, dMean, dVariance, dA, dKZX, a, n, inducing, outputs,
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
        b[index] = ProjectionSum(a, lS, o, j, col, n, inducing);
    }

    /// <summary>b_o,j,col = Σ_{k ≥ j} L_S,o,kj A_k,col, k in order from j.</summary>
    private static double ProjectionSum(ArrayView<double> a, ArrayView<double> lS, int o, int j, int col, int n, int inducing)
    {
        double sum = 0;
        for (int k = j; k < inducing; k++)
            sum += lS[((long)o * inducing + k) * inducing + j] * a[(long)k * n + col];
        return sum;
    }

    /// <summary>Rows j to j + 3 of b_o (j a multiple of 4), each adding over k in <see cref="ProjectionKernel"/>'s
    /// order, as 4 × 4 tiles in registers (sRC: row j + R, column col + C): each L_S entry read serves four products and
    /// each A entry four. Row j + r's sum starts at k = j + r, so k = j, j + 1, j + 2 reach the tile's first one, two and
    /// three rows before the loop over the rest. The last rows of an M that is not a multiple of 4, and the last
    /// columns of an N that is not, go element by element.</summary>
    [Kernel]
    public static void ProjectionRowKernel(Index1D thread, ArrayView<double> a, ArrayView<double> lS, ArrayView<double> b, int n, int inducing)
    {
        int quads = (inducing + 3) / 4, o = thread / quads, j = 4 * (thread - o * quads);
        long target = ((long)o * inducing + j) * n, factorColumn = (long)o * inducing * inducing + j;
        int col = 0;
        if (j + 4 <= inducing)
        {
            for (; col + 4 <= n; col += 4)
            {
                double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
                double s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
                long factorRow = factorColumn + (long)j * inducing, source = (long)j * n + col;
                double l0 = lS[factorRow];
                double a0 = a[source], a1 = a[source + 1], a2 = a[source + 2], a3 = a[source + 3];
                s00 += l0 * a0;
                s01 += l0 * a1;
                s02 += l0 * a2;
                s03 += l0 * a3;
                factorRow += inducing;
                source += n;
                l0 = lS[factorRow];
                double l1 = lS[factorRow + 1];
                a0 = a[source];
                a1 = a[source + 1];
                a2 = a[source + 2];
                a3 = a[source + 3];
                s00 += l0 * a0;
                s01 += l0 * a1;
                s02 += l0 * a2;
                s03 += l0 * a3;
                s10 += l1 * a0;
                s11 += l1 * a1;
                s12 += l1 * a2;
                s13 += l1 * a3;
                factorRow += inducing;
                source += n;
                l0 = lS[factorRow];
                l1 = lS[factorRow + 1];
                double l2 = lS[factorRow + 2];
                a0 = a[source];
                a1 = a[source + 1];
                a2 = a[source + 2];
                a3 = a[source + 3];
                s00 += l0 * a0;
                s01 += l0 * a1;
                s02 += l0 * a2;
                s03 += l0 * a3;
                s10 += l1 * a0;
                s11 += l1 * a1;
                s12 += l1 * a2;
                s13 += l1 * a3;
                s20 += l2 * a0;
                s21 += l2 * a1;
                s22 += l2 * a2;
                s23 += l2 * a3;
                for (int k = j + 3; k < inducing; k++)
                {
                    factorRow = factorColumn + (long)k * inducing;
                    source = (long)k * n + col;
                    l0 = lS[factorRow];
                    l1 = lS[factorRow + 1];
                    l2 = lS[factorRow + 2];
                    double l3 = lS[factorRow + 3];
                    a0 = a[source];
                    a1 = a[source + 1];
                    a2 = a[source + 2];
                    a3 = a[source + 3];
                    s00 += l0 * a0;
                    s01 += l0 * a1;
                    s02 += l0 * a2;
                    s03 += l0 * a3;
                    s10 += l1 * a0;
                    s11 += l1 * a1;
                    s12 += l1 * a2;
                    s13 += l1 * a3;
                    s20 += l2 * a0;
                    s21 += l2 * a1;
                    s22 += l2 * a2;
                    s23 += l2 * a3;
                    s30 += l3 * a0;
                    s31 += l3 * a1;
                    s32 += l3 * a2;
                    s33 += l3 * a3;
                }
                long at = target + col;
                b[at] = s00;
                b[at + 1] = s01;
                b[at + 2] = s02;
                b[at + 3] = s03;
                at += n;
                b[at] = s10;
                b[at + 1] = s11;
                b[at + 2] = s12;
                b[at + 3] = s13;
                at += n;
                b[at] = s20;
                b[at + 1] = s21;
                b[at + 2] = s22;
                b[at + 3] = s23;
                at += n;
                b[at] = s30;
                b[at + 1] = s31;
                b[at + 2] = s32;
                b[at + 3] = s33;
            }
        }
        // The columns the tiles did not reach: the last of an N that is not a multiple of 4, or all of them for the last
        // rows of an M that is not.
        int rows = Math.Min(4, inducing - j);
        for (int r = 0; r < rows; r++)
            for (int column = col; column < n; column++)
                b[target + (long)r * n + column] = ProjectionSum(a, lS, o, j + r, column, n, inducing);
    }

    /// <summary>Rows i to i + 3 of dA and dK_ZX (i a multiple of 4), each sum in <see cref="ProjectionGradientKernel"/>'s
    /// order, four columns at a time: per output the tile of L_S,o b_o (sRC: row i + R, column col + C) is built in
    /// registers, each L_S entry read serving four products and each b entry four, and the gradients stay in registers
    /// across the outputs. Row i + r's sum runs over j ≤ i + r: the loop to j = i serves all four rows, then j = i + 1,
    /// i + 2 and i + 3 the last three, two and one. The last rows of an M that is not a multiple of 4, and the last
    /// columns of an N that is not, go element by element.</summary>
    [Kernel]
    public static void ProjectionGradientRowKernel(Index1D thread, ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> lS, ArrayView<double> b,
        ArrayView<double> dMean, ArrayView<double> dVariance, ArrayView<double> dA, ArrayView<double> dKZX, ArrayView<double> a, int n, int inducing, int outputs)
    {
        int i = 4 * thread, col = 0;
        if (i + 4 <= inducing)
        {
            long row0 = (long)i * n, row1 = row0 + n, row2 = row1 + n, row3 = row2 + n;
            for (; col + 4 <= n; col += 4)
            {
                double gradientA00 = 0, gradientA01 = 0, gradientA02 = 0, gradientA03 = 0, gradientA10 = 0, gradientA11 = 0, gradientA12 = 0, gradientA13 = 0;
                double gradientA20 = 0, gradientA21 = 0, gradientA22 = 0, gradientA23 = 0, gradientA30 = 0, gradientA31 = 0, gradientA32 = 0, gradientA33 = 0;
                double gradientK00 = 0, gradientK01 = 0, gradientK02 = 0, gradientK03 = 0, gradientK10 = 0, gradientK11 = 0, gradientK12 = 0, gradientK13 = 0;
                double gradientK20 = 0, gradientK21 = 0, gradientK22 = 0, gradientK23 = 0, gradientK30 = 0, gradientK31 = 0, gradientK32 = 0, gradientK33 = 0;
                for (int o = 0; o < outputs; o++)
                {
                    double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
                    double s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
                    long factorRow0 = ((long)o * inducing + i) * inducing, factorRow1 = factorRow0 + inducing;
                    long factorRow2 = factorRow1 + inducing, factorRow3 = factorRow2 + inducing;
                    long source = (long)o * inducing * n + col;
                    for (int j = 0; j <= i; j++, source += n)
                    {
                        double l0 = lS[factorRow0 + j], l1 = lS[factorRow1 + j], l2 = lS[factorRow2 + j], l3 = lS[factorRow3 + j];
                        double b0 = b[source], b1 = b[source + 1], b2 = b[source + 2], b3 = b[source + 3];
                        s00 += l0 * b0;
                        s01 += l0 * b1;
                        s02 += l0 * b2;
                        s03 += l0 * b3;
                        s10 += l1 * b0;
                        s11 += l1 * b1;
                        s12 += l1 * b2;
                        s13 += l1 * b3;
                        s20 += l2 * b0;
                        s21 += l2 * b1;
                        s22 += l2 * b2;
                        s23 += l2 * b3;
                        s30 += l3 * b0;
                        s31 += l3 * b1;
                        s32 += l3 * b2;
                        s33 += l3 * b3;
                    }
                    // source is row i + 1 of b_o now.
                    double lower1 = lS[factorRow1 + i + 1], lower2 = lS[factorRow2 + i + 1], lower3 = lS[factorRow3 + i + 1];
                    double next0 = b[source], next1 = b[source + 1], next2 = b[source + 2], next3 = b[source + 3];
                    s10 += lower1 * next0;
                    s11 += lower1 * next1;
                    s12 += lower1 * next2;
                    s13 += lower1 * next3;
                    s20 += lower2 * next0;
                    s21 += lower2 * next1;
                    s22 += lower2 * next2;
                    s23 += lower2 * next3;
                    s30 += lower3 * next0;
                    s31 += lower3 * next1;
                    s32 += lower3 * next2;
                    s33 += lower3 * next3;
                    source += n;
                    lower2 = lS[factorRow2 + i + 2];
                    lower3 = lS[factorRow3 + i + 2];
                    next0 = b[source];
                    next1 = b[source + 1];
                    next2 = b[source + 2];
                    next3 = b[source + 3];
                    s20 += lower2 * next0;
                    s21 += lower2 * next1;
                    s22 += lower2 * next2;
                    s23 += lower2 * next3;
                    s30 += lower3 * next0;
                    s31 += lower3 * next1;
                    s32 += lower3 * next2;
                    s33 += lower3 * next3;
                    source += n;
                    lower3 = lS[factorRow3 + i + 3];
                    next0 = b[source];
                    next1 = b[source + 1];
                    next2 = b[source + 2];
                    next3 = b[source + 3];
                    s30 += lower3 * next0;
                    s31 += lower3 * next1;
                    s32 += lower3 * next2;
                    s33 += lower3 * next3;
                    long at = (long)col * outputs + o;
                    double mu0 = dMean[at], v0 = dVariance[at], mu1 = dMean[at + outputs], v1 = dVariance[at + outputs];
                    double mu2 = dMean[at + 2 * outputs], v2 = dVariance[at + 2 * outputs], mu3 = dMean[at + 3 * outputs], v3 = dVariance[at + 3 * outputs];
                    long meanRow = (long)o * inducing + i;
                    double mean0 = m[meanRow], mean1 = m[meanRow + 1], mean2 = m[meanRow + 2], mean3 = m[meanRow + 3];
                    gradientA00 += ProjectionGradientTerm(mean0, mu0, kZX[row0 + col], v0, s00);
                    gradientA01 += ProjectionGradientTerm(mean0, mu1, kZX[row0 + col + 1], v1, s01);
                    gradientA02 += ProjectionGradientTerm(mean0, mu2, kZX[row0 + col + 2], v2, s02);
                    gradientA03 += ProjectionGradientTerm(mean0, mu3, kZX[row0 + col + 3], v3, s03);
                    gradientA10 += ProjectionGradientTerm(mean1, mu0, kZX[row1 + col], v0, s10);
                    gradientA11 += ProjectionGradientTerm(mean1, mu1, kZX[row1 + col + 1], v1, s11);
                    gradientA12 += ProjectionGradientTerm(mean1, mu2, kZX[row1 + col + 2], v2, s12);
                    gradientA13 += ProjectionGradientTerm(mean1, mu3, kZX[row1 + col + 3], v3, s13);
                    gradientA20 += ProjectionGradientTerm(mean2, mu0, kZX[row2 + col], v0, s20);
                    gradientA21 += ProjectionGradientTerm(mean2, mu1, kZX[row2 + col + 1], v1, s21);
                    gradientA22 += ProjectionGradientTerm(mean2, mu2, kZX[row2 + col + 2], v2, s22);
                    gradientA23 += ProjectionGradientTerm(mean2, mu3, kZX[row2 + col + 3], v3, s23);
                    gradientA30 += ProjectionGradientTerm(mean3, mu0, kZX[row3 + col], v0, s30);
                    gradientA31 += ProjectionGradientTerm(mean3, mu1, kZX[row3 + col + 1], v1, s31);
                    gradientA32 += ProjectionGradientTerm(mean3, mu2, kZX[row3 + col + 2], v2, s32);
                    gradientA33 += ProjectionGradientTerm(mean3, mu3, kZX[row3 + col + 3], v3, s33);
                    gradientK00 -= a[row0 + col] * v0;
                    gradientK01 -= a[row0 + col + 1] * v1;
                    gradientK02 -= a[row0 + col + 2] * v2;
                    gradientK03 -= a[row0 + col + 3] * v3;
                    gradientK10 -= a[row1 + col] * v0;
                    gradientK11 -= a[row1 + col + 1] * v1;
                    gradientK12 -= a[row1 + col + 2] * v2;
                    gradientK13 -= a[row1 + col + 3] * v3;
                    gradientK20 -= a[row2 + col] * v0;
                    gradientK21 -= a[row2 + col + 1] * v1;
                    gradientK22 -= a[row2 + col + 2] * v2;
                    gradientK23 -= a[row2 + col + 3] * v3;
                    gradientK30 -= a[row3 + col] * v0;
                    gradientK31 -= a[row3 + col + 1] * v1;
                    gradientK32 -= a[row3 + col + 2] * v2;
                    gradientK33 -= a[row3 + col + 3] * v3;
                }
                dA[row0 + col] = gradientA00;
                dA[row0 + col + 1] = gradientA01;
                dA[row0 + col + 2] = gradientA02;
                dA[row0 + col + 3] = gradientA03;
                dA[row1 + col] = gradientA10;
                dA[row1 + col + 1] = gradientA11;
                dA[row1 + col + 2] = gradientA12;
                dA[row1 + col + 3] = gradientA13;
                dA[row2 + col] = gradientA20;
                dA[row2 + col + 1] = gradientA21;
                dA[row2 + col + 2] = gradientA22;
                dA[row2 + col + 3] = gradientA23;
                dA[row3 + col] = gradientA30;
                dA[row3 + col + 1] = gradientA31;
                dA[row3 + col + 2] = gradientA32;
                dA[row3 + col + 3] = gradientA33;
                dKZX[row0 + col] = gradientK00;
                dKZX[row0 + col + 1] = gradientK01;
                dKZX[row0 + col + 2] = gradientK02;
                dKZX[row0 + col + 3] = gradientK03;
                dKZX[row1 + col] = gradientK10;
                dKZX[row1 + col + 1] = gradientK11;
                dKZX[row1 + col + 2] = gradientK12;
                dKZX[row1 + col + 3] = gradientK13;
                dKZX[row2 + col] = gradientK20;
                dKZX[row2 + col + 1] = gradientK21;
                dKZX[row2 + col + 2] = gradientK22;
                dKZX[row2 + col + 3] = gradientK23;
                dKZX[row3 + col] = gradientK30;
                dKZX[row3 + col + 1] = gradientK31;
                dKZX[row3 + col + 2] = gradientK32;
                dKZX[row3 + col + 3] = gradientK33;
            }
        }
        // The columns the tiles did not reach: the last of an N that is not a multiple of 4, or all of them for the last
        // rows of an M that is not.
        for (int row = i; row < inducing && row < i + 4; row++)
            for (int column = col; column < n; column++)
            {
                long index = (long)row * n + column;
                dA[index] = ProjectionGradientA(kZX, m, lS, b, dMean, dVariance, row, column, n, inducing, outputs);
                dKZX[index] = ProjectionGradientK(a, dVariance, row, column, n, outputs);
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
        dA[index] = ProjectionGradientA(kZX, m, lS, b, dMean, dVariance, i, col, n, inducing, outputs);
        dKZX[index] = ProjectionGradientK(a, dVariance, i, col, n, outputs);
    }

    /// <summary>dA_i,col = Σ_o (m_oi dMean − K_ZX,i,col dVariance + 2 (L_S,o b_o)_i,col dVariance), over o in order, the
    /// inner sum over j ≤ i in order.</summary>
    private static double ProjectionGradientA(ArrayView<double> kZX, ArrayView<double> m, ArrayView<double> lS, ArrayView<double> b, ArrayView<double> dMean,
        ArrayView<double> dVariance, int i, int col, int n, int inducing, int outputs)
    {
        double gradientA = 0;
        for (int o = 0; o < outputs; o++)
        {
            double lsB = 0;
            for (int j = 0; j <= i; j++)
                lsB += lS[((long)o * inducing + i) * inducing + j] * b[((long)o * inducing + j) * n + col];
            gradientA += ProjectionGradientTerm(m[(long)o * inducing + i], dMean[(long)col * outputs + o], kZX[(long)i * n + col], dVariance[(long)col * outputs + o],
                lsB);
        }
        return gradientA;
    }

    /// <summary>Output o's share of dA_i,col, given (L_S,o b_o)_i,col.</summary>
    private static double ProjectionGradientTerm(double mean, double dMean, double kZX, double dVariance, double lsB) =>
        mean * dMean - kZX * dVariance + 2 * lsB * dVariance;

    /// <summary>dK_ZX,i,col = −Σ_o A_i,col dVariance_col,o, over o in order.</summary>
    private static double ProjectionGradientK(ArrayView<double> a, ArrayView<double> dVariance, int i, int col, int n, int outputs)
    {
        double gradientK = 0;
        for (int o = 0; o < outputs; o++)
            gradientK -= a[(long)i * n + col] * dVariance[(long)col * outputs + o];
        return gradientK;
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
