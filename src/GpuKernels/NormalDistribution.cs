namespace IlgpuVae.GpuKernels;

/// <summary>
/// The standard normal's distribution function and density in double, callable from kernels (no library erf reaches
/// a device). erfc by its Taylor series for erf below 2 and by Laplace's continued fraction from 2 on, so that Φ is
/// right to about 1e-15 absolute everywhere: checked against the C library's erfc (NormalDistributionTests).
/// </summary>
public static class NormalDistribution
{
    private const double TwoOverRootPi = 1.1283791670955126, OneOverRootPi = 0.5641895835477563, OneOverRootTwo = 0.7071067811865476,
        OneOverRootTwoPi = 0.3989422804014327;

    /// <summary>Terms of the continued fraction: 50 reach 1e-15 relative at x = 2 and more at larger x (measured).</summary>
    private const int FractionTerms = 60;

    /// <summary>erfc(x) = 1 − erf(x).</summary>
    public static double Erfc(double x) => x >= 0 ? UpperErfc(x) : 2 - UpperErfc(-x);

    /// <summary>Φ(u) = P(ε ≤ u) for ε ~ N(0, 1).</summary>
    public static double Cdf(double u) => 0.5 * Erfc(-u * OneOverRootTwo);

    /// <summary>φ(u) = exp(−u²/2)/√(2π).</summary>
    public static double Density(double u) => OneOverRootTwoPi * Math.Exp(-0.5 * u * u);

    /// <summary>erfc(x) for x ≥ 0.</summary>
    private static double UpperErfc(double x)
    {
        if (x < 2)
        {
            // erf(x) = 2/√π Σ_k (−1)^k x^(2k+1)/(k!(2k+1)): below 2 the largest term is about 3, so little is lost to
            // cancellation; stop when a term no longer moves the sum (at most 60 terms at x = 2).
            double power = x, sum = x;
            for (int k = 1; k < 100; k++)
            {
                power *= -x * x / k;
                double term = power / (2 * k + 1);
                sum += term;
                if (Math.Abs(term) <= 1e-17 * Math.Abs(sum))
                    break;
            }
            return 1 - TwoOverRootPi * sum;
        }
        // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated from its far end.
        double tail = x;
        for (int k = FractionTerms; k >= 1; k--)
            tail = x + 0.5 * k / tail;
        return Math.Exp(-x * x) * OneOverRootPi / tail;
    }
}

/// <summary>
/// Gauss–Hermite quadrature: ∫ exp(−t²) g(t) dt ≈ Σ_h w_h g(t_h), exact for polynomials g of degree below 2H. The
/// nodes are the roots of the H-th Hermite function, bracketed on a fine grid and bisected to the last bit; the
/// weights are the Christoffel numbers 1/Σ_{k<H} ψ_k(t_h)² of the orthonormal Hermite functions ψ_k, whose
/// three-term recurrence does not overflow as the classical polynomials do.
/// </summary>
public static class GaussHermite
{
    public static (double[] Nodes, double[] Weights) Rule(int points)
    {
        if (points is < 1 or > 100)
            throw new ArgumentOutOfRangeException(nameof(points), points, "Gauss–Hermite rules of 1 to 100 points");
        var nodes = new List<double>(points);
        // Every root lies inside ±√(2H + 1); the grid's step is far below the smallest gap between roots (about
        // π/√(2H) near the middle).
        double edge = Math.Sqrt(2.0 * points + 1) + 1, step = 0.5 / Math.Sqrt(2.0 * points + 1) / 8;
        double left = -edge, valueLeft = Orthonormal(points, left)[points];
        while (left < edge && nodes.Count < points)
        {
            double right = left + step, valueRight = Orthonormal(points, right)[points];
            if (valueLeft == 0)
                nodes.Add(left);
            else if (valueLeft * valueRight < 0)
                nodes.Add(Bisect(points, left, right, valueLeft));
            (left, valueLeft) = (right, valueRight);
        }
        if (nodes.Count != points)
            throw new InvalidOperationException($"found {nodes.Count} of the {points} Gauss–Hermite nodes");
        var weights = nodes.Select(node => 1 / Orthonormal(points - 1, node).Sum(value => value * value)).ToArray();
        return (nodes.ToArray(), weights);
    }

    /// <summary>ψ_0(t) … ψ_H(t), orthonormal under exp(−t²).</summary>
    private static double[] Orthonormal(int degree, double t)
    {
        var psi = new double[degree + 1];
        psi[0] = Math.Pow(Math.PI, -0.25);
        if (degree >= 1)
            psi[1] = Math.Sqrt(2) * t * psi[0];
        for (int k = 2; k <= degree; k++)
            psi[k] = Math.Sqrt(2.0 / k) * t * psi[k - 1] - Math.Sqrt((k - 1.0) / k) * psi[k - 2];
        return psi;
    }

    private static double Bisect(int degree, double left, double right, double valueLeft)
    {
        while (true)
        {
            double middle = 0.5 * (left + right);
            if (middle <= left || middle >= right)
                return middle;
            double value = Orthonormal(degree, middle)[degree];
            if (value == 0)
                return middle;
            if (value < 0 == valueLeft < 0)
                (left, valueLeft) = (middle, value);
            else
                right = middle;
        }
    }
}
