using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The deep GP's linear algebra on the device, in double (float32 Cholesky is known to be unstable for inducing-point
/// models), batched over matrices stored row-major one after another ([B, M, M]; right-hand sides [B, M, R]).
/// One thread per matrix for the factorisation, its reverse mode and the log-determinant, one per (matrix, column)
/// for the solves: plain and exact, sized for the M of inducing points (tens to hundreds), not for large dense
/// matrices. The reverse modes add into their outputs where several paths meet (L̄ from solves and the
/// log-determinant). Double references: <see cref="Reference.LinearAlgebraReference"/>.
/// </summary>
public static class LinearAlgebra
{
    /// <summary>
    /// l = the lower Cholesky factor of a + jitter·I per matrix (upper triangle 0), and failures[b] = −1, or the row
    /// whose pivot was not positive (that row and the ones after it are left 0). One thread per matrix with
    /// <see cref="KernelSet.GpRowKernels"/>; otherwise one group per matrix (<see cref="CholeskyGroupKernel"/>), every
    /// entry computed as the one thread computes it.
    /// </summary>
    public static void Cholesky(this KernelSet kernels, ArrayView<double> a, ArrayView<double> l, ArrayView<int> failures, int batch, int size, double jitter)
    {
        if (kernels.GpRowKernels)
        {
            kernels.Launch(CholeskyKernel, batch, a, l, failures, size, jitter);
            return;
        }
        int threads = Math.Max(1, Math.Min(size, Math.Min(kernels.Accelerator.MaxNumThreadsPerGroup, 256)));
        Action<ArrayView<double>, ArrayView<double>, ArrayView<int>, int, double> entry = CholeskyGroupKernel;
        var kernel = kernels.Loaded(entry, () => kernels.Accelerator.LoadKernel(entry));
        kernels.Run(() => kernel(kernels.Stream, new KernelConfig(batch, threads), a, l, failures, size, jitter), nameof(Cholesky));
    }

    /// <summary>x = L⁻¹·rhs (transpose false) or L⁻ᵀ·rhs (true) for <paramref name="batch"/> right-hand sides
    /// [M, R], consecutive groups of <paramref name="perFactor"/> of them sharing one factor (a layer's K_ZZ is
    /// shared by its output dimensions; 1: a factor per right-hand side); x may be rhs itself (each column is solved in
    /// place in the order it is read). One thread per (right-hand side, column), or per four columns with
    /// <see cref="KernelSet.GpRowKernels"/> (the same sums in the same order).</summary>
    public static void TriangularSolve(this KernelSet kernels, ArrayView<double> l, ArrayView<double> rhs, ArrayView<double> x, int batch, int size, int columns,
        bool transpose, int perFactor = 1)
    {
        if (kernels.GpRowKernels)
            kernels.Launch(SolveBlockKernel, batch * ((columns + 3) / 4), l, rhs, x, size, columns, transpose ? 1 : 0, perFactor);
        else
            kernels.Launch(SolveKernel, batch * columns, l, rhs, x, size, columns, transpose ? 1 : 0, perFactor);
    }

    /// <summary>
    /// The solve's reverse mode for x̄: dRhs = L⁻ᵀx̄ (or L⁻¹x̄ for the transposed solve), written; and
    /// dL += −tril(dRhs·xᵀ) (or −tril(x·dRhsᵀ)), summed over the right-hand sides that share a factor. Two launches.
    /// </summary>
    public static void TriangularSolveBackward(this KernelSet kernels, ArrayView<double> l, ArrayView<double> x, ArrayView<double> dX, ArrayView<double> dRhs,
        ArrayView<double> dL, int batch, int size, int columns, bool transpose, int perFactor = 1)
    {
        kernels.TriangularSolve(l, dX, dRhs, batch, size, columns, !transpose, perFactor);
        kernels.Launch(SolveFactorGradientKernel, batch / perFactor * size, x, dRhs, dL, size, columns, transpose ? 1 : 0, perFactor);
    }

