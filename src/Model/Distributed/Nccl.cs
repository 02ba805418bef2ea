using System.Runtime.InteropServices;

namespace IlgpuVae.Model.Distributed;

/// <summary>
/// NCCL's all-reduce on device memory (libnccl.so.2, loaded at run time: NVIDIA's packages, or the copy a PyTorch
/// install carries under site-packages/nvidia/nccl/lib; ILGPUVAE_NCCL_LIBRARY names one). Only the calls one
/// communicator per process needs: the unique id (made by rank 0 and sent to the others over MPI), init, an
/// in-place float sum, abort and destroy. NCCL's CUDA runtime calls act on the context current on the calling
/// thread; ILGPU made its own context for the accelerator, so the caller binds the accelerator first
/// (<see cref="NcclGradientExchange"/> does).
/// </summary>
internal static unsafe class Nccl
{
    private const int Success = 0;
    /// <summary>ncclFloat32 and ncclSum in nccl.h's enums.</summary>
    private const int Float32 = 7, Sum = 0;

    [StructLayout(LayoutKind.Sequential)]
    public struct UniqueId
    {
        // NCCL_UNIQUE_ID_BYTES.
        public fixed byte Bytes[128];
    }

    private static nint library;
    private static delegate* unmanaged<UniqueId*, int> getUniqueId;
    private static delegate* unmanaged<nint*, int, UniqueId, int, int> commInitRank;
    private static delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int> allReduce;
    private static delegate* unmanaged<nint, int> commDestroy, commAbort;
    private static delegate* unmanaged<int, byte*> getErrorString;
    private static delegate* unmanaged<int*, int> getVersion;

    /// <summary>Whether NCCL can be loaded here; the reason when it cannot.</summary>
    public static bool TryLoad(out string? reason)
    {
        reason = null;
        if (library != 0)
            return true;
        string[] names = Environment.GetEnvironmentVariable("ILGPUVAE_NCCL_LIBRARY") is { Length: > 0 } chosen ? [chosen] : ["libnccl.so.2", "libnccl.so"];
        foreach (var name in names)
            if (NativeLibrary.TryLoad(name, out library))
                break;
        if (library == 0)
        {
            reason = $"NCCL ({string.Join(" or ", names)}) could not be loaded: install it, or set ILGPUVAE_NCCL_LIBRARY to a libnccl.so.2 " +
                     "(a PyTorch install has one under site-packages/nvidia/nccl/lib)";
            return false;
        }
        getUniqueId = (delegate* unmanaged<UniqueId*, int>)Export("ncclGetUniqueId");
        commInitRank = (delegate* unmanaged<nint*, int, UniqueId, int, int>)Export("ncclCommInitRank");
        allReduce = (delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int>)Export("ncclAllReduce");
        commDestroy = (delegate* unmanaged<nint, int>)Export("ncclCommDestroy");
        commAbort = (delegate* unmanaged<nint, int>)Export("ncclCommAbort");
        getErrorString = (delegate* unmanaged<int, byte*>)Export("ncclGetErrorString");
        getVersion = (delegate* unmanaged<int*, int>)Export("ncclGetVersion");
        return true;
    }

    /// <summary>NCCL's version as nccl.h encodes it (2.21.5 is 22105).</summary>
    public static int Version()
    {
        int version;
        Check(getVersion(&version), "ncclGetVersion");
        return version;
    }

    public static byte[] NewUniqueId()
    {
        UniqueId id;
        Check(getUniqueId(&id), "ncclGetUniqueId");
        return new ReadOnlySpan<byte>(id.Bytes, 128).ToArray();
    }

    public static nint InitRank(int size, byte[] uniqueId, int rank)
    {
        if (uniqueId.Length != 128)
            throw new ArgumentException($"an NCCL unique id has 128 bytes (got {uniqueId.Length})");
        UniqueId id;
        uniqueId.CopyTo(new Span<byte>(id.Bytes, 128));
        nint communicator;
        Check(commInitRank(&communicator, size, id, rank), "ncclCommInitRank");
        return communicator;
    }

    /// <summary>In place: every rank's <paramref name="count"/> floats at <paramref name="devicePointer"/> become
    /// their sum over the ranks, enqueued on <paramref name="stream"/> (a CUstream).</summary>
    public static void AllReduceSum(nint devicePointer, long count, nint communicator, nint stream) =>
        Check(allReduce((void*)devicePointer, (void*)devicePointer, (nuint)count, Float32, Sum, communicator, stream), "ncclAllReduce");

    public static void Destroy(nint communicator) => Check(commDestroy(communicator), "ncclCommDestroy");

    /// <summary>Ends the communicator's pending operations (a rank died): never waits on the others.</summary>
    public static void Abort(nint communicator) => commAbort(communicator);

    private static nint Export(string name) =>
        NativeLibrary.TryGetExport(library, name, out var address)
            ? address
            : throw new InvalidOperationException($"the NCCL library has no {name}: use NCCL 2.x (ILGPUVAE_NCCL_LIBRARY)");

    private static void Check(int code, string call)
    {
        if (code != Success)
            throw new InvalidOperationException($"{call} failed: {Marshal.PtrToStringUTF8((nint)getErrorString(code))} (NCCL error {code})");
    }
}

/// <summary>
/// The three CUDA driver calls that order two streams (libcuda.so.1, the driver ILGPU itself loads): an event
/// recorded on one stream and waited for by another, so the all-reduce of a bucket starts once the kernels that
/// wrote it are done, and the optimiser starts once every all-reduce is.
/// </summary>
internal static unsafe class CudaEvents
{
    /// <summary>CU_EVENT_DISABLE_TIMING: an event only for ordering.</summary>
    private const uint DisableTiming = 2;

    private static nint library;
    private static delegate* unmanaged<nint*, uint, int> eventCreate;
    private static delegate* unmanaged<nint, nint, int> eventRecord;
    private static delegate* unmanaged<nint, nint, uint, int> streamWaitEvent;
    private static delegate* unmanaged<nint, int> eventDestroy;

    private static void Load()
    {
        if (library != 0)
            return;
        if (!NativeLibrary.TryLoad("libcuda.so.1", out library) && !NativeLibrary.TryLoad("libcuda.so", out library))
            throw new InvalidOperationException("the CUDA driver (libcuda.so.1) could not be loaded");
        eventCreate = (delegate* unmanaged<nint*, uint, int>)NativeLibrary.GetExport(library, "cuEventCreate");
        eventRecord = (delegate* unmanaged<nint, nint, int>)NativeLibrary.GetExport(library, "cuEventRecord");
        streamWaitEvent = (delegate* unmanaged<nint, nint, uint, int>)NativeLibrary.GetExport(library, "cuStreamWaitEvent");
        eventDestroy = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(library, "cuEventDestroy_v2");
    }

    public static nint Create()
    {
        Load();
        nint handle;
        Check(eventCreate(&handle, DisableTiming), "cuEventCreate");
        return handle;
    }

    /// <summary>Makes <paramref name="waiting"/> wait for what <paramref name="recorded"/> holds now.</summary>
    public static void Order(nint cudaEvent, nint recorded, nint waiting)
    {
        Check(eventRecord(cudaEvent, recorded), "cuEventRecord");
        Check(streamWaitEvent(waiting, cudaEvent, 0), "cuStreamWaitEvent");
    }

    public static void Destroy(nint cudaEvent) => eventDestroy(cudaEvent);

    private static void Check(int code, string call)
    {
        if (code != 0)
            throw new InvalidOperationException($"{call} failed with CUDA error {code}");
    }
}
