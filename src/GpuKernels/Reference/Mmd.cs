namespace IlgpuVae.GpuKernels.Reference;

/// <summary>MMD² between codes and prior draws, and its gradient, in double precision, pair by pair.</summary>
public static class MmdReference
{
    public static double Similarity(MmdKernelKind kind, double squaredDistance, int latent)
    {
        double scale = 2.0 * latent;
        return kind == MmdKernelKind.Gaussian ? Math.Exp(-squaredDistance / scale) : scale / (scale + squaredDistance);
    }

    private static double SquaredDistance(double[] a, int i, double[] b, int j, int latent)
    {
        double sum = 0;
        for (int k = 0; k < latent; k++)
            sum += (a[i * latent + k] - b[j * latent + k]) * (a[i * latent + k] - b[j * latent + k]);
        return sum;
    }

    /// <summary>The V-statistic (1/B²) Σ_ij [k(z_i, z_j) + k(p_i, p_j) − 2 k(z_i, p_j)].</summary>
    public static double Squared(MmdKernelKind kind, double[] z, double[] prior, int rows, int latent)
    {
        double sum = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < rows; j++)
                sum += Similarity(kind, SquaredDistance(z, i, z, j, latent), latent)
                       + Similarity(kind, SquaredDistance(prior, i, prior, j, latent), latent)
                       - 2 * Similarity(kind, SquaredDistance(z, i, prior, j, latent), latent);
        return sum / ((double)rows * rows);
    }

    /// <summary>∂MMD²/∂z, differentiating every pair's kernel value directly (the kernel folds the symmetric
    /// pairs; this sums over both orders).</summary>
    public static double[] Gradient(MmdKernelKind kind, double[] z, double[] prior, int rows, int latent)
    {
        double scale = 2.0 * latent;
        double Slope(double squaredDistance) => kind == MmdKernelKind.Gaussian
            ? -Math.Exp(-squaredDistance / scale) / scale
            : -scale / ((scale + squaredDistance) * (scale + squaredDistance));
        var gradient = new double[z.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < rows; j++)
                for (int k = 0; k < latent; k++)
                {
                    // k(z_i, z_j): both z_i and z_j move.
                    double pair = Slope(SquaredDistance(z, i, z, j, latent)) * 2 * (z[i * latent + k] - z[j * latent + k]);
                    gradient[i * latent + k] += pair / ((double)rows * rows);
                    gradient[j * latent + k] -= pair / ((double)rows * rows);
                    // −2 k(z_i, p_j): only z_i moves.
                    gradient[i * latent + k] -= 2 * Slope(SquaredDistance(z, i, prior, j, latent)) * 2
                                                * (z[i * latent + k] - prior[j * latent + k]) / ((double)rows * rows);
                }
        return gradient;
    }
}