    /// <summary>logDeterminant[b] = log det(L Lᵀ) = 2 Σ_i log L_ii. One thread per matrix.</summary>
    public static void LogDeterminant(this KernelSet kernels, ArrayView<double> l, ArrayView<double> logDeterminant, int batch, int size) =>
        kernels.Launch(LogDeterminantKernel, batch, l, logDeterminant, size);

    /// <summary>dL_ii += 2·ḡ_b / L_ii, the log-determinant's reverse mode. One thread per (matrix, row).</summary>
    public static void LogDeterminantBackward(this KernelSet kernels, ArrayView<double> l, ArrayView<double> dLogDeterminant, ArrayView<double> dL, int batch,
        int size) =>
        kernels.Launch(LogDeterminantBackwardKernel, batch * size, l, dLogDeterminant, dL, size);

    /// <summary>
    /// The factorisation's reverse mode (Murray 2016): dA = L⁻ᵀ ½(P + Pᵀ) L⁻¹ with P = Φ(Lᵀ·tril(dL)), Φ the lower
    /// triangle with its diagonal halved; dA is symmetric (written, not added). <paramref name="work"/> is [B, M, M]
    /// scratch. With <see cref="KernelSet.GpRowKernels"/> one thread per matrix does it all; otherwise (a GPU, where
    /// one thread's O(M³) would be most of a step) the same steps run one launch each, spread over elements or
    /// columns, every number computed as the one thread computes it.
    /// </summary>
    public static void CholeskyBackward(this KernelSet kernels, ArrayView<double> l, ArrayView<double> dL, ArrayView<double> dA, ArrayView<double> work, int batch,
        int size)
    {
        if (kernels.GpRowKernels)
        {
            kernels.Launch(CholeskyBackwardKernel, batch, l, dL, dA, work, size);
            return;
        }
        int elements = batch * size * size;
        kernels.Launch(CholeskyBackwardProductKernel, elements, l, dL, work, size);
        kernels.Launch(SymmetricPartKernel, elements, work, dA, size);
        kernels.TriangularSolve(l, dA, dA, batch, size, size, transpose: true);
        kernels.Launch(TransposeKernel, elements, dA, work, size);
        kernels.TriangularSolve(l, work, work, batch, size, size, transpose: true);
        kernels.Launch(TransposeKernel, elements, work, dA, size);
    }

    /// <summary>
    /// The RBF/ARD kernel k[b, i, j] = σ² exp(−½ Σ_d (x_id − z_jd)²/ℓ_d²) for x [B, N, D], z [B, M, D] and hyper
    /// [B, D + 1] = [log ℓ_1 … log ℓ_D | log σ²]. One thread per element, or per pair of rows of k
    /// (<see cref="KernelSet.GpRowKernels"/>).
    /// </summary>
    public static void Rbf(this KernelSet kernels, ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k, int batch, int n,
        int m, int dims)
    {
        if (kernels.GpRowKernels)
            kernels.Launch(RbfRowKernel, batch * ((n + 1) / 2), x, z, hyper, k, n, m, dims);
        else
            kernels.Launch(RbfKernel, batch * n * m, x, z, hyper, k, n, m, dims);
    }

    /// <summary>
    /// The RBF kernel's reverse mode for dK, given k from <see cref="Rbf"/>: dX, dZ and dHyper written. Three launches,
    /// one thread per element of dX, of dZ and of dHyper — or, with <see cref="KernelSet.GpRowKernels"/>, two: per row
    /// of dZ, and per four dimensions for dHyper and dX together, the same sums in the same order. (Per element matters on
    /// a GPU: Z has only M rows, and each row's gradient sums over the whole batch.) With <paramref name="zGradient"/> false dZ is
    /// left as it was: a deep GP's first layer has the data on that side, whose gradient nothing reads, and at MNIST's
    /// 784 inputs it is a third of the step's RBF work.
    /// </summary>
    public static void RbfBackward(this KernelSet kernels, ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k,
        ArrayView<double> dK, ArrayView<double> dX, ArrayView<double> dZ, ArrayView<double> dHyper, int batch, int n, int m, int dims, bool zGradient = true)
    {
        if (kernels.GpRowKernels)
        {
            if (zGradient)
                kernels.Launch(RbfZGradientKernel, batch * m, x, z, hyper, k, dK, dZ, n, m, dims);
            kernels.Launch(RbfHyperGradientBlockKernel, batch * ((dims + 4) / 4), x, z, hyper, k, dK, dX, dHyper, n, m, dims);
        }
        else
        {
            kernels.Launch(RbfInputGradientElementKernel, batch * n * dims, x, z, hyper, k, dK, dX, n, m, dims, 0);
            if (zGradient)
                kernels.Launch(RbfInputGradientElementKernel, batch * m * dims, x, z, hyper, k, dK, dZ, n, m, dims, 1);
            kernels.Launch(RbfHyperGradientKernel, batch * (dims + 1), x, z, hyper, k, dK, dHyper, n, m, dims);
        }
    }

