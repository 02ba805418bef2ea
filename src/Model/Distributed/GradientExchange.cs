using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Distributed;

/// <summary>What a gradient exchange works on: the model's kernels and stream, its flat gradient buffer (the
/// layout's parameters), and the ranks.</summary>
public sealed record GradientBuffers(KernelSet Kernels, ArrayView<float> Gradients, ParameterLayout Layout, Communicator Ranks);

/// <summary>How data-parallel ranks exchange gradients: <c>host</c> (MPI on host copies; any accelerator), <c>nccl</c>
/// (NCCL on device memory; CUDA), or <c>auto</c> (NCCL on CUDA where it loads, else the host).</summary>
public enum GradientExchangeKind
{
    Auto,
    Host,
    Nccl,
}

/// <summary>
/// Turns each rank's gradient (the mean over its slice of the global minibatch) into the global batch's mean,
/// the same on every rank, before the optimiser step. A training step calls <see cref="BeginStep"/>, then the
/// backward pass reports each dense layer whose gradient it has written (<see cref="LayerGradientReady"/>, in
/// the order the pass writes them), then <see cref="Complete"/>; every rank makes the same calls except the layer
/// reports (a rank without examples runs no pass).
/// </summary>
public abstract class GradientExchange(GradientBuffers buffers) : IDisposable
{
    protected GradientBuffers Buffers { get; } = buffers;

    /// <summary>For the run's first lines ("MPI on host copies").</summary>
    public abstract string Description { get; }

    public virtual void BeginStep(int localCount, int globalBatch)
    {
    }

    public virtual void LayerGradientReady(int layer)
    {
    }

    /// <summary>Leaves the global mean gradient in the buffer (enqueued on the model's stream, or done).</summary>
    public abstract void Complete();

    public virtual void Dispose() => GC.SuppressFinalize(this);

    /// <summary>The exchange of <paramref name="kind"/> for these buffers; <see cref="GradientExchangeKind.Auto"/>
    /// takes NCCL on a CUDA accelerator where the library loads, else the host path.</summary>
    public static GradientExchange Create(GradientBuffers buffers, GradientExchangeKind kind)
    {
        bool cuda = buffers.Kernels.Accelerator.AcceleratorType == AcceleratorType.Cuda;
        switch (kind)
        {
            case GradientExchangeKind.Host:
                return new HostGradientExchange(buffers);
            case GradientExchangeKind.Nccl when !cuda:
                throw new SettingException($"@GradientExchange nccl all-reduces CUDA device memory; this run is on {buffers.Kernels.Accelerator.AcceleratorType} (use host or auto)");
            case GradientExchangeKind.Nccl:
                return Nccl.TryLoad(out var reason) ? new NcclGradientExchange(buffers, NcclGradientExchange.DefaultBucketBytes) : throw new SettingException($"@GradientExchange nccl: {reason}");
            default:
                return cuda && Nccl.TryLoad(out _) ? new NcclGradientExchange(buffers, NcclGradientExchange.DefaultBucketBytes) : new HostGradientExchange(buffers);
        }
    }
}

/// <summary>
/// Through the host, in a fixed order: each rank copies its gradient out, cut into N equal pieces (the last padded
/// with zeros); an MPI all-to-all gives rank r every rank's piece r, which it combines as Σ_q (b_q/B)·g_q in rank
/// order in double; an all-gather then gives every rank every combined piece. So each element is the same
/// rank-order double sum on every rank and from run to run, and a rank sends and receives about two gradients a
/// step (and adds N pieces of 1/N), not N. One host wait a step.
/// </summary>
public sealed class HostGradientExchange : GradientExchange
{
    private readonly int piece;
    private readonly float[] local, received, combinedPiece, gathered;
    private int localCount, globalBatch;

    public HostGradientExchange(GradientBuffers buffers) : base(buffers)
    {
        int size = buffers.Ranks.Size;
        piece = (int)((buffers.Gradients.Length + size - 1) / size);
        local = new float[piece * size];
        received = new float[piece * size];
        combinedPiece = new float[piece];
        gathered = new float[piece * size];
    }

    public override string Description => "MPI all-to-all and all-gather on host copies, summed in rank order";

    public override void BeginStep(int localCount, int globalBatch)
    {
        this.localCount = localCount;
        this.globalBatch = globalBatch;
    }

