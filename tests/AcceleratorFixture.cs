using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Tests;

/// <summary>
/// One ILGPU context for the whole test run, with the CPU accelerator always and CUDA (or OpenCL) when present, so
/// every kernel test runs on each. ILGPUVAE_ACCELERATOR=cpu|cuda|opencl restricts the run to one. Kernels are
/// compiled once per accelerator, and the CPU accelerator's threads are not multiplied by parallel test classes.
/// </summary>
public sealed class AcceleratorFixture : IDisposable
{
    private readonly Context context;
    private readonly List<Accelerator> accelerators = [];

    public AcceleratorFixture()
    {
        context = Compute.CreateContext();
        string? forced = Environment.GetEnvironmentVariable(Compute.AcceleratorVariable);
        var choices = string.IsNullOrWhiteSpace(forced)
            ? new[] { AcceleratorChoice.Cpu, AcceleratorChoice.Cuda, AcceleratorChoice.OpenCL }
            : new[] { Compute.ParseChoice(forced) };
        foreach (var choice in choices)
        {
            bool present = context.Devices.Any(device => device.AcceleratorType == choice switch
            {
                AcceleratorChoice.Cuda => AcceleratorType.Cuda,
                AcceleratorChoice.OpenCL => AcceleratorType.OpenCL,
                _ => AcceleratorType.CPU,
            });
            // A forced accelerator that is missing must fail loudly rather than quietly test the CPU instead.
            if (present || !string.IsNullOrWhiteSpace(forced))
                accelerators.Add(Compute.CreateAccelerator(context, choice));
        }
        KernelSets = accelerators.Select(accelerator => new KernelSet(accelerator)).ToList();
    }

    public IReadOnlyList<KernelSet> KernelSets { get; }

    public void Dispose()
    {
        foreach (var kernels in KernelSets)
            kernels.Dispose();
        foreach (var accelerator in accelerators)
            accelerator.Dispose();
        context.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class AcceleratorCollection : ICollectionFixture<AcceleratorFixture>
{
    public const string Name = "accelerators";
}
