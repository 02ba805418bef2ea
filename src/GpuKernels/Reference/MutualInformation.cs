namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// The mutual autoencoder's information term in double (see <see cref="MutualInformation"/>): log r(z|x) of a
/// Gaussian r per row, Î = H(z) + mean log r with H(z) = (K/2)·log(2πe), the factor C·sign(Î − M), the gradient of
/// −mean log r by r's stats, and the REINFORCE gradient by the logits with the leave-one-out baseline.
/// </summary>
public static class MutualInformationReference
{
    public static double[] LogDensity(double[] stats, double[] z, int rows, int latent) =>
        Enumerable.Range(0, rows).Select(row => Enumerable.Range(0, latent).Sum(k =>
        {
            double logVariance = stats[row * 2 * latent + latent + k], difference = z[row * latent + k] - stats[row * 2 * latent + k];
            return -0.5 * (Math.Log(2 * Math.PI) + logVariance + difference * difference / Math.Exp(logVariance));
        })).ToArray();

    /// <summary>Î and C·sign(Î − M).</summary>
    public static (double Estimate, double Factor) Step(double[] logDensity, int latent, double target, double weight)
    {
        double estimate = 0.5 * latent * Math.Log(2 * Math.PI * Math.E) + logDensity.Average();
        return (estimate, weight * Math.Sign(estimate - target));
    }

    /// <summary>d(−mean log r)/d stats: −(z − μ)/σ²/B and ½(1 − (z − μ)²/σ²)/B.</summary>
    public static double[] NegativeLogDensityGradient(double[] stats, double[] z, int rows, int latent)
    {
        var dStats = new double[rows * 2 * latent];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                double variance = Math.Exp(stats[row * 2 * latent + latent + k]), difference = z[row * latent + k] - stats[row * 2 * latent + k];
                dStats[row * 2 * latent + k] = -difference / variance / rows;
                dStats[row * 2 * latent + latent + k] = 0.5 * (1 - difference * difference / variance) / rows;
            }
        return dStats;
    }

    /// <summary>(factor/B)·(log r_i − b_i)·(x − sigmoid(logit)) per element, b_i = the other rows' mean log r.</summary>
    public static double[] Reinforce(double[] logits, double[] x, double[] logDensity, double factor)
    {
        int rows = logDensity.Length, features = logits.Length / rows;
        double sum = logDensity.Sum();
        return Enumerable.Range(0, logits.Length).Select(element =>
        {
            int row = element / features;
            double baseline = rows > 1 ? (sum - logDensity[row]) / (rows - 1) : 0;
            return factor / rows * (logDensity[row] - baseline) * (x[element] - 1 / (1 + Math.Exp(-logits[element])));
        }).ToArray();
    }
}
