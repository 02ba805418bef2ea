namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The terms of the two-stochastic-layer model in double precision (see <see cref="TwoLayer"/>), each
/// Gaussian written out in full with its log 2π, where the kernels use the cancelled form.</summary>
public static class TwoLayerReference
{
    public static double LogNormal(double value, double mean, double logVariance) =>
        -0.5 * (Math.Log(2 * Math.PI) + logVariance + (value - mean) * (value - mean) / Math.Exp(logVariance));

    /// <summary>log w = log p(x|z1) + log p(z1|z2) + log p(z2) − log q(z1|x) − log q(z2|z1) per row; stats1 is
    /// already repeated once per sample (one row per z row).</summary>
    public static double[] LogWeights(double[] repeatedStats1, double[] z1, double[] stats2, double[] z2, double[] priorStats,
        double[] reconstructionPerRow, int rows, int k1, int k2)
    {
        var logWeights = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = -reconstructionPerRow[r];
            for (int k = 0; k < k1; k++)
            {
                sum += LogNormal(z1[r * k1 + k], priorStats[r * 2 * k1 + k], priorStats[r * 2 * k1 + k1 + k]);
                sum -= LogNormal(z1[r * k1 + k], repeatedStats1[r * 2 * k1 + k], repeatedStats1[r * 2 * k1 + k1 + k]);
            }
            for (int k = 0; k < k2; k++)
            {
                sum += LogNormal(z2[r * k2 + k], 0, 0);
                sum -= LogNormal(z2[r * k2 + k], stats2[r * 2 * k2 + k], stats2[r * 2 * k2 + k2 + k]);
            }
            logWeights[r] = sum;
        }
        return logWeights;
    }

    /// <summary>The gradient of Σ_r c_r·(−log p(z1_r|z2_r)) with respect to the prior network's [m | u] and to z1,
    /// with c_r the row's whole weight.</summary>
    public static (double[] dPriorStats, double[] dZ1) PriorGradient(double[] z1, double[] priorStats, double[] rowWeight, int rows, int k1)
    {
        var dPriorStats = new double[priorStats.Length];
        var dZ1 = new double[z1.Length];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < k1; k++)
            {
                double difference = z1[r * k1 + k] - priorStats[r * 2 * k1 + k];
                double precision = Math.Exp(-priorStats[r * 2 * k1 + k1 + k]);
                dPriorStats[r * 2 * k1 + k] = -rowWeight[r] * difference * precision;
                dPriorStats[r * 2 * k1 + k1 + k] = rowWeight[r] * 0.5 * (1 - difference * difference * precision);
                dZ1[r * k1 + k] = rowWeight[r] * difference * precision;
            }
        return (dPriorStats, dZ1);
    }

    /// <summary>
    /// Gradient with respect to the (repeated) stats of a Gaussian sampler z = μ + σε whose rows also hold
    /// c_r·log q(z|·) = −c_r·½Σ(ε² + v + log 2π), given dZ, the gradient reaching z from everything downstream.
    /// </summary>
    public static double[] SamplerBackward(double[] repeatedStats, double[] epsilon, double[] dZ, double[] rowWeight, int rows, int latent)
    {
        var dStats = LossReference.ReparameterizeBackward(repeatedStats, epsilon, dZ, rows, latent, 0);
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < latent; k++)
                dStats[r * 2 * latent + latent + k] -= 0.5 * rowWeight[r];
        return dStats;
    }
}
