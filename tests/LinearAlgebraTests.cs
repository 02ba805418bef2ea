using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// The deep GP's linear algebra (issue 25) in double: the references' factorisation, solves, log-determinant and RBF
/// kernel checked against their definitions, and every reverse mode against central differences, at M = 1, 7, 33.
/// </summary>
public sealed class LinearAlgebraReferenceTests
{
    public static TheoryData<int, int> Sizes => new() { { 1, 1 }, { 2, 7 }, { 3, 33 } };

    /// <summary>Random symmetric positive-definite matrices: G Gᵀ/M + I/2 per matrix, G uniform in (−1, 1).</summary>
    internal static double[] Spd(Random random, int batch, int size) =>
        LinearAlgebraReference.SymmetricPositiveDefinite(Random(random, batch * size * size), batch, size);

    private static double[] Random(Random random, int count) => Enumerable.Range(0, count).Select(_ => random.NextDouble() * 2 - 1).ToArray();

    private static double Dot(double[] a, double[] b) => a.Zip(b, (x, y) => x * y).Sum();

    /// <summary>L Lᵀ = A + jitter·I to 1e-12 relative, L lower with a positive diagonal; L X = B and Lᵀ X = B to 1e-10.</summary>
    [Theory]
    [MemberData(nameof(Sizes))]
    public void FactorAndSolvesMeetTheirDefinitions(int batch, int size)
    {
        var random = new Random(size);
        var a = Spd(random, batch, size);
        const double jitter = 1e-3;
        var (l, failures) = LinearAlgebraReference.Cholesky(a, batch, size, jitter);
        Assert.All(failures, failure => Assert.Equal(-1, failure));
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < size; i++)
                for (int j = 0; j < size; j++)
                {
                    int o = b * size * size;
                    if (j > i)
                        Assert.Equal(0, l[o + i * size + j]);
                    double product = Enumerable.Range(0, size).Sum(k => l[o + i * size + k] * l[o + j * size + k]);
                    Assert.Equal(a[o + i * size + j] + (i == j ? jitter : 0), product, 1e-12);
                }
        var rhs = Random(random, batch * size * 3);
        foreach (bool transpose in new[] { false, true })
        {
            var x = LinearAlgebraReference.Solve(l, rhs, batch, size, 3, transpose);
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < size; i++)
                    for (int c = 0; c < 3; c++)
                    {
                        int lo = b * size * size, xo = b * size * 3;
                        double product = Enumerable.Range(0, size).Sum(k => (transpose ? l[lo + k * size + i] : l[lo + i * size + k]) * x[xo + k * 3 + c]);
                        Assert.Equal(rhs[xo + i * 3 + c], product, 1e-10);
                    }
        }
    }

    /// <summary>An indefinite matrix fails at the first non-positive pivot: diag(1, −1, 1) at row 1.</summary>
    [Fact]
    public void AnIndefiniteMatrixNamesItsPivot()
    {
        var (_, failures) = LinearAlgebraReference.Cholesky([1, 0, 0, 0, -1, 0, 0, 0, 1], 1, 3, 1e-6);
        Assert.Equal([1], failures);
    }

    /// <summary>
    /// The factorisation's reverse mode against central differences of f(A) = Σ W ∘ chol(A) over symmetric
    /// changes (A_ij and A_ji moved together, so the expected derivative is 2Ā_ij off the diagonal): 1e-6 relative
    /// plus 1e-7 absolute, what central differences with step 1e-6 give on values of order 1.
    /// </summary>
    [Theory]
    [MemberData(nameof(Sizes))]
    public void CholeskyBackwardMatchesFiniteDifferences(int batch, int size)
    {
        var random = new Random(100 + size);
        var a = Spd(random, batch, size);
        var weights = Random(random, a.Length);
        var (l, _) = LinearAlgebraReference.Cholesky(a, batch, size, 0);
        var dA = LinearAlgebraReference.CholeskyBackward(l, weights.Select((w, at) => at % size <= at / size % size ? w : 0).ToArray(), batch, size);
        // Parameters: the lower triangle of every matrix, each written to both halves.
        var lower = Enumerable.Range(0, a.Length).Where(at => at % size <= at / size % size).ToArray();
        double F(double[] values)
        {
            var matrix = (double[])a.Clone();
            for (int p = 0; p < lower.Length; p++)
            {
                int at = lower[p], o = at / (size * size) * size * size, i = at / size % size, j = at % size;
                matrix[o + i * size + j] = values[p];
                matrix[o + j * size + i] = values[p];
            }
            return Dot(weights, LinearAlgebraReference.Cholesky(matrix, batch, size, 0).L);
        }
        var numeric = Numerics.FiniteDifferenceGradient(F, lower.Select(at => a[at]).ToArray());
        var analytic = lower.Select(at => (at % size == at / size % size ? 1 : 2) * dA[at]).ToArray();
        Numerics.AssertClose($"Cholesky backward B={batch} M={size}", numeric, analytic, 1e-6, 1e-7);
        // Ā is symmetric.
        for (int at = 0; at < a.Length; at++)
        {
            int o = at / (size * size) * size * size, i = at / size % size, j = at % size;
            Assert.Equal(dA[o + i * size + j], dA[o + j * size + i], 1e-12);
        }
    }

    /// <summary>Both solves' and the log-determinant's reverse modes against central differences in B and in L's
    /// lower triangle (1e-6 relative plus 1e-7).</summary>
    [Theory]
    [MemberData(nameof(Sizes))]
    public void SolveAndLogDeterminantBackwardsMatchFiniteDifferences(int batch, int size)
    {
        var random = new Random(200 + size);
        var (l, _) = LinearAlgebraReference.Cholesky(Spd(random, batch, size), batch, size, 0);
        var lower = Enumerable.Range(0, l.Length).Where(at => at % size <= at / size % size).ToArray();
        double[] WithLower(double[] values)
        {
            var matrix = (double[])l.Clone();
            for (int p = 0; p < lower.Length; p++)
                matrix[lower[p]] = values[p];
            return matrix;
        }
        const int columns = 2;
        var rhs = Random(random, batch * size * columns);
        var weights = Random(random, rhs.Length);
        foreach (bool transpose in new[] { false, true })
        {
            var x = LinearAlgebraReference.Solve(l, rhs, batch, size, columns, transpose);
            var (dRhs, dL) = LinearAlgebraReference.SolveBackward(l, x, weights, batch, size, columns, transpose);
            var numericRhs = Numerics.FiniteDifferenceGradient(values => Dot(weights, LinearAlgebraReference.Solve(l, values, batch, size, columns, transpose)), rhs);
            Numerics.AssertClose($"solve backward in B, transpose {transpose}", numericRhs, dRhs, 1e-6, 1e-7);
            var numericL = Numerics.FiniteDifferenceGradient(values => Dot(weights, LinearAlgebraReference.Solve(WithLower(values), rhs, batch, size, columns, transpose)),
                lower.Select(at => l[at]).ToArray());
            Numerics.AssertClose($"solve backward in L, transpose {transpose}", numericL, lower.Select(at => dL[at]).ToArray(), 1e-6, 1e-7);
        }
        var logWeights = Random(random, batch);
        var dLogDet = LinearAlgebraReference.LogDeterminantBackward(l, logWeights, batch, size);
        var numericLogDet = Numerics.FiniteDifferenceGradient(values => Dot(logWeights, LinearAlgebraReference.LogDeterminant(WithLower(values), batch, size)),
            lower.Select(at => l[at]).ToArray());
        Numerics.AssertClose("log-determinant backward", numericLogDet, lower.Select(at => dLogDet[at]).ToArray(), 1e-6, 1e-7);
        // And the log-determinant itself against the product of the pivots.
        for (int b = 0; b < batch; b++)
            Assert.Equal(2 * Math.Log(Enumerable.Range(0, size).Aggregate(1.0, (product, i) => product * l[b * size * size + i * size + i])),
                LinearAlgebraReference.LogDeterminant(l, batch, size)[b], 1e-9);
    }

    /// <summary>The RBF/ARD kernel's reverse mode against central differences in X, Z and the hyperparameters.</summary>
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 7, 5, 3)]
    [InlineData(1, 33, 7, 2)]
    public void RbfBackwardMatchesFiniteDifferences(int batch, int n, int m, int dims)
    {
        var random = new Random(n * 31 + m);
        var x = Random(random, batch * n * dims);
        var z = Random(random, batch * m * dims);
        var hyper = Random(random, batch * (dims + 1)).Select(value => value * 0.5).ToArray();
        var weights = Random(random, batch * n * m);
        var k = LinearAlgebraReference.Rbf(x, z, hyper, batch, n, m, dims);
        Assert.All(k, value => Assert.InRange(value, 0, Math.Exp(hyper.Max()) + 1e-12));
        var (dX, dZ, dHyper) = LinearAlgebraReference.RbfBackward(x, z, hyper, weights, batch, n, m, dims);
        Numerics.AssertClose("RBF backward in X", Numerics.FiniteDifferenceGradient(v => Dot(weights, LinearAlgebraReference.Rbf(v, z, hyper, batch, n, m, dims)), x),
            dX, 1e-6, 1e-7);
        Numerics.AssertClose("RBF backward in Z", Numerics.FiniteDifferenceGradient(v => Dot(weights, LinearAlgebraReference.Rbf(x, v, hyper, batch, n, m, dims)), z),
            dZ, 1e-6, 1e-7);
        Numerics.AssertClose("RBF backward in the hyperparameters",
            Numerics.FiniteDifferenceGradient(v => Dot(weights, LinearAlgebraReference.Rbf(x, z, v, batch, n, m, dims)), hyper), dHyper, 1e-6, 1e-7);
    }
}

