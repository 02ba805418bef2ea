using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Target-rate training (Alemi et al. 2018, "Fixing a broken ELBO"): minimise D + |σ − R| for a chosen rate σ,
/// with D the batch-mean reconstruction term and R the batch-mean KL. Its gradient is dD + sign(R − σ)·dR, so the
/// KL weight of the step is sign(R − σ)/batch: one thread reads the batch's KL, writes that sign where the
/// sampler's backward pass reads its KL weight factor, and writes each row's objective rec_i + |σ − R| (whose
/// mean is the batch's objective). The host never waits for R.
/// </summary>
public static class TargetRate
{
    /// <summary>Target-rate training's objective per row and KL sign.</summary>
    public static void TargetRateObjective(this KernelSet kernels, ArrayView<float> klPerRow, ArrayView<float> reconstructionPerRow,
        ArrayView<float> objectivePerRow, ArrayView<float> klWeightFactor, int rows, float rate) =>
        kernels.Launch(ObjectiveKernel, 1, klPerRow, reconstructionPerRow, objectivePerRow, klWeightFactor, rows, rate);

    [Kernel]
    public static void ObjectiveKernel(
        Index1D thread,
        ArrayView<float> klPerRow,
        ArrayView<float> reconstructionPerRow,
        ArrayView<float> objectivePerRow,
        ArrayView<float> klWeightFactor,
        int rows,
        float rate)
    {
        float kl = 0f;
        for (int row = 0; row < rows; row++)
            kl += klPerRow[row];
        float meanRate = kl / rows;
        klWeightFactor[0] = meanRate > rate ? 1f : meanRate < rate ? -1f : 0f;
        float gap = MathF.Abs(rate - meanRate);
        for (int row = 0; row < rows; row++)
            objectivePerRow[row] = reconstructionPerRow[row] + gap;
    }
}
