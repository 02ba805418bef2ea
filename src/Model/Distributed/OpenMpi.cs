using System.Runtime.InteropServices;
using System.Text;

namespace IlgpuVae.Model.Distributed;

/// <summary>
/// The handful of MPI calls data parallelism needs, bound to Open MPI's C library (libmpi.so.40, Debian's
/// openmpi-bin and libopenmpi-dev) at run time. Why not MPI.NET: its 1.4.0 package binds Microsoft MPI's msmpi.dll,
/// whose handles are integers, where Open MPI's MPI_COMM_WORLD, MPI_FLOAT and the like are the addresses of exported
/// objects (ompi_mpi_comm_world, ...); so the handles here are those exports' addresses (docs/SCALE.md).
/// Set ILGPUVAE_MPI_LIBRARY to load another libmpi with Open MPI's ABI.
/// </summary>
internal static unsafe class OpenMpi
{
    private const int Success = 0;
    /// <summary>MPI_THREAD_SERIALIZED: MPI is called from one thread at a time, not always the same one.</summary>
    private const int ThreadSerialized = 2;

    private static nint library;
    private static nint commWorld, floatType, doubleType, byteType;
    private static delegate* unmanaged<int*, int> initialized;
    private static delegate* unmanaged<int*, nint, int, int*, int> initThread;
    private static delegate* unmanaged<nint, int*, int> commRank, commSize;
    private static delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> allGather;
    private static delegate* unmanaged<void*, int, nint, int, nint, int> broadcast;
    private static delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> allToAll;
    private static delegate* unmanaged<int> finalize;
    private static delegate* unmanaged<nint, int, int> abort;
    private static delegate* unmanaged<byte*, int*, int> libraryVersion;

    /// <summary>Whether an MPI launcher started this process (mpirun, or srun with PMIx).</summary>
    public static bool LaunchedByMpi() =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null || Environment.GetEnvironmentVariable("PMIX_RANK") is not null;

    public static nint CommWorld => commWorld;

    /// <summary>Loads the library and MPI_Init_thread; returns (rank, size, the library's version line).</summary>
    public static (int Rank, int Size, string Version) Initialize()
    {
        Load();
        // Open MPI traps SIGSEGV, SIGBUS, SIGFPE and SIGILL to print a backtrace; .NET turns SIGSEGV into
        // NullReferenceException, so Open MPI must leave those signals to the runtime. The variable is read by
        // MPI_Init from the C environment, which Environment.SetEnvironmentVariable does not reach.
        LibC.SetEnvironment("OMPI_MCA_opal_signal", "");
        int flag;
        Check(initialized(&flag), "MPI_Initialized");
        if (flag == 0)
        {
            int provided;
            Check(initThread(null, 0, ThreadSerialized, &provided), "MPI_Init_thread");
        }
        int rank, size;
        Check(commRank(commWorld, &rank), "MPI_Comm_rank");
        Check(commSize(commWorld, &size), "MPI_Comm_size");
        return (rank, size, Version());
    }

    public static void AllGather(ReadOnlySpan<float> mine, Span<float> all) => AllGather(mine, all, floatType);

    public static void AllGather(ReadOnlySpan<double> mine, Span<double> all) => AllGather(mine, all, doubleType);

    private static void AllGather<T>(ReadOnlySpan<T> mine, Span<T> all, nint type) where T : unmanaged
    {
        fixed (T* send = mine)
        fixed (T* receive = all)
            Check(allGather(send, mine.Length, type, receive, mine.Length, type, commWorld), "MPI_Allgather");
    }

    /// <summary>MPI_Alltoall of floats: <paramref name="blockLength"/> values to and from each rank.</summary>
    public static void AllToAll(ReadOnlySpan<float> send, Span<float> receive, int blockLength)
    {
        fixed (float* sent = send)
        fixed (float* received = receive)
            Check(allToAll(sent, blockLength, floatType, received, blockLength, floatType, commWorld), "MPI_Alltoall");
    }

    public static void Broadcast(Span<byte> bytes, int root)
    {
        fixed (byte* buffer = bytes)
            Check(broadcast(buffer, bytes.Length, byteType, root, commWorld), "MPI_Bcast");
    }

    public static void Shutdown() => Check(finalize(), "MPI_Finalize");

    /// <summary>MPI_Abort: ends every rank of the job (mpirun stops the others), for a failure the others cannot
    /// see; a rank that only returned would leave them waiting in their next collective call.</summary>
    public static void Abort(int exitCode) => abort(commWorld, exitCode);