    [Kernel]
    public static void CholeskyKernel(Index1D matrix, ArrayView<double> a, ArrayView<double> l, ArrayView<int> failures, int size, double jitter)
    {
        long o = (long)(int)matrix * size * size;
        for (int at = 0; at < size * size; at++)
            l[o + at] = 0;
        failures[matrix] = -1;
        for (int i = 0; i < size; i++)
            for (int j = 0; j <= i; j++)
            {
                double sum = a[o + i * size + j] + (i == j ? jitter : 0);
                for (int k = 0; k < j; k++)
                    sum -= l[o + i * size + k] * l[o + j * size + k];
                if (i != j)
                {
                    l[o + i * size + j] = sum / l[o + j * size + j];
                    continue;
                }
                if (!(sum > 0))
                {
                    failures[matrix] = i;
                    for (int k = 0; k < i; k++)
                        l[o + i * size + k] = 0;
                    return;
                }
                l[o + i * size + i] = Math.Sqrt(sum);
            }
    }

    /// <summary>
    /// <see cref="CholeskyKernel"/> column by column with a group per matrix: for each column j one thread takes the
    /// pivot, then the group the entries below it, a barrier between. Each entry is the same sum in the same order
    /// as the row-by-row kernel's, so the factor is the same bit for bit; on a failed pivot at j the rows from j on
    /// (partly filled by earlier columns) are zeroed, leaving what the row-by-row kernel leaves.
    /// </summary>
    [Kernel]
    public static void CholeskyGroupKernel(ArrayView<double> a, ArrayView<double> l, ArrayView<int> failures, int size, double jitter)
    {
        int matrix = Grid.IdxX, thread = Group.IdxX, threads = Group.DimX;
        long o = (long)matrix * size * size;
        var failed = SharedMemory.Allocate<int>(1);
        for (int at = thread; at < size * size; at += threads)
            l[o + at] = 0;
        if (thread == 0)
            failed[0] = -1;
        Group.Barrier();
        for (int j = 0; j < size; j++)
        {
            if (thread == 0)
            {
                double pivot = a[o + j * size + j] + jitter;
                for (int k = 0; k < j; k++)
                    pivot -= l[o + j * size + k] * l[o + j * size + k];
                if (pivot > 0)
                    l[o + j * size + j] = Math.Sqrt(pivot);
                else
                    failed[0] = j;
            }
            Group.Barrier();
            if (failed[0] >= 0)
            {
                for (int at = thread; at < (size - j) * j; at += threads)
                    l[o + (j + at / j) * size + at % j] = 0;
                if (thread == 0)
                    failures[matrix] = j;
                return;
            }
            for (int i = j + 1 + thread; i < size; i += threads)
            {
                // i ≠ j here, so this adds +0; kept as the one-thread kernel writes it, which turns an entry of −0 into +0.
                double sum = a[o + i * size + j] + (i == j ? jitter : 0);
                for (int k = 0; k < j; k++)
                    sum -= l[o + i * size + k] * l[o + j * size + k];
                l[o + i * size + j] = sum / l[o + j * size + j];
            }
            Group.Barrier();
        }
        if (thread == 0)
            failures[matrix] = -1;
    }