    public override void Complete()
    {
        var ranks = Buffers.Ranks;
        int length = (int)Buffers.Gradients.Length;
        Buffers.Kernels.Synchronize();
        if (localCount > 0)
            Buffers.Gradients.CopyToCPU(local.AsSpan(0, length));
        ranks.AllToAll(local, received);
        for (int i = 0; i < piece; i++)
        {
            double sum = 0;
            for (int rank = 0; rank < ranks.Size; rank++)
            {
                int count = BatchSlice.Of(globalBatch, rank, ranks.Size).Count;
                // A rank without examples sent whatever its buffer held: it counts for nothing.
                if (count > 0)
                    sum += (double)count / globalBatch * received[rank * piece + i];
            }
            combinedPiece[i] = (float)sum;
        }
        ranks.AllGather(combinedPiece, gathered);
        Buffers.Gradients.CopyFromCPU(gathered.AsSpan(0, length));
    }
}

/// <summary>A contiguous range of the flat gradient buffer holding dense layers FirstLayer..LastLayer, exchanged
/// as one piece.</summary>
public sealed record GradientBucket(int Index, int FirstLayer, int LastLayer, int Start, int Count);

/// <summary>
/// An exchange in buckets, as PyTorch's DDP does it: the layers are grouped, from the last (whose gradient the
/// backward pass writes first) down, into contiguous pieces of at least a given size, and a bucket is sent as soon
/// as every layer in it has reported its gradient and every bucket before it has been sent (so all ranks send
/// them in the same order), overlapping the rest of the backward pass. <see cref="Complete"/> sends what is left,
/// in order. Each bucket is first scaled by the rank's share b_r/B, then summed over the ranks by
/// <see cref="Reduce"/>. Sound only if no layer's gradient changes after it is reported, which the tests check
/// for every model of the catalog.
/// </summary>
public abstract class BucketedGradientExchange : GradientExchange
{
    private readonly bool[] ready;
    private int nextBucket;
    private float share = 1;

    protected BucketedGradientExchange(GradientBuffers buffers, long bucketBytes) : base(buffers)
    {
        Buckets = Plan(buffers.Layout, bucketBytes);
        ready = new bool[buffers.Layout.Layers.Count];
    }

    public IReadOnlyList<GradientBucket> Buckets { get; }

    /// <summary>Layers from the last down, in contiguous runs of at least <paramref name="bucketBytes"/> bytes of
    /// float gradient (the last bucket, holding layer 0, may be smaller); each covers its layers' weights, biases and
    /// the padding between them.</summary>
    public static IReadOnlyList<GradientBucket> Plan(ParameterLayout layout, long bucketBytes)
    {
        var buckets = new List<GradientBucket>();
        int last = layout.Layers.Count - 1;
        for (int layer = last; layer >= 0; layer--)
        {
            int start = layout.Layers[layer].WeightOffset, end = layout.Layers[last].End;
            if ((long)(end - start) * sizeof(float) >= bucketBytes || layer == 0)
            {
                buckets.Add(new GradientBucket(buckets.Count, layer, last, start, end - start));
                last = layer - 1;
            }
        }
        return buckets;
    }

    public override void BeginStep(int localCount, int globalBatch)
    {
        share = (float)((double)localCount / globalBatch);
        nextBucket = 0;
        Array.Clear(ready);
        // A rank without examples runs no pass: it adds zeros.
        if (localCount == 0)
            Buffers.Gradients.MemSetToZero(Buffers.Kernels.Stream);
    }

    public override void LayerGradientReady(int layer)
    {
        ready[layer] = true;
        while (nextBucket < Buckets.Count && IsReady(Buckets[nextBucket]))
            Send(Buckets[nextBucket++]);
    }

    public override void Complete()
    {
        while (nextBucket < Buckets.Count)
            Send(Buckets[nextBucket++]);
        FinishStep();
    }

    private bool IsReady(GradientBucket bucket)
    {
        for (int layer = bucket.FirstLayer; layer <= bucket.LastLayer; layer++)
            if (!ready[layer])
                return false;
        return true;
    }

    private void Send(GradientBucket bucket)
    {
        var view = Buffers.Gradients.SubView(bucket.Start, bucket.Count);
        // A share of 1 (one rank, or a rank holding the whole batch) leaves the bits as they are.
        if (share != 1)
            Buffers.Kernels.ScaleInPlace(view, share);
        Reduce(bucket, view);
    }

    /// <summary>Sums <paramref name="view"/> (this bucket, already scaled by the share) over the ranks, in place,
    /// ordered after the kernels enqueued so far on the model's stream.</summary>
    protected abstract void Reduce(GradientBucket bucket, ArrayView<float> view);

    /// <summary>Makes the model's stream wait for every bucket's reduction before the optimiser runs.</summary>
    protected abstract void FinishStep();
}
