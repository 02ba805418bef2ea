namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// The rank-one covariance posterior in double, one row of stats [μ | log d | u] per z row. The forward pass builds
/// the matrices as the paper writes them (C = D⁻¹ − η D⁻¹uuᵀD⁻¹ and R = D^(−1/2) − [(1 − √η)/s] D⁻¹uuᵀD^(−1/2)),
/// multiplies z = μ + Rε, and takes log|C| from a Cholesky factor of C rather than from the closed form the kernel
/// uses, so the two are independent. The backward pass is the chain rule through the scalars s, t, a, c.
/// </summary>
public static class RankOneReference
{
    /// <summary>The covariance C and the factor R of one stats row (K = <paramref name="latent"/>).</summary>
    public static (double[,] C, double[,] R) Matrices(double[] stats, int row, int latent)
    {
        var (_, d, u) = Parts(stats, row, latent);
        double s = Enumerable.Range(0, latent).Sum(k => u[k] * u[k] / d[k]);
        double eta = 1 / (1 + s);
        // (1 − √η)/s → ½ as s → 0.
        double shrink = s < 1e-12 ? 0.5 : (1 - Math.Sqrt(eta)) / s;
        var c = new double[latent, latent];
        var r = new double[latent, latent];
        for (int i = 0; i < latent; i++)
            for (int j = 0; j < latent; j++)
            {
                c[i, j] = (i == j ? 1 / d[i] : 0) - eta * (u[i] / d[i]) * (u[j] / d[j]);
                r[i, j] = (i == j ? 1 / Math.Sqrt(d[i]) : 0) - shrink * (u[i] / d[i]) * (u[j] / Math.Sqrt(d[j]));
            }
        return (c, r);
    }

    /// <summary>z = μ + Rε and KL(N(μ, C) ‖ N(0, I)) = ½(tr C + μᵀμ − K − log|C|) per row.</summary>
    public static (double[] Z, double[] Kl) Forward(double[] stats, double[] epsilon, int rows, int latent)
    {
        var z = new double[rows * latent];
        var kl = new double[rows];
        for (int row = 0; row < rows; row++)
        {
            var (mu, _, _) = Parts(stats, row, latent);
            var (c, r) = Matrices(stats, row, latent);
            for (int i = 0; i < latent; i++)
            {
                double sum = mu[i];
                for (int j = 0; j < latent; j++)
                    sum += r[i, j] * epsilon[row * latent + j];
                z[row * latent + i] = sum;
            }
            double trace = Enumerable.Range(0, latent).Sum(i => c[i, i]);
            kl[row] = 0.5 * (trace + mu.Sum(m => m * m) - latent - LogDeterminant(c));
        }
        return (z, kl);
    }

    /// <summary>log N(z; μ, C) per row, from the log weights with no reconstruction: log N(z; 0, I) − log w.</summary>
    public static double[] LogDensity(double[] stats, double[] z, int rows, int latent)
    {
        var logWeights = LogWeights(stats, z, new double[rows], rows, latent);
        return Enumerable.Range(0, rows).Select(row => Enumerable.Range(0, latent)
            .Sum(k => -0.5 * (Math.Log(2 * Math.PI) + z[row * latent + k] * z[row * latent + k])) - logWeights[row]).ToArray();
    }

    /// <summary>log w = −rec + log N(z; 0, I) − log N(z; μ, C), with (z − μ)ᵀC⁻¹(z − μ) solved through C's Cholesky factor.</summary>
    public static double[] LogWeights(double[] stats, double[] z, double[] reconstructionPerRow, int rows, int latent)
    {
        var logWeights = new double[rows];
        for (int row = 0; row < rows; row++)
        {
            var (mu, _, _) = Parts(stats, row, latent);
            var (c, _) = Matrices(stats, row, latent);
            var lower = Cholesky(c);
            // y = L⁻¹(z − μ), so (z − μ)ᵀC⁻¹(z − μ) = yᵀy.
            var y = new double[latent];
            for (int i = 0; i < latent; i++)
            {
                double sum = z[row * latent + i] - mu[i];
                for (int j = 0; j < i; j++)
                    sum -= lower[i, j] * y[j];
                y[i] = sum / lower[i, i];
            }
            double zSquares = Enumerable.Range(0, latent).Sum(i => z[row * latent + i] * z[row * latent + i]);
            logWeights[row] = -reconstructionPerRow[row] - 0.5 * zSquares + 0.5 * (y.Sum(v => v * v) + LogDeterminant(c));
        }
        return logWeights;
    }

