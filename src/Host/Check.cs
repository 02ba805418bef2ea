using System.Globalization;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Verification;
using IlgpuVae.Model.Verification;

namespace IlgpuVae.Host;

/// <summary>
/// The check command: lists the accelerators ILGPU finds, then runs every kernel on the chosen one against its
/// double-precision reference at several shapes, then every model of the catalog through one training gradient
/// against its family's reference, and prints the worst error of each. How a user validates a GPU
/// machine before trusting its numbers.
/// </summary>
public static class Check
{
    /// <summary>Returns 0 when every check passes, 1 otherwise.</summary>
    public static int Run(AcceleratorChoice choice, TextWriter output)
    {
        using var context = Compute.CreateContext();
        output.WriteLine("accelerators found:");
        foreach (var device in context.Devices)
            output.WriteLine($"  {device.AcceleratorType,-6} {device.Name} ({device.MaxNumThreadsPerGroup} threads per group, {device.MemorySize / (1 << 20)} MiB)");

        using var accelerator = Compute.CreateAccelerator(context, choice);
        using var kernels = new KernelSet(accelerator);
        output.WriteLine($"checking every kernel on {Compute.Describe(accelerator)} against its double-precision reference");
        output.WriteLine("(ratio: worst error ÷ allowed error; a check passes at ratio ≤ 1)");
        int total = 0, failed = 0;
        // Then every model of the catalog, small, through a whole training gradient against its family's reference.
        foreach (var result in new KernelCheck(kernels).Run().Concat(new ModelCheck(kernels).Run()))
        {
            total++;
            if (!result.Passed)
                failed++;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {(result.Passed ? "pass" : "FAIL")}  {result.Kernel,-44} {result.Shape,-16} worst error {result.WorstError:E2}  ratio {result.WorstRatio:F3}"));
        }
        output.WriteLine($"{total - failed} of {total} checks passed on {accelerator.AcceleratorType}{(failed > 0 ? $"; {failed} FAILED" : "")}");
        return failed == 0 ? 0 : 1;
    }
}
