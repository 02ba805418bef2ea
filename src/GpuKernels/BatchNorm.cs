using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>Rows and columns of a batch-normalised layer, and how it normalises: with the batch's statistics
/// (training, which also moves the running averages) or with the running averages (evaluation).</summary>
public readonly struct BatchNormShape
{
    public readonly int Rows, Columns, Training;
    public readonly float Momentum, Epsilon;

    public BatchNormShape(int rows, int columns, bool training, float momentum = DefaultMomentum, float epsilon = DefaultEpsilon)
    {
        Rows = rows;
        Columns = columns;
        Training = training ? 1 : 0;
        Momentum = momentum;
        Epsilon = epsilon;
    }

    /// <summary>PyTorch's BatchNorm1d defaults.</summary>
    public const float DefaultMomentum = 0.1f, DefaultEpsilon = 1e-5f;
}

/// <summary>
/// Batch normalisation (Ioffe and Szegedy 2015) between a dense layer's product and its activation:
/// y = act(γ·x̂ + β) with x̂ = (a − mean)/√(var + ε) per column. The layer's norm parameters are four rows of
/// <c>columns</c> floats, [γ | β | running mean | running variance]; only γ and β are trained (the running
/// averages get zero gradients, so Adam leaves them as the forward pass sets them, and they are saved with the
/// parameters). Training moves each running average by momentum toward the batch's mean and unbiased
/// variance, as PyTorch does. One thread per column, looping over the rows.
/// </summary>
public static class BatchNorm
{
    /// <summary>y = act(batch norm(pre)); norm = [γ | β | running mean | running variance], saved ← [mean | 1/σ].</summary>
    public static void BatchNormForward(this KernelSet kernels, ActivationKind activation, ArrayView<float> preActivation,
        ArrayView<float> norm, ArrayView<float> output, ArrayView<float> saved, BatchNormShape shape)
    {
        switch (activation)
        {
            case ActivationKind.Identity: kernels.Launch(ForwardKernel<IdentityActivation>, shape.Columns, preActivation, norm, output, saved, shape); break;
            case ActivationKind.Relu: kernels.Launch(ForwardKernel<ReluActivation>, shape.Columns, preActivation, norm, output, saved, shape); break;
            case ActivationKind.Tanh: kernels.Launch(ForwardKernel<TanhActivation>, shape.Columns, preActivation, norm, output, saved, shape); break;
            case ActivationKind.Sigmoid: kernels.Launch(ForwardKernel<SigmoidActivation>, shape.Columns, preActivation, norm, output, saved, shape); break;
            default: throw new ArgumentOutOfRangeException(nameof(activation), activation, null);
        }
    }

    /// <summary>dY is overwritten with d pre-activation; dNorm ← [dγ | dβ].</summary>
    public static void BatchNormBackward(this KernelSet kernels, ActivationKind activation, ArrayView<float> preActivation, ArrayView<float> norm,
        ArrayView<float> output, ArrayView<float> saved, ArrayView<float> dY, ArrayView<float> dNorm, BatchNormShape shape)
    {
        switch (activation)
        {
            case ActivationKind.Identity: kernels.Launch(BackwardKernel<IdentityActivation>, shape.Columns, preActivation, norm, output, saved, dY, dNorm, shape); break;
            case ActivationKind.Relu: kernels.Launch(BackwardKernel<ReluActivation>, shape.Columns, preActivation, norm, output, saved, dY, dNorm, shape); break;
            case ActivationKind.Tanh: kernels.Launch(BackwardKernel<TanhActivation>, shape.Columns, preActivation, norm, output, saved, dY, dNorm, shape); break;
            case ActivationKind.Sigmoid: kernels.Launch(BackwardKernel<SigmoidActivation>, shape.Columns, preActivation, norm, output, saved, dY, dNorm, shape); break;
            default: throw new ArgumentOutOfRangeException(nameof(activation), activation, null);
        }
    }

