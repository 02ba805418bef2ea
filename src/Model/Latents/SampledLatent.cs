using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Latents;

/// <summary>
/// What every sampled latent of the one-layer model reads and writes: the encoder's statistics layer, the codes z
/// with their gradient and ε (<see cref="VaeConfig.Latent"/> columns each), and the rows' KL terms. A latent type
/// adds its sampler, backward passes, log w and how its statistics split into μ and log σ².
/// </summary>
public abstract class SampledLatent(KernelSet kernels, DenseStack stack, Workspace workspace, int statisticsLayer, int width) : ILatent
{
    protected KernelSet Kernels => kernels;
    protected int Width => width;

    public abstract ArrayView<float> Sample(int batch, int samples, DrawKey key);
    public abstract void Backward(int batch, int samples, float klWeight, ArrayView<float>? klWeightFactor = null);
    public abstract void WeightedBackward(int batch, int samples, ArrayView<float> weights, float scale);
    public abstract void LogWeights(int batch, int samples, ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights);
    /// <summary>The statistics as [μ | log σ²], a diagonal Gaussian's; latents whose statistics hold more override it.</summary>
    public virtual (float[] Mu, float[] LogVariance) Split(float[] statistics, int batch) =>
        (FamilyModel.Half(statistics, batch, Width, second: false), FamilyModel.Half(statistics, batch, Width, second: true));

    /// <summary>The learned prior this latent's KL term is against, or null for N(0, I).</summary>
    public virtual LearnedPrior? Prior => null;

    public ArrayView<float> Codes(int rows) => Floats(ModelBuffers.Z, (long)rows * width);

    public ArrayView<float> CodeGradient(int rows) => Floats(ModelBuffers.ZGradient, (long)rows * width);

    /// <summary>The encoder's output for the batch, and where its gradient goes.</summary>
    protected ArrayView<float> Statistics(int batch) => stack.Output(statisticsLayer, batch);
    protected ArrayView<float> StatisticsGradient(int batch) => stack.Gradient(statisticsLayer, batch);

    protected ArrayView<float> Epsilon(int rows) => Floats(ModelBuffers.Epsilon, (long)rows * width);
    protected ArrayView<float> KlPerRow(int rows) => Floats(ModelBuffers.KlPerRow, rows);

    protected ArrayView<float> Floats(string name, long length) => workspace.Floats(name).View.SubView(0, length);
}
