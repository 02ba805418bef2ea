using ILGPU;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// The latent variable of a one-layer model, between the encoder's output (its statistics) and the decoder: how
/// its codes are drawn, how the gradient of the codes goes back to the statistics with the KL term's, and its log
/// importance weights. With s samples per example, code row r = b·s + i belongs to example b.
/// </summary>
public interface ILatent
{
    /// <summary>Draws <paramref name="samples"/> codes per example from the encoder's output and writes each row's
    /// KL term; returns the codes the decoder reads, [batch·samples, width].</summary>
    ArrayView<float> Sample(int batch, int samples, DrawKey key);

    /// <summary>The codes of the last <see cref="Sample"/>, and where the decoder's backward pass writes their gradient.</summary>
    ArrayView<float> Codes(int rows);

    ArrayView<float> CodeGradient(int rows);

    /// <summary>The gradient of the encoder's output from the codes' gradient, with the KL term weighted by
    /// <paramref name="klWeight"/>·<paramref name="klWeightFactor"/>[0] (a device float; none is 1).</summary>
    void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null);

    /// <summary>The same with row r weighted by scale·weights[r] and an N(0, I) prior (the importance-weighted bound).</summary>
    void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale);

    /// <summary>log w = −rec + log p(z) − log q(z|x) per code row, from the rows' reconstruction terms.</summary>
    void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights);

    /// <summary>The encoder's output rows [batch, outputs] as (μ, log σ²), each [batch, width]; a deterministic code
    /// has no variance and returns an empty second array.</summary>
    (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch);
}
