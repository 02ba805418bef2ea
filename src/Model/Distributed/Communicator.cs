namespace IlgpuVae.Model.Distributed;

/// <summary>
/// The processes that train one model together (the ranks of an MPI job), and the few collective operations data
/// parallelism needs. Every rank must make the same calls in the same order: a call one rank skips leaves the
/// others waiting. <see cref="SingleProcess"/> is the group of one, where every operation is a copy.
/// </summary>
public abstract class Communicator : IDisposable
{
    /// <summary>This process's place in the group, 0 .. <see cref="Size"/> − 1; rank 0 writes the run's files.</summary>
    public abstract int Rank { get; }

    public abstract int Size { get; }

    /// <summary>What the group runs on, for the run's first lines ("Open MPI, 2 ranks").</summary>
    public abstract string Description { get; }

    /// <summary>Rank r's <paramref name="mine"/> into <paramref name="all"/>[r·n .. (r + 1)·n) on every rank
    /// (n = mine.Length, the same on every rank).</summary>
    public abstract void AllGather(ReadOnlySpan<float> mine, Span<float> all);

    /// <inheritdoc cref="AllGather(ReadOnlySpan{float}, Span{float})"/>
    public abstract void AllGather(ReadOnlySpan<double> mine, Span<double> all);

    /// <summary>Block r of <paramref name="send"/> (its length / Size values) to rank r; <paramref name="receive"/>'s
    /// block r from rank r. Every rank sends blocks of the same length.</summary>
    public abstract void AllToAll(ReadOnlySpan<float> send, Span<float> receive);

    /// <summary>The root's bytes into every rank's <paramref name="bytes"/> (the same length on every rank).</summary>
    public abstract void Broadcast(Span<byte> bytes, int root);

    public bool IsRoot => Rank == 0;

    /// <summary>This process's place among the ranks on its machine (which GPU it takes there).</summary>
    public virtual int LocalRank => Rank;

    /// <summary>Whether any rank passes true (every rank gets the same answer): how ranks agree to stop.</summary>
    public bool Any(bool mine)
    {
        if (Size == 1)
            return mine;
        Span<double> all = stackalloc double[Size];
        AllGather([mine ? 1.0 : 0.0], all);
        foreach (double flag in all)
            if (flag != 0)
                return true;
        return false;
    }

    /// <summary>
    /// Element-wise sums of every rank's <paramref name="values"/>, added in rank order in double so that the
    /// result is the same on every rank and from run to run (an MPI reduction may add in any order).
    /// </summary>
    public double[] SumInRankOrder(ReadOnlySpan<double> values)
    {
        if (Size == 1)
            return values.ToArray();
        var all = new double[values.Length * Size];
        AllGather(values, all);
        var sums = new double[values.Length];
        for (int rank = 0; rank < Size; rank++)
            for (int i = 0; i < sums.Length; i++)
                sums[i] += all[rank * values.Length + i];
        return sums;
    }

    /// <summary>The root's <paramref name="text"/> on every rank (what the others pass is ignored): a name only
    /// one rank may choose, such as a run folder named after the clock.</summary>
    public string Broadcast(string text, int root = 0)
    {
        if (Size == 1)
            return text;
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        var length = BitConverter.GetBytes(bytes.Length);
        Broadcast(length, root);
        var buffer = new byte[BitConverter.ToInt32(length)];
        if (Rank == root)
            bytes.CopyTo(buffer, 0);
        Broadcast(buffer, root);
        return System.Text.Encoding.UTF8.GetString(buffer);
    }

    public virtual void Dispose() => GC.SuppressFinalize(this);

    /// <summary>
    /// The group this process was started in: MPI when a launcher started it (mpirun sets OMPI_COMM_WORLD_SIZE,
    /// Slurm's srun with PMIx sets PMIX_RANK), else the group of one. MPI is initialised here, once per process.
    /// </summary>
    public static Communicator FromEnvironment()
    {
        if (OpenMpi.LaunchedByMpi())
            return MpiCommunicator.Initialize();
        return SingleProcess.Instance;
    }
}

/// <summary>One process alone: rank 0 of 1.</summary>
public sealed class SingleProcess : Communicator
{
    public static readonly SingleProcess Instance = new(0);
    private readonly int localRank;

    private SingleProcess(int localRank) => this.localRank = localRank;

    /// <summary>A run of its own inside a job (a sweep's point): alone, on the GPU of its rank on the node.</summary>
    public static SingleProcess OnDeviceOf(Communicator job) => new(job.LocalRank);

    public override int LocalRank => localRank;
    public override int Rank => 0;
    public override int Size => 1;
    public override string Description => "one process";
    public override void AllGather(ReadOnlySpan<float> mine, Span<float> all) => mine.CopyTo(all);
    public override void AllGather(ReadOnlySpan<double> mine, Span<double> all) => mine.CopyTo(all);
    public override void AllToAll(ReadOnlySpan<float> send, Span<float> receive) => send.CopyTo(receive);

    public override void Broadcast(Span<byte> bytes, int root)
    {
    }

    public override void Dispose()
    {
        // Shared by every caller: nothing to release.
    }
}

/// <summary>How a global minibatch is shared out: rank r takes Count examples from position Offset, the first
/// B mod N ranks one more than the rest, so the slices follow each other in rank order and cover the batch.</summary>
public readonly record struct BatchSlice(int Offset, int Count)
{
    public static BatchSlice Of(int batch, int rank, int size)
    {
        if (size < 1 || rank < 0 || rank >= size)
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is outside 0..{size - 1}");
        int share = batch / size, extra = batch % size;
        return new BatchSlice(rank * share + Math.Min(rank, extra), share + (rank < extra ? 1 : 0));
    }
}