/// <summary>
/// The device kernels against <see cref="LinearAlgebraReference"/> at M = 1, 7, 33 with 1 to 3 matrices. Both are
/// double and follow the same operations, so agreement is held to 1e-10 of each output's largest magnitude (the
/// RBF kernel writes (x − z)·e^{−log ℓ} where the reference divides by e^{log ℓ}: the same to a few ulps).
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class LinearAlgebraKernelTests(AcceleratorFixture fixture)
{
    public static TheoryData<int, int> Sizes => LinearAlgebraReferenceTests.Sizes;

    [Theory]
    [MemberData(nameof(Sizes))]
    public void KernelsMatchTheirReferences(int batch, int size)
    {
        var random = new Random(300 + size);
        var a = LinearAlgebraReferenceTests.Spd(random, batch, size);
        const double jitter = 1e-4;
        const int columns = 3;
        var rhs = Enumerable.Range(0, batch * size * columns).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var dX = Enumerable.Range(0, rhs.Length).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var dLogDet = Enumerable.Range(0, batch).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var (l, failures) = LinearAlgebraReference.Cholesky(a, batch, size, jitter);
        var dLIn = Enumerable.Range(0, a.Length).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = $"{accelerator.AcceleratorType} B={batch} M={size}";
            using var aBuffer = accelerator.Upload(a);
            using var lBuffer = accelerator.Allocate1D<double>(a.Length);
            using var failureBuffer = accelerator.Allocate1D<int>(batch);
            kernels.Cholesky(aBuffer.View, lBuffer.View, failureBuffer.View, batch, size, jitter);
            Numerics.AssertCloseToLargest(label + " Cholesky", l, lBuffer.GetAsArray1D(), 1e-10);
            Assert.Equal(failures, failureBuffer.GetAsArray1D());
            using var rhsBuffer = accelerator.Upload(rhs);
            using var xBuffer = accelerator.Allocate1D<double>(rhs.Length);
            using var dXBuffer = accelerator.Upload(dX);
            using var dRhsBuffer = accelerator.Allocate1D<double>(rhs.Length);
            foreach (bool transpose in new[] { false, true })
            {
                var x = LinearAlgebraReference.Solve(l, rhs, batch, size, columns, transpose);
                kernels.TriangularSolve(lBuffer.View, rhsBuffer.View, xBuffer.View, batch, size, columns, transpose);
                Numerics.AssertCloseToLargest($"{label} solve, transpose {transpose}", x, xBuffer.GetAsArray1D(), 1e-10);
                var (dRhs, dL) = LinearAlgebraReference.SolveBackward(l, x, dX, batch, size, columns, transpose);
                // The kernel adds into dL: start from dLIn.
                using var dLBuffer = accelerator.Upload(dLIn);
                kernels.TriangularSolveBackward(lBuffer.View, xBuffer.View, dXBuffer.View, dRhsBuffer.View, dLBuffer.View, batch, size, columns, transpose);
                Numerics.AssertCloseToLargest($"{label} solve backward dB, transpose {transpose}", dRhs, dRhsBuffer.GetAsArray1D(), 1e-10);
                Numerics.AssertCloseToLargest($"{label} solve backward dL, transpose {transpose}", dL.Select((value, at) => value + dLIn[at]).ToArray(), dLBuffer.GetAsArray1D(), 1e-10);
            }
            using var logDetBuffer = accelerator.Allocate1D<double>(batch);
            kernels.LogDeterminant(lBuffer.View, logDetBuffer.View, batch, size);
            Numerics.AssertCloseToLargest(label + " log-determinant", LinearAlgebraReference.LogDeterminant(l, batch, size), logDetBuffer.GetAsArray1D(), 1e-10);
            using var dLogDetBuffer = accelerator.Upload(dLogDet);
            using var dLDetBuffer = accelerator.Upload(dLIn);
            kernels.LogDeterminantBackward(lBuffer.View, dLogDetBuffer.View, dLDetBuffer.View, batch, size);
            Numerics.AssertCloseToLargest(label + " log-determinant backward", LinearAlgebraReference.LogDeterminantBackward(l, dLogDet, batch, size).Select((value, at) => value + dLIn[at]).ToArray(),
                dLDetBuffer.GetAsArray1D(), 1e-10);
            using var dLInBuffer = accelerator.Upload(dLIn);
            using var dABuffer = accelerator.Allocate1D<double>(a.Length);
            using var work = accelerator.Allocate1D<double>(a.Length);
            kernels.CholeskyBackward(lBuffer.View, dLInBuffer.View, dABuffer.View, work.View, batch, size);
            Numerics.AssertCloseToLargest(label + " Cholesky backward", LinearAlgebraReference.CholeskyBackward(l, dLIn.Select((value, at) => at % size <= at / size % size ? value : 0).ToArray(), batch, size),
                dABuffer.GetAsArray1D(), 1e-10);
        }
    }

    /// <summary>
    /// Right-hand sides sharing factors (a layer's K_ZZ shared by its outputs): 2 factors of 7 and 3 right-hand sides of
    /// 2 columns each, against the reference solving each with its factor, L̄ summed over the three.
    /// </summary>
    [Fact]
    public void SolvesWithASharedFactorMatchTheReference()
    {
        const int factors = 2, perFactor = 3, size = 7, columns = 2;
        var random = new Random(77);
        var (l, _) = LinearAlgebraReference.Cholesky(LinearAlgebraReferenceTests.Spd(random, factors, size), factors, size, 0);
        var rhs = Enumerable.Range(0, factors * perFactor * size * columns).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var dX = Enumerable.Range(0, rhs.Length).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        int block = size * columns;
        foreach (bool transpose in new[] { false, true })
        {
            var x = new double[rhs.Length];
            var dRhs = new double[rhs.Length];
            var dL = new double[l.Length];
            for (int r = 0; r < factors * perFactor; r++)
            {
                var factor = l[(r / perFactor * size * size)..((r / perFactor + 1) * size * size)];
                var solved = LinearAlgebraReference.Solve(factor, rhs[(r * block)..((r + 1) * block)], 1, size, columns, transpose);
                solved.CopyTo(x, r * block);
                var (dB, dFactor) = LinearAlgebraReference.SolveBackward(factor, solved, dX[(r * block)..((r + 1) * block)], 1, size, columns, transpose);
                dB.CopyTo(dRhs, r * block);
                for (int at = 0; at < dFactor.Length; at++)
                    dL[r / perFactor * size * size + at] += dFactor[at];
            }
            foreach (var kernels in fixture.KernelSets)
            {
                var accelerator = kernels.Accelerator;
                string label = $"{accelerator.AcceleratorType} shared factor, transpose {transpose}";
                using var lBuffer = accelerator.Upload(l);
                using var rhsBuffer = accelerator.Upload(rhs);
                using var xBuffer = accelerator.Allocate1D<double>(rhs.Length);
                using var dXBuffer = accelerator.Upload(dX);
                using var dRhsBuffer = accelerator.Allocate1D<double>(rhs.Length);
                using var dLBuffer = accelerator.Allocate1D<double>(l.Length);
                dLBuffer.MemSetToZero();
                kernels.TriangularSolve(lBuffer.View, rhsBuffer.View, xBuffer.View, factors * perFactor, size, columns, transpose, perFactor);
                Numerics.AssertCloseToLargest(label + " x", x, xBuffer.GetAsArray1D(), 1e-10);
                kernels.TriangularSolveBackward(lBuffer.View, xBuffer.View, dXBuffer.View, dRhsBuffer.View, dLBuffer.View, factors * perFactor, size, columns, transpose,
                    perFactor);
                Numerics.AssertCloseToLargest(label + " dB", dRhs, dRhsBuffer.GetAsArray1D(), 1e-10);
                Numerics.AssertCloseToLargest(label + " dL", dL, dLBuffer.GetAsArray1D(), 1e-10);
            }
        }
    }

    /// <summary>
    /// Both shapes of the solve (a thread per column, the GPU's; four columns per thread, the CPU's) give the same numbers
    /// bit for bit, out of place and in place, with and without a shared factor; 9 columns make two full blocks of four
    /// and a last column alone. Each also matches the reference to 1e-10 of the largest value (double, a 33-step
    /// substitution on a well-conditioned factor).
    /// </summary>
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    public void BothSolveShapesAgreeBitForBit(bool transpose, int perFactor)
    {
        const int rightHandSides = 2, size = 33, columns = 9;
        var random = new Random(91 + perFactor);
        int factors = rightHandSides / perFactor;
        var (l, _) = LinearAlgebraReference.Cholesky(LinearAlgebraReferenceTests.Spd(random, factors, size), factors, size, 0);
        var rhs = Enumerable.Range(0, rightHandSides * size * columns).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var expected = new double[rhs.Length];
        for (int r = 0; r < rightHandSides; r++)
            LinearAlgebraReference.Solve(l[(r / perFactor * size * size)..((r / perFactor + 1) * size * size)], rhs[(r * size * columns)..((r + 1) * size * columns)], 1,
                size, columns, transpose).CopyTo(expected, r * size * columns);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var lBuffer = accelerator.Upload(l);
            using var rhsBuffer = accelerator.Upload(rhs);
            using var xBuffer = accelerator.Allocate1D<double>(rhs.Length);
            var results = KernelShapes.RunBoth(kernels, () =>
            {
                kernels.TriangularSolve(lBuffer.View, rhsBuffer.View, xBuffer.View, rightHandSides, size, columns, transpose, perFactor);
                using var inPlace = accelerator.Upload(rhs);
                kernels.TriangularSolve(lBuffer.View, inPlace.View, inPlace.View, rightHandSides, size, columns, transpose, perFactor);
                return [.. xBuffer.GetAsArray1D(), .. inPlace.GetAsArray1D()];
            });
            Assert.Equal(results[0], results[1]);
            // Out of place and in place alike.
            Assert.Equal(results[0][..rhs.Length], results[0][rhs.Length..]);
            Numerics.AssertCloseToLargest($"{accelerator.AcceleratorType} solve, transpose {transpose}, {perFactor} per factor", expected, results[0][..rhs.Length], 1e-10);
        }
    }

    /// <summary>
    /// Both shapes of the factorisation (one thread per matrix, the CPU's; a group per matrix working column by column,
    /// the GPU's) agree bit for bit — the factors and the failure rows — for three matrices of 33, the middle one
    /// made indefinite at row 20 (its rows from 20 on left 0 by both), and match the reference to 1e-10.
    /// </summary>
    [Fact]
    public void BothCholeskyShapesAgreeBitForBit()
    {
        const int batch = 3, size = 33;
        var a = LinearAlgebraReferenceTests.Spd(new Random(58), batch, size);
        a[size * size + 20 * size + 20] = -50;
        var (expected, expectedFailures) = LinearAlgebraReference.Cholesky(a, batch, size, 1e-6);
        Assert.Equal([-1, 20, -1], expectedFailures);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var aBuffer = accelerator.Upload(a);
            using var lBuffer = accelerator.Allocate1D<double>(a.Length);
            using var failures = accelerator.Allocate1D<int>(batch);
            var results = KernelShapes.RunBoth(kernels, () =>
            {
                lBuffer.MemSetToZero();
                kernels.Cholesky(aBuffer.View, lBuffer.View, failures.View, batch, size, 1e-6);
                return [.. lBuffer.GetAsArray1D(), .. failures.GetAsArray1D().Select(row => (double)row)];
            });
            Assert.Equal(results[0], results[1]);
            Assert.Equal(expectedFailures.Select(row => (double)row), results[0][a.Length..]);
            Numerics.AssertCloseToLargest($"{accelerator.AcceleratorType} Cholesky", expected, results[0][..a.Length], 1e-10);
        }
    }

    /// <summary>
    /// Both shapes of the factorisation's reverse mode (one thread per matrix, the CPU's; a launch per step spread over
    /// elements and columns, the GPU's) agree bit for bit, and match the reference to 1e-10 of the largest value (as
    /// <see cref="KernelsMatchTheirReferences"/>), for two matrices of 33.
    /// </summary>
    [Fact]
    public void BothCholeskyBackwardShapesAgreeBitForBit()
    {
        const int batch = 2, size = 33;
        var random = new Random(57);
        var (l, _) = LinearAlgebraReference.Cholesky(LinearAlgebraReferenceTests.Spd(random, batch, size), batch, size, 0);
        var dL = Enumerable.Range(0, l.Length).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var expected = LinearAlgebraReference.CholeskyBackward(l, dL.Select((value, at) => at % size <= at / size % size ? value : 0).ToArray(), batch, size);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var lBuffer = accelerator.Upload(l);
            using var dLBuffer = accelerator.Upload(dL);
            using var dABuffer = accelerator.Allocate1D<double>(l.Length);
            using var work = accelerator.Allocate1D<double>(l.Length);
            var results = KernelShapes.RunBoth(kernels, () =>
            {
                kernels.CholeskyBackward(lBuffer.View, dLBuffer.View, dABuffer.View, work.View, batch, size);
                return dABuffer.GetAsArray1D();
            });
            Assert.Equal(results[0], results[1]);
            Numerics.AssertCloseToLargest($"{accelerator.AcceleratorType} Cholesky backward", expected, results[0], 1e-10);
        }
    }

    /// <summary>An indefinite matrix in a batch: its failure row is reported and the other matrix is still factored.</summary>
    [Fact]
    public void AFailedFactorisationIsReportedPerMatrix()
    {
        double[] a = [4, 2, 2, 3, 1, 0, 0, -2];
        foreach (var kernels in fixture.KernelSets)
        {
            using var aBuffer = kernels.Accelerator.Upload(a);
            using var l = kernels.Accelerator.Allocate1D<double>(8);
            using var failures = kernels.Accelerator.Allocate1D<int>(2);
            kernels.Cholesky(aBuffer.View, l.View, failures.View, 2, 2, 0);
            Assert.Equal([-1, 1], failures.GetAsArray1D());
            Numerics.AssertCloseToLargest("the good matrix", [2, 0, 1, Math.Sqrt(2)], l.GetAsArray1D()[..4], 1e-10);
        }
    }

    /// <summary>The RBF matrix and its reverse mode against the reference (1e-10 of the largest value), both kernel shapes
    /// bit for bit; 4 and 9 dimensions reach the CPU shape's blocks of four hyperparameters, which also give dX (a full
    /// block, and one that ends at σ²), and 17 its RBF rows' four-dimension steps with one left over; the CPU's RBF
    /// takes rows in pairs, an odd N leaving one (N = 6 none). Then the reverse mode without z's gradient.</summary>
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 7, 5, 3)]
    [InlineData(3, 33, 7, 2)]
    [InlineData(1, 5, 3, 4)]
    [InlineData(2, 7, 5, 9)]
    [InlineData(1, 7, 33, 17)]
    [InlineData(2, 6, 5, 5)]
    public void RbfKernelsMatchTheirReferences(int batch, int n, int m, int dims)
    {
        var random = new Random(n + m * 7 + dims);
        double[] Values(int count, double scale) => Enumerable.Range(0, count).Select(_ => (random.NextDouble() * 2 - 1) * scale).ToArray();
        var (x, z, hyper, dK) = (Values(batch * n * dims, 2), Values(batch * m * dims, 2), Values(batch * (dims + 1), 0.7), Values(batch * n * m, 1));
        var k = LinearAlgebraReference.Rbf(x, z, hyper, batch, n, m, dims);
        var (dX, dZ, dHyper) = LinearAlgebraReference.RbfBackward(x, z, hyper, dK, batch, n, m, dims);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = $"{accelerator.AcceleratorType} RBF B={batch} N={n} M={m} D={dims}";
            using var xBuffer = accelerator.Upload(x);
            using var zBuffer = accelerator.Upload(z);
            using var hyperBuffer = accelerator.Upload(hyper);
            using var kBuffer = accelerator.Allocate1D<double>(k.Length);
            using var dKBuffer = accelerator.Upload(dK);
            using var dXBuffer = accelerator.Allocate1D<double>(x.Length);
            using var dZBuffer = accelerator.Allocate1D<double>(z.Length);
            using var dHyperBuffer = accelerator.Allocate1D<double>(hyper.Length);
            // Both shapes of the kernel (per element, the GPU's; per row, the CPU's) give the same numbers bit for bit.
            bool original = kernels.GpRowKernels;
            var shapes = new List<double[]>();
            foreach (bool rows in new[] { true, false })
            {
                kernels.GpRowKernels = rows;
                // Every element of the gradients must be written by each shape (the CPU's fills dX with the hyperparameters').
                dXBuffer.CopyFromCPU(Enumerable.Repeat(double.NaN, x.Length).ToArray());
                dZBuffer.CopyFromCPU(Enumerable.Repeat(double.NaN, z.Length).ToArray());
                kernels.Rbf(xBuffer.View, zBuffer.View, hyperBuffer.View, kBuffer.View, batch, n, m, dims);
                kernels.RbfBackward(xBuffer.View, zBuffer.View, hyperBuffer.View, kBuffer.View, dKBuffer.View, dXBuffer.View, dZBuffer.View, dHyperBuffer.View, batch, n, m,
                    dims);
                shapes.Add([.. kBuffer.GetAsArray1D(), .. dXBuffer.GetAsArray1D(), .. dZBuffer.GetAsArray1D(), .. dHyperBuffer.GetAsArray1D()]);
            }
            kernels.GpRowKernels = original;
            Assert.Equal(shapes[0], shapes[1]);
            Numerics.AssertCloseToLargest(label + " k", k, kBuffer.GetAsArray1D(), 1e-10);
            kernels.RbfBackward(xBuffer.View, zBuffer.View, hyperBuffer.View, kBuffer.View, dKBuffer.View, dXBuffer.View, dZBuffer.View, dHyperBuffer.View, batch, n, m, dims);
            Numerics.AssertCloseToLargest(label + " dX", dX, dXBuffer.GetAsArray1D(), 1e-10);
            Numerics.AssertCloseToLargest(label + " dZ", dZ, dZBuffer.GetAsArray1D(), 1e-10);
            Numerics.AssertCloseToLargest(label + " dHyper", dHyper, dHyperBuffer.GetAsArray1D(), 1e-10);

            // Without z's gradient (a deep GP's data side): dZ keeps what it held, dX and dHyper are the same bit for bit.
            var (withX, withHyper) = (dXBuffer.GetAsArray1D(), dHyperBuffer.GetAsArray1D());
            var held = Enumerable.Repeat(double.NaN, z.Length).ToArray();
            foreach (bool rows in new[] { true, false })
            {
                kernels.GpRowKernels = rows;
                dZBuffer.CopyFromCPU(held);
                dXBuffer.MemSetToZero();
                dHyperBuffer.MemSetToZero();
                kernels.RbfBackward(xBuffer.View, zBuffer.View, hyperBuffer.View, kBuffer.View, dKBuffer.View, dXBuffer.View, dZBuffer.View, dHyperBuffer.View, batch, n, m,
                    dims, zGradient: false);
                Assert.All(dZBuffer.GetAsArray1D(), value => Assert.True(double.IsNaN(value), label + ": dZ written without zGradient"));
                Assert.Equal(withX, dXBuffer.GetAsArray1D());
                Assert.Equal(withHyper, dHyperBuffer.GetAsArray1D());
            }
            kernels.GpRowKernels = original;
        }
    }
}
