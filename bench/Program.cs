using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace IlgpuVae.Bench;

public static class Program
{
    /// <summary>
    /// Runs in process (no child build), so the benchmarks also run from a self-contained publish on a machine
    /// without the .NET SDK. ILGPUVAE_ACCELERATOR picks the accelerator (default: auto).
    /// </summary>
    public static void Main(string[] args)
    {
        var config = DefaultConfig.Instance.AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
    }
}
