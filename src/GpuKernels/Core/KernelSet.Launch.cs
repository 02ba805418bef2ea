using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

// One overload per argument count, so that a kernel's launcher (in the kernel's own file) is a single call,
// Launch(SomeKernel, extent, arguments...), whose argument types C# infers from the arguments. Each loads its
// kernel on first use (see KernelSet.Loaded) and enqueues it on the set's stream. The overloads differ only in their arity.
public sealed partial class KernelSet
{
    public void Launch<T1>(Action<Index1D, T1> entry, Index1D extent, T1 arg1,
        [CallerMemberName] string caller = "")
        where T1 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1), caller);
    }

    public void Launch<T1, T2>(Action<Index1D, T1, T2> entry, Index1D extent, T1 arg1, T2 arg2,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2), caller);
    }

    public void Launch<T1, T2, T3>(Action<Index1D, T1, T2, T3> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3), caller);
    }

    public void Launch<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4), caller);
    }

    public void Launch<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5), caller);
    }

    public void Launch<T1, T2, T3, T4, T5, T6>(Action<Index1D, T1, T2, T3, T4, T5, T6> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5, T6 arg6,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5, arg6), caller);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5, T6 arg6, T7 arg7,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5, arg6, arg7), caller);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5, T6 arg6, T7 arg7, T8 arg8,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8), caller);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5, T6 arg6, T7 arg7, T8 arg8, T9 arg9,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8, arg9), caller);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5, T6 arg6, T7 arg7, T8 arg8, T9 arg9, T10 arg10,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8, arg9, arg10), caller);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5, T6 arg6, T7 arg7, T8 arg8, T9 arg9, T10 arg10, T11 arg11,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8, arg9, arg10, arg11), caller);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5, T6 arg6, T7 arg7, T8 arg8, T9 arg9, T10 arg10, T11 arg11, T12 arg12,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8, arg9, arg10, arg11, arg12), caller);
    }

    public void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13> entry, Index1D extent, T1 arg1, T2 arg2, T3 arg3, T4 arg4, T5 arg5, T6 arg6, T7 arg7, T8 arg8, T9 arg9, T10 arg10, T11 arg11, T12 arg12, T13 arg13,
        [CallerMemberName] string caller = "")
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct where T13 : struct
    {
        var kernel = Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry));
        Run(() => kernel(Stream, extent, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8, arg9, arg10, arg11, arg12, arg13), caller);
    }
}
