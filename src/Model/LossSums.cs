namespace IlgpuVae.Model;

/// <summary>
/// Running sums of the loss terms since the last reset. With k samples per example, Examples counts z rows, so
/// the means are averages over samples too. Objectives that are not rec + β·KL per row (the IWAE's −L_k, the
/// InfoVAE's rec + β·KL + λ·MMD²) also sum their value per example in Objective over ObjectiveExamples.
/// </summary>
public readonly record struct LossSums(double Reconstruction, double Kl, double Examples, double Beta,
    double Objective = 0, double ObjectiveExamples = 0, double Correct = 0)
{
    public double MeanReconstruction => Examples > 0 ? Reconstruction / Examples : double.NaN;
    public double MeanKl => Examples > 0 ? Kl / Examples : double.NaN;
    /// <summary>Mean loss per example: the objective where one is summed (IWAE, InfoVAE), else reconstruction +
    /// β·KL (the negative ELBO when β = 1).</summary>
    public double MeanLoss => ObjectiveExamples > 0 ? Objective / ObjectiveExamples : MeanReconstruction + Beta * MeanKl;

    /// <summary>As stored on the device and in checkpoints.</summary>
    /// <summary>The Deep VIB's classification error over the rows seen.</summary>
    public double ErrorRate => Examples > 0 ? 1 - Correct / Examples : double.NaN;

    public double[] ToArray() => [Reconstruction, Kl, Examples, Objective, ObjectiveExamples, Correct];

    public static LossSums FromArray(double[] values, double beta) =>
        new(values[0], values[1], values[2], beta, values.Length > 3 ? values[3] : 0, values.Length > 4 ? values[4] : 0,
            values.Length > 5 ? values[5] : 0);
}
