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

    /// <summary>
    /// The layer's reverse mode against central differences of the ELBO in every argument — the inputs, the inducing
    /// inputs, the log-hyperparameters, m, L_S's lower triangle and the log noise variance — with 4 inducing points and
    /// q(u) away from its optimum: 1e-6 relative plus 1e-6 absolute (central differences with step 1e-6 on an ELBO of
    /// order 10).
    /// </summary>
    [Fact]
    public void GradientMatchesFiniteDifferences()
    {
        var (x, y) = Problem();
        const int inducing = 4;
        const double jitter = 1e-6;
        var random = new Random(9);
        var z = x[..(inducing * Dims)].Select(value => value + 0.1 * (random.NextDouble() - 0.5)).ToArray();
        var m = Enumerable.Range(0, inducing).Select(_ => random.NextDouble() - 0.5).ToArray();
        var lS = new double[inducing * inducing];
        for (int i = 0; i < inducing; i++)
            for (int j = 0; j <= i; j++)
                lS[i * inducing + j] = i == j ? 0.3 + 0.2 * random.NextDouble() : 0.1 * (random.NextDouble() - 0.5);
        var lower = Enumerable.Range(0, lS.Length).Where(at => at % inducing <= at / inducing).ToArray();
        double logNoise = Math.Log(Noise);
        double Elbo(double[] xs, double[] zs, double[] hyper, double[] ms, double[] factor, double noise) =>
            GaussianProcessReference.Elbo(xs, y, zs, hyper, ms, factor, noise, jitter, N, inducing, Dims);
        var gradient = GaussianProcessReference.Gradient(x, y, z, Hyper, m, lS, Noise, jitter, N, inducing, Dims);
        Numerics.AssertClose("dX", Numerics.FiniteDifferenceGradient(v => Elbo(v, z, Hyper, m, lS, Noise), x), gradient.DX, 1e-6, 1e-6);
        Numerics.AssertClose("dZ", Numerics.FiniteDifferenceGradient(v => Elbo(x, v, Hyper, m, lS, Noise), z), gradient.DZ, 1e-6, 1e-6);
        Numerics.AssertClose("dHyper", Numerics.FiniteDifferenceGradient(v => Elbo(x, z, v, m, lS, Noise), Hyper), gradient.DHyper, 1e-6, 1e-6);
        Numerics.AssertClose("dm", Numerics.FiniteDifferenceGradient(v => Elbo(x, z, Hyper, v, lS, Noise), m), gradient.DM, 1e-6, 1e-6);
        double[] WithLower(double[] values)
        {
            var factor = new double[lS.Length];
            for (int p = 0; p < lower.Length; p++)
                factor[lower[p]] = values[p];
            return factor;
        }
        Numerics.AssertClose("dL_S", Numerics.FiniteDifferenceGradient(v => Elbo(x, z, Hyper, m, WithLower(v), Noise), lower.Select(at => lS[at]).ToArray()),
            lower.Select(at => gradient.DLS[at]).ToArray(), 1e-6, 1e-6);
        Numerics.AssertClose("d log noise", Numerics.FiniteDifferenceGradient(v => Elbo(x, z, Hyper, m, lS, Math.Exp(v[0])), [logNoise]), [gradient.DLogNoise],
            1e-6, 1e-6);
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