    /// <summary>Solves one column of one matrix (see <see cref="TriangularSolve"/>).</summary>
    private static void SolveColumn(ArrayView<double> l, ArrayView<double> rhs, ArrayView<double> x, long lo, long xo, int size, int columns, int column,
        int transpose)
    {
        for (int step = 0; step < size; step++)
        {
            int i = transpose != 0 ? size - 1 - step : step;
            double sum = rhs[xo + i * columns + column];
            if (transpose != 0)
                for (int k = i + 1; k < size; k++)
                    sum -= l[lo + k * size + i] * x[xo + k * columns + column];
            else
                for (int k = 0; k < i; k++)
                    sum -= l[lo + i * size + k] * x[xo + k * columns + column];
            x[xo + i * columns + column] = sum / l[lo + i * size + i];
        }
    }

    [Kernel]
    public static void SolveKernel(Index1D index, ArrayView<double> l, ArrayView<double> rhs, ArrayView<double> x, int size, int columns, int transpose,
        int perFactor)
    {
        int matrix = index / columns, column = index - matrix * columns;
        SolveColumn(l, rhs, x, (long)(matrix / perFactor) * size * size, (long)matrix * size * columns, size, columns, column, transpose);
    }

    /// <summary>Four columns of one right-hand side, solved together so each factor entry read serves four of them
    /// (a last block of fewer columns goes column by column, as <see cref="SolveKernel"/>).</summary>
    [Kernel]
    public static void SolveBlockKernel(Index1D index, ArrayView<double> l, ArrayView<double> rhs, ArrayView<double> x, int size, int columns, int transpose,
        int perFactor)
    {
        int blocks = (columns + 3) / 4, matrix = index / blocks, column = 4 * (index - matrix * blocks);
        long lo = (long)(matrix / perFactor) * size * size, xo = (long)matrix * size * columns;
        if (column + 4 > columns)
        {
            for (int single = column; single < columns; single++)
                SolveColumn(l, rhs, x, lo, xo, size, columns, single, transpose);
            return;
        }
        // L's entry for (i, k) is L_ik, or L_ki when solving with Lᵀ; k runs over the solved rows, ascending either way.
        long rowStride = transpose != 0 ? 1 : size, kStride = transpose != 0 ? size : 1;
        for (int step = 0; step < size; step++)
        {
            int i = transpose != 0 ? size - 1 - step : step;
            long at = xo + (long)i * columns + column;
            double sum0 = rhs[at], sum1 = rhs[at + 1], sum2 = rhs[at + 2], sum3 = rhs[at + 3];
            int kFirst = transpose != 0 ? i + 1 : 0, kEnd = transpose != 0 ? size : i;
            for (int k = kFirst; k < kEnd; k++)
            {
                double value = l[lo + i * rowStride + k * kStride];
                long from = xo + (long)k * columns + column;
                sum0 -= value * x[from];
                sum1 -= value * x[from + 1];
                sum2 -= value * x[from + 2];
                sum3 -= value * x[from + 3];
            }
            double diagonal = l[lo + (long)i * size + i];
            x[at] = sum0 / diagonal;
            x[at + 1] = sum1 / diagonal;
            x[at + 2] = sum2 / diagonal;
            x[at + 3] = sum3 / diagonal;
        }
    }

    /// <summary>One row of one factor's L̄, summed over the right-hand sides that share the factor, in order.</summary>
    [Kernel]
    public static void SolveFactorGradientKernel(Index1D index, ArrayView<double> x, ArrayView<double> dRhs, ArrayView<double> dL, int size, int columns,
        int transpose, int perFactor)
    {
        int factor = index / size, i = index - factor * size;
        long lo = (long)factor * size * size;
        for (int j = 0; j <= i; j++)
        {
            double sum = 0;
            for (int r = 0; r < perFactor; r++)
            {
                long xo = ((long)factor * perFactor + r) * size * columns;
                for (int c = 0; c < columns; c++)
                    sum += transpose != 0 ? x[xo + i * columns + c] * dRhs[xo + j * columns + c] : dRhs[xo + i * columns + c] * x[xo + j * columns + c];
            }
            dL[lo + i * size + j] -= sum;
        }
    }

    [Kernel]
    public static void LogDeterminantKernel(Index1D matrix, ArrayView<double> l, ArrayView<double> logDeterminant, int size)
    {
        long o = (long)(int)matrix * size * size;
        double sum = 0;
        for (int i = 0; i < size; i++)
            sum += Math.Log(l[o + i * size + i]);
        logDeterminant[matrix] = 2 * sum;
    }

