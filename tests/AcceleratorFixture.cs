using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
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
        wideCpuKernels = new Lazy<KernelSet>(() =>
        {
            // 16 warps of 16 simulated threads: room for the tiled kernel's 256-thread groups, so its shared
            // memory and barriers are exercised without a GPU (slowly: every barrier wakes 256 OS threads).
            var wide = new CPUDevice(16, 16, 1).CreateCPUAccelerator(context);
            accelerators.Add(wide);
            return new KernelSet(wide) { DenseKernels = DenseVariant.GpuTiled };
        });
    }

    private readonly Lazy<KernelSet> wideCpuKernels;

    public IReadOnlyList<KernelSet> KernelSets { get; }

    /// <summary>A CPU accelerator that can run 256-thread groups, for the GPU-tiled kernels' tests.</summary>
    public KernelSet WideCpuKernels => wideCpuKernels.Value;

    public void Dispose()
    {
        foreach (var kernels in KernelSets)
            kernels.Dispose();
        if (wideCpuKernels.IsValueCreated)
            wideCpuKernels.Value.Dispose();
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
