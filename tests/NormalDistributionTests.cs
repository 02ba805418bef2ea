using IlgpuVae.GpuKernels;

namespace IlgpuVae.Tests;

/// <summary>The device's erfc, Φ and φ, and the Gauss–Hermite rule that the robust-max likelihood integrates with.</summary>
public sealed class NormalDistributionTests
{
    /// <summary>erfc(x) from the C library's erfc (Python 3's math.erfc, printed to 17 digits), across both branches
    /// (Taylor series below 2, continued fraction from 2) and far into the tail.</summary>
    public static TheoryData<double, double> LibraryErfc => new()
    {
        { -3.5, 1.9999992569016276 }, { -1.2, 1.9103139782296354 }, { -0.3, 1.3286267594591274 }, { 0.0, 1.0 },
        { 0.001, 0.9988716212090307 }, { 0.5, 0.4795001221869535 }, { 1.0, 0.15729920705028513 }, { 1.9999, 0.004679802092970608 },
        { 2.0, 0.004677734981047265 }, { 2.5, 0.0004069520174449589 }, { 3.7, 1.6715105790914596e-07 }, { 5.0, 1.5374597944280351e-12 },
        { 8.0, 1.1224297172982928e-29 }, { 12.0, 1.3562611692059042e-64 },
    };

    /// <summary>1e-13 relative: the series loses about two digits to cancellation just below 2 (measured 3e-13 at
    /// worst over a fine grid against the same library); the tail is the continued fraction, good to a few ulps.</summary>
    [Theory]
    [MemberData(nameof(LibraryErfc))]
    public void ErfcMatchesTheCLibrary(double x, double expected) =>
        Assert.True(Math.Abs(NormalDistribution.Erfc(x) - expected) <= 1e-13 * expected, $"erfc({x}) = {NormalDistribution.Erfc(x):R}, expected {expected:R}");

    [Fact]
    public void CdfIsSymmetricAndItsDerivativeIsTheDensity()
    {
        for (double u = -9; u <= 9; u += 0.37)
        {
            Assert.Equal(1, NormalDistribution.Cdf(u) + NormalDistribution.Cdf(-u), 1e-15);
            double slope = (NormalDistribution.Cdf(u + 1e-5) - NormalDistribution.Cdf(u - 1e-5)) / 2e-5;
            Assert.Equal(NormalDistribution.Density(u), slope, 1e-10);
        }
        Assert.Equal(0.5, NormalDistribution.Cdf(0));
        Assert.Equal(0.9750021048517795, NormalDistribution.Cdf(1.96), 1e-15);
    }

    /// <summary>An H-point rule integrates exp(−t²)·t^k exactly for k below 2H: Γ((k + 1)/2) for even k, 0 for odd.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(20)]
    [InlineData(33)]
    public void GaussHermiteIsExactForPolynomialsOfDegreeBelowTwiceItsPoints(int points)
    {
        var (nodes, weights) = GaussHermite.Rule(points);
        Assert.Equal(points, nodes.Length);
        Assert.True(nodes.Zip(nodes.Skip(1), (a, b) => a < b).All(ordered => ordered), "nodes ascending and distinct");
        for (int k = 0; k < 2 * points; k++)
        {
            double quadrature = nodes.Zip(weights, (t, w) => w * Math.Pow(t, k)).Sum();
            double exact = k % 2 == 1 ? 0 : Gamma((k + 1) / 2.0);
            double scale = nodes.Zip(weights, (t, w) => w * Math.Abs(Math.Pow(t, k))).Sum();
            Assert.True(Math.Abs(quadrature - exact) <= 1e-13 * scale, $"H = {points}, k = {k}: {quadrature:R} against {exact:R}");
        }
    }

    /// <summary>Γ(s) for s a positive multiple of ½: (s − 1)! or (s − 1)(s − 2)…½·√π.</summary>
    private static double Gamma(double s)
    {
        double value = s % 1 == 0 ? 1 : Math.Sqrt(Math.PI);
        for (double factor = s - 1; factor > 0; factor--)
            value *= factor;
        return value;
    }
}
