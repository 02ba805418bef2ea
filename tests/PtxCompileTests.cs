using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Tests;

/// <summary>
/// Compiles every kernel to PTX for sm_90 (H100/H200) with no GPU present, so a kernel that ILGPU cannot lower
/// to CUDA fails CI on a CPU-only machine rather than on the first GPU run.
/// </summary>
public sealed class PtxCompileTests
{
    public static TheoryData<string> Kernels()
    {
        var data = new TheoryData<string>();
        foreach (var method in KernelSet.AllKernelMethods())
            data.Add(Describe(method));
        return data;
    }

    private static string Describe(MethodInfo method) =>
        $"{method.DeclaringType!.Name}.{method.Name}" +
        (method.IsGenericMethod ? $"<{string.Join(",", method.GetGenericArguments().Select(Describe))}>" : "");

    /// <summary>A type's name with its own type arguments (BiasActivation&lt;TanhActivation&gt;), so that each
    /// instantiation has a name of its own.</summary>
    private static string Describe(Type type) =>
        type.IsGenericType
            ? $"{type.Name[..type.Name.IndexOf('`', StringComparison.Ordinal)]}<{string.Join(",", type.GetGenericArguments().Select(Describe))}>"
            : type.Name;

    [Theory]
    [MemberData(nameof(Kernels))]
    public void CompilesForSm90(string kernel)
    {
        var method = KernelSet.AllKernelMethods().Single(candidate => Describe(candidate) == kernel);
        using var context = Context.Create(builder => builder.DefaultCPU().EnableAlgorithms());
        using var backend = new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_88, null!);
        // Kernels whose first parameter is an index are implicitly grouped; the rest (shared memory, barriers)
        // are explicitly grouped and get their group size at launch.
        bool implicitlyGrouped = method.GetParameters()[0].ParameterType.Name.StartsWith("Index", StringComparison.Ordinal);
        var entry = implicitlyGrouped
            ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
            : EntryPointDescription.FromExplicitlyGroupedKernel(method);
        var compiled = (PTXCompiledKernel)backend.Compile(entry, new KernelSpecialization());
        Assert.Contains(".entry", compiled.PTXAssembly);
        Assert.Contains(".target sm_", compiled.PTXAssembly);
    }

    [Fact]
    public void EveryKernelEntryPointIsListed()
    {
        // The list comes from [Kernel] attributes: an entry point without one would be neither compiled here nor
        // loadable (see AnUnlistedKernelIsRefused), so a method that looks like a kernel and lacks it is a mistake.
        var unlisted = typeof(KernelSet).Assembly.GetTypes()
            .SelectMany(type => type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(method => method.Name.EndsWith("Kernel", StringComparison.Ordinal) && method.ReturnType == typeof(void)
                             && method.GetCustomAttribute<KernelAttribute>() is null)
            .Select(method => $"{method.DeclaringType!.Name}.{method.Name}")
            .ToList();
        Assert.Empty(unlisted);
        Assert.True(KernelSet.AllKernelMethods().Count >= 60, $"only {KernelSet.AllKernelMethods().Count} kernels found");
        Assert.Equal(KernelSet.AllKernelMethods().Count, KernelSet.AllKernelMethods().Distinct().Count());
    }

    private static void UnlistedKernel(Index1D index, ArrayView<float> values) => values[index] = 1;

    [Fact]
    public void AnUnlistedKernelIsRefused()
    {
        using var context = Context.Create(builder => builder.CPU());
        using var accelerator = context.CreateCPUAccelerator(0);
        using var kernels = new KernelSet(accelerator);
        using var values = accelerator.Allocate1D<float>(1);
        ArrayView<float> view = values.View;
        var error = Assert.Throws<InvalidOperationException>(() => kernels.Launch(UnlistedKernel, 1, view));
        Assert.Contains("UnlistedKernel is not listed", error.Message);
    }

    [Fact]
    public void ListedKernelsLoadUnderTheirOwnMethod()
    {
        // The loader looks a kernel up by the method of the delegate it is launched with; a generic instantiation
        // must be the same MethodInfo the list built with MakeGenericMethod.
        using var context = Context.Create(builder => builder.CPU());
        using var accelerator = context.CreateCPUAccelerator(0);
        using var kernels = new KernelSet(accelerator);
        using var values = accelerator.Allocate1D<float>(8);
        using var dY = accelerator.Allocate1D<float>(8);
        kernels.ActivationGradient(ActivationKind.Tanh, values.View, dY.View);
        kernels.Synchronize();
        var loaded = Assert.Single(kernels.LoadedKernels);
        Assert.Contains(loaded, KernelSet.AllKernelMethods());
        Assert.Equal(typeof(TanhActivation), loaded.GetGenericArguments().Single());
    }
}
