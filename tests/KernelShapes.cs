using IlgpuVae.GpuKernels;

namespace IlgpuVae.Tests;

/// <summary>Runs a computation in both shapes of the GP kernels (per element, a GPU's; per row or tile, the CPU's:
/// <see cref="KernelSet.GpRowKernels"/>) and hands back each shape's result, the kernel set's own setting restored.</summary>
public static class KernelShapes
{
    /// <summary>The element shape's result first, then the row shape's.</summary>
    public static List<double[]> RunBoth(KernelSet kernels, Func<double[]> run)
    {
        bool original = kernels.GpRowKernels;
        var results = new List<double[]>();
        try
        {
            foreach (bool rows in new[] { false, true })
            {
                kernels.GpRowKernels = rows;
                results.Add(run());
            }
        }
        finally
        {
            kernels.GpRowKernels = original;
        }
        return results;
    }
}