    /// <summary>d loss / d stats per row from d loss / dz and the KL weight (see <see cref="RankOne.BackwardKernel"/>).</summary>
    public static double[] Backward(double[] stats, double[] epsilon, double[] dZ, int rows, int latent, double klWeight)
    {
        var dStats = new double[rows * 3 * latent];
        for (int row = 0; row < rows; row++)
        {
            var (mu, d, u) = Parts(stats, row, latent);
            var a = Enumerable.Range(0, latent).Select(k => u[k] / d[k]).ToArray();
            var w = Enumerable.Range(0, latent).Select(k => epsilon[row * latent + k] / Math.Sqrt(d[k])).ToArray();
            var g = Enumerable.Range(0, latent).Select(k => dZ[row * latent + k]).ToArray();
            double s = Enumerable.Range(0, latent).Sum(k => u[k] * a[k]);
            double t = Enumerable.Range(0, latent).Sum(k => u[k] * w[k]);
            double eta = 1 / (1 + s), q = Math.Sqrt(1 + s);
            double shrink = 1 / (q * (q + 1)), shrinkSlope = -(2 * q + 1) / (2 * q * q * q * (q + 1) * (q + 1));
            double gDotA = Enumerable.Range(0, latent).Sum(k => g[k] * a[k]);
            // Sampler: z = μ + w − shrink·t·a.
            double byT = -shrink * gDotA, bySum = -t * gDotA * shrinkSlope;
            // KL = ½(Σμ² + Σ1/d − ηΣa² − K + log(1 + s) + Σ log d).
            double aSquares = a.Sum(value => value * value);
            double klBySum = 0.5 * (eta * eta * aSquares + eta);
            for (int k = 0; k < latent; k++)
            {
                double byA = -shrink * t * g[k], byW = g[k] + byT * u[k];
                int at = row * 3 * latent;
                dStats[at + k] = g[k] + klWeight * mu[k];
                dStats[at + latent + k] = -a[k] * byA - u[k] * a[k] * bySum - 0.5 * w[k] * byW
                    + klWeight * (0.5 * (1 - 1 / d[k]) + eta * a[k] * a[k] - klBySum * u[k] * a[k]);
                dStats[at + 2 * latent + k] = byA / d[k] + 2 * a[k] * bySum + w[k] * byT
                    + klWeight * (-eta * a[k] / d[k] + klBySum * 2 * a[k]);
            }
        }
        return dStats;
    }

    /// <summary>
    /// The importance-weighted backward pass: row r's term c_r·(−log p(z) + log q(z|x)) with c_r = scale·w_r, plus
    /// whatever dZ carries from the decoder. Through z (the prior's c_r·z added to dZ) it is <see cref="Backward"/>
    /// with no KL; with ε fixed, log q = −½(K log 2π + εᵀε + log|C|) adds −½c_r·∂log|C|, log|C| = −log(1 + s) − Σ log d.
    /// </summary>
    public static double[] WeightedBackward(double[] stats, double[] z, double[] epsilon, double[] dZ, double[] weights,
        int rows, int latent, double scale, bool standardPrior = true)
    {
        // Without the N(0, I) prior (z's prior another layer's, its gradient already in dZ) nothing is added.
        var dZWithPrior = dZ.Select((value, i) => value + (standardPrior ? scale * weights[i / latent] * z[i] : 0)).ToArray();
        var dStats = Backward(stats, epsilon, dZWithPrior, rows, latent, klWeight: 0);
        for (int row = 0; row < rows; row++)
        {
            var (_, d, u) = Parts(stats, row, latent);
            double s = Enumerable.Range(0, latent).Sum(k => u[k] * u[k] / d[k]);
            double weight = scale * weights[row];
            for (int k = 0; k < latent; k++)
            {
                // ∂log|C|/∂log d_k = u_k²/(d_k(1 + s)) − 1 and ∂log|C|/∂u_k = −2u_k/(d_k(1 + s)).
                dStats[row * 3 * latent + latent + k] -= 0.5 * weight * (u[k] * u[k] / (d[k] * (1 + s)) - 1);
                dStats[row * 3 * latent + 2 * latent + k] -= 0.5 * weight * (-2 * u[k] / (d[k] * (1 + s)));
            }
        }
        return dStats;
    }

    /// <summary>μ, d = e^(log d) and u of one stats row.</summary>
    internal static (double[] Mu, double[] D, double[] U) Parts(double[] stats, int row, int latent)
    {
        int at = row * 3 * latent;
        return (stats[at..(at + latent)], stats[(at + latent)..(at + 2 * latent)].Select(Math.Exp).ToArray(),
            stats[(at + 2 * latent)..(at + 3 * latent)]);
    }

    /// <summary>M⁻¹v for a symmetric positive-definite M, by its Cholesky factor and two triangular solves.</summary>
    public static double[] Solve(double[,] matrix, double[] v)
    {
        var lower = Cholesky(matrix);
        int n = v.Length;
        var y = new double[n];
        for (int i = 0; i < n; i++)
        {
            double sum = v[i];
            for (int j = 0; j < i; j++)
                sum -= lower[i, j] * y[j];
            y[i] = sum / lower[i, i];
        }
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double sum = y[i];
            for (int j = i + 1; j < n; j++)
                sum -= lower[j, i] * x[j];
            x[i] = sum / lower[i, i];
        }
        return x;
    }

    private static double[,] Cholesky(double[,] matrix)
    {
        int n = matrix.GetLength(0);
        var lower = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double sum = matrix[i, j];
                for (int k = 0; k < j; k++)
                    sum -= lower[i, k] * lower[j, k];
                lower[i, j] = i == j ? Math.Sqrt(sum) : sum / lower[j, j];
            }
        return lower;
    }

    /// <summary>log|M| of a symmetric positive-definite matrix, from its Cholesky factor.</summary>
    public static double LogDeterminant(double[,] matrix)
    {
        var lower = Cholesky(matrix);
        return 2 * Enumerable.Range(0, matrix.GetLength(0)).Sum(i => Math.Log(lower[i, i]));
    }
}