    [Kernel]
    public static void LogDeterminantBackwardKernel(Index1D index, ArrayView<double> l, ArrayView<double> dLogDeterminant, ArrayView<double> dL, int size)
    {
        int matrix = index / size, i = index - matrix * size;
        long at = (long)matrix * size * size + i * size + i;
        dL[at] += 2 * dLogDeterminant[matrix] / l[at];
    }

    /// <summary>Φ(Lᵀ·tril(dL))_ij for one matrix at offset o: Σ_{k ≥ i} L_ki dL_kj below the diagonal, half of it on it,
    /// 0 above.</summary>
    private static double PhiOfProduct(ArrayView<double> l, ArrayView<double> dL, long o, int size, int i, int j)
    {
        double sum = 0;
        if (j <= i)
            for (int k = i; k < size; k++)
                sum += l[o + k * size + i] * dL[o + k * size + j];
        return i == j ? sum / 2 : sum;
    }

    /// <summary>work = Φ(Lᵀ·tril(dL)), one thread per element (<see cref="CholeskyBackward"/> spread out).</summary>
    [Kernel]
    public static void CholeskyBackwardProductKernel(Index1D index, ArrayView<double> l, ArrayView<double> dL, ArrayView<double> work, int size)
    {
        int j = index % size, row = index / size, i = row % size, matrix = row / size;
        work[index] = PhiOfProduct(l, dL, (long)matrix * size * size, size, i, j);
    }

    /// <summary>target = ½(source + sourceᵀ) per matrix, one thread per element.</summary>
    [Kernel]
    public static void SymmetricPartKernel(Index1D index, ArrayView<double> source, ArrayView<double> target, int size)
    {
        int j = index % size, row = index / size, i = row % size;
        long o = (long)(row / size) * size * size;
        target[index] = (source[o + i * size + j] + source[o + j * size + i]) / 2;
    }

    /// <summary>target = sourceᵀ per matrix, one thread per element.</summary>
    [Kernel]
    public static void TransposeKernel(Index1D index, ArrayView<double> source, ArrayView<double> target, int size)
    {
        int j = index % size, row = index / size, i = row % size;
        long o = (long)(row / size) * size * size;
        target[index] = source[o + j * size + i];
    }

    [Kernel]
    public static void CholeskyBackwardKernel(Index1D matrix, ArrayView<double> l, ArrayView<double> dL, ArrayView<double> dA, ArrayView<double> work, int size)
    {
        long o = (long)(int)matrix * size * size;
        // work = Φ(Lᵀ·tril(dL)): (Lᵀ dL)_ij = Σ_{k ≥ i} L_ki dL_kj for j ≤ i.
        for (int i = 0; i < size; i++)
            for (int j = 0; j < size; j++)
                work[o + i * size + j] = PhiOfProduct(l, dL, o, size, i, j);
        // dA = ½(P + Pᵀ), then Y = L⁻ᵀ dA in place, column by column.
        for (int i = 0; i < size; i++)
            for (int j = 0; j < size; j++)
                dA[o + i * size + j] = (work[o + i * size + j] + work[o + j * size + i]) / 2;
        for (int column = 0; column < size; column++)
            SolveColumn(l, dA, dA, o, o, size, size, column, 1);
        // S = Y L⁻¹, and Sᵀ = L⁻ᵀ Yᵀ: work = Yᵀ, solved in place; S is symmetric, so dA = Sᵀ.
        for (int i = 0; i < size; i++)
            for (int j = 0; j < size; j++)
                work[o + i * size + j] = dA[o + j * size + i];
        for (int column = 0; column < size; column++)
            SolveColumn(l, work, work, o, o, size, size, column, 1);
        for (int i = 0; i < size; i++)
            for (int j = 0; j < size; j++)
                dA[o + i * size + j] = work[o + j * size + i];
    }

