using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>What the mutual autoencoder's information step needs besides its buffers: B generated rows, K latent
/// dimensions, the target M, the weight C, and H(z) of the prior N(0, I), (K/2)·log(2πe).</summary>
public readonly struct MutualShape
{
    public readonly int Rows, Latent;
    public readonly float Target, Weight, PriorEntropy;

    public MutualShape(int rows, int latent, float target, float weight)
    {
        Rows = rows;
        Latent = latent;
        Target = target;
        Weight = weight;
        PriorEntropy = 0.5f * latent * MathF.Log(2f * MathF.PI * MathF.E);
    }
}

/// <summary>
/// The mutual autoencoder's information term (Phuong et al. 2018): B pairs (z, x) drawn from the model, z ~ N(0, I)
/// and x ~ p_θ(x|z) (x = f(z) + √c·ξ for the Gaussian decoder, Bernoulli draws of sigmoid(logits) otherwise), scored
/// by a Gaussian r_w(z|x); Î = H(z) + mean log r_w(z|x) bounds I_p(x; z) from below. The training loss adds
/// C·|Î − M| for θ and −mean log r_w for w. The device keeps [Î, C·sign(Î − M), Σ log r] in a small buffer that the
/// gradient kernels read, so no step waits on the host. Through x, θ's gradient is the pathwise one for the
/// Gaussian decoder and REINFORCE with a leave-one-out baseline for the Bernoulli one.
/// </summary>
public static class MutualInformation
{
    /// <summary>x [rows, features] drawn from the decoder's output: Gaussian means plus √c·N(0, 1), or Bernoulli
    /// draws with probability sigmoid(logit), from Philox keyed by <paramref name="key"/> and the element.</summary>
    public static void SampleObservations(this KernelSet kernels, ArrayView<float> output, ArrayView<float> x, bool bernoulli,
        float noiseScale, DrawKey key) =>
        kernels.Launch(SampleKernel, (int)output.Length, output, x, bernoulli ? 1 : 0, noiseScale, key);

    /// <summary>log r(z|x) per row, from r's stats [rows, 2K] = [μ | log σ²], 2π included.</summary>
    public static void GaussianLogDensityRows(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> logDensity,
        int rows, int latent) =>
        kernels.Launch(LogDensityKernel, rows, stats, z, logDensity, latent);

    /// <summary>[Î, C·sign(Î − M), Σ log r] into <paramref name="information"/> (one thread: the rows in order).</summary>
    public static void MutualInformationStep(this KernelSet kernels, ArrayView<float> logDensity, ArrayView<float> information, MutualShape shape) =>
        kernels.Launch(StepKernel, 1, logDensity, information, shape);

    /// <summary>d(−mean log r)/d r's stats [rows, 2K].</summary>
    public static void NegativeLogDensityGradient(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> dStats,
        int rows, int latent) =>
        kernels.Launch(DensityGradientKernel, rows, stats, z, dStats, rows, latent);

    /// <summary>Gaussian decoder: d(C|Î − M|)/d means = −C·sign(Î − M)·d(−mean log r)/dx (x = means + noise).</summary>
    public static void MutualPathwiseGradient(this KernelSet kernels, ArrayView<float> dX, ArrayView<float> information, ArrayView<float> dOutput) =>
        kernels.Launch(PathwiseKernel, (int)dX.Length, dX, information, dOutput);

    /// <summary>Bernoulli decoder: d(C|Î − M|)/d logits by REINFORCE, C·sign(Î − M)/B·(log r_i − b_i)(x − sigmoid(logit))
    /// with b_i the mean log r of the other rows.</summary>
    public static void MutualReinforceGradient(this KernelSet kernels, ArrayView<float> logits, ArrayView<float> x, ArrayView<float> logDensity,
        ArrayView<float> information, ArrayView<float> dOutput, MutualShape shape) =>
        kernels.Launch(ReinforceKernel, (int)logits.Length, logits, x, logDensity, information, dOutput, shape);

    private static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    [Kernel]
    public static void SampleKernel(Index1D element, ArrayView<float> output, ArrayView<float> x, int bernoulli, float noiseScale, DrawKey key) =>
        x[element] = bernoulli != 0
            ? (Philox.Uniform(key.Seed, key.Stream, key.Step, element) < Sigmoid(output[element]) ? 1f : 0f)
            : output[element] + noiseScale * Philox.Normal(key.Seed, key.Stream, key.Step, element);

    [Kernel]
    public static void LogDensityKernel(Index1D row, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> logDensity, int latent)
    {
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float logVariance = stats[row * 2 * latent + latent + k], difference = z[row * latent + k] - stats[row * 2 * latent + k];
            sum += 1.8378770664093453f + logVariance + difference * difference * MathF.Exp(-logVariance);
        }
        logDensity[row] = -0.5f * sum;
    }

    [Kernel]
    public static void StepKernel(Index1D index, ArrayView<float> logDensity, ArrayView<float> information, MutualShape shape)
    {
        float sum = 0f;
        for (int row = 0; row < shape.Rows; row++)
            sum += logDensity[row];
        float estimate = shape.PriorEntropy + sum / shape.Rows, gap = estimate - shape.Target;
        information[0] = estimate;
        information[1] = gap > 0f ? shape.Weight : gap < 0f ? -shape.Weight : 0f;
        information[2] = sum;
    }

    [Kernel]
    public static void DensityGradientKernel(Index1D row, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> dStats, int rows, int latent)
    {
        for (int k = 0; k < latent; k++)
        {
            int at = row * 2 * latent;
            float precision = MathF.Exp(-stats[at + latent + k]), difference = z[row * latent + k] - stats[at + k];
            dStats[at + k] = -difference * precision / rows;
            dStats[at + latent + k] = 0.5f * (1f - difference * difference * precision) / rows;
        }
    }

    [Kernel]
    public static void PathwiseKernel(Index1D element, ArrayView<float> dX, ArrayView<float> information, ArrayView<float> dOutput) =>
        dOutput[element] = -information[1] * dX[element];

    [Kernel]
    public static void ReinforceKernel(Index1D element, ArrayView<float> logits, ArrayView<float> x, ArrayView<float> logDensity,
        ArrayView<float> information, ArrayView<float> dOutput, MutualShape shape)
    {
        int features = (int)(logits.Length / shape.Rows), row = element / features;
        float baseline = shape.Rows > 1 ? (information[2] - logDensity[row]) / (shape.Rows - 1) : 0f;
        dOutput[element] = information[1] / shape.Rows * (logDensity[row] - baseline) * (x[element] - Sigmoid(logits[element]));
    }
}
