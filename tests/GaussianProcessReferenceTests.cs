using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// The sparse GP layer's double reference (issue 25) against the exact GP: with the inducing inputs at the training
/// inputs and the optimal q(u) the ELBO is the exact log marginal likelihood; with fewer inducing points it is a
/// strict lower bound; any other q(u) scores lower; the KL term is 0 at q(u) = p(u).
/// </summary>
public sealed class GaussianProcessReferenceTests
{
    private const int N = 7, Dims = 2;
    private const double Noise = 0.1;
    private static readonly double[] Hyper = [Math.Log(0.8), Math.Log(1.3), Math.Log(1.5)];

    private static (double[] X, double[] Y) Problem()
    {
        var random = new Random(25);
        var x = Enumerable.Range(0, N * Dims).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var y = Enumerable.Range(0, N).Select(i => Math.Sin(2 * x[i * Dims]) + 0.5 * x[i * Dims + 1] + 0.1 * (random.NextDouble() - 0.5)).ToArray();
        return (x, y);
    }

    /// <summary>Z = X, no jitter: the bound at the optimal q(u) equals log N(y; 0, K + σ²I) to 1e-9 relative (the
    /// rounding of a few solves with 7×7 matrices of condition below 1e4).</summary>
    [Fact]
    public void WithInducingPointsAtTheInputsTheBoundIsTheExactMarginal()
    {
        var (x, y) = Problem();
        double exact = GaussianProcessReference.ExactLogMarginal(x, y, Hyper, Noise, N, Dims);
        var (m, lS) = GaussianProcessReference.OptimalPosterior(x, y, x, Hyper, Noise, 0, N, N, Dims);
        double elbo = GaussianProcessReference.Elbo(x, y, x, Hyper, m, lS, Noise, 0, N, N, Dims);
        Assert.Equal(exact, elbo, 1e-9 * Math.Abs(exact));
    }

    [Fact]
    public void FewerInducingPointsGiveAStrictLowerBoundAndTheOptimumIsOptimal()
    {
        var (x, y) = Problem();
        double exact = GaussianProcessReference.ExactLogMarginal(x, y, Hyper, Noise, N, Dims);
        const int inducing = 3;
        var z = x[..(inducing * Dims)];
        var (m, lS) = GaussianProcessReference.OptimalPosterior(x, y, z, Hyper, Noise, 1e-8, N, inducing, Dims);
        double best = GaussianProcessReference.Elbo(x, y, z, Hyper, m, lS, Noise, 1e-8, N, inducing, Dims);
        Assert.True(best < exact - 1e-6, $"bound {best} against exact {exact}");
        var random = new Random(3);
        for (int trial = 0; trial < 5; trial++)
        {
            var otherM = m.Select(value => value + 0.05 * (random.NextDouble() - 0.5)).ToArray();
            var otherS = lS.Select((value, at) => at % inducing <= at / inducing ? value * (1 + 0.1 * (random.NextDouble() - 0.5)) : 0).ToArray();
            Assert.True(GaussianProcessReference.Elbo(x, y, z, Hyper, otherM, otherS, Noise, 1e-8, N, inducing, Dims) < best);
        }
    }

    [Fact]
    public void TheKlTermIsZeroAtThePriorAndPositiveElsewhere()
    {
        var (x, _) = Problem();
        const int inducing = 4;
        var z = x[..(inducing * Dims)];
        var k = LinearAlgebraReference.Rbf(z, z, Hyper, 1, inducing, inducing, Dims);
        for (int i = 0; i < inducing; i++)
            k[i * inducing + i] += 1e-6;
        var (lK, _) = LinearAlgebraReference.Cholesky(k, 1, inducing, 0);
        Assert.Equal(0, GaussianProcessReference.Kl(z, Hyper, new double[inducing], lK, 1e-6, inducing, Dims), 1e-10);
        Assert.True(GaussianProcessReference.Kl(z, Hyper, [0.3, 0, -0.2, 0.1], lK, 1e-6, inducing, Dims) > 0);
    }
}
