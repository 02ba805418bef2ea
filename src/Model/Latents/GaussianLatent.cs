using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// q(z|x) = N(μ, diag σ²) with the encoder's output [μ | log σ²], sampled by z = μ + σ·ε, with the closed-form KL
/// against N(0, I) (see <see cref="Reparameterize"/>).
/// </summary>
public sealed class GaussianLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, int width)
    : SampledLatent(kernels, stack, workspace, statisticsLayer, width)
{
    public override ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        Kernels.ReparameterizeForward(Statistics(batch), Codes(rows), Epsilon(rows), KlPerRow(rows), rows, Width, key, samples);
        return Codes(rows);
    }

    public override void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null) =>
        Kernels.ReparameterizeBackward(Statistics(batch), Epsilon(batch * samples), CodeGradient(batch * samples),
            StatisticsGradient(batch), batch, Width, klWeight, samples, klWeightFactor);

    public override void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale)
    {
        int rows = batch * samples;
        Kernels.ImportanceBackward(Statistics(batch), Codes(rows), Epsilon(rows), CodeGradient(rows), weights,
            StatisticsGradient(batch), batch, Width, samples, scale);
    }

    public override void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights)
    {
        int rows = batch * samples;
        Kernels.LogWeights(Statistics(batch), Codes(rows), Epsilon(rows), reconstructionPerRow, logWeights, rows, Width, samples);
    }
}
