namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// A Gaussian q(z|x) against the mixture prior p(z) = (1/C) Σ_c N(z; μ_c, σ_c²), in double and written from the
/// densities themselves (2π included, so nothing relies on the kernel's cancellations): the sampled KL term
/// log q(z|x) − log p(z) at z = μ + σε, and its gradients through z, μ, log σ² and every component's μ_c, log σ_c²
/// (see <see cref="MixturePrior"/>).
/// </summary>
public static class MixturePriorReference
{
    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);

    /// <summary>log N(z; mean, exp(logVariance)) of one latent dimension.</summary>
    private static double LogNormal(double z, double mean, double logVariance) =>
        -0.5 * (LogTwoPi + logVariance + (z - mean) * (z - mean) / Math.Exp(logVariance));

    /// <summary>Each component's log density at one z row, and log p(z) = log (1/C) Σ_c exp(that).</summary>
    private static (double[] PerComponent, double LogPrior) LogPrior(double[] components, double[] z, int at, int latent, int count)
    {
        var perComponent = new double[count];
        for (int c = 0; c < count; c++)
            for (int k = 0; k < latent; k++)
                perComponent[c] += LogNormal(z[at + k], components[c * 2 * latent + k], components[c * 2 * latent + latent + k]);
        double largest = perComponent.Max();
        return (perComponent, largest + Math.Log(perComponent.Sum(value => Math.Exp(value - largest))) - Math.Log(count));
    }

    /// <summary>z per row (one stats row per z row) and its KL term log q(z|x) − log p(z).</summary>
    public static (double[] Z, double[] Kl) Forward(double[] stats, double[] components, double[] epsilon, int rows, int latent, int count)
    {
        var z = new double[rows * latent];
        var kl = new double[rows];
        for (int row = 0; row < rows; row++)
        {
            double logQ = 0;
            for (int k = 0; k < latent; k++)
            {
                double mean = stats[row * 2 * latent + k], logVariance = stats[row * 2 * latent + latent + k];
                z[row * latent + k] = mean + Math.Exp(logVariance / 2) * epsilon[row * latent + k];
                logQ += LogNormal(z[row * latent + k], mean, logVariance);
            }
            kl[row] = logQ - LogPrior(components, z, row * latent, latent, count).LogPrior;
        }
        return (z, kl);
    }

    /// <summary>
    /// d loss / d stats per row and d loss / d components for loss = Σ dZ·z + klWeight·Σ_rows KL (or, with
    /// <paramref name="rowWeights"/>, klWeight·Σ_rows rowWeights[row]·KL: the importance-weighted bound). With z = μ + σε:
    /// ∂KL/∂z = −∂log p/∂z = Σ_c p(c|z)(z − μ_c)/σ_c², and ∂log q/∂log σ² = −½ at fixed ε (log q(z|x) is
    /// −½Σ(log 2π + log σ² + ε²) there); ∂KL/∂μ_c = −p(c|z)(z − μ_c)/σ_c², ∂KL/∂log σ_c² = p(c|z)·½(1 − (z − μ_c)²/σ_c²).
    /// </summary>
    public static (double[] DStats, double[] DComponents) Backward(double[] stats, double[] components, double[] epsilon,
        double[] dZ, int rows, int latent, int count, double klWeight, double[]? rowWeights = null)
    {
        var (z, _) = Forward(stats, components, epsilon, rows, latent, count);
        var dStats = new double[rows * 2 * latent];
        var dComponents = new double[count * 2 * latent];
        for (int row = 0; row < rows; row++)
        {
            var (perComponent, logPrior) = LogPrior(components, z, row * latent, latent, count);
            // p(c|z) = (1/C) N_c(z) / p(z).
            var responsibility = perComponent.Select(value => Math.Exp(value - Math.Log(count) - logPrior)).ToArray();
            double weight = klWeight * (rowWeights?[row] ?? 1);
            for (int k = 0; k < latent; k++)
            {
                double code = z[row * latent + k], dCode = dZ[row * latent + k];
                for (int c = 0; c < count; c++)
                {
                    double mean = components[c * 2 * latent + k], variance = Math.Exp(components[c * 2 * latent + latent + k]);
                    double difference = code - mean;
                    dCode += weight * responsibility[c] * difference / variance;
                    dComponents[c * 2 * latent + k] -= weight * responsibility[c] * difference / variance;
                    dComponents[c * 2 * latent + latent + k] += weight * responsibility[c] * 0.5 * (1 - difference * difference / variance);
                }
                double sigma = Math.Exp(stats[row * 2 * latent + latent + k] / 2);
                dStats[row * 2 * latent + k] = dCode;
                dStats[row * 2 * latent + latent + k] = dCode * 0.5 * sigma * epsilon[row * latent + k] - 0.5 * weight;
            }
        }
        return (dStats, dComponents);
    }
}