    private static string Version()
    {
        // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI.
        var text = new byte[256];
        int length;
        fixed (byte* buffer = text)
            if (libraryVersion(buffer, &length) != Success)
                return "MPI";
        string version = Encoding.ASCII.GetString(text, 0, Math.Clamp(length, 0, text.Length)).TrimEnd('\0', '\n');
        int comma = version.IndexOf(',');
        return comma > 0 ? version[..comma] : version;
    }

    private static void Load()
    {
        if (library != 0)
            return;
        string[] names = Environment.GetEnvironmentVariable("ILGPUVAE_MPI_LIBRARY") is { Length: > 0 } chosen
            ? [chosen]
            : ["libmpi.so.40", "libmpi.so"];
        foreach (var name in names)
            if (NativeLibrary.TryLoad(name, out library))
                break;
        if (library == 0)
            throw new InvalidOperationException(
                $"this process was started by an MPI launcher, but Open MPI's library ({string.Join(" or ", names)}) could not be loaded: " +
                "install Open MPI (apt-get install openmpi-bin libopenmpi-dev) or set ILGPUVAE_MPI_LIBRARY to its libmpi");
        commWorld = Export("ompi_mpi_comm_world");
        floatType = Export("ompi_mpi_float");
        doubleType = Export("ompi_mpi_double");
        byteType = Export("ompi_mpi_byte");
        initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        initThread = (delegate* unmanaged<int*, nint, int, int*, int>)Export("MPI_Init_thread");
        commRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        commSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        allGather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Allgather");
        broadcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        allToAll = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Alltoall");
        finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        libraryVersion = (delegate* unmanaged<byte*, int*, int>)Export("MPI_Get_library_version");
    }

    private static nint Export(string name) =>
        NativeLibrary.TryGetExport(library, name, out var address)
            ? address
            : throw new InvalidOperationException($"the MPI library has no {name}: it is not Open MPI (set ILGPUVAE_MPI_LIBRARY to Open MPI's libmpi.so.40)");

    private static void Check(int code, string call)
    {
        // The default error handler (MPI_ERRORS_ARE_FATAL) ends the job before a call returns an error; this is
        // for a library set up otherwise.
        if (code != Success)
            throw new InvalidOperationException($"{call} failed with MPI error {code}");
    }

    private static class LibC
    {
        [DllImport("libc", EntryPoint = "setenv")]
        private static extern int SetEnvironmentNative(byte[] name, byte[] value, int overwrite);

        public static void SetEnvironment(string name, string value) =>
            SetEnvironmentNative(Encoding.UTF8.GetBytes(name + "\0"), Encoding.UTF8.GetBytes(value + "\0"), 1);
    }
}

/// <summary>The ranks of the MPI job this process belongs to (MPI_COMM_WORLD), through <see cref="OpenMpi"/>.</summary>
public sealed class MpiCommunicator : Communicator
{
    private static MpiCommunicator? instance;
    private bool finalized;

    private MpiCommunicator(int rank, int size, string version)
    {
        Rank = rank;
        Size = size;
        Description = $"{version}, {size} rank{(size == 1 ? "" : "s")}";
    }

    public override int Rank { get; }
    public override int Size { get; }
    public override string Description { get; }

    /// <summary>From the launcher: mpirun's OMPI_COMM_WORLD_LOCAL_RANK, or Slurm's SLURM_LOCALID.</summary>
    public override int LocalRank =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK") ?? Environment.GetEnvironmentVariable("SLURM_LOCALID"), out int local)
            ? local
            : Rank;

    /// <summary>MPI_Init once per process (MPI cannot be initialised again after MPI_Finalize).</summary>
    public static MpiCommunicator Initialize()
    {
        if (instance is not null)
            return instance;
        var (rank, size, version) = OpenMpi.Initialize();
        return instance = new MpiCommunicator(rank, size, version);
    }

    public override void AllGather(ReadOnlySpan<float> mine, Span<float> all) => OpenMpi.AllGather(mine, all);
    public override void AllGather(ReadOnlySpan<double> mine, Span<double> all) => OpenMpi.AllGather(mine, all);
    public override void Broadcast(Span<byte> bytes, int root) => OpenMpi.Broadcast(bytes, root);
    public override void AllToAll(ReadOnlySpan<float> send, Span<float> receive) => OpenMpi.AllToAll(send, receive, send.Length / Size);

    /// <summary>Ends the job on every rank with this exit code (see <see cref="OpenMpi.Abort"/>).</summary>
    public void Abort(int exitCode) => OpenMpi.Abort(exitCode);

    /// <summary>MPI_Finalize: every rank calls it at a clean end (it waits for the others).</summary>
    public override void Dispose()
    {
        if (!finalized)
        {
            finalized = true;
            OpenMpi.Shutdown();
        }
        base.Dispose();
    }
}
