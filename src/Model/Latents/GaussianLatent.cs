using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// q(z|x) = N(μ, diag σ²) with the encoder's output [μ | log σ²], sampled by z = μ + σ·ε, with the closed-form KL
/// against N(0, I) (see <see cref="Reparameterize"/>).
/// </summary>
public sealed class GaussianLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, int width) : ILatent
{
    public ArrayView<float> Sample(int batch, int samples, DrawKey key)
    {
        int rows = batch * samples;
        kernels.ReparameterizeForward(Statistics(batch), Codes(rows), Epsilon(rows), Floats(ModelBuffers.KlPerRow, rows), rows, width, key, samples);
        return Codes(rows);
    }

    public ArrayView<float> Codes(int rows) => Floats(ModelBuffers.Z, (long)rows * width);

    public ArrayView<float> CodeGradient(int rows) => Floats(ModelBuffers.ZGradient, (long)rows * width);

    public void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null) =>
        kernels.ReparameterizeBackward(Statistics(batch), Epsilon(batch * samples), CodeGradient(batch * samples),
            stack.Gradient(statisticsLayer, batch), batch, width, klWeight, samples, klWeightFactor);

    public void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale)
    {
        int rows = batch * samples;
        kernels.ImportanceBackward(Statistics(batch), Codes(rows), Epsilon(rows), CodeGradient(rows), weights,
            stack.Gradient(statisticsLayer, batch), batch, width, samples, scale);
    }

    public void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights)
    {
        int rows = batch * samples;
        kernels.LogWeights(Statistics(batch), Codes(rows), Epsilon(rows), reconstructionPerRow, logWeights, rows, width, samples);
    }

    public (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) =>
        (FamilyModel.Half(statistics, batch, width, second: false), FamilyModel.Half(statistics, batch, width, second: true));

    private ArrayView<float> Statistics(int batch) => stack.Output(statisticsLayer, batch);

    private ArrayView<float> Epsilon(int rows) => Floats(ModelBuffers.Epsilon, (long)rows * width);

    private ArrayView<float> Floats(string name, long length) => workspace.Floats(name).View.SubView(0, length);
}
