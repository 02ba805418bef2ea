namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// A single sparse variational GP layer with a Gaussian likelihood, in double, written for clarity from
/// shared/docs/SCIENCE.md (Titsias 2009; Hensman et al. 2013; the one-layer case of Salimbeni and Deisenroth 2017):
/// the RBF/ARD kernel of <see cref="LinearAlgebraReference.Rbf"/>, zero mean function, inducing inputs Z [M, D] and
/// q(u) = N(m, S) with S = L_S L_Sᵀ. What the deep GP's device code will be checked against, and the exact GP
/// marginal likelihood it must reach when Z = X.
/// </summary>
public static class GaussianProcessReference
{
    private const double LogTwoPi = 1.8378770664093453;

    private static double[] Kernel(double[] a, double[] b, double[] hyper, int n, int m, int dims) => LinearAlgebraReference.Rbf(a, b, hyper, 1, n, m, dims);

    private static double[] PlusDiagonal(double[] matrix, int size, double value)
    {
        var result = (double[])matrix.Clone();
        for (int i = 0; i < size; i++)
            result[i * size + i] += value;
        return result;
    }

    private static double[] Transpose(double[] matrix, int rows, int columns)
    {
        var result = new double[matrix.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                result[j * rows + i] = matrix[i * columns + j];
        return result;
    }

    private static double[] Factor(double[] matrix, int size)
    {
        var (l, failures) = LinearAlgebraReference.Cholesky(matrix, 1, size, 0);
        if (failures[0] >= 0)
            throw new ArgumentException($"the matrix is not positive definite (pivot {failures[0]})");
        return l;
    }

    /// <summary>log N(y; 0, K_XX + σ²_noise·I): the exact GP log marginal likelihood.</summary>
    public static double ExactLogMarginal(double[] x, double[] y, double[] hyper, double noiseVariance, int n, int dims)
    {
        var l = Factor(PlusDiagonal(Kernel(x, x, hyper, n, n, dims), n, noiseVariance), n);
        var alpha = LinearAlgebraReference.Solve(l, y, 1, n, 1, transpose: false);
        return -0.5 * (alpha.Sum(a => a * a) + LinearAlgebraReference.LogDeterminant(l, 1, n)[0] + n * LogTwoPi);
    }

    /// <summary>
    /// The layer's marginals at the inputs: μ_n = k_nZ K⁻¹ m and σ²_n = k_nn − k_nZ K⁻¹ k_Zn + k_nZ K⁻¹ S K⁻¹ k_Zn,
    /// K = K_ZZ + jitter·I.
    /// </summary>
    public static (double[] Mean, double[] Variance) Marginals(double[] x, double[] z, double[] hyper, double[] m, double[] lS, double jitter, int n, int inducing,
        int dims)
    {
        var lZ = Factor(PlusDiagonal(Kernel(z, z, hyper, inducing, inducing, dims), inducing, jitter), inducing);
        var kZX = Transpose(Kernel(x, z, hyper, n, inducing, dims), n, inducing); // [M, N]
        // A = K⁻¹ k_ZX through two solves.
        var a = LinearAlgebraReference.Solve(lZ, LinearAlgebraReference.Solve(lZ, kZX, 1, inducing, n, false), 1, inducing, n, true);
        return MarginalsFromProjection(a, kZX, m, lS, Math.Exp(hyper[dims]), n, inducing, 1);
    }

    /// <summary>
    /// The marginals from the projection A = K⁻¹K_ZX [M, N] (shared by a layer's outputs) for
    /// <paramref name="outputs"/> output dimensions with m [O, M] and L_S [O, M, M]: mean and variance [N, O],
    /// μ_no = Σ_i A_in m_oi and σ²_no = σ_f² − Σ_i K_ZX,in A_in + Σ_j B_ojn², B_o = L_S,oᵀA.
    /// </summary>
    public static (double[] Mean, double[] Variance) MarginalsFromProjection(double[] a, double[] kZX, double[] m, double[] lS, double signalVariance, int n,
        int inducing, int outputs)
    {
        var mean = new double[n * outputs];
        var variance = new double[n * outputs];
        for (int col = 0; col < n; col++)
            for (int o = 0; o < outputs; o++)
            {
                double mu = 0, reduction = 0, added = 0;
                for (int i = 0; i < inducing; i++)
                {
                    mu += a[i * n + col] * m[o * inducing + i];
                    reduction += kZX[i * n + col] * a[i * n + col];
                    double b = 0;
                    for (int k = i; k < inducing; k++)
                        b += lS[(o * inducing + k) * inducing + i] * a[k * n + col];
                    added += b * b;
                }
                mean[col * outputs + o] = mu;
                variance[col * outputs + o] = signalVariance - reduction + added;
            }
        return (mean, variance);
    }

    /// <summary>
    /// The reverse mode of <see cref="MarginalsFromProjection"/> for μ̄ and σ̄² [N, O]: Ā_in = Σ_o (m_oi μ̄_no −
    /// K_ZX,in σ̄²_no + 2(L_S,o B_o)_in σ̄²_no), K̄_ZX,in = −A_in Σ_o σ̄²_no, m̄_oi = Σ_n A_in μ̄_no and
    /// L̄_S,o[k, j] = 2 Σ_n A_kn B_ojn σ̄²_no (k ≥ j).
    /// </summary>
    public static (double[] DA, double[] DKZX, double[] DM, double[] DLS) MarginalsBackward(double[] a, double[] kZX, double[] m, double[] lS, double[] dMean,
        double[] dVariance, int n, int inducing, int outputs)
    {
        var b = new double[outputs * inducing * n];
        for (int o = 0; o < outputs; o++)
            for (int j = 0; j < inducing; j++)
                for (int col = 0; col < n; col++)
                    for (int k = j; k < inducing; k++)
                        b[(o * inducing + j) * n + col] += lS[(o * inducing + k) * inducing + j] * a[k * n + col];
        var (dA, dKZX, dM, dLS) = (new double[a.Length], new double[a.Length], new double[m.Length], new double[lS.Length]);
        for (int i = 0; i < inducing; i++)
            for (int col = 0; col < n; col++)
                for (int o = 0; o < outputs; o++)
                {
                    double mu = dMean[col * outputs + o], v = dVariance[col * outputs + o];
                    double lsB = 0;
                    for (int j = 0; j <= i; j++)
                        lsB += lS[(o * inducing + i) * inducing + j] * b[(o * inducing + j) * n + col];
                    dA[i * n + col] += m[o * inducing + i] * mu - kZX[i * n + col] * v + 2 * lsB * v;
                    dKZX[i * n + col] -= a[i * n + col] * v;
                    dM[o * inducing + i] += a[i * n + col] * mu;
                    for (int j = 0; j <= i; j++)
                        dLS[(o * inducing + i) * inducing + j] += 2 * a[i * n + col] * b[(o * inducing + j) * n + col] * v;
                }
        return (dA, dKZX, dM, dLS);
    }

    /// <summary>KL(N(m, L_S L_Sᵀ) ‖ N(0, K_ZZ + jitter·I)) = ½[tr(K⁻¹S) + mᵀK⁻¹m − M + log det K − log det S].</summary>
    public static double Kl(double[] z, double[] hyper, double[] m, double[] lS, double jitter, int inducing, int dims)
    {
        var lZ = Factor(PlusDiagonal(Kernel(z, z, hyper, inducing, inducing, dims), inducing, jitter), inducing);
        var solvedS = LinearAlgebraReference.Solve(lZ, lS, 1, inducing, inducing, false); // L_Z⁻¹ L_S: tr(K⁻¹S) is its squared norm
        var solvedM = LinearAlgebraReference.Solve(lZ, m, 1, inducing, 1, false);
        double logDetS = 2 * Enumerable.Range(0, inducing).Sum(i => Math.Log(Math.Abs(lS[i * inducing + i])));
        return 0.5 * (solvedS.Sum(v => v * v) + solvedM.Sum(v => v * v) - inducing + LinearAlgebraReference.LogDeterminant(lZ, 1, inducing)[0] - logDetS);
    }

    /// <summary>The ELBO Σ_n E_q[log N(y_n; f_n, σ²_noise)] − KL(q(u) ‖ p(u)), each expectation in closed form:
    /// −½ log 2πσ² − ((y − μ)² + σ²_n)/(2σ²).</summary>
    public static double Elbo(double[] x, double[] y, double[] z, double[] hyper, double[] m, double[] lS, double noiseVariance, double jitter, int n, int inducing,
        int dims)
    {
        var (mean, variance) = Marginals(x, z, hyper, m, lS, jitter, n, inducing, dims);
        double expected = 0;
        for (int i = 0; i < n; i++)
            expected += -0.5 * (LogTwoPi + Math.Log(noiseVariance)) - ((y[i] - mean[i]) * (y[i] - mean[i]) + variance[i]) / (2 * noiseVariance);
        return expected - Kl(z, hyper, m, lS, jitter, inducing, dims);
    }

    /// <summary>The gradient of <see cref="Elbo"/> (the layer's reverse mode, written out): with respect to the inputs X
    /// (what a deeper layer passes down), the inducing inputs Z, the kernel's log-hyperparameters, q's mean m and
    /// factor L_S (lower triangle), and the log noise variance.</summary>
    public sealed record ElboGradient(double[] DX, double[] DZ, double[] DHyper, double[] DM, double[] DLS, double DLogNoise);

    /// <summary>
    /// The reverse mode of <see cref="Elbo"/>. With K = K_ZZ + jitter·I, A = K⁻¹K_ZX, μ = Aᵀm, B = L_SᵀA and
    /// σ²_n = σ_f² − Σ_i (K_ZX ∘ A)_in + Σ_j B_jn²: μ̄ = (y − μ)/s², σ̄² = −1/(2s²); then Ā = m μ̄ᵀ − K_ZX∘σ̄² +
    /// 2 L_S B diag(σ̄²), K̄_ZX = −A diag(σ̄²) + K⁻¹Ā, K̄ = −K⁻¹Ā Aᵀ; the KL adds K̄ −= ½(K⁻¹ − K⁻¹(S + mmᵀ)K⁻¹),
    /// m̄ −= K⁻¹m, L̄_S −= K⁻¹L_S − diag(1/L_S,ii); the kernel's reverse mode carries K̄ (symmetrised) and K̄_ZX to Z,
    /// X and the hyperparameters.
    /// </summary>
    public static ElboGradient Gradient(double[] x, double[] y, double[] z, double[] hyper, double[] m, double[] lS, double noiseVariance, double jitter,
        int n, int inducing, int dims)
    {
        int mm = inducing;
        var kzz = PlusDiagonal(Kernel(z, z, hyper, mm, mm, dims), mm, jitter);
        var lZ = Factor(kzz, mm);
        var kZX = Transpose(Kernel(x, z, hyper, n, mm, dims), n, mm); // [M, N]
        double[] KInverse(double[] rhs, int columns) =>
            LinearAlgebraReference.Solve(lZ, LinearAlgebraReference.Solve(lZ, rhs, 1, mm, columns, false), 1, mm, columns, true);
        var a = KInverse(kZX, n);
        var (mean, variance) = Marginals(x, z, hyper, m, lS, jitter, n, mm, dims);
        var dMean = Enumerable.Range(0, n).Select(c => (y[c] - mean[c]) / noiseVariance).ToArray();
        double dVariance = -1 / (2 * noiseVariance);
        // d/d log s² of Σ_n [−½ log 2πs² − ((y − μ)² + σ²)/(2s²)] = Σ_n [−½ + ((y − μ)² + σ²)/(2s²)].
        double dLogNoise = Enumerable.Range(0, n).Sum(c => -0.5 + ((y[c] - mean[c]) * (y[c] - mean[c]) + variance[c]) / (2 * noiseVariance));
        // B = L_Sᵀ A.
        var b = new double[mm * n];
        for (int j = 0; j < mm; j++)
            for (int c = 0; c < n; c++)
            {
                double sum = 0;
                for (int k = j; k < mm; k++)
                    sum += lS[k * mm + j] * a[k * n + c];
                b[j * n + c] = sum;
            }
        var dA = new double[mm * n];
        var dKZX = new double[mm * n];
        var dLS = new double[mm * mm];
        var dM = new double[mm];
        for (int i = 0; i < mm; i++)
            for (int c = 0; c < n; c++)
            {
                double fromB = 0;
                for (int j = 0; j <= i; j++)
                    fromB += lS[i * mm + j] * b[j * n + c];
                dA[i * n + c] = m[i] * dMean[c] - kZX[i * n + c] * dVariance + 2 * fromB * dVariance;
                dKZX[i * n + c] = -a[i * n + c] * dVariance;
                dM[i] += a[i * n + c] * dMean[c];
            }
        // L̄_S from B = L_SᵀA: B̄ = 2B·σ̄², L̄_S[k, j] = Σ_c A[k, c] B̄[j, c] for k ≥ j.
        for (int k = 0; k < mm; k++)
            for (int j = 0; j <= k; j++)
                dLS[k * mm + j] = Enumerable.Range(0, n).Sum(c => a[k * n + c] * 2 * b[j * n + c] * dVariance);
        // A = K⁻¹K_ZX: K̄_ZX += K⁻¹Ā, K̄ = −(K⁻¹Ā)Aᵀ.
        var kInverseDA = KInverse(dA, n);
        var dK = new double[mm * mm];
        for (int i = 0; i < mm; i++)
        {
            for (int c = 0; c < n; c++)
                dKZX[i * n + c] += kInverseDA[i * n + c];
            for (int j = 0; j < mm; j++)
                dK[i * mm + j] = -Enumerable.Range(0, n).Sum(c => kInverseDA[i * n + c] * a[j * n + c]);
        }
        // −KL: ½tr(K⁻¹S) + ½mᵀK⁻¹m + ½logdet K − ½logdet S, negated.
        var s = new double[mm * mm];
        for (int i = 0; i < mm; i++)
            for (int j = 0; j < mm; j++)
                s[i * mm + j] = Enumerable.Range(0, mm).Sum(k => lS[i * mm + k] * lS[j * mm + k]) + m[i] * m[j];
        var identity = new double[mm * mm];
        for (int i = 0; i < mm; i++)
            identity[i * mm + i] = 1;
        var kInverse = KInverse(identity, mm);
        var kInverseSK = KInverse(Transpose(KInverse(s, mm), mm, mm), mm); // K⁻¹(S + mmᵀ)K⁻¹ (symmetric)
        var kInverseLS = KInverse(lS, mm);
        var kInverseM = KInverse(m, 1);
        for (int i = 0; i < mm; i++)
        {
            dM[i] -= kInverseM[i];
            for (int j = 0; j < mm; j++)
            {
                dK[i * mm + j] -= 0.5 * (kInverse[i * mm + j] - kInverseSK[i * mm + j]);
                if (j <= i)
                    dLS[i * mm + j] -= kInverseLS[i * mm + j] - (i == j ? 1 / lS[i * mm + i] : 0);
            }
        }
        // Symmetrise K̄ (K_ZZ's entries each read both z_i and z_j), then through the kernels.
        var dKSymmetric = new double[mm * mm];
        for (int i = 0; i < mm; i++)
            for (int j = 0; j < mm; j++)
                dKSymmetric[i * mm + j] = (dK[i * mm + j] + dK[j * mm + i]) / 2;
        var (dZ1, dZ2, dHyper) = LinearAlgebraReference.RbfBackward(z, z, hyper, dKSymmetric, 1, mm, mm, dims);
        var (dX, dZ3, dHyperX) = LinearAlgebraReference.RbfBackward(x, z, hyper, Transpose(dKZX, mm, n), 1, n, mm, dims);
        // σ_f² enters σ²_n directly too: σ̄_f² = Σ_n σ̄², through log σ_f².
        dHyper[dims] += n * dVariance * Math.Exp(hyper[dims]);
        return new ElboGradient(dX, dZ1.Zip(dZ2, (p, q) => p + q).Zip(dZ3, (p, q) => p + q).ToArray(), dHyper.Zip(dHyperX, (p, q) => p + q).ToArray(), dM, dLS,
            dLogNoise);
    }

    /// <summary>
    /// The optimal q(u) for the Gaussian likelihood (Titsias 2009): with K = K_ZZ + jitter·I and
    /// Σ = K + σ⁻²K_ZX K_XZ, S* = K Σ⁻¹ K and m* = σ⁻² K Σ⁻¹ K_ZX y; returns m* and the Cholesky factor of S*.
    /// </summary>
    public static (double[] Mean, double[] CovarianceFactor) OptimalPosterior(double[] x, double[] y, double[] z, double[] hyper, double noiseVariance, double jitter,
        int n, int inducing, int dims)
    {
        var k = PlusDiagonal(Kernel(z, z, hyper, inducing, inducing, dims), inducing, jitter);
        var kZX = Transpose(Kernel(x, z, hyper, n, inducing, dims), n, inducing);
        var sigma = new double[inducing * inducing];
        for (int i = 0; i < inducing; i++)
            for (int j = 0; j < inducing; j++)
                sigma[i * inducing + j] = k[i * inducing + j] + Enumerable.Range(0, n).Sum(c => kZX[i * n + c] * kZX[j * n + c]) / noiseVariance;
        var lSigma = Factor(sigma, inducing);
        // Σ⁻¹K by two solves, then S* = K (Σ⁻¹K).
        var sigmaInverseK = LinearAlgebraReference.Solve(lSigma, LinearAlgebraReference.Solve(lSigma, k, 1, inducing, inducing, false), 1, inducing, inducing, true);
        var s = new double[inducing * inducing];
        for (int i = 0; i < inducing; i++)
            for (int j = 0; j < inducing; j++)
                s[i * inducing + j] = Enumerable.Range(0, inducing).Sum(c => k[i * inducing + c] * sigmaInverseK[c * inducing + j]);
        // Symmetrise the rounding away before factoring.
        for (int i = 0; i < inducing; i++)
            for (int j = 0; j < i; j++)
                s[i * inducing + j] = s[j * inducing + i] = (s[i * inducing + j] + s[j * inducing + i]) / 2;
        var kZXy = Enumerable.Range(0, inducing).Select(i => Enumerable.Range(0, n).Sum(c => kZX[i * n + c] * y[c]) / noiseVariance).ToArray();
        var sigmaInverse = LinearAlgebraReference.Solve(lSigma, LinearAlgebraReference.Solve(lSigma, kZXy, 1, inducing, 1, false), 1, inducing, 1, true);
        var mean = Enumerable.Range(0, inducing).Select(i => Enumerable.Range(0, inducing).Sum(c => k[i * inducing + c] * sigmaInverse[c])).ToArray();
        return (mean, Factor(s, inducing));
    }
}
