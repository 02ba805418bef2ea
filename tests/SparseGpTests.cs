using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// A sparse GP layer's marginals over several output dimensions (issue 25): the reference's reverse mode against
/// central differences, and the device kernels against the reference at M = 1, 7, 33.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class SparseGpTests(AcceleratorFixture fixture)
{
    /// <summary>(points N, inducing M, outputs O); the CPU's projection and both its reverse modes take rows in fours:
    /// M = 8, 33, 10 and 7 leave 0, 1, 2 and 3 rows over, and N = 9, 33 and 6 leave columns over for the four-column
    /// tiles.</summary>
    public static TheoryData<int, int, int> Shapes => new() { { 1, 1, 1 }, { 5, 7, 3 }, { 9, 8, 2 }, { 6, 10, 2 }, { 33, 33, 2 } };

    private static (double[] A, double[] KZX, double[] M, double[] LS, double[] DMean, double[] DVariance) Values(int n, int inducing, int outputs)
    {
        var random = new Random(n * 100 + inducing * 10 + outputs);
        double[] Draw(int count) => Enumerable.Range(0, count).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var lS = Draw(outputs * inducing * inducing).Select((value, at) => at % inducing <= at / inducing % inducing ? value : 0).ToArray();
        return (Draw(inducing * n), Draw(inducing * n), Draw(outputs * inducing), lS, Draw(n * outputs), Draw(n * outputs));
    }

    /// <summary>Central differences of Σ μ̄∘μ + σ̄²∘σ² in A, K_ZX, m and L_S's lower triangle: 1e-6 relative plus 1e-7.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void MarginalsBackwardMatchesFiniteDifferences(int n, int inducing, int outputs)
    {
        var (a, kZX, m, lS, dMean, dVariance) = Values(n, inducing, outputs);
        double F(double[] aa, double[] kk, double[] mm, double[] ll)
        {
            var (mean, variance) = GaussianProcessReference.MarginalsFromProjection(aa, kk, mm, ll, 1.3, n, inducing, outputs);
            return mean.Zip(dMean, (x, y) => x * y).Sum() + variance.Zip(dVariance, (x, y) => x * y).Sum();
        }
        var (dA, dKZX, dM, dLS) = GaussianProcessReference.MarginalsBackward(a, kZX, m, lS, dMean, dVariance, n, inducing, outputs);
        Numerics.AssertClose("dA", Numerics.FiniteDifferenceGradient(v => F(v, kZX, m, lS), a), dA, 1e-6, 1e-7);
        Numerics.AssertClose("dK_ZX", Numerics.FiniteDifferenceGradient(v => F(a, v, m, lS), kZX), dKZX, 1e-6, 1e-7);
        Numerics.AssertClose("dm", Numerics.FiniteDifferenceGradient(v => F(a, kZX, v, lS), m), dM, 1e-6, 1e-7);
        var lower = Enumerable.Range(0, lS.Length).Where(at => at % inducing <= at / inducing % inducing).ToArray();
        double[] WithLower(double[] values)
        {
            var factor = new double[lS.Length];
            for (int p = 0; p < lower.Length; p++)
                factor[lower[p]] = values[p];
            return factor;
        }
        Numerics.AssertClose("dL_S", Numerics.FiniteDifferenceGradient(v => F(a, kZX, m, WithLower(v)), lower.Select(at => lS[at]).ToArray()),
            lower.Select(at => dLS[at]).ToArray(), 1e-6, 1e-7);
        Assert.All(Enumerable.Range(0, lS.Length).Except(lower), at => Assert.Equal(0, dLS[at]));
    }

    /// <summary>The kernels against the reference; both double with the same sums in the same order except L_S Bᵀ's,
    /// so 1e-12 of each output's largest value. Both kernel shapes (one thread per element, the GPU's; per row, the
    /// CPU's) are run on every accelerator and must agree bit for bit.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void KernelsMatchTheReference(int n, int inducing, int outputs)
    {
        var (a, kZX, m, lS, dMean, dVariance) = Values(n, inducing, outputs);
        var (mean, variance) = GaussianProcessReference.MarginalsFromProjection(a, kZX, m, lS, 1.3, n, inducing, outputs);
        var (dA, dKZX, dM, dLS) = GaussianProcessReference.MarginalsBackward(a, kZX, m, lS, dMean, dVariance, n, inducing, outputs);
        foreach (var kernels in fixture.KernelSets)
        {
            var results = KernelShapes.RunBoth(kernels,
                () => MarginalsOnTheDevice(kernels, n, inducing, outputs, (a, kZX, m, lS, dMean, dVariance), (mean, variance, dA, dKZX, dM, dLS)));
            Assert.Equal(results[0], results[1]);
        }
    }

    /// <summary>The marginals and their reverse mode on the device, each checked against the reference; all outputs
    /// concatenated.</summary>
    private static double[] MarginalsOnTheDevice(KernelSet kernels, int n, int inducing, int outputs,
        (double[] A, double[] KZX, double[] M, double[] LS, double[] DMean, double[] DVariance) inputs,
        (double[] Mean, double[] Variance, double[] DA, double[] DKZX, double[] DM, double[] DLS) expected)
    {
        var (a, kZX, m, lS, dMean, dVariance) = inputs;
        var (mean, variance, dA, dKZX, dM, dLS) = expected;
        var accelerator = kernels.Accelerator;
        using var aBuffer = accelerator.Upload(a);
        using var kBuffer = accelerator.Upload(kZX);
        using var mBuffer = accelerator.Upload(m);
        using var lBuffer = accelerator.Upload(lS);
        using var b = accelerator.Allocate1D<double>(outputs * inducing * n);
        using var meanBuffer = accelerator.Allocate1D<double>(n * outputs);
        using var varianceBuffer = accelerator.Allocate1D<double>(n * outputs);
        using var signalBuffer = accelerator.Upload(new[] { Math.Log(1.3) });
        kernels.CovarianceProjection(aBuffer.View, lBuffer.View, b.View, n, inducing, outputs);
        kernels.Marginals(aBuffer.View, kBuffer.View, mBuffer.View, b.View, signalBuffer.View, 0, meanBuffer.View, varianceBuffer.View, n, inducing, outputs);
        string label = $"{accelerator.AcceleratorType} rows={kernels.GpRowKernels} N={n} M={inducing} O={outputs}";
        Numerics.AssertCloseToLargest(label + " mean", mean, meanBuffer.GetAsArray1D(), 1e-12);
        Numerics.AssertCloseToLargest(label + " variance", variance, varianceBuffer.GetAsArray1D(), 1e-12);
        using var dMeanBuffer = accelerator.Upload(dMean);
        using var dVarianceBuffer = accelerator.Upload(dVariance);
        using var dABuffer = accelerator.Allocate1D<double>(a.Length);
        using var dKBuffer = accelerator.Allocate1D<double>(a.Length);
        using var dMBuffer = accelerator.Allocate1D<double>(m.Length);
        using var dLBuffer = accelerator.Allocate1D<double>(lS.Length);
        kernels.MarginalsBackward(aBuffer.View, kBuffer.View, mBuffer.View, lBuffer.View, b.View, dMeanBuffer.View, dVarianceBuffer.View, dABuffer.View,
            dKBuffer.View, dMBuffer.View, dLBuffer.View, n, inducing, outputs);
        var outputsOnDevice = new[] { meanBuffer, varianceBuffer, b, dABuffer, dKBuffer, dMBuffer, dLBuffer }.Select(buffer => buffer.GetAsArray1D()).ToArray();
        Numerics.AssertCloseToLargest(label + " dA", dA, outputsOnDevice[3], 1e-12);
        Numerics.AssertCloseToLargest(label + " dK_ZX", dKZX, outputsOnDevice[4], 1e-12);
        Numerics.AssertCloseToLargest(label + " dm", dM, outputsOnDevice[5], 1e-12);
        Numerics.AssertCloseToLargest(label + " dL_S", dLS, outputsOnDevice[6], 1e-12);
        return outputsOnDevice.SelectMany(values => values).ToArray();
    }

    /// <summary>
    /// The KL term of a layer with 3 outputs and 7 inducing points in 2 dimensions, assembled on the device from the
    /// primitives as the layer will (K_ZZ by the RBF kernel, its factor, V = L⁻¹L_S and w = L⁻¹m with the factor
    /// shared, the log-determinant, <see cref="SparseGp.PosteriorKl"/>) against the reference's KL of each output
    /// (1e-10 relative); then its reverse mode through the same primitives (KL → solves → log-determinant →
    /// factorisation → kernel) against central differences of the reference's summed KL in m, L_S, Z and the
    /// hyperparameters (1e-6 relative plus 1e-7).
    /// </summary>
    [Fact]
    public void PosteriorKlAssembledFromThePrimitivesMatchesTheReference()
    {
        const int inducing = 7, outputs = 3, dims = 2;
        const double jitter = 1e-6, weight = 0.7;
        var random = new Random(11);
        double[] Draw(int count, double scale) => Enumerable.Range(0, count).Select(_ => (random.NextDouble() * 2 - 1) * scale).ToArray();
        var z = Draw(inducing * dims, 2);
        // Short lengthscales keep K_ZZ well conditioned, so that central differences of the KL (which reads K⁻¹) stay accurate.
        double[] hyper = [Math.Log(0.5), Math.Log(0.6), Math.Log(1.4)];
        var m = Draw(outputs * inducing, 1);
        var lS = Draw(outputs * inducing * inducing, 0.3).Select((value, at) => at % inducing == at / inducing % inducing ? 0.5 + Math.Abs(value)
            : at % inducing < at / inducing % inducing ? value : 0).ToArray();
        double TotalKl(double[] zs, double[] hs, double[] ms, double[] ls) => Enumerable.Range(0, outputs).Sum(o =>
            GaussianProcessReference.Kl(zs, hs, ms[(o * inducing)..((o + 1) * inducing)], ls[(o * inducing * inducing)..((o + 1) * inducing * inducing)], jitter, inducing, dims));
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var zBuffer = accelerator.Upload(z);
            using var hyperBuffer = accelerator.Upload(hyper);
            using var mBuffer = accelerator.Upload(m);
            using var lSBuffer = accelerator.Upload(lS);
            using var k = accelerator.Allocate1D<double>(inducing * inducing);
            using var l = accelerator.Allocate1D<double>(inducing * inducing);
            using var failures = accelerator.Allocate1D<int>(1);
            using var v = accelerator.Allocate1D<double>(lS.Length);
            using var w = accelerator.Allocate1D<double>(m.Length);
            using var logDet = accelerator.Allocate1D<double>(1);
            using var kl = accelerator.Allocate1D<double>(outputs);
            kernels.Rbf(zBuffer.View, zBuffer.View, hyperBuffer.View, k.View, 1, inducing, inducing, dims);
            kernels.Cholesky(k.View, l.View, failures.View, 1, inducing, jitter);
            kernels.TriangularSolve(l.View, lSBuffer.View, v.View, outputs, inducing, inducing, transpose: false, perFactor: outputs);
            kernels.TriangularSolve(l.View, mBuffer.View, w.View, outputs, inducing, 1, transpose: false, perFactor: outputs);
            kernels.LogDeterminant(l.View, logDet.View, 1, inducing);
            kernels.PosteriorKl(v.View, w.View, logDet.View, lSBuffer.View, kl.View, inducing, outputs);
            var expected = Enumerable.Range(0, outputs).Select(o => GaussianProcessReference.Kl(z, hyper, m[(o * inducing)..((o + 1) * inducing)],
                lS[(o * inducing * inducing)..((o + 1) * inducing * inducing)], jitter, inducing, dims)).ToArray();
            var actual = kl.GetAsArray1D();
            for (int o = 0; o < outputs; o++)
                Assert.Equal(expected[o], actual[o], 1e-10 * Math.Abs(expected[o]));

            // Reverse mode of weight·Σ_o kl[o].
            using var dV = accelerator.Allocate1D<double>(lS.Length);
            using var dW = accelerator.Allocate1D<double>(m.Length);
            using var dLS = accelerator.Allocate1D<double>(lS.Length);
            using var dM = accelerator.Allocate1D<double>(m.Length);
            using var dLogDet = accelerator.Allocate1D<double>(1);
            using var dL = accelerator.Allocate1D<double>(inducing * inducing);
            using var dFromV = accelerator.Allocate1D<double>(lS.Length);
            using var dK = accelerator.Allocate1D<double>(inducing * inducing);
            using var work = accelerator.Allocate1D<double>(inducing * inducing);
            using var dZ1 = accelerator.Allocate1D<double>(z.Length);
            using var dZ2 = accelerator.Allocate1D<double>(z.Length);
            using var dHyper = accelerator.Allocate1D<double>(hyper.Length);
            dLS.MemSetToZero();
            dL.MemSetToZero();
            kernels.PosteriorKlBackward(v.View, w.View, lSBuffer.View, weight, dV.View, dW.View, dLS.View, dLogDet.View, inducing, outputs);
            kernels.TriangularSolveBackward(l.View, v.View, dV.View, dFromV.View, dL.View, outputs, inducing, inducing, transpose: false, perFactor: outputs);
            kernels.TriangularSolveBackward(l.View, w.View, dW.View, dM.View, dL.View, outputs, inducing, 1, transpose: false, perFactor: outputs);
            kernels.LogDeterminantBackward(l.View, dLogDet.View, dL.View, 1, inducing);
            kernels.CholeskyBackward(l.View, dL.View, dK.View, work.View, 1, inducing);
            kernels.RbfBackward(zBuffer.View, zBuffer.View, hyperBuffer.View, k.View, dK.View, dZ1.View, dZ2.View, dHyper.View, 1, inducing, inducing, dims);
            var dLSTotal = dLS.GetAsArray1D().Zip(dFromV.GetAsArray1D(), (a, b) => a + b).ToArray();
            var lower = Enumerable.Range(0, lS.Length).Where(at => at % inducing <= at / inducing % inducing).ToArray();
            double[] WithLower(double[] values)
            {
                var factor = new double[lS.Length];
                for (int p = 0; p < lower.Length; p++)
                    factor[lower[p]] = values[p];
                return factor;
            }
            Numerics.AssertClose("dL_S", Numerics.FiniteDifferenceGradient(values => weight * TotalKl(z, hyper, m, WithLower(values)), lower.Select(at => lS[at]).ToArray()),
                lower.Select(at => dLSTotal[at]).ToArray(), 1e-6, 1e-7);
            Numerics.AssertClose("dm", Numerics.FiniteDifferenceGradient(values => weight * TotalKl(z, hyper, values, lS), m), dM.GetAsArray1D(), 1e-6, 1e-7);
            Numerics.AssertClose("dZ", Numerics.FiniteDifferenceGradient(values => weight * TotalKl(values, hyper, m, lS), z),
                dZ1.GetAsArray1D().Zip(dZ2.GetAsArray1D(), (a, b) => a + b).ToArray(), 1e-6, 1e-7);
            Numerics.AssertClose("dHyper", Numerics.FiniteDifferenceGradient(values => weight * TotalKl(z, values, m, lS), hyper), dHyper.GetAsArray1D(), 1e-6, 1e-7);
        }
    }

    /// <summary>
    /// One layer's whole ELBO with a Gaussian likelihood, assembled on the device from the primitives as the deep GP
    /// will run it (forward: K_ZZ, its factor, K_ZX, A = L⁻ᵀL⁻¹K_ZX, the marginals, the expected log-likelihood, the
    /// KL; backward: each primitive's reverse mode in turn), against <see cref="GaussianProcessReference.Elbo"/> and
    /// its written-out <see cref="GaussianProcessReference.Gradient"/>: 9 points in 2 dimensions, 5 inducing points,
    /// one output. Both double; the two derivations order their sums differently: 1e-9 of each gradient's largest value.
    /// </summary>
    [Fact]
    public void LayerAssembledFromThePrimitivesMatchesTheReference()
    {
        const int n = 9, inducing = 5, dims = 2;
        const double jitter = 1e-6, noise = 0.2;
        var random = new Random(5);
        double[] Draw(int count, double scale) => Enumerable.Range(0, count).Select(_ => (random.NextDouble() * 2 - 1) * scale).ToArray();
        var x = Draw(n * dims, 2);
        var y = Draw(n, 1);
        var z = Draw(inducing * dims, 2);
        double[] hyper = [Math.Log(0.7), Math.Log(0.8), Math.Log(1.3)];
        var m = Draw(inducing, 1);
        var lS = Draw(inducing * inducing, 0.2).Select((value, at) => at % inducing == at / inducing ? 0.4 + Math.Abs(value) : at % inducing < at / inducing ? value : 0)
            .ToArray();
        double expectedElbo = GaussianProcessReference.Elbo(x, y, z, hyper, m, lS, noise, jitter, n, inducing, dims);
        var expected = GaussianProcessReference.Gradient(x, y, z, hyper, m, lS, noise, jitter, n, inducing, dims);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            var buffers = new List<IDisposable>();
            MemoryBuffer1D<double, Stride1D.Dense> Up(double[] values)
            {
                var buffer = accelerator.Upload(values);
                buffers.Add(buffer);
                return buffer;
            }
            MemoryBuffer1D<double, Stride1D.Dense> New(int length)
            {
                var buffer = accelerator.Allocate1D<double>(length);
                buffer.MemSetToZero();
                buffers.Add(buffer);
                return buffer;
            }
            try
            {
                var (xB, yB, zB, hyperB, mB, lSB) = (Up(x), Up(y), Up(z), Up(hyper), Up(m), Up(lS));
                var (kzz, l, kzx, t, a, b) = (New(inducing * inducing), New(inducing * inducing), New(inducing * n), New(inducing * n), New(inducing * n), New(inducing * n));
                var (mean, variance, ell, dMean, dVariance, dNoise) = (New(n), New(n), New(n), New(n), New(n), New(n));
                var (v, w, logDet, kl) = (New(inducing * inducing), New(inducing), New(1), New(1));
                using var failures = accelerator.Allocate1D<int>(1);
                // Forward.
                kernels.Rbf(zB.View, zB.View, hyperB.View, kzz.View, 1, inducing, inducing, dims);
                kernels.Cholesky(kzz.View, l.View, failures.View, 1, inducing, jitter);
                kernels.Rbf(zB.View, xB.View, hyperB.View, kzx.View, 1, inducing, n, dims);
                kernels.TriangularSolve(l.View, kzx.View, t.View, 1, inducing, n, transpose: false);
                kernels.TriangularSolve(l.View, t.View, a.View, 1, inducing, n, transpose: true);
                kernels.CovarianceProjection(a.View, lSB.View, b.View, n, inducing, 1);
                kernels.Marginals(a.View, kzx.View, mB.View, b.View, hyperB.View, dims, mean.View, variance.View, n, inducing, 1);
                kernels.GaussianExpectedLogLikelihood(yB.View, mean.View, variance.View, Up([Math.Log(noise)]).View, 1, ell.View, dMean.View, dVariance.View, dNoise.View, n, 1);
                kernels.TriangularSolve(l.View, lSB.View, v.View, 1, inducing, inducing, transpose: false);
                kernels.TriangularSolve(l.View, mB.View, w.View, 1, inducing, 1, transpose: false);
                kernels.LogDeterminant(l.View, logDet.View, 1, inducing);
                kernels.PosteriorKl(v.View, w.View, logDet.View, lSB.View, kl.View, inducing, 1);
                double elbo = ell.GetAsArray1D().Sum() - kl.GetAsArray1D()[0];
                Assert.Equal(expectedElbo, elbo, 1e-10 * Math.Abs(expectedElbo));

                // Backward.
                var (dA, dKzx, dM, dLS) = (New(inducing * n), New(inducing * n), New(inducing), New(inducing * inducing));
                var (dT, dKzxFromSolve, dL, dV, dW, dLSFromV, dMFromW, dLogDet) = (New(inducing * n), New(inducing * n), New(inducing * inducing), New(inducing * inducing),
                    New(inducing), New(inducing * inducing), New(inducing), New(1));
                var (dKzz, work, dZ1, dZ2, dZ3, dX, dHyper1, dHyper2) = (New(inducing * inducing), New(inducing * inducing), New(z.Length), New(z.Length), New(z.Length),
                    New(x.Length), New(hyper.Length), New(hyper.Length));
                kernels.MarginalsBackward(a.View, kzx.View, mB.View, lSB.View, b.View, dMean.View, dVariance.View, dA.View, dKzx.View, dM.View, dLS.View, n, inducing, 1);
                kernels.TriangularSolveBackward(l.View, a.View, dA.View, dT.View, dL.View, 1, inducing, n, transpose: true);
                kernels.TriangularSolveBackward(l.View, t.View, dT.View, dKzxFromSolve.View, dL.View, 1, inducing, n, transpose: false);
                // −KL: weight −1.
                kernels.PosteriorKlBackward(v.View, w.View, lSB.View, -1, dV.View, dW.View, dLS.View, dLogDet.View, inducing, 1);
                kernels.TriangularSolveBackward(l.View, v.View, dV.View, dLSFromV.View, dL.View, 1, inducing, inducing, transpose: false);
                kernels.TriangularSolveBackward(l.View, w.View, dW.View, dMFromW.View, dL.View, 1, inducing, 1, transpose: false);
                kernels.LogDeterminantBackward(l.View, dLogDet.View, dL.View, 1, inducing);
                kernels.CholeskyBackward(l.View, dL.View, dKzz.View, work.View, 1, inducing);
                kernels.RbfBackward(zB.View, zB.View, hyperB.View, kzz.View, dKzz.View, dZ1.View, dZ2.View, dHyper1.View, 1, inducing, inducing, dims);
                var dKzxTotal = Up(dKzx.GetAsArray1D().Zip(dKzxFromSolve.GetAsArray1D(), (p, q) => p + q).ToArray());
                kernels.RbfBackward(zB.View, xB.View, hyperB.View, kzx.View, dKzxTotal.View, dZ3.View, dX.View, dHyper2.View, 1, inducing, n, dims);

                double[] Sum(params MemoryBuffer1D<double, Stride1D.Dense>[] parts) =>
                    parts.Select(part => part.GetAsArray1D()).Aggregate((p, q) => p.Zip(q, (u, s) => u + s).ToArray());
                // σ_f² also enters every variance directly: Σ_n σ̄²_n·σ_f².
                kernels.SignalVarianceGradient(dVariance.View, hyperB.View, dHyper1.View, dims, n);
                var dHyper = Sum(dHyper1, dHyper2);
                Numerics.AssertCloseToLargest("dX", expected.DX, dX.GetAsArray1D(), 1e-9);
                Numerics.AssertCloseToLargest("dZ", expected.DZ, Sum(dZ1, dZ2, dZ3), 1e-9);
                Numerics.AssertCloseToLargest("dHyper", expected.DHyper, dHyper, 1e-9);
                Numerics.AssertCloseToLargest("dm", expected.DM, Sum(dM, dMFromW), 1e-9);
                // L_S's upper triangle is no parameter: the solve's reverse mode writes it (L⁻ᵀV̄ is dense), the layer
                // masks it.
                Numerics.AssertCloseToLargest("dL_S", expected.DLS, Sum(dLS, dLSFromV).Select((value, at) => at % inducing <= at / inducing ? value : 0).ToArray(), 1e-9);
                Assert.Equal(expected.DLogNoise, dNoise.GetAsArray1D().Sum(), 1e-9 * Math.Abs(expected.DLogNoise));
            }
            finally
            {
                foreach (var buffer in buffers)
                    buffer.Dispose();
            }
        }
    }
}
