using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Plain element-wise steps on double buffers that the deep GP's device code strings its kernels together with:
/// gathering a minibatch's rows, adding one gradient share into another, summing per-point shares into one slot,
/// keeping lower triangles, and Adam in double (the GP parameters and their moments stay in double end to end).
/// The element-wise ones loop over contiguous chunks (<see cref="KernelSet.ChunkingFor"/>): a few fat threads on the
/// CPU accelerator, one element per thread on a GPU; each element's arithmetic is the same either way.
/// </summary>
public static class DoubleVectors
{
    /// <summary>target[r, :] = source[indices[r], :] for rows of <paramref name="width"/>.</summary>
    public static void GatherRows(this KernelSet kernels, ArrayView<double> source, ArrayView<int> indices, ArrayView<double> target, int rows, int width)
    {
        var chunking = kernels.ChunkingFor(rows * width);
        kernels.Launch(GatherKernel, chunking.Threads, source, indices, target, width, chunking);
    }

    /// <summary>target[r] = source[indices[r]] for integers (a minibatch's class labels).</summary>
    public static void GatherIntegers(this KernelSet kernels, ArrayView<int> source, ArrayView<int> indices, ArrayView<int> target, int rows) =>
        kernels.Launch(GatherIntegerKernel, rows, source, indices, target);

    /// <summary>target += source, element by element over target's length.</summary>
    public static void AddInto(this KernelSet kernels, ArrayView<double> target, ArrayView<double> source)
    {
        var chunking = kernels.ChunkingFor((int)target.Length);
        kernels.Launch(AddKernel, chunking.Threads, target, source, chunking);
    }

    /// <summary>target[0] += Σ source over its length, added in order by one thread (so every accelerator adds alike).</summary>
    public static void SumInto(this KernelSet kernels, ArrayView<double> source, ArrayView<double> target) =>
        kernels.Launch(SumKernel, 1, source, target, (int)source.Length);

    /// <summary>Zeroes the strict upper triangle of each of <paramref name="batch"/> row-major [size, size] matrices.</summary>
    public static void KeepLowerTriangles(this KernelSet kernels, ArrayView<double> matrices, int batch, int size)
    {
        var chunking = kernels.ChunkingFor(batch * size * size);
        kernels.Launch(LowerKernel, chunking.Threads, matrices, size, chunking);
    }

    /// <summary>
    /// Adam (PyTorch's form, as <see cref="Adam"/>) in double: m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
    /// p ← p − lr·(m/(1−β1^t)) / (√(v/(1−β2^t)) + ε) for step t counted from 1.
    /// </summary>
    public static void AdamStep(this KernelSet kernels, ArrayView<double> parameters, ArrayView<double> gradients, ArrayView<double> firstMoment,
        ArrayView<double> secondMoment, double learningRate, long step, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
    {
        var chunking = kernels.ChunkingFor((int)parameters.Length);
        kernels.Launch(AdamKernel, chunking.Threads, parameters, gradients, firstMoment, secondMoment, learningRate / (1 - Math.Pow(beta1, step)),
            1 / Math.Sqrt(1 - Math.Pow(beta2, step)), beta1, beta2, epsilon, chunking);
    }

    [Kernel]
    public static void GatherKernel(Index1D thread, ArrayView<double> source, ArrayView<int> indices, ArrayView<double> target, int width, Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int index = chunking.Start(thread); index < end; index++)
        {
            int row = index / width, column = index - row * width;
            target[index] = source[(long)indices[row] * width + column];
        }
    }

    [Kernel]
    public static void GatherIntegerKernel(Index1D index, ArrayView<int> source, ArrayView<int> indices, ArrayView<int> target) =>
        target[index] = source[indices[index]];

    [Kernel]
    public static void AddKernel(Index1D thread, ArrayView<double> target, ArrayView<double> source, Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int index = chunking.Start(thread); index < end; index++)
            target[index] += source[index];
    }

    [Kernel]
    public static void SumKernel(Index1D thread, ArrayView<double> source, ArrayView<double> target, int count)
    {
        double sum = 0;
        for (int at = 0; at < count; at++)
            sum += source[at];
        target[0] += sum;
    }

    [Kernel]
    public static void LowerKernel(Index1D thread, ArrayView<double> matrices, int size, Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int index = chunking.Start(thread); index < end; index++)
        {
            int column = index % size, row = index / size % size;
            if (column > row)
                matrices[index] = 0;
        }
    }

    [Kernel]
    public static void AdamKernel(Index1D thread, ArrayView<double> parameters, ArrayView<double> gradients, ArrayView<double> firstMoment,
        ArrayView<double> secondMoment, double stepSize, double inverseSqrtCorrection2, double beta1, double beta2, double epsilon, Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int index = chunking.Start(thread); index < end; index++)
        {
            double g = gradients[index];
            double m = beta1 * firstMoment[index] + (1 - beta1) * g;
            double v = beta2 * secondMoment[index] + (1 - beta2) * g * g;
            firstMoment[index] = m;
            secondMoment[index] = v;
            parameters[index] -= stepSize * m / (Math.Sqrt(v) * inverseSqrtCorrection2 + epsilon);
        }
    }
}
