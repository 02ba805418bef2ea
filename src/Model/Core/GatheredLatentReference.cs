using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Model.Core;

/// <summary>
/// The codes of a <see cref="GatheredGaussianModel"/> in double: each head's blocks (μ, log σ², and u with a rank-one
/// covariance) gathered into one row per example, then the diagonal Gaussian's sampler, KL, log w and backward pass
/// (<see cref="LossReference"/>) or the rank-one posterior's (<see cref="RankOneReference"/>) on the whole row.
/// </summary>
public static class GatheredLatentReference
{
    private static bool RankOne(VaeConfig config) => config.Covariance == CovarianceKind.RankOne;

    /// <summary>Puts a head's rows [rows, parts·width] into <paramref name="stats"/> [rows, parts·statsWidth], block p
    /// at column p·statsWidth + <paramref name="column"/>.</summary>
    public static void Gather(double[] head, int width, double[] stats, int statsWidth, int column, int rows, int parts)
    {
        for (int r = 0; r < rows; r++)
            for (int part = 0; part < parts; part++)
                Array.Copy(head, (r * parts + part) * width, stats, (r * parts + part) * statsWidth + column, width);
    }

    /// <summary>The adjoint of <see cref="Gather"/>: a head's rows taken back out of the gathered ones.</summary>
    public static double[] Scatter(double[] stats, int statsWidth, int column, int width, int rows, int parts)
    {
        var head = new double[rows * parts * width];
        for (int r = 0; r < rows; r++)
            for (int part = 0; part < parts; part++)
                Array.Copy(stats, (r * parts + part) * statsWidth + column, head, (r * parts + part) * width, width);
        return head;
    }

    /// <summary>z and the closed-form KL per row from the (repeated) gathered rows.</summary>
    public static (double[] Z, double[] Kl) Sample(VaeConfig config, double[] repeatedStats, double[] epsilon, int rows, int width) =>
        RankOne(config) ? RankOneReference.Forward(repeatedStats, epsilon, rows, width) : LossReference.ReparameterizeForward(repeatedStats, epsilon, rows, width);

    public static double[] LogWeights(VaeConfig config, double[] repeatedStats, double[] z, double[] epsilon, double[] reconstructionPerRow, int rows, int width) =>
        RankOne(config) ? RankOneReference.LogWeights(repeatedStats, z, reconstructionPerRow, rows, width)
            : LossReference.LogWeights(repeatedStats, z, epsilon, reconstructionPerRow, rows, width);

    /// <summary>d loss / d the repeated rows, from d loss / dz and the KL weight per row.</summary>
    public static double[] Backward(VaeConfig config, double[] repeatedStats, double[] epsilon, double[] dZ, int rows, int width, double klWeight) =>
        RankOne(config) ? RankOneReference.Backward(repeatedStats, epsilon, dZ, rows, width, klWeight)
            : LossReference.ReparameterizeBackward(repeatedStats, epsilon, dZ, rows, width, klWeight);
}
