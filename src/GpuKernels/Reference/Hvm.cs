namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// The hierarchical variational model's terms in double (see <see cref="Hvm"/>), written from the densities with
/// their 2π terms: log q(z|λ) = log N(z; λ, τ²), log r(λ|z) = log N(λ; a, b²), log p(z) = log N(z; 0, I), and the
/// flow's log q(λ|x) − log N(λ; 0, I) given; their gradients by the chain rule through z = λ + τε₂.
/// </summary>
public static class HvmReference
{
    private static double LogNormal(double value, double mean, double logVariance) =>
        -0.5 * (Math.Log(2 * Math.PI) + logVariance + (value - mean) * (value - mean) / Math.Exp(logVariance));

    /// <summary>z = λ + exp(½ log τ²)·ε₂ per element.</summary>
    public static double[] Sample(double[] lambda, double[] logTau, double[] epsilon, int latent) =>
        lambda.Select((value, element) => value + Math.Exp(0.5 * logTau[element % latent]) * epsilon[element]).ToArray();

    /// <summary>Per row: flowKl + log N(λ; 0, I) − log p(z) + log q(z|λ) − log r(λ|z), i.e. log q(λ|x) + log q(z|λ) −
    /// log r(λ|z) − log p(z).</summary>
    public static double[] Kl(double[] flowKl, double[] lambda, double[] z, double[] logTau, double[] rStats, int rows, int latent) =>
        Enumerable.Range(0, rows).Select(row => flowKl[row] + Enumerable.Range(0, latent).Sum(k =>
        {
            int at = row * latent + k;
            return LogNormal(lambda[at], 0, 0) - LogNormal(z[at], 0, 0) + LogNormal(z[at], lambda[at], logTau[k])
                - LogNormal(lambda[at], rStats[row * 2 * latent + k], rStats[row * 2 * latent + latent + k]);
        })).ToArray();

    /// <summary>
    /// For f = Σ dZ·z + w·Σ_rows (Kl − flowKl) with z = λ + τε₂ and r's stats as free inputs: d f/d λ, d f/d log τ²
    /// and d f/d r's stats. ∂/∂z of −log p(z) is z; of log q(z|λ) at fixed ε₂ nothing through z, −½ through log τ²;
    /// of −log r(λ|z): (λ − a)/b² by λ, [−(λ − a)/b² | ½(1 − (λ − a)²/b²)] by r's stats; log N(λ; 0, I) gives −λ.
    /// </summary>
    public static (double[] DLambda, double[] DLogTau, double[] DRStats) Backward(double[] lambda, double[] z, double[] epsilon, double[] logTau,
        double[] rStats, double[] dZ, int rows, int latent, double weight)
    {
        var dLambda = new double[rows * latent];
        var dLogTau = new double[latent];
        var dRStats = new double[rows * 2 * latent];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                int at = row * latent + k;
                double a = rStats[row * 2 * latent + k], variance = Math.Exp(rStats[row * 2 * latent + latent + k]), gap = lambda[at] - a;
                double g = dZ[at] + weight * z[at];
                dLambda[at] = g + weight * gap / variance - weight * lambda[at];
                dLogTau[k] += g * 0.5 * Math.Exp(0.5 * logTau[k]) * epsilon[at] - 0.5 * weight;
                dRStats[row * 2 * latent + k] = -weight * gap / variance;
                dRStats[row * 2 * latent + latent + k] = 0.5 * weight * (1 - gap * gap / variance);
            }
        return (dLambda, dLogTau, dRStats);
    }
}
