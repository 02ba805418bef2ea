namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The Ladder VAE's precision-weighted merge in double precision, written with precisions and
/// variances as in the paper rather than through the kernels' sigmoid and softplus (and, for rank-one posteriors,
/// with the precision matrices built whole).</summary>
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

    /// <summary>
    /// The rank-one merge (see <see cref="LadderRankOne"/>) from the matrices: P̂ = D̂ + ûûᵀ and P = P̂ + Dp built
    /// whole, μq = P⁻¹(P̂μ̂ + Dp μp) by a Cholesky solve; the row [μq | log(d̂ + e^(−vp)) | û]. bottomUp [examples, 3K],
    /// topDown [examples·samples, 2K].
    /// </summary>
    public static double[] RankOneMerge(double[] bottomUp, double[] topDown, int rows, int latent, int samples)
    {
        var merged = new double[rows * 3 * latent];
        for (int row = 0; row < rows; row++)
        {
            int up = row / samples * 3 * latent, down = row * 2 * latent, at = row * 3 * latent;
            var precision = new double[latent, latent];
            var right = new double[latent];
            for (int i = 0; i < latent; i++)
            {
                double priorPrecision = Math.Exp(-topDown[down + latent + i]);
                for (int j = 0; j < latent; j++)
                {
                    double upPrecision = (i == j ? Math.Exp(bottomUp[up + latent + i]) : 0) + bottomUp[up + 2 * latent + i] * bottomUp[up + 2 * latent + j];
                    precision[i, j] = upPrecision + (i == j ? priorPrecision : 0);
                    right[i] += upPrecision * bottomUp[up + j];
                }
                right[i] += priorPrecision * topDown[down + i];
            }
            var mean = RankOneReference.Solve(precision, right);
            for (int k = 0; k < latent; k++)
            {
                merged[at + k] = mean[k];
                merged[at + latent + k] = Math.Log(Math.Exp(bottomUp[up + latent + k]) + Math.Exp(-topDown[down + latent + k]));
                merged[at + 2 * latent + k] = bottomUp[up + 2 * latent + k];
            }
        }
        return merged;
    }

    /// <summary>The rank-one merge's backward pass in double by the chain rule through μq = P⁻¹b (∂/∂b = y = P⁻¹gμ,
    /// ∂/∂P = −yμqᵀ; see <see cref="LadderRankOne.MergeBackwardKernel"/>), y solved from the matrix: d/d bottomUp
    /// summed over each example's samples, d/d topDown per row.</summary>
    public static (double[] DBottomUp, double[] DTopDown) RankOneMergeBackward(double[] bottomUp, double[] topDown, double[] dMerged,
        int rows, int latent, int samples)
    {
        var dBottomUp = new double[bottomUp.Length];
        var dTopDown = new double[topDown.Length];
        var merged = RankOneMerge(bottomUp, topDown, rows, latent, samples);
        for (int row = 0; row < rows; row++)
        {
            int up = row / samples * 3 * latent, down = row * 2 * latent, at = row * 3 * latent;
            var precision = new double[latent, latent];
            for (int i = 0; i < latent; i++)
                for (int j = 0; j < latent; j++)
                    precision[i, j] = (i == j ? Math.Exp(bottomUp[up + latent + i]) + Math.Exp(-topDown[down + latent + i]) : 0)
                        + bottomUp[up + 2 * latent + i] * bottomUp[up + 2 * latent + j];
            var y = RankOneReference.Solve(precision, dMerged[at..(at + latent)]);
            var u = bottomUp[(up + 2 * latent)..(up + 3 * latent)];
            var muHat = bottomUp[up..(up + latent)];
            var muQ = merged[at..(at + latent)];
            double uY = Enumerable.Range(0, latent).Sum(k => u[k] * y[k]);
            double uGap = Enumerable.Range(0, latent).Sum(k => u[k] * (muHat[k] - muQ[k]));
            for (int k = 0; k < latent; k++)
            {
                double dHat = Math.Exp(bottomUp[up + latent + k]), priorPrecision = Math.Exp(-topDown[down + latent + k]);
                double byDiagonal = dMerged[at + latent + k] / (dHat + priorPrecision) - y[k] * muQ[k];
                dBottomUp[up + k] += dHat * y[k] + u[k] * uY;
                dBottomUp[up + latent + k] += dHat * (y[k] * muHat[k] + byDiagonal);
                dBottomUp[up + 2 * latent + k] += dMerged[at + 2 * latent + k] + y[k] * uGap + (muHat[k] - muQ[k]) * uY;
                dTopDown[down + k] += priorPrecision * y[k];
                dTopDown[down + latent + k] -= priorPrecision * (y[k] * topDown[down + k] + byDiagonal);
            }
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

    /// <summary>Raw [rows, 2K] = [μ | ρ] to [μ | log σ²] with σ² = softplus(ρ); with <paramref name="rankOne"/>, a
    /// rank-one head's [μ | ρ | u] to [μ | log d | u] with 1/d = softplus(ρ).</summary>
    public static double[] SoftplusVariance(double[] raw, int rows, int latent, bool rankOne = false)
    {
        int blocks = rankOne ? 3 : 2;
        var stats = (double[])raw.Clone();
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < latent; k++)
            {
                double logSoftplus = Math.Log(Softplus(raw[r * blocks * latent + latent + k]));
                stats[r * blocks * latent + latent + k] = rankOne ? -logSoftplus : logSoftplus;
            }
        return stats;
    }

    /// <summary>d/d[μ | ρ] from d/d[μ | log σ²]: d log softplus(ρ)/dρ = sigmoid(ρ)/softplus(ρ) (negated for a
    /// rank-one row's log d).</summary>
    public static double[] SoftplusVarianceBackward(double[] raw, double[] dStats, int rows, int latent, bool rankOne = false)
    {
        int blocks = rankOne ? 3 : 2;
        var dRaw = (double[])dStats.Clone();
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < latent; k++)
            {
                int index = r * blocks * latent + latent + k;
                dRaw[index] *= (rankOne ? -1 : 1) * StableMath.Sigmoid(raw[index]) / Softplus(raw[index]);
            }
        return dRaw;
    }

    /// <summary>
    /// log w per z row of a Ladder VAE with L layers: −rec + Σ_{l&lt;L} [log p(z_l|z_{l+1}) − log q(z_l|·)] +
    /// log N(z_L; 0, I) − log q(z_L|x), every Gaussian in full with its log 2π. <paramref name="rowStats"/>[l] is
    /// layer l+1's q per z row (the merged ones, and the top's repeated per sample), <paramref name="priorStats"/>[l]
    /// p(z_{l+1}|z_{l+2})'s output for l &lt; L − 1.
    /// </summary>
    public static double[] LogWeights(double[][] rowStats, double[][] z, double[][] priorStats, double[] reconstructionPerRow, int rows,
        bool rankOne = false)
    {
        int layers = z.Length;
        var logWeights = new double[rows];
        // Rank-one q's: log N(z; μ, C) from C's Cholesky factor, per layer.
        var rankOneLogQ = rankOne
            ? Enumerable.Range(0, layers).Select(l => RankOneReference.LogDensity(rowStats[l], z[l], rows, z[l].Length / rows)).ToArray()
            : null;
        for (int r = 0; r < rows; r++)
        {
            double sum = -reconstructionPerRow[r];
            for (int l = 0; l < layers; l++)
            {
                int width = z[l].Length / rows;
                if (rankOneLogQ is not null)
                    sum -= rankOneLogQ[l][r];
                for (int k = 0; k < width; k++)
                {
                    double value = z[l][r * width + k];
                    if (rankOneLogQ is null)
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
