namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// The rank-one posterior against CorEx's learned factorized marginal r(z) = Π N(m_j, e^(v_j)), in double (see
/// <see cref="RankOneMarginal"/>). The KL is taken from the matrices, ½(tr(S⁻¹C) + (μ − m)ᵀS⁻¹(μ − m) − K + log|S|
/// − log|C|) with S = diag(e^v) and log|C| from a Cholesky factor, and log w from the densities (log r(z) written
/// out, log q(z|x) through <see cref="RankOneReference.LogWeights"/>), so both are independent of the kernels'
/// closed forms; the backward pass is those closed forms' derivatives, checked by finite differences.
/// </summary>
public static class RankOneMarginalReference
{
    /// <summary>z = μ + Rε and KL(q ‖ r) per row (one stats row per z row).</summary>
    public static (double[] Z, double[] Kl) Forward(double[] stats, double[] marginal, double[] epsilon, int rows, int latent) =>
        (RankOneReference.Forward(stats, epsilon, rows, latent).Z, Kl(stats, marginal, rows, latent));

    public static double[] Kl(double[] stats, double[] marginal, int rows, int latent)
    {
        var kl = new double[rows];
        for (int row = 0; row < rows; row++)
        {
            var (mu, _, _) = RankOneReference.Parts(stats, row, latent);
            var (c, _) = RankOneReference.Matrices(stats, row, latent);
            double sum = 0;
            for (int k = 0; k < latent; k++)
            {
                double variance = Math.Exp(marginal[latent + k]), difference = mu[k] - marginal[k];
                sum += (c[k, k] + difference * difference) / variance + marginal[latent + k];
            }
            kl[row] = 0.5 * (sum - latent - RankOneReference.LogDeterminant(c));
        }
        return kl;
    }

    /// <summary>log w = −rec + log r(z) − log q(z|x) per row.</summary>
    public static double[] LogWeights(double[] stats, double[] marginal, double[] z, double[] reconstructionPerRow, int rows, int latent)
    {
        // RankOneReference's log w has log N(z; 0, I) for the prior: swap it for log r(z).
        var standard = RankOneReference.LogWeights(stats, z, reconstructionPerRow, rows, latent);
        return Enumerable.Range(0, rows).Select(row => standard[row] + Enumerable.Range(0, latent).Sum(k =>
        {
            double value = z[row * latent + k], difference = value - marginal[k];
            return 0.5 * value * value - 0.5 * (marginal[latent + k] + difference * difference / Math.Exp(marginal[latent + k]));
        })).ToArray();
    }

    /// <summary>
    /// d loss / d stats per row and d loss / d [m | v] for loss = Σ dZ·z + klWeight·Σ_rows KL: the sampler's part
    /// from <see cref="RankOneReference.Backward"/> with no KL, then the KL's closed-form derivatives (see
    /// <see cref="RankOneMarginal.KlBackwardKernel"/> and <see cref="RankOneMarginal.MarginalBackwardKernel"/>).
    /// </summary>
    public static (double[] DStats, double[] DMarginal) Backward(double[] stats, double[] marginal, double[] epsilon, double[] dZ,
        int rows, int latent, double klWeight)
    {
        var dStats = RankOneReference.Backward(stats, epsilon, dZ, rows, latent, klWeight: 0);
        var dMarginal = new double[2 * latent];
        var precision = Enumerable.Range(0, latent).Select(k => Math.Exp(-marginal[latent + k])).ToArray();
        for (int row = 0; row < rows; row++)
        {
            var (mu, d, u) = RankOneReference.Parts(stats, row, latent);
            var a = Enumerable.Range(0, latent).Select(k => u[k] / d[k]).ToArray();
            double s = Enumerable.Range(0, latent).Sum(k => u[k] * a[k]), eta = 1 / (1 + s);
            double klBySum = 0.5 * (eta * eta * Enumerable.Range(0, latent).Sum(k => precision[k] * a[k] * a[k]) + eta);
            int at = row * 3 * latent;
            for (int k = 0; k < latent; k++)
            {
                double difference = mu[k] - marginal[k], variance = 1 / d[k] - eta * a[k] * a[k];
                dStats[at + k] += klWeight * precision[k] * difference;
                dStats[at + latent + k] += klWeight * (0.5 * (1 - precision[k] / d[k]) + eta * precision[k] * a[k] * a[k] - klBySum * u[k] * a[k]);
                dStats[at + 2 * latent + k] += klWeight * (-eta * precision[k] * a[k] / d[k] + klBySum * 2 * a[k]);
                dMarginal[k] -= klWeight * precision[k] * difference;
                dMarginal[latent + k] += klWeight * 0.5 * (1 - precision[k] * (variance + difference * difference));
            }
        }
        return (dStats, dMarginal);
    }
}
