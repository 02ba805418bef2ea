using BenchmarkDotNet.Attributes;
using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Bench;

/// <summary>Dense forward and backward at the shapes of the default model, and one odd shape.</summary>
public class DenseBenchmarks
{
    private AcceleratorScope scope = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> x = null!, weights = null!, bias = null!, y = null!, dY = null!, dX = null!, dWeights = null!, dBias = null!;

    [Params("128x784x400", "128x400x40", "4096x784x400", "127x785x401")]
    public string Shape { get; set; } = "128x784x400";

    private int batch, inputs, outputs;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x').Select(int.Parse).ToArray();
        (batch, inputs, outputs) = (parts[0], parts[1], parts[2]);
        scope = new AcceleratorScope();
        var accelerator = scope.Accelerator;
        x = accelerator.Allocate1D(BenchData.Uniform(batch * inputs, 1, -0.5, 0.5));
        weights = accelerator.Allocate1D(BenchData.Uniform(outputs * inputs, 2, -0.5, 0.5));
        bias = accelerator.Allocate1D(BenchData.Uniform(outputs, 3, -0.5, 0.5));
        y = accelerator.Allocate1D<float>(batch * outputs);
        dY = accelerator.Allocate1D(BenchData.Uniform(batch * outputs, 4, -0.5, 0.5));
        dX = accelerator.Allocate1D<float>(batch * inputs);
        dWeights = accelerator.Allocate1D<float>(outputs * inputs);
        dBias = accelerator.Allocate1D<float>(outputs);
    }

    [Benchmark]
    public void Forward()
    {
        scope.Kernels.DenseForward(ActivationKind.Relu, x.View, weights.View, bias.View, y.View, batch, inputs, outputs);
        scope.Kernels.Synchronize();
    }

    [Benchmark]
    public void Backward()
    {
        scope.Kernels.DenseBackward(x.View, weights.View, dY.View, dX.View, ActivationKind.Relu, dWeights.View, dBias.View, batch, inputs, outputs);
        scope.Kernels.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var buffer in new[] { x, weights, bias, y, dY, dX, dWeights, dBias })
            buffer.Dispose();
        scope.Dispose();
    }
}
