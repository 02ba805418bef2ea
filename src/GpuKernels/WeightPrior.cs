using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// A Gaussian prior N(0, κI) on some weights, as the deep latent Gaussian model puts on its generative weights:
/// −log p(θ) = ‖θ‖²/(2κ) + const adds θ/κ to their gradient, gradient += θ·(1/κ), element by element.
/// </summary>
public static class WeightPrior
{
    public static void AddWeightPriorGradient(this KernelSet kernels, ArrayView<float> parameters, ArrayView<float> gradients, float inverseVariance)
    {
        var chunking = kernels.ChunkingFor((int)parameters.Length);
        kernels.Launch(AddWeightPriorGradientKernel, chunking.Threads, parameters, gradients, inverseVariance, chunking);
    }

    [Kernel]
    public static void AddWeightPriorGradientKernel(Index1D thread, ArrayView<float> parameters, ArrayView<float> gradients, float inverseVariance,
        Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
            gradients[element] += inverseVariance * parameters[element];
    }
}
