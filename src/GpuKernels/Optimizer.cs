using ILGPU;

namespace IlgpuVae.GpuKernels;

public readonly struct AdamParameters
{
    public readonly float LearningRate, Beta1, Beta2, Epsilon;
    /// <summary>1 − β1^t and 1 − β2^t for step t (counted from 1), computed on the host in double.</summary>
    public readonly float BiasCorrection1, BiasCorrection2;

    public AdamParameters(float learningRate, float beta1, float beta2, float epsilon, long step)
    {
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        BiasCorrection1 = (float)(1 - Math.Pow(beta1, step));
        BiasCorrection2 = (float)(1 - Math.Pow(beta2, step));
    }
}

/// <summary>
/// Adam (Kingma & Ba 2015) in PyTorch's form, over the whole flat parameter buffer in one launch:
/// m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; p ← p − lr·(m/(1−β1^t)) / (√(v/(1−β2^t)) + ε).
/// The gradient is first multiplied by gradientScale[0], which <see cref="GradientClipping"/> writes on the device
/// (1 when clipping is off: multiplying by 1 changes no bit, so unclipped runs are unaffected).
/// </summary>
public static class Adam
{
    /// <summary>One Adam step; the gradients are multiplied by gradientScale[0] first (see
    /// <see cref="GradientClipping.ClipGradients"/>; a buffer holding 1 leaves them as they are).</summary>
    public static void AdamStep(this KernelSet kernels, ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> firstMoment,
        ArrayView<float> secondMoment, AdamParameters adam, ArrayView<float>? gradientScale = null)
    {
        var chunking = kernels.ChunkingFor((int)parameters.Length);
        kernels.Launch(StepKernel, chunking.Threads, parameters, gradients, firstMoment, secondMoment, gradientScale ?? kernels.Unit, chunking, adam);
    }

    /// <summary>Each thread updates elements [thread·chunk, (thread+1)·chunk): chunk 1 on a GPU (coalesced),
    /// large on the CPU accelerator (one fat thread per core).</summary>
    [Kernel]
    public static void StepKernel(
        Index1D thread,
        ArrayView<float> parameters,
        ArrayView<float> gradients,
        ArrayView<float> firstMoment,
        ArrayView<float> secondMoment,
        ArrayView<float> gradientScale,
        Chunking chunking,
        AdamParameters adam)
    {
        int end = chunking.End(thread);
        float scale = gradientScale[0];
        float stepSize = adam.LearningRate / adam.BiasCorrection1;
        float inverseSqrtCorrection2 = 1f / MathF.Sqrt(adam.BiasCorrection2);
        for (int i = chunking.Start(thread); i < end; i++)
        {
            float g = gradients[i] * scale;
            float m = adam.Beta1 * firstMoment[i] + (1f - adam.Beta1) * g;
            float v = adam.Beta2 * secondMoment[i] + (1f - adam.Beta2) * g * g;
            firstMoment[i] = m;
            secondMoment[i] = v;
            parameters[i] -= stepSize * m / (MathF.Sqrt(v) * inverseSqrtCorrection2 + adam.Epsilon);
        }
    }
}

/// <summary>
/// Gradient-norm clipping as PyTorch's clip_grad_norm_ does it: g ← g · min(1, maxNorm / (‖g‖₂ + 1e-6)), with ‖g‖
/// over the whole flat parameter buffer. It runs on the device in two launches and the host never waits: partial
/// sums of squares over a fixed partition, then one thread that adds them and writes the scale Adam applies.
/// </summary>
public static class GradientClipping
{
    /// <summary>Writes min(1, maxNorm/(‖g‖+1e-6)) to scale[0] and ‖g‖ to scale[1]; partials holds
    /// <see cref="Slots"/> floats of scratch. Two launches, no wait.</summary>
    public static void ClipGradients(this KernelSet kernels, ArrayView<float> gradients, ArrayView<float> partials, ArrayView<float> scale, float maxNorm)
    {
        var chunking = Chunking.For((int)gradients.Length, Slots);
        kernels.Launch(PartialSquaresKernel, chunking.Threads, gradients, partials, chunking);
        kernels.Launch(ScaleKernel, 1, partials, scale, chunking.Threads, maxNorm);
    }

    /// <summary>Partial sums over this many contiguous chunks, whatever the accelerator, so that every accelerator
    /// adds in the same order.</summary>
    public const int Slots = 256;

    [Kernel]
    public static void PartialSquaresKernel(Index1D slot, ArrayView<float> gradients, ArrayView<float> partials, Chunking chunking)
    {
        float sum = 0f;
        int end = chunking.End(slot);
        for (int i = chunking.Start(slot); i < end; i++)
            sum += gradients[i] * gradients[i];
        partials[slot] = sum;
    }

    /// <summary>One thread: scale[0] ← the factor Adam applies, scale[1] ← the norm before clipping.</summary>
    [Kernel]
    public static void ScaleKernel(Index1D thread, ArrayView<float> partials, ArrayView<float> scale, int slots, float maxNorm)
    {
        float squares = 0f;
        for (int slot = 0; slot < slots; slot++)
            squares += partials[slot];
        float norm = MathF.Sqrt(squares);
        scale[0] = MathF.Min(1f, maxNorm / (norm + 1e-6f));
        scale[1] = norm;
    }
}

/// <summary>Splits n elements into contiguous chunks, one per launched thread.</summary>
public readonly struct Chunking
{
    public readonly int Count, ChunkSize;

    public Chunking(int count, int chunkSize)
    {
        Count = count;
        ChunkSize = chunkSize;
    }

    public static Chunking For(int count, int threads)
    {
        int chunk = Math.Max(1, (count + threads - 1) / Math.Max(1, threads));
        return new Chunking(count, chunk);
    }

    public int Threads => (Count + ChunkSize - 1) / ChunkSize;
    public int Start(int thread) => thread * ChunkSize;
    public int End(int thread) => Math.Min(Count, (thread + 1) * ChunkSize);
}
