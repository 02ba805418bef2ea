using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace IlgpuVae.Model.Distributed;

/// <summary>
/// NCCL on device memory: one communicator per rank, its unique id made by rank 0 and sent to the others over
/// MPI. Each bucket is summed in place by ncclAllReduce on a stream of its own, which waits (by a CUDA event) for
/// the kernels that wrote the bucket, so the sums run while the backward pass goes on below; the model's stream
/// waits for the last one before the optimiser. NCCL's order of summation is its own (ring or tree): the ranks
/// get the same sums as each other, repeatable on the same machines and NCCL version, but not the host path's
/// rank-order sums bit for bit. Not yet run on a GPU: see docs/SCALE.md.
/// </summary>
public sealed class NcclGradientExchange : BucketedGradientExchange
{
    /// <summary>1 MiB: the default model's 2.6 MB gradient goes in about three pieces, so the output layer's
    /// (the first written) is summed while the rest of the backward pass runs.</summary>
    public const long DefaultBucketBytes = 1 << 20;

    private readonly CudaAccelerator accelerator;
    private readonly CudaStream modelStream, reduceStream;
    private readonly nint communicator, written, reduced;
    private bool disposed;

    public NcclGradientExchange(GradientBuffers buffers, long bucketBytes) : base(buffers, bucketBytes)
    {
        accelerator = buffers.Kernels.Accelerator as CudaAccelerator
                      ?? throw new InvalidOperationException("NCCL needs a CUDA accelerator");
        modelStream = (CudaStream)buffers.Kernels.Stream;
        // The pitfall: NCCL and the CUDA runtime act on the current context, and ILGPU created its own for this
        // accelerator. Binding makes it current on this thread, which makes every NCCL call; the context current
        // when a communicator is created must be current for every operation on it (NVIDIA/nccl#565).
        accelerator.Bind();
        reduceStream = (CudaStream)accelerator.CreateStream();
        var id = buffers.Ranks.IsRoot ? Nccl.NewUniqueId() : new byte[128];
        buffers.Ranks.Broadcast(id, root: 0);
        communicator = Nccl.InitRank(buffers.Ranks.Size, id, buffers.Ranks.Rank);
        // NCCL's issue tracker reports init leaving another context current (NVIDIA/nccl#1736): ILGPU's again.
        accelerator.Bind();
        written = CudaEvents.Create();
        reduced = CudaEvents.Create();
        Version = Nccl.Version();
    }

    public int Version { get; }

    public override string Description =>
        $"NCCL {Version / 10000}.{Version / 100 % 100}.{Version % 100} all-reduce on device memory, {Buckets.Count} bucket{(Buckets.Count == 1 ? "" : "s")}";

    protected override void Reduce(GradientBucket bucket, ArrayView<float> view)
    {
        accelerator.Bind();
        CudaEvents.Order(written, modelStream.StreamPtr, reduceStream.StreamPtr);
        // The bucket's device address: its buffer's base plus the view's offset.
        nint pointer = ((IArrayView)view).Buffer.NativePtr + (nint)((IContiguousArrayView)view).IndexInBytes;
        Nccl.AllReduceSum(pointer, view.Length, communicator, reduceStream.StreamPtr);
        accelerator.Bind();
    }

    protected override void FinishStep() => CudaEvents.Order(reduced, reduceStream.StreamPtr, modelStream.StreamPtr);

    public override void Dispose()
    {
        if (!disposed)
        {
            disposed = true;
            accelerator.Bind();
            reduceStream.Synchronize();
            Nccl.Destroy(communicator);
            CudaEvents.Destroy(written);
            CudaEvents.Destroy(reduced);
            reduceStream.Dispose();
        }
        base.Dispose();
    }
}
