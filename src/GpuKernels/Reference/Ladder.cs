namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The Ladder VAE's precision-weighted merge in double precision, written with precisions and
/// variances as in the paper rather than through the kernels' sigmoid and softplus.</summary>
public static class LadderReference
{
    /// <summary>bottomUp [examples, 2K], topDown [examples·samples, 2K] → merged [examples·samples, 2K].</summary>
    public static double[] Merge(double[] bottomUp, double[] topDown, int rows, int latent, int samples)
    {
        var merged = new double[rows * 2 * latent];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                int up = row / samples * 2 * latent + k, down = row * 2 * latent + k;
                double precisionUp = Math.Exp(-bottomUp[up + latent]), precisionDown = Math.Exp(-topDown[down + latent]);
                double precision = precisionUp + precisionDown;
                merged[down] = (bottomUp[up] * precisionUp + topDown[down] * precisionDown) / precision;
                merged[down + latent] = -Math.Log(precision);
            }
        return merged;
    }

    /// <summary>The merge's backward pass by the chain rule on the precision form: d/d bottomUp (summed over each
    /// example's samples) and d/d topDown (this term alone).</summary>
    public static (double[] DBottomUp, double[] DTopDown) MergeBackward(double[] bottomUp, double[] topDown, double[] dMerged,
        int rows, int latent, int samples)
    {
        var dBottomUp = new double[bottomUp.Length];
        var dTopDown = new double[topDown.Length];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                int up = row / samples * 2 * latent + k, down = row * 2 * latent + k;
                double precisionUp = Math.Exp(-bottomUp[up + latent]), precisionDown = Math.Exp(-topDown[down + latent]);
                double precision = precisionUp + precisionDown;
                double mean = (bottomUp[up] * precisionUp + topDown[down] * precisionDown) / precision;
                double dMean = dMerged[down], dLogVariance = dMerged[down + latent];
                // μq = (μ̂P̂ + μpPp)/P and vq = −log P, with P = P̂ + Pp, dP̂/dv̂ = −P̂ and dPp/dvp = −Pp.
                dBottomUp[up] += dMean * precisionUp / precision;
                dTopDown[down] += dMean * precisionDown / precision;
                double dMeanDPrecisionUp = (bottomUp[up] - mean) / precision;
                double dMeanDPrecisionDown = (topDown[down] - mean) / precision;
                double dLogVarianceDPrecision = -1 / precision;
                dBottomUp[up + latent] += (dMean * dMeanDPrecisionUp + dLogVariance * dLogVarianceDPrecision) * -precisionUp;
                dTopDown[down + latent] += (dMean * dMeanDPrecisionDown + dLogVariance * dLogVarianceDPrecision) * -precisionDown;
            }
        return (dBottomUp, dTopDown);
    }

    /// <summary>softplus(x) = log(1 + e^x) in double, with log(1 + u) for small u taken from its series so that
    /// a variance far below 1 keeps its digits.</summary>
    public static double Softplus(double x)
    {
        double u = Math.Exp(-Math.Abs(x));
        double logOnePlusU = u < 1e-4 ? u - u * u / 2 + u * u * u / 3 : Math.Log(1 + u);
        return Math.Max(x, 0) + logOnePlusU;
    }

    /// <summary>Raw [rows, 2K] = [μ | ρ] to [μ | log σ²] with σ² = softplus(ρ).</summary>
    public static double[] SoftplusVariance(double[] raw, int rows, int latent)
    {
        var stats = (double[])raw.Clone();
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < latent; k++)
                stats[r * 2 * latent + latent + k] = Math.Log(Softplus(raw[r * 2 * latent + latent + k]));
        return stats;
    }

    /// <summary>d/d[μ | ρ] from d/d[μ | log σ²]: d log softplus(ρ)/dρ = sigmoid(ρ)/softplus(ρ).</summary>
    public static double[] SoftplusVarianceBackward(double[] raw, double[] dStats, int rows, int latent)
    {
        var dRaw = (double[])dStats.Clone();
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < latent; k++)
            {
                int index = r * 2 * latent + latent + k;
                dRaw[index] *= StableMath.Sigmoid(raw[index]) / Softplus(raw[index]);
            }
        return dRaw;
    }

    /// <summary>
    /// log w per z row of a Ladder VAE with L layers: −rec + Σ_{l&lt;L} [log p(z_l|z_{l+1}) − log q(z_l|·)] +
    /// log N(z_L; 0, I) − log q(z_L|x), every Gaussian in full with its log 2π. <paramref name="rowStats"/>[l] is
    /// layer l+1's q per z row (the merged ones, and the top's repeated per sample), <paramref name="priorStats"/>[l]
    /// p(z_{l+1}|z_{l+2})'s output for l &lt; L − 1.
    /// </summary>
    public static double[] LogWeights(double[][] rowStats, double[][] z, double[][] priorStats, double[] reconstructionPerRow, int rows)
    {
        int layers = z.Length;
        var logWeights = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = -reconstructionPerRow[r];
            for (int l = 0; l < layers; l++)
            {
                int width = z[l].Length / rows;
                for (int k = 0; k < width; k++)
                {
                    double value = z[l][r * width + k];
                    sum -= TwoLayerReference.LogNormal(value, rowStats[l][r * 2 * width + k], rowStats[l][r * 2 * width + width + k]);
                    sum += l < layers - 1
                        ? TwoLayerReference.LogNormal(value, priorStats[l][r * 2 * width + k], priorStats[l][r * 2 * width + width + k])
                        : TwoLayerReference.LogNormal(value, 0, 0);
                }
            }
            logWeights[r] = sum;
        }
        return logWeights;
    }
}
