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
    public void EveryLoadedKernelIsInTheCompiledList()
    {
        // KernelSet loads kernels by delegate; this guards the list the PTX check walks against falling behind.
        int loaders = typeof(KernelSet).GetFields(BindingFlags.NonPublic | BindingFlags.Instance)
            .Count(field => field.FieldType.IsGenericType &&
                            (field.FieldType.GetGenericTypeDefinition() == typeof(Dictionary<,>) || field.FieldType.Name.StartsWith("Action", StringComparison.Ordinal)));
        int distinctKernels = KernelSet.AllKernelMethods().Select(method => method.IsGenericMethod ? method.GetGenericMethodDefinition() : method).Distinct().Count();
        Assert.Equal(loaders, distinctKernels);
    }
}
