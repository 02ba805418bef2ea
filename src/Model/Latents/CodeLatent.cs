using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// The autoencoder's deterministic code: the decoder reads the encoder's output itself and writes its gradient
/// straight into the encoder's, so there is nothing to draw, no KL term (its rows stay zero) and no q(z|x) to
/// weigh samples by.
/// </summary>
public sealed class CodeLatent(DenseStack stack, int codeLayer) : ILatent
{
    public ArrayView<float> Sample(int batch, int samples, DrawKey key) => Codes(batch * samples);

    public ArrayView<float> Codes(int rows) => stack.Output(codeLayer, rows);

    public ArrayView<float> CodeGradient(int rows) => stack.Gradient(codeLayer, rows);

    public void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null)
    {
        // The decoder's backward pass already wrote the code's gradient where the encoder's backward pass starts.
    }

    public void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale) =>
        throw new InvalidOperationException("the autoencoder's code has no q(z|x) to weigh samples by");

    public void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights) =>
        throw new InvalidOperationException("the autoencoder has no q(z|x), so it has no importance weights or likelihood bound");

    public (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) => (statistics, []);
}
