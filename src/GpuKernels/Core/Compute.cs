using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace IlgpuVae.GpuKernels;

public enum AcceleratorChoice
{
    Auto,
    Cuda,
    OpenCL,
    Cpu,
}

/// <summary>Creates the ILGPU context and picks an accelerator.</summary>
public static class Compute
{
    /// <summary>Forces an accelerator in tests and scripts (cuda, opencl, cpu); the CLI flag wins over it.</summary>
    public const string AcceleratorVariable = "ILGPUVAE_ACCELERATOR";

    /// <summary>
    /// One context with every backend. The CPU accelerator simulates one OS thread per GPU thread; the default
    /// device simulates 16 threads, which on a 2-core machine only adds switching, so we size it to the cores.
    /// </summary>
    public static Context CreateContext() =>
        Context.Create(builder => builder
            .CPU(CpuDeviceForThisMachine())
            .Cuda()
            .OpenCL()
            .Optimize(OptimizationLevel.O1)
            .EnableAlgorithms());

    public static CPUDevice CpuDeviceForThisMachine()
    {
        int threadsPerWarp = 2;
        while (threadsPerWarp * 2 <= Math.Min(Environment.ProcessorCount, 16))
            threadsPerWarp *= 2;
        return new CPUDevice(threadsPerWarp, numWarpsPerMultiprocessor: 1, numMultiprocessors: 1);
    }

    public static AcceleratorChoice ParseChoice(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => AcceleratorChoice.Auto,
        "cuda" => AcceleratorChoice.Cuda,
        "opencl" => AcceleratorChoice.OpenCL,
        "cpu" => AcceleratorChoice.Cpu,
        _ => throw new ArgumentException($"unknown accelerator '{text}': use auto, cuda, opencl or cpu"),
    };

    /// <summary>
    /// auto takes CUDA, then OpenCL, then the CPU. Asking for a kind that is absent is an error, never a silent
    /// fallback, so a user who asked for the GPU knows they did not get it.
    /// </summary>
    /// <param name="ordinal">Which device of the kind chosen, modulo their number: a data-parallel rank passes its
    /// rank on the node, so that ranks sharing a machine with several GPUs each take their own.</param>
    public static Accelerator CreateAccelerator(Context context, AcceleratorChoice choice, int ordinal = 0)
    {
        Device? device = choice switch
        {
            AcceleratorChoice.Cuda => FirstOf(context, AcceleratorType.Cuda, ordinal),
            AcceleratorChoice.OpenCL => FirstOf(context, AcceleratorType.OpenCL, ordinal),
            AcceleratorChoice.Cpu => FirstOf(context, AcceleratorType.CPU, ordinal),
            _ => FirstOf(context, AcceleratorType.Cuda, ordinal)
                 ?? FirstOf(context, AcceleratorType.OpenCL, ordinal)
                 ?? FirstOf(context, AcceleratorType.CPU, ordinal),
        };
        if (device is null)
            throw new AcceleratorUnavailableException(
                $"no {choice} accelerator was found on this machine; use @Accelerator auto or cpu");
        return device.CreateAccelerator(context);
    }

    private static Device? FirstOf(Context context, AcceleratorType type, int ordinal)
    {
        var devices = context.Devices.Where(device => device.AcceleratorType == type).ToArray();
        return devices.Length == 0 ? null : devices[ordinal % devices.Length];
    }

    public static string Describe(Accelerator accelerator) => accelerator.AcceleratorType switch
    {
        AcceleratorType.CPU => $"CPU accelerator ({accelerator.MaxNumThreadsPerGroup} threads per group; {accelerator.Name})",
        _ => $"{accelerator.AcceleratorType} ({accelerator.Name}, {accelerator.MemorySize / (1 << 20)} MiB)",
    };
}

/// <summary>The accelerator asked for is not on this machine: a usage error, not a crash.</summary>
/// <summary>No accelerator of the kind asked for; the message names the setting as <c>@Accelerator</c> (see
/// <see cref="SettingException"/>).</summary>
public sealed class AcceleratorUnavailableException(string template) : Exception(SettingException.Render(template, name => name)), ISettingMessage
{
    public string Render(Func<string, string> name) => SettingException.Render(template, name);
}
