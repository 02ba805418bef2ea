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
}
