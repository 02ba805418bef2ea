namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// Auto-encoding CorEx's KL against a learned factorized marginal r(z) = Π_j N(m_j, s_j²), in double (see
/// <see cref="FactorizedPrior"/>): one stats row per z row, the per-dimension KL in closed form, its gradients with
/// each dimension's weight, and log w from the densities themselves (2π included).
/// </summary>
public static class FactorizedPriorReference
{
    /// <summary>KL(N(μ, e^v) ‖ N(m, e^w)) of one dimension.</summary>
    public static double Kl(double mu, double logVariance, double mean, double logMarginal) =>
        0.5 * (logMarginal - logVariance + (Math.Exp(logVariance) + (mu - mean) * (mu - mean)) / Math.Exp(logMarginal) - 1);

    private static double LogNormal(double z, double mean, double logVariance) =>
        -0.5 * (Math.Log(2 * Math.PI) + logVariance + (z - mean) * (z - mean) / Math.Exp(logVariance));

    /// <summary>z per row and the row's Σ_j KL_j (unweighted: the rate).</summary>
    public static (double[] Z, double[] Kl) Forward(double[] stats, double[] marginal, double[] epsilon, int rows, int latent)
    {
        var z = new double[rows * latent];
        var kl = new double[rows];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                double mu = stats[row * 2 * latent + k], logVariance = stats[row * 2 * latent + latent + k];
                z[row * latent + k] = mu + Math.Exp(logVariance / 2) * epsilon[row * latent + k];
                kl[row] += Kl(mu, logVariance, marginal[k], marginal[latent + k]);
            }
        return (z, kl);
    }

    /// <summary>
    /// d loss / d stats per row and d loss / d marginal for loss = Σ dZ·z + klWeight·Σ_rows Σ_j weight_j·KL_j, by the
    /// closed form's derivatives: ∂KL/∂μ = (μ − m)/s², ∂KL/∂log σ² = ½(σ²/s² − 1), ∂KL/∂m = −(μ − m)/s²,
    /// ∂KL/∂log s² = ½(1 − (σ² + (μ − m)²)/s²); and through z = μ + σε.
    /// </summary>
    public static (double[] DStats, double[] DMarginal) Backward(double[] stats, double[] marginal, double[] epsilon, double[] dZ,
        int rows, int latent, double[] weights, double klWeight)
    {
        var dStats = new double[rows * 2 * latent];
        var dMarginal = new double[2 * latent];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                double mu = stats[row * 2 * latent + k], logVariance = stats[row * 2 * latent + latent + k];
                double variance = Math.Exp(logVariance), marginalVariance = Math.Exp(marginal[latent + k]);
                double difference = mu - marginal[k], c = klWeight * weights[k], g = dZ[row * latent + k];
                dStats[row * 2 * latent + k] = g + c * difference / marginalVariance;
                dStats[row * 2 * latent + latent + k] = g * 0.5 * Math.Sqrt(variance) * epsilon[row * latent + k] + c * 0.5 * (variance / marginalVariance - 1);
                dMarginal[k] -= c * difference / marginalVariance;
                dMarginal[latent + k] += c * 0.5 * (1 - (variance + difference * difference) / marginalVariance);
            }
        return (dStats, dMarginal);
    }

    /// <summary>log w = log p(x|z) + log r(z) − log q(z|x) per row.</summary>
    public static double[] LogWeights(double[] stats, double[] marginal, double[] z, double[] reconstructionPerRow, int rows, int latent) =>
        Enumerable.Range(0, rows).Select(row => -reconstructionPerRow[row] + Enumerable.Range(0, latent).Sum(k =>
            LogNormal(z[row * latent + k], marginal[k], marginal[latent + k])
            - LogNormal(z[row * latent + k], stats[row * 2 * latent + k], stats[row * 2 * latent + latent + k]))).ToArray();

    /// <summary>Each dimension's weight: <paramref name="anchorScale"/> for the first <paramref name="anchors"/>, else 1.</summary>
    public static double[] Weights(int latent, int anchors, double anchorScale) =>
        Enumerable.Range(0, latent).Select(k => k < anchors ? anchorScale : 1.0).ToArray();
}