    [Kernel]
    public static void RbfKernel(Index1D index, ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k, int n, int m, int dims)
    {
        int j = index % m, row = index / m, i = row % n, matrix = row / n;
        long h = (long)matrix * (dims + 1);
        double distance = 0;
        for (int d = 0; d < dims; d++)
        {
            double difference = (x[((long)matrix * n + i) * dims + d] - z[((long)matrix * m + j) * dims + d]) * Math.Exp(-hyper[h + d]);
            distance += difference * difference;
        }
        k[index] = Math.Exp(hyper[h + dims] - distance / 2);
    }

    /// <summary>Rows i and i + 1 of k (i even; the last alone when N is odd): the squared scaled distances summed over d
    /// in the rows themselves (in the order <see cref="RbfKernel"/> sums them, each lengthscale's exp taken once per
    /// pair), then exponentiated. Four dimensions at a time, added in a register before the rows are stored again: with
    /// MNIST's 784 inputs a row would otherwise be read and written once per dimension, and z read a column at a time;
    /// each z entry read serves both rows.</summary>
    [Kernel]
    public static void RbfRowKernel(Index1D index, ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k, int n, int m, int dims)
    {
        int pairs = (n + 1) / 2, matrix = index / pairs, i = 2 * (index - matrix * pairs);
        bool paired = i + 1 < n;
        long h = (long)matrix * (dims + 1), row = ((long)matrix * n + i) * m, rowNext = row + m;
        long xRow = ((long)matrix * n + i) * dims, xRowNext = paired ? xRow + dims : xRow, zFirst = (long)matrix * m * dims;
        for (int j = 0; j < m; j++)
        {
            k[row + j] = 0;
            if (paired)
                k[rowNext + j] = 0;
        }
        int d = 0;
        for (; d + 4 <= dims; d += 4)
        {
            double inverse0 = Math.Exp(-hyper[h + d]), inverse1 = Math.Exp(-hyper[h + d + 1]);
            double inverse2 = Math.Exp(-hyper[h + d + 2]), inverse3 = Math.Exp(-hyper[h + d + 3]);
            double x0 = x[xRow + d], x1 = x[xRow + d + 1], x2 = x[xRow + d + 2], x3 = x[xRow + d + 3];
            double xNext0 = x[xRowNext + d], xNext1 = x[xRowNext + d + 1], xNext2 = x[xRowNext + d + 2], xNext3 = x[xRowNext + d + 3];
            for (int j = 0; j < m; j++)
            {
                long zAt = zFirst + (long)j * dims + d;
                double z0 = z[zAt], z1 = z[zAt + 1], z2 = z[zAt + 2], z3 = z[zAt + 3];
                double difference0 = (x0 - z0) * inverse0, difference1 = (x1 - z1) * inverse1;
                double difference2 = (x2 - z2) * inverse2, difference3 = (x3 - z3) * inverse3;
                double sum = k[row + j];
                sum += difference0 * difference0;
                sum += difference1 * difference1;
                sum += difference2 * difference2;
                sum += difference3 * difference3;
                k[row + j] = sum;
                if (!paired)
                    continue;
                difference0 = (xNext0 - z0) * inverse0;
                difference1 = (xNext1 - z1) * inverse1;
                difference2 = (xNext2 - z2) * inverse2;
                difference3 = (xNext3 - z3) * inverse3;
                sum = k[rowNext + j];
                sum += difference0 * difference0;
                sum += difference1 * difference1;
                sum += difference2 * difference2;
                sum += difference3 * difference3;
                k[rowNext + j] = sum;
            }
        }
        for (; d < dims; d++)
        {
            double inverse = Math.Exp(-hyper[h + d]), xd = x[xRow + d], xNext = x[xRowNext + d];
            for (int j = 0; j < m; j++)
            {
                double zd = z[zFirst + (long)j * dims + d];
                double difference = (xd - zd) * inverse;
                k[row + j] += difference * difference;
                if (paired)
                {
                    difference = (xNext - zd) * inverse;
                    k[rowNext + j] += difference * difference;
                }
            }
        }
        for (int j = 0; j < m; j++)
        {
            k[row + j] = Math.Exp(hyper[h + dims] - k[row + j] / 2);
            if (paired)
                k[rowNext + j] = Math.Exp(hyper[h + dims] - k[rowNext + j] / 2);
        }
    }

