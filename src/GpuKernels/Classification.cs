using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The Deep VIB decoder's likelihood (Alemi et al. 2017): q(y|z) = softmax(logits), loss −log q(y|z) per row, fused
/// with its gradient scale·(softmax − onehot(y)) and whether the row's most likely class is y. Row r decodes a
/// sample of batch example r / s, whose label is labels[order[first + r / s]] (the labels stay on the device, as
/// the images do).
/// </summary>
public static class Classification
{
    /// <summary>Softmax cross-entropy per row with its gradient and correctness.</summary>
    public static void ClassificationLossGradient(this KernelSet kernels, ArrayView<float> logits, ArrayView<byte> labels, ArrayView<int> order,
        ArrayView<float> dLogits, ArrayView<float> lossPerRow, ArrayView<float> correctPerRow, int rows, ClassificationShape shape, float gradientScale) =>
        kernels.Launch(LossGradientKernel, rows, logits, labels, order, dLogits, lossPerRow, correctPerRow, shape, gradientScale);

    [Kernel]
    public static void LossGradientKernel(
        Index1D row,
        ArrayView<float> logits,
        ArrayView<byte> labels,
        ArrayView<int> order,
        ArrayView<float> dLogits,
        ArrayView<float> lossPerRow,
        ArrayView<float> correctPerRow,
        ClassificationShape shape,
        float gradientScale)
    {
        int classes = shape.Classes;
        int label = labels[order[shape.First + row / shape.Samples]];
        int start = row * classes;
        float largest = logits[start];
        int best = 0;
        for (int c = 1; c < classes; c++)
        {
            if (logits[start + c] > largest)
            {
                largest = logits[start + c];
                best = c;
            }
        }
        float sum = 0f;
        for (int c = 0; c < classes; c++)
            sum += MathF.Exp(logits[start + c] - largest);
        float logSum = largest + MathF.Log(sum);
        for (int c = 0; c < classes; c++)
        {
            float probability = MathF.Exp(logits[start + c] - logSum);
            dLogits[start + c] = StableMath.FlushNegligible(gradientScale * (probability - (c == label ? 1f : 0f)));
        }
        lossPerRow[row] = logSum - logits[start + label];
        correctPerRow[row] = best == label ? 1f : 0f;
    }
}

/// <summary>Classes, samples per example, and the batch's first entry in the order.</summary>
public readonly struct ClassificationShape
{
    public readonly int Classes, Samples, First;

    public ClassificationShape(int classes, int samples, int first)
    {
        Classes = classes;
        Samples = samples;
        First = first;
    }
}
