using BenchmarkDotNet.Attributes;
using IlgpuVae.Model;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Bench;

/// <summary>Whole training steps of the default model (784-400-20, batch 128) on random bytes shaped like MNIST;
/// a whole epoch is 469 of them (ilgpu-vae bench reports it directly).</summary>
public class TrainStepBenchmarks
{
    private const int Batch = 128, StepsPerInvocation = 10;
    private AcceleratorScope scope = null!;
    private DeviceDataset data = null!;
    private Vae vae = null!;

    [GlobalSetup]
    public void Setup()
    {
        scope = new AcceleratorScope();
        var images = new byte[Batch * StepsPerInvocation * 784];
        new Random(1).NextBytes(images);
        var dataset = new ImageDataset("random", images, new byte[Batch * StepsPerInvocation], Batch * StepsPerInvocation, 28, 28);
        data = new DeviceDataset(scope.Accelerator, dataset);
        vae = new Vae(scope.Kernels, new VaeConfig(), Batch, seed: 1);
    }

    /// <summary>Ten steps queued back to back and one wait, as in an epoch.</summary>
    [Benchmark(OperationsPerInvoke = StepsPerInvocation)]
    public void TrainStep()
    {
        for (int step = 0; step < StepsPerInvocation; step++)
            vae.TrainStep(data, step * Batch, Batch);
        vae.ReadTrainingSums(reset: true);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        vae.Dispose();
        data.Dispose();
        scope.Dispose();
    }
}
