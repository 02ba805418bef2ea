using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// A decoder likelihood as a generic struct parameter: the per-pixel negative log-likelihood and its gradient
/// with respect to the decoder output. Constants that do not depend on the output are added once per row.
/// </summary>
public interface ILikelihood
{
    float NegativeLogLikelihood(float target, float output, float variance);
    float Gradient(float target, float output, float variance);
}

public enum LikelihoodKind
{
    Bernoulli,
    Gaussian,
    /// <summary>Counts: each pixel's grey level × <see cref="DeepExponential.CountScale"/> (its byte) ~ Poisson(rate),
    /// scored by the models that take counts (the DEF's <see cref="DeepExponential.PoissonRateLoss"/>), never by
    /// the kernels here.</summary>
    Poisson,
}

/// <summary>Bernoulli with logits ℓ: −log p = softplus(ℓ) − xℓ, gradient sigmoid(ℓ) − x.</summary>
public readonly struct BernoulliLogits : ILikelihood
{
    public float NegativeLogLikelihood(float target, float output, float variance) =>
        StableMath.Softplus(output) - target * output;

    public float Gradient(float target, float output, float variance) => StableMath.Sigmoid(output) - target;
}

/// <summary>Gaussian N(f, c·I): −log p = (x − f)²/(2c) + ½log(2πc); the constant is added per row.</summary>
public readonly struct GaussianFixedVariance : ILikelihood
{
    public float NegativeLogLikelihood(float target, float output, float variance)
    {
        float difference = target - output;
        return difference * difference / (2f * variance);
    }

    public float Gradient(float target, float output, float variance) => (output - target) / variance;
}

/// <summary>Reconstruction loss fused with its gradient: one pass over the decoder output computes both.</summary>
public static class Reconstruction
{
    /// <summary>Output rows = target rows·samples; output row r is scored against target row r / samples.</summary>
    public static void ReconstructionLossGradient(this KernelSet kernels, LikelihoodKind likelihood, ArrayView<float> target,
        ArrayView<float> output, ArrayView<float> dOutput, ArrayView<float> reconstructionPerRow, int rows, int features,
        ReconstructionParameters parameters, int samples = 1)
    {
        RequireDecoderLikelihood(likelihood);
        if (likelihood == LikelihoodKind.Bernoulli)
            kernels.Launch(LossGradientKernel<BernoulliLogits>, rows, target, output, dOutput, reconstructionPerRow, features, samples, parameters);
        else
            kernels.Launch(LossGradientKernel<GaussianFixedVariance>, rows, target, output, dOutput, reconstructionPerRow, features, samples, parameters);
    }

    public static void ReconstructionLoss(this KernelSet kernels, LikelihoodKind likelihood, ArrayView<float> target, ArrayView<float> output,
        ArrayView<float> reconstructionPerRow, int rows, int features, ReconstructionParameters parameters, int samples = 1)
    {
        RequireDecoderLikelihood(likelihood);
        if (likelihood == LikelihoodKind.Bernoulli)
            kernels.Launch(LossKernel<BernoulliLogits>, rows, target, output, reconstructionPerRow, features, samples, parameters);
        else
            kernels.Launch(LossKernel<GaussianFixedVariance>, rows, target, output, reconstructionPerRow, features, samples, parameters);
    }

    public static void ReconstructionWeightedGradient(this KernelSet kernels, LikelihoodKind likelihood, ArrayView<float> target,
        ArrayView<float> output, ArrayView<float> dOutput, ArrayView<float> rowWeights, int rows, int features,
        ReconstructionParameters parameters, int samples)
    {
        RequireDecoderLikelihood(likelihood);
        if (likelihood == LikelihoodKind.Bernoulli)
            kernels.Launch(WeightedGradientKernel<BernoulliLogits>, rows, target, output, dOutput, rowWeights, features, samples, parameters);
        else
            kernels.Launch(WeightedGradientKernel<GaussianFixedVariance>, rows, target, output, dOutput, rowWeights, features, samples, parameters);
    }

    /// <summary>The decoder likelihoods these kernels score: Bernoulli and Gaussian.</summary>
    private static void RequireDecoderLikelihood(LikelihoodKind likelihood)
    {
        if (likelihood is not (LikelihoodKind.Bernoulli or LikelihoodKind.Gaussian))
            throw new ArgumentException($"the {likelihood} likelihood is scored by the model that takes it, not by a decoder's output");
    }

