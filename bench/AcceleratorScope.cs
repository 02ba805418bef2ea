using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Bench;

/// <summary>The accelerator a benchmark runs on: ILGPUVAE_ACCELERATOR, else the best present.</summary>
public sealed class AcceleratorScope : IDisposable
{
    public AcceleratorScope()
    {
        Context = Compute.CreateContext();
        Accelerator = Compute.CreateAccelerator(Context,
            Compute.ParseChoice(Environment.GetEnvironmentVariable(Compute.AcceleratorVariable)));
        Kernels = new KernelSet(Accelerator);
        Console.WriteLine($"// accelerator: {Compute.Describe(Accelerator)}");
    }

    public Context Context { get; }
    public Accelerator Accelerator { get; }
    public KernelSet Kernels { get; }

    public void Dispose()
    {
        Kernels.Dispose();
        Accelerator.Dispose();
        Context.Dispose();
    }
}
