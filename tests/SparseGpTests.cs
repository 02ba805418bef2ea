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
    /// <summary>(points N, inducing M, outputs O).</summary>
    public static TheoryData<int, int, int> Shapes => new() { { 1, 1, 1 }, { 5, 7, 3 }, { 33, 33, 2 } };

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
    /// so 1e-12 of each output's largest value.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void KernelsMatchTheReference(int n, int inducing, int outputs)
    {
        var (a, kZX, m, lS, dMean, dVariance) = Values(n, inducing, outputs);
        var (mean, variance) = GaussianProcessReference.MarginalsFromProjection(a, kZX, m, lS, 1.3, n, inducing, outputs);
        var (dA, dKZX, dM, dLS) = GaussianProcessReference.MarginalsBackward(a, kZX, m, lS, dMean, dVariance, n, inducing, outputs);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var aBuffer = accelerator.Upload(a);
            using var kBuffer = accelerator.Upload(kZX);
            using var mBuffer = accelerator.Upload(m);
            using var lBuffer = accelerator.Upload(lS);
            using var b = accelerator.Allocate1D<double>(outputs * inducing * n);
            using var meanBuffer = accelerator.Allocate1D<double>(n * outputs);
            using var varianceBuffer = accelerator.Allocate1D<double>(n * outputs);
            kernels.CovarianceProjection(aBuffer.View, lBuffer.View, b.View, n, inducing, outputs);
            kernels.Marginals(aBuffer.View, kBuffer.View, mBuffer.View, b.View, 1.3, meanBuffer.View, varianceBuffer.View, n, inducing, outputs);
            string label = $"{accelerator.AcceleratorType} N={n} M={inducing} O={outputs}";
            AssertClose(label + " mean", mean, meanBuffer.GetAsArray1D());
            AssertClose(label + " variance", variance, varianceBuffer.GetAsArray1D());
            using var dMeanBuffer = accelerator.Upload(dMean);
            using var dVarianceBuffer = accelerator.Upload(dVariance);
            using var dABuffer = accelerator.Allocate1D<double>(a.Length);
            using var dKBuffer = accelerator.Allocate1D<double>(a.Length);
            using var dMBuffer = accelerator.Allocate1D<double>(m.Length);
            using var dLBuffer = accelerator.Allocate1D<double>(lS.Length);
            kernels.MarginalsBackward(aBuffer.View, kBuffer.View, mBuffer.View, lBuffer.View, b.View, dMeanBuffer.View, dVarianceBuffer.View, dABuffer.View,
                dKBuffer.View, dMBuffer.View, dLBuffer.View, n, inducing, outputs);
            AssertClose(label + " dA", dA, dABuffer.GetAsArray1D());
            AssertClose(label + " dK_ZX", dKZX, dKBuffer.GetAsArray1D());
            AssertClose(label + " dm", dM, dMBuffer.GetAsArray1D());
            AssertClose(label + " dL_S", dLS, dLBuffer.GetAsArray1D());
        }
    }

    private static void AssertClose(string what, double[] expected, double[] actual)
    {
        double allowed = 1e-12 * Math.Max(expected.Max(Math.Abs), 1e-300);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= allowed, $"{what}: element {i} expected {expected[i]:R}, got {actual[i]:R}");
    }
}