    /// <summary>
    /// One thread per output row: rec[r] = rowConstant + Σ_j nll(x[r/s,j], out[r,j]) and
    /// dOutput[r,j] = gradientScale·∂nll/∂out (gradientScale = 1/(batch·s) for a batch-mean loss averaged over
    /// s samples per example). Output row r decodes a sample of example r / s, whose target row that is.
    /// Gradients under <see cref="StableMath.NegligibleGradient"/> are written as 0 (sigmoid of a very negative
    /// logit would otherwise be subnormal).
    /// </summary>
    [Kernel(typeof(BernoulliLogits), typeof(GaussianFixedVariance))]
    public static void LossGradientKernel<TLikelihood>(
        Index1D row,
        ArrayView<float> target,
        ArrayView<float> output,
        ArrayView<float> dOutput,
        ArrayView<float> reconstructionPerRow,
        int features,
        int samples,
        ReconstructionParameters parameters)
        where TLikelihood : struct, ILikelihood
    {
        float sum = 0f;
        int rowStart = row * features;
        int targetStart = row / samples * features;
        for (int j = 0; j < features; j++)
        {
            int index = rowStart + j;
            float x = target[targetStart + j];
            float o = output[index];
            sum += default(TLikelihood).NegativeLogLikelihood(x, o, parameters.Variance);
            dOutput[index] = StableMath.FlushNegligible(parameters.GradientScale * default(TLikelihood).Gradient(x, o, parameters.Variance));
        }
        reconstructionPerRow[row] = sum + parameters.RowConstant;
    }

    /// <summary>The loss value alone, for evaluation and for the importance weights that must exist before the
    /// IWAE gradient can be weighted (no gradient buffer is written).</summary>
    [Kernel(typeof(BernoulliLogits), typeof(GaussianFixedVariance))]
    public static void LossKernel<TLikelihood>(
        Index1D row,
        ArrayView<float> target,
        ArrayView<float> output,
        ArrayView<float> reconstructionPerRow,
        int features,
        int samples,
        ReconstructionParameters parameters)
        where TLikelihood : struct, ILikelihood
    {
        float sum = 0f;
        int rowStart = row * features;
        int targetStart = row / samples * features;
        for (int j = 0; j < features; j++)
            sum += default(TLikelihood).NegativeLogLikelihood(target[targetStart + j], output[rowStart + j], parameters.Variance);
        reconstructionPerRow[row] = sum + parameters.RowConstant;
    }

    /// <summary>
    /// The gradient alone, each row weighted: dOutput[r,j] = gradientScale·rowWeights[r]·∂nll/∂out (the IWAE
    /// gradient, with rowWeights the normalised importance weights w̃ and gradientScale = 1/batch), under
    /// <see cref="StableMath.NegligibleGradient"/> written as 0.
    /// </summary>
    [Kernel(typeof(BernoulliLogits), typeof(GaussianFixedVariance))]
    public static void WeightedGradientKernel<TLikelihood>(
        Index1D row,
        ArrayView<float> target,
        ArrayView<float> output,
        ArrayView<float> dOutput,
        ArrayView<float> rowWeights,
        int features,
        int samples,
        ReconstructionParameters parameters)
        where TLikelihood : struct, ILikelihood
    {
        float scale = parameters.GradientScale * rowWeights[row];
        int rowStart = row * features;
        int targetStart = row / samples * features;
        for (int j = 0; j < features; j++)
            dOutput[rowStart + j] = StableMath.FlushNegligible(
                scale * default(TLikelihood).Gradient(target[targetStart + j], output[rowStart + j], parameters.Variance));
    }
}

public readonly struct ReconstructionParameters
{
    /// <summary>c of the Gaussian decoder (ignored by Bernoulli).</summary>
    public readonly float Variance;
    /// <summary>Added once per row: (D/2)·log(2πc) for the Gaussian, 0 for Bernoulli.</summary>
    public readonly float RowConstant;
    public readonly float GradientScale;

    public ReconstructionParameters(float variance, float rowConstant, float gradientScale)
    {
        Variance = variance;
        RowConstant = rowConstant;
        GradientScale = gradientScale;
    }

    public static ReconstructionParameters For(LikelihoodKind kind, int features, double variance, double gradientScale) =>
        new((float)variance,
            kind == LikelihoodKind.Gaussian ? (float)(0.5 * features * Math.Log(2 * Math.PI * variance)) : 0f,
            (float)gradientScale);
}