    /// <summary>Writes y, and [mean | 1/√(var + ε)] per column to <paramref name="saved"/> for the backward pass.</summary>
    [Kernel(typeof(IdentityActivation), typeof(ReluActivation), typeof(TanhActivation), typeof(SigmoidActivation))]
    public static void ForwardKernel<TActivation>(
        Index1D column,
        ArrayView<float> preActivation,
        ArrayView<float> norm,
        ArrayView<float> output,
        ArrayView<float> saved,
        BatchNormShape shape)
        where TActivation : struct, IActivation
    {
        int rows = shape.Rows, columns = shape.Columns;
        float gamma = norm[column], beta = norm[columns + column];
        float mean, variance;
        if (shape.Training != 0)
        {
            float sum = 0f;
            for (int row = 0; row < rows; row++)
                sum += preActivation[row * columns + column];
            mean = sum / rows;
            float squares = 0f;
            for (int row = 0; row < rows; row++)
            {
                float centred = preActivation[row * columns + column] - mean;
                squares += centred * centred;
            }
            variance = squares / rows;
            float unbiased = rows > 1 ? squares / (rows - 1) : variance;
            norm[2 * columns + column] = (1f - shape.Momentum) * norm[2 * columns + column] + shape.Momentum * mean;
            norm[3 * columns + column] = (1f - shape.Momentum) * norm[3 * columns + column] + shape.Momentum * unbiased;
        }
        else
        {
            mean = norm[2 * columns + column];
            variance = norm[3 * columns + column];
        }
        float inverseDeviation = 1f / MathF.Sqrt(variance + shape.Epsilon);
        saved[column] = mean;
        saved[columns + column] = inverseDeviation;
        for (int row = 0; row < rows; row++)
        {
            int index = row * columns + column;
            float normalised = (preActivation[index] - mean) * inverseDeviation;
            output[index] = default(TActivation).Forward(gamma * normalised + beta);
        }
    }

    /// <summary>
    /// From dy to d(pre-activation) (written over dY), dγ and dβ (written to dNorm = [dγ | dβ]). With
    /// s = dy·act'(y): dβ = Σs, dγ = Σ s·x̂, and in training (the statistics depend on the batch)
    /// da = γ/√(var + ε)·(s − dβ/N − x̂·dγ/N); in evaluation da = γ/√(var + ε)·s.
    /// </summary>
    [Kernel(typeof(IdentityActivation), typeof(ReluActivation), typeof(TanhActivation), typeof(SigmoidActivation))]
    public static void BackwardKernel<TActivation>(
        Index1D column,
        ArrayView<float> preActivation,
        ArrayView<float> norm,
        ArrayView<float> output,
        ArrayView<float> saved,
        ArrayView<float> dY,
        ArrayView<float> dNorm,
        BatchNormShape shape)
        where TActivation : struct, IActivation
    {
        int rows = shape.Rows, columns = shape.Columns;
        float gamma = norm[column], mean = saved[column], inverseDeviation = saved[columns + column];
        float sumS = 0f, sumSNormalised = 0f;
        for (int row = 0; row < rows; row++)
        {
            int index = row * columns + column;
            float s = dY[index] * default(TActivation).DerivativeFromOutput(output[index]);
            dY[index] = s;
            sumS += s;
            sumSNormalised += s * (preActivation[index] - mean) * inverseDeviation;
        }
        dNorm[column] = sumSNormalised;
        dNorm[columns + column] = sumS;
        float meanS = shape.Training != 0 ? sumS / rows : 0f, meanSNormalised = shape.Training != 0 ? sumSNormalised / rows : 0f;
        for (int row = 0; row < rows; row++)
        {
            int index = row * columns + column;
            float normalised = (preActivation[index] - mean) * inverseDeviation;
            dY[index] = gamma * inverseDeviation * (dY[index] - meanS - normalised * meanSNormalised);
        }
    }
}
