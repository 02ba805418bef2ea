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
        // B = L_Sᵀ A: σ² gains Σ_i B_in².
        var mean = new double[n];
        var variance = new double[n];
        double signal = Math.Exp(hyper[dims]);
        for (int col = 0; col < n; col++)
        {
            double mu = 0, reduction = 0, added = 0;
            for (int i = 0; i < inducing; i++)
            {
                mu += a[i * n + col] * m[i];
                reduction += kZX[i * n + col] * a[i * n + col];
                double b = 0;
                for (int k = i; k < inducing; k++)
                    b += lS[k * inducing + i] * a[k * n + col];
                added += b * b;
            }
            mean[col] = mu;
            variance[col] = signal - reduction + added;
        }
        return (mean, variance);
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