    /// <summary>One row of z's gradient: Σ_i dK·k·(x − z)/ℓ², four dimensions at a time so each dK·k serves four sums
    /// and the row's own z values are read once (each sum still adds over x's rows in order, as
    /// <see cref="InputGradient"/>). x's gradient comes with the hyperparameters' (<see cref="RbfHyperGradientBlockKernel"/>).</summary>
    [Kernel]
    public static void RbfZGradientKernel(Index1D index, ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k,
        ArrayView<double> dK, ArrayView<double> dZ, int n, int m, int dims)
    {
        int matrix = index / m, j = index - matrix * m;
        long h = (long)matrix * (dims + 1), target = (long)(int)index * dims;
        int d = 0;
        for (; d + 4 <= dims; d += 4)
        {
            double z0 = z[target + d], z1 = z[target + d + 1], z2 = z[target + d + 2], z3 = z[target + d + 3];
            double sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0;
            for (int i = 0; i < n; i++)
            {
                long element = ((long)matrix * n + i) * m + j, xAt = ((long)matrix * n + i) * dims + d;
                double g = dK[element] * k[element];
                sum0 += g * (x[xAt] - z0);
                sum1 += g * (x[xAt + 1] - z1);
                sum2 += g * (x[xAt + 2] - z2);
                sum3 += g * (x[xAt + 3] - z3);
            }
            dZ[target + d] = sum0 * Math.Exp(-2 * hyper[h + d]);
            dZ[target + d + 1] = sum1 * Math.Exp(-2 * hyper[h + d + 1]);
            dZ[target + d + 2] = sum2 * Math.Exp(-2 * hyper[h + d + 2]);
            dZ[target + d + 3] = sum3 * Math.Exp(-2 * hyper[h + d + 3]);
        }
        for (; d < dims; d++)
            dZ[target + d] = InputGradient(x, z, hyper, k, dK, n, m, dims, 1, matrix, j, d);
    }

    /// <summary>One element (matrix, row, d) of x's (side 0) or z's (side 1) gradient, summed as
    /// <see cref="RbfZGradientKernel"/> and <see cref="RbfHyperGradientBlockKernel"/> sum it.</summary>
    [Kernel]
    public static void RbfInputGradientElementKernel(Index1D index, ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k,
        ArrayView<double> dK, ArrayView<double> dInput, int n, int m, int dims, int side)
    {
        int rows = side == 0 ? n : m, rowIndex = index / dims, d = index - rowIndex * dims;
        int matrix = rowIndex / rows, row = rowIndex - matrix * rows;
        dInput[index] = InputGradient(x, z, hyper, k, dK, n, m, dims, side, matrix, row, d);
    }

    /// <summary>∓Σ_other dK·k·(x_d − z_d)/ℓ_d² for one row of x (side 0) or of z (side 1), the other side's rows in order.</summary>
    private static double InputGradient(ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k, ArrayView<double> dK, int n,
        int m, int dims, int side, int matrix, int row, int d)
    {
        int others = side == 0 ? m : n;
        double sum = 0;
        for (int other = 0; other < others; other++)
        {
            int i = side == 0 ? row : other, j = side == 0 ? other : row;
            long element = ((long)matrix * n + i) * m + j;
            sum += dK[element] * k[element] * (x[((long)matrix * n + i) * dims + d] - z[((long)matrix * m + j) * dims + d]);
        }
        return (side == 0 ? -sum : sum) * Math.Exp(-2 * hyper[(long)matrix * (dims + 1) + d]);
    }

    [Kernel]
    public static void RbfHyperGradientKernel(Index1D index, ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k,
        ArrayView<double> dK, ArrayView<double> dHyper, int n, int m, int dims)
    {
        int matrix = index / (dims + 1), d = index - matrix * (dims + 1);
        dHyper[index] = HyperGradient(x, z, hyper, k, dK, n, m, dims, matrix, d);
    }

