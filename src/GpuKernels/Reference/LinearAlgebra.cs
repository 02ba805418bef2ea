namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// <see cref="LinearAlgebra"/> in double, written for clarity: batches of M×M matrices stored row-major one after
/// another ([B, M, M]), right-hand sides [B, M, R]. Cholesky–Banachiewicz, forward and backward substitution, the
/// log-determinant, their reverse-mode derivatives (Murray 2016 for the factorisation), and the RBF/ARD kernel.
/// </summary>
public static class LinearAlgebraReference
{
    /// <summary>L with L Lᵀ = A + jitter·I (upper triangle 0) per matrix, and per matrix the row whose pivot was not
    /// positive (−1 when the factorisation succeeded; the factor's rows from there on are left 0).</summary>
    public static (double[] L, int[] Failures) Cholesky(double[] a, int batch, int size, double jitter)
    {
        var l = new double[a.Length];
        var failures = Enumerable.Repeat(-1, batch).ToArray();
        for (int b = 0; b < batch; b++)
        {
            int o = b * size * size;
            for (int i = 0; i < size && failures[b] < 0; i++)
                for (int j = 0; j <= i; j++)
                {
                    double sum = a[o + i * size + j] + (i == j ? jitter : 0);
                    for (int k = 0; k < j; k++)
                        sum -= l[o + i * size + k] * l[o + j * size + k];
                    if (i == j)
                    {
                        if (!(sum > 0))
                        {
                            failures[b] = i;
                            for (int k = 0; k < i; k++)
                                l[o + i * size + k] = 0;
                            break;
                        }
                        l[o + i * size + i] = Math.Sqrt(sum);
                    }
                    else
                        l[o + i * size + j] = sum / l[o + j * size + j];
                }
        }
        return (l, failures);
    }

