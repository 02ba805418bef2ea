using System.Diagnostics;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The kernels of one accelerator, launched on one stream. Each kernel family's file holds its own launchers
/// (extension methods that call <see cref="Launch{T1}"/>); a kernel is loaded the first time it is launched, so
/// adding a kernel is an edit to its own file: the entry point with <see cref="KernelAttribute"/>, and its launcher.
/// Launches are asynchronous on GPUs; nothing here synchronises, so a training step is a queue of launches the
/// host never waits on. <see cref="LaunchCount"/> counts launches so the host can report launches per step.
/// </summary>
public sealed partial class KernelSet : IDisposable
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense> placeholder;
    private readonly Dictionary<MethodInfo, Delegate> loaded = new();

    public KernelSet(Accelerator accelerator, AcceleratorStream? stream = null)
    {
        Accelerator = accelerator;
        Stream = stream ?? accelerator.DefaultStream;
        // Also the gradient scale of an unclipped Adam step, so it holds 1.
        placeholder = accelerator.Allocate1D(new[] { 1f });
        // Element-wise kernels loop over contiguous chunks. On the CPU accelerator a launched thread is costly
        // (an OS-thread hand-off and bounds checks per call), so a few fat threads per core win; on a GPU one
        // element per thread keeps loads coalesced.
        IsCpu = accelerator.AcceleratorType == AcceleratorType.CPU;
        DenseKernels = IsCpu ? DenseVariant.CpuShaped : DenseVariant.Simple;
        GpRowKernels = IsCpu;
        elementThreads = IsCpu ? 4 * accelerator.MaxNumThreadsPerGroup : int.MaxValue;
        InitializeDense();
    }

    private readonly int elementThreads;

    public Accelerator Accelerator { get; }
    public AcceleratorStream Stream { get; }
    public bool IsCpu { get; }

    /// <summary>
    /// Whether the sparse GP's heaviest kernels (the RBF matrix, the projection L_SᵀA and its reverse mode) run one
    /// thread per row with long contiguous loops, the CPU accelerator's faster shape, rather than one thread
    /// per element, the GPU's (coalesced loads). Both add every sum in the same order: the numbers are the same bit for
    /// bit, which the tests check. On by default on the CPU accelerator.
    /// </summary>
    public bool GpRowKernels { get; set; }
    public long LaunchCount { get; private set; }

    /// <summary>The kernel entry points this set has loaded so far.</summary>
    public IReadOnlyCollection<MethodInfo> LoadedKernels => loaded.Keys;

    /// <summary>Times the host has waited for the stream (reported as host synchronisations per epoch).</summary>
    public long SynchronizationCount { get; private set; }

    /// <summary>Waits for everything enqueued so far; the only way the model waits on the device.</summary>
    public void Synchronize()
    {
        Stream.Synchronize();
        SynchronizationCount++;
    }

    /// <summary>
    /// A zero-length view for an absent operand (no bias). It lies inside a real buffer: ILGPU's CUDA launcher
    /// reads the address of every view argument, and <see cref="ArrayView{T}.Empty"/> has no buffer behind it.
    /// </summary>
    public ArrayView<float> None => placeholder.View.SubView(0, 0);

    /// <summary>A device float holding 1: the gradient scale of an Adam step without clipping.</summary>
    public ArrayView<float> Unit => placeholder.View;

    public void Dispose() => placeholder.Dispose();

    public Chunking ChunkingFor(int count) => Chunking.For(count, Math.Min(count, elementThreads));

    /// <summary>
    /// The launcher of <paramref name="entry"/>, loaded by <paramref name="load"/> on first use. A kernel must be
    /// listed (<see cref="KernelAttribute"/>) before it can be loaded, so the list the PTX compilation and
    /// `check` walk cannot fall behind what runs.
    /// </summary>
    internal TLauncher Loaded<TLauncher>(Delegate entry, Func<TLauncher> load)
        where TLauncher : Delegate
    {
        var method = entry.Method;
        if (loaded.TryGetValue(method, out var launcher))
            return (TLauncher)launcher;
        if (!KernelAttribute.IsListed(method))
            throw new InvalidOperationException(
                $"kernel {method.DeclaringType?.Name}.{method.Name} is not listed: mark it [Kernel] (with its type arguments if it is generic)");
        var created = load();
        loaded[method] = created;
        return created;
    }

    /// <summary>Enqueues one launch, counting it, and timing it when <see cref="Profile"/> is set.</summary>
    internal void Run(Action enqueue, string caller)
    {
        LaunchCount++;
        if (Profile is not { } profile)
        {
            enqueue();
            return;
        }
        // Profiling: from an idle stream to the end of this kernel (not counted as the model's host waits).
        Stream.Synchronize();
        long start = Stopwatch.GetTimestamp();
        enqueue();
        Stream.Synchronize();
        profile.Add(profileLabel ?? caller, Stopwatch.GetTimestamp() - start);
    }

    /// <summary>When set, every launch waits for the stream before and after and adds its time here (see
    /// <see cref="KernelProfile"/>); null (the default) launches without waiting.</summary>
    public KernelProfile? Profile { get; set; }

    // The name a dense layer's launches are profiled under: the pass and its shape.
    private string? profileLabel;

    /// <summary>
    /// Every kernel entry point with its generic instantiations (see <see cref="KernelAttribute"/>), for compiling
    /// each one ahead of time (the PTX check in CI) without a device.
    /// </summary>
    public static IReadOnlyList<MethodInfo> AllKernelMethods() => KernelAttribute.All;
}
