using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// What a device all-reduce of the gradient needs around it: each rank's mean gradient weighted by its share of the
/// global minibatch (b_r/B) before the ranks' buffers are summed.
/// </summary>
public static class Collective
{
    /// <summary>values[i] *= factor.</summary>
    public static void ScaleInPlace(this KernelSet kernels, ArrayView<float> values, float factor)
    {
        if (values.Length == 0)
            return;
        var chunking = kernels.ChunkingFor((int)values.Length);
        kernels.Launch(ScaleInPlaceKernel, chunking.Threads, values, factor, chunking);
    }

    [Kernel]
    public static void ScaleInPlaceKernel(Index1D thread, ArrayView<float> values, float factor, Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
            values[element] *= factor;
    }
}