    /// <summary>G Gᵀ/M + I/2 per matrix for G [B, M, M]: symmetric, positive definite, with eigenvalues at least ½ —
    /// the test matrices of the checks.</summary>
    public static double[] SymmetricPositiveDefinite(double[] g, int batch, int size)
    {
        var a = new double[batch * size * size];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < size; i++)
                for (int j = 0; j < size; j++)
                {
                    double sum = i == j ? 0.5 : 0;
                    for (int k = 0; k < size; k++)
                        sum += g[(b * size + i) * size + k] * g[(b * size + j) * size + k] / size;
                    a[(b * size + i) * size + j] = sum;
                }
        return a;
    }

    /// <summary>X = L⁻¹B (transpose false) or L⁻ᵀB (true) per matrix, B and X [B, M, R].</summary>
    public static double[] Solve(double[] l, double[] rhs, int batch, int size, int columns, bool transpose)
    {
        var x = new double[rhs.Length];
        for (int b = 0; b < batch; b++)
        {
            int lo = b * size * size, xo = b * size * columns;
            for (int c = 0; c < columns; c++)
                for (int step = 0; step < size; step++)
                {
                    // Forward substitution runs down the rows of L; backward (with Lᵀ) up them, reading L's columns.
                    int i = transpose ? size - 1 - step : step;
                    double sum = rhs[xo + i * columns + c];
                    if (transpose)
                        for (int k = i + 1; k < size; k++)
                            sum -= l[lo + k * size + i] * x[xo + k * columns + c];
                    else
                        for (int k = 0; k < i; k++)
                            sum -= l[lo + i * size + k] * x[xo + k * columns + c];
                    x[xo + i * columns + c] = sum / l[lo + i * size + i];
                }
        }
        return x;
    }

    /// <summary>log det(L Lᵀ) = 2 Σ_i log L_ii per matrix.</summary>
    public static double[] LogDeterminant(double[] l, int batch, int size) =>
        Enumerable.Range(0, batch).Select(b => 2 * Enumerable.Range(0, size).Sum(i => Math.Log(l[b * size * size + i * size + i]))).ToArray();

    /// <summary>The gradient of the log-determinant with respect to L: 2·ḡ/L_ii on the diagonal.</summary>
    public static double[] LogDeterminantBackward(double[] l, double[] dLogDeterminant, int batch, int size)
    {
        var dL = new double[l.Length];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < size; i++)
            {
                int at = b * size * size + i * size + i;
                dL[at] = 2 * dLogDeterminant[b] / l[at];
            }
        return dL;
    }

    /// <summary>
    /// The triangular solve's reverse mode: for X = L⁻¹B, B̄ = L⁻ᵀX̄ and L̄ = −tril(B̄Xᵀ); for X = L⁻ᵀB, B̄ = L⁻¹X̄ and
    /// L̄ = −tril(X B̄ᵀ).
    /// </summary>
    public static (double[] DRhs, double[] DL) SolveBackward(double[] l, double[] x, double[] dX, int batch, int size, int columns, bool transpose)
    {
        var dRhs = Solve(l, dX, batch, size, columns, !transpose);
        var dL = new double[l.Length];
        for (int b = 0; b < batch; b++)
        {
            int lo = b * size * size, xo = b * size * columns;
            for (int i = 0; i < size; i++)
                for (int j = 0; j <= i; j++)
                {
                    double sum = 0;
                    for (int c = 0; c < columns; c++)
                        sum += transpose
                            ? x[xo + i * columns + c] * dRhs[xo + j * columns + c]
                            : dRhs[xo + i * columns + c] * x[xo + j * columns + c];
                    dL[lo + i * size + j] = -sum;
                }
        }
        return (dRhs, dL);
    }

    /// <summary>
    /// The factorisation's reverse mode (Murray 2016): with Φ the lower triangle with its diagonal halved and
    /// P = Φ(Lᵀ L̄) (L̄'s lower triangle), Ā = L⁻ᵀ ½(P + Pᵀ) L⁻¹, symmetric: df = Σ_ij Ā_ij dA_ij for every symmetric
    /// change dA (so moving A_ij and A_ji together by h changes f by 2·Ā_ij·h off the diagonal).
    /// </summary>
    public static double[] CholeskyBackward(double[] l, double[] dL, int batch, int size)
    {
        var dA = new double[l.Length];
        for (int b = 0; b < batch; b++)
        {
            int o = b * size * size;
            var p = new double[size * size];
            for (int i = 0; i < size; i++)
                for (int j = 0; j <= i; j++)
                {
                    // (Lᵀ L̄)_ij = Σ_k L_ki L̄_kj over k ≥ i (L lower) and k ≥ j (L̄ lower).
                    double sum = 0;
                    for (int k = i; k < size; k++)
                        sum += l[o + k * size + i] * dL[o + k * size + j];
                    p[i * size + j] = i == j ? sum / 2 : sum;
                }
            var symmetric = new double[size * size];
            for (int i = 0; i < size; i++)
                for (int j = 0; j < size; j++)
                    symmetric[i * size + j] = (p[i * size + j] + p[j * size + i]) / 2;
            // S = L⁻ᵀ symmetric L⁻¹: solve Lᵀ Y = symmetric, then Lᵀ Sᵀ = Yᵀ (S is symmetric).
            var factor = l.AsSpan(o, size * size).ToArray();
            var y = Solve(factor, symmetric, 1, size, size, transpose: true);
            var yT = new double[size * size];
            for (int i = 0; i < size; i++)
                for (int j = 0; j < size; j++)
                    yT[i * size + j] = y[j * size + i];
            var s = Solve(factor, yT, 1, size, size, transpose: true);
            for (int i = 0; i < size; i++)
                for (int j = 0; j < size; j++)
                    dA[o + i * size + j] = s[j * size + i];
        }
        return dA;
    }

    /// <summary>
    /// The RBF/ARD kernel K[b, i, j] = σ² exp(−½ Σ_d (x_id − z_jd)²/ℓ_d²) for X [B, N, D] and Z [B, M, D] with
    /// hyperparameters [B, D + 1] = [log ℓ_1 … log ℓ_D | log σ²].
    /// </summary>
    public static double[] Rbf(double[] x, double[] z, double[] hyper, int batch, int n, int m, int dims)
    {
        var k = new double[batch * n * m];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < m; j++)
                {
                    double distance = 0;
                    for (int d = 0; d < dims; d++)
                    {
                        double difference = (x[(b * n + i) * dims + d] - z[(b * m + j) * dims + d]) / Math.Exp(hyper[b * (dims + 1) + d]);
                        distance += difference * difference;
                    }
                    k[(b * n + i) * m + j] = Math.Exp(hyper[b * (dims + 1) + dims] - distance / 2);
                }
        return k;
    }

    /// <summary>The RBF kernel's reverse mode for K̄: (X̄, Z̄, hyperparameters' gradient).</summary>
    public static (double[] DX, double[] DZ, double[] DHyper) RbfBackward(double[] x, double[] z, double[] hyper, double[] dK, int batch, int n, int m, int dims)
    {
        var k = Rbf(x, z, hyper, batch, n, m, dims);
        var (dX, dZ, dHyper) = (new double[x.Length], new double[z.Length], new double[hyper.Length]);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < m; j++)
                {
                    double g = dK[(b * n + i) * m + j] * k[(b * n + i) * m + j];
                    dHyper[b * (dims + 1) + dims] += g;
                    for (int d = 0; d < dims; d++)
                    {
                        double inverseSquare = Math.Exp(-2 * hyper[b * (dims + 1) + d]);
                        double difference = x[(b * n + i) * dims + d] - z[(b * m + j) * dims + d];
                        dX[(b * n + i) * dims + d] -= g * difference * inverseSquare;
                        dZ[(b * m + j) * dims + d] += g * difference * inverseSquare;
                        dHyper[b * (dims + 1) + d] += g * difference * difference * inverseSquare;
                    }
                }
        return (dX, dZ, dHyper);
    }
}
