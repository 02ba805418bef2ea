using BenchmarkDotNet.Attributes;
using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Bench;

/// <summary>The sampler with its KL term, forward and backward, at the default model's latent size.</summary>
public class ReparameterizeBenchmarks
{
    private AcceleratorScope scope = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> stats = null!, z = null!, epsilon = null!, kl = null!, dZ = null!, dStats = null!;

    [Params(128, 4096)]
    public int Batch { get; set; }

    private const int Latent = 20;

    [GlobalSetup]
    public void Setup()
    {
        scope = new AcceleratorScope();
        var accelerator = scope.Accelerator;
        stats = accelerator.Allocate1D(BenchData.Uniform(Batch * 2 * Latent, 1));
        z = accelerator.Allocate1D<float>(Batch * Latent);
        epsilon = accelerator.Allocate1D<float>(Batch * Latent);
        kl = accelerator.Allocate1D<float>(Batch);
        dZ = accelerator.Allocate1D(BenchData.Uniform(Batch * Latent, 2));
        dStats = accelerator.Allocate1D<float>(Batch * 2 * Latent);
    }

    [Benchmark]
    public void Forward()
    {
        scope.Kernels.ReparameterizeForward(stats.View, z.View, epsilon.View, kl.View, Batch, Latent, new DrawKey(1, Philox.Streams.Reparameterize, 1));
        scope.Kernels.Synchronize();
    }

    [Benchmark]
    public void Backward()
    {
        scope.Kernels.ReparameterizeBackward(stats.View, epsilon.View, dZ.View, dStats.View, Batch, Latent, 1f / Batch);
        scope.Kernels.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var buffer in new[] { stats, z, epsilon, kl, dZ, dStats })
            buffer.Dispose();
        scope.Dispose();
    }
}

/// <summary>The Bernoulli reconstruction loss fused with its gradient, at MNIST's 784 pixels.</summary>
public class ReconstructionBenchmarks
{
    private AcceleratorScope scope = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> target = null!, logits = null!, dLogits = null!, perRow = null!;

    [Params(128, 4096)]
    public int Batch { get; set; }

    private const int Pixels = 784;

    [GlobalSetup]
    public void Setup()
    {
        scope = new AcceleratorScope();
        var accelerator = scope.Accelerator;
        target = accelerator.Allocate1D(BenchData.Uniform(Batch * Pixels, 3, 0, 1));
        logits = accelerator.Allocate1D(BenchData.Uniform(Batch * Pixels, 4, -5, 5));
        dLogits = accelerator.Allocate1D<float>(Batch * Pixels);
        perRow = accelerator.Allocate1D<float>(Batch);
    }

    [Benchmark]
    public void LossAndGradient()
    {
        scope.Kernels.ReconstructionLossGradient(LikelihoodKind.Bernoulli, target.View, logits.View, dLogits.View, perRow.View,
            Batch, Pixels, ReconstructionParameters.For(LikelihoodKind.Bernoulli, Pixels, 1, 1.0 / Batch));
        scope.Kernels.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var buffer in new[] { target, logits, dLogits, perRow })
            buffer.Dispose();
        scope.Dispose();
    }
}

/// <summary>Adam over a flat buffer the size of the default model's parameters (652 824 floats).</summary>
public class AdamBenchmarks
{
    private const int Count = 652_824;
    private AcceleratorScope scope = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> parameters = null!, gradients = null!, firstMoment = null!, secondMoment = null!;
    private long step;

    [GlobalSetup]
    public void Setup()
    {
        scope = new AcceleratorScope();
        var accelerator = scope.Accelerator;
        parameters = accelerator.Allocate1D(BenchData.Uniform(Count, 5));
        gradients = accelerator.Allocate1D(BenchData.Uniform(Count, 6, -0.01, 0.01));
        firstMoment = accelerator.Allocate1D<float>(Count);
        secondMoment = accelerator.Allocate1D<float>(Count);
        firstMoment.MemSetToZero();
        secondMoment.MemSetToZero();
    }

    [Benchmark]
    public void Step()
    {
        scope.Kernels.AdamStep(parameters.View, gradients.View, firstMoment.View, secondMoment.View,
            new AdamParameters(1e-3f, 0.9f, 0.999f, 1e-8f, ++step));
        scope.Kernels.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var buffer in new[] { parameters, gradients, firstMoment, secondMoment })
            buffer.Dispose();
        scope.Dispose();
    }
}

internal static class BenchData
{
    public static float[] Uniform(int count, int seed, double low = -1, double high = 1)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(low + (high - low) * random.NextDouble())).ToArray();
    }
}