    /// <summary>Four of one matrix's hyperparameter gradients and the same four columns of dX, each summed in
    /// <see cref="RbfHyperGradientKernel"/>'s and <see cref="RbfInputGradientElementKernel"/>'s order: the lengthscales'
    /// sums run over (i, j) row by row, and row i's pass over j is also x_i's gradient, so each dK·k·(x − z) serves both
    /// (at MNIST's 784 inputs a separate pass for dX read k, dK, x and z again, a third of the RBF reverse mode). A block
    /// that reaches σ² (the last slot) goes slot by slot, the dX columns it holds column by column.</summary>
    [Kernel]
    public static void RbfHyperGradientBlockKernel(Index1D index, ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k,
        ArrayView<double> dK, ArrayView<double> dX, ArrayView<double> dHyper, int n, int m, int dims)
    {
        int blocks = (dims + 4) / 4, matrix = index / blocks, first = 4 * (index - matrix * blocks);
        long h = (long)matrix * (dims + 1);
        if (first + 4 > dims)
        {
            for (int d = first; d <= dims && d < first + 4; d++)
            {
                dHyper[h + d] = HyperGradient(x, z, hyper, k, dK, n, m, dims, matrix, d);
                if (d == dims)
                    continue; // σ²'s slot has no dX column
                for (int i = 0; i < n; i++)
                    dX[((long)matrix * n + i) * dims + d] = InputGradient(x, z, hyper, k, dK, n, m, dims, 0, matrix, i, d);
            }
            return;
        }
        double inverse0 = Math.Exp(-2 * hyper[h + first]), inverse1 = Math.Exp(-2 * hyper[h + first + 1]);
        double inverse2 = Math.Exp(-2 * hyper[h + first + 2]), inverse3 = Math.Exp(-2 * hyper[h + first + 3]);
        double sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0;
        for (int i = 0; i < n; i++)
        {
            long xAt = ((long)matrix * n + i) * dims + first;
            double x0 = x[xAt], x1 = x[xAt + 1], x2 = x[xAt + 2], x3 = x[xAt + 3];
            double gradient0 = 0, gradient1 = 0, gradient2 = 0, gradient3 = 0;
            for (int j = 0; j < m; j++)
            {
                long element = ((long)matrix * n + i) * m + j, zAt = ((long)matrix * m + j) * dims + first;
                double g = dK[element] * k[element];
                double difference0 = x0 - z[zAt], difference1 = x1 - z[zAt + 1], difference2 = x2 - z[zAt + 2], difference3 = x3 - z[zAt + 3];
                double term0 = g * difference0, term1 = g * difference1, term2 = g * difference2, term3 = g * difference3;
                gradient0 += term0;
                gradient1 += term1;
                gradient2 += term2;
                gradient3 += term3;
                sum0 += term0 * difference0 * inverse0;
                sum1 += term1 * difference1 * inverse1;
                sum2 += term2 * difference2 * inverse2;
                sum3 += term3 * difference3 * inverse3;
            }
            dX[xAt] = -gradient0 * inverse0;
            dX[xAt + 1] = -gradient1 * inverse1;
            dX[xAt + 2] = -gradient2 * inverse2;
            dX[xAt + 3] = -gradient3 * inverse3;
        }
        dHyper[h + first] = sum0;
        dHyper[h + first + 1] = sum1;
        dHyper[h + first + 2] = sum2;
        dHyper[h + first + 3] = sum3;
    }

    /// <summary>One hyperparameter's gradient: Σ_ij dK·k·(x_d − z_d)²/ℓ_d² for a lengthscale (d &lt; D), Σ_ij dK·k for σ²
    /// (d = D).</summary>
    private static double HyperGradient(ArrayView<double> x, ArrayView<double> z, ArrayView<double> hyper, ArrayView<double> k, ArrayView<double> dK, int n,
        int m, int dims, int matrix, int d)
    {
        double inverseSquare = d < dims ? Math.Exp(-2 * hyper[(long)matrix * (dims + 1) + d]) : 0, sum = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                long element = ((long)matrix * n + i) * m + j;
                double g = dK[element] * k[element];
                if (d == dims)
                    sum += g;
                else
                {
                    double difference = x[((long)matrix * n + i) * dims + d] - z[((long)matrix * m + j) * dims + d];
                    sum += g * difference * difference * inverseSquare;
                }
            }
        return sum;
    }
}
