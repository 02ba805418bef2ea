using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.Model.Core;

/// <summary>One device buffer a model asks for: its name, its element size in bytes, and its length in elements.</summary>
public readonly record struct BufferRequest(string Name, int ElementBytes, long Length)
{
    public long Bytes => ElementBytes * Length;
}

/// <summary>
/// The named device buffers a model needs for batches of up to a given size, listed before anything is
/// allocated. The same list is what <see cref="Workspace"/> allocates and what <see cref="MemoryPlan"/> adds up,
/// so the memory a run is refused for is exactly the memory it would have taken. A model lists only the buffers
/// its own computation reads and writes: no placeholders for what another model needs.
/// </summary>
public sealed class WorkspacePlan
{
    private readonly List<BufferRequest> requests = [];
    private readonly HashSet<string> names = [];

    public IReadOnlyList<BufferRequest> Requests => requests;

    /// <summary>All the buffers' bytes together.</summary>
    public long Bytes => requests.Sum(request => request.Bytes);

    public void Floats(string name, long length) => Add(new BufferRequest(name, sizeof(float), length));

    public void Doubles(string name, long length) => Add(new BufferRequest(name, sizeof(double), length));

    private void Add(BufferRequest request)
    {
        if (!names.Add(request.Name))
            throw new InvalidOperationException($"the workspace plan names buffer '{request.Name}' twice");
        if (request.Length < 0)
            throw new ArgumentOutOfRangeException(nameof(request), $"buffer '{request.Name}' has a negative length {request.Length}");
        requests.Add(request);
    }
}

/// <summary>
/// The buffers of a <see cref="WorkspacePlan"/> allocated on one accelerator and found by name. Every buffer starts
/// zeroed, so a kernel that accumulates into one, or padding that no kernel writes, reads zeros.
/// </summary>
public sealed class Workspace : IDisposable
{
    private readonly Dictionary<string, MemoryBuffer1D<float, Stride1D.Dense>> floats = new();
    private readonly Dictionary<string, MemoryBuffer1D<double, Stride1D.Dense>> doubles = new();

    public Workspace(Accelerator accelerator, WorkspacePlan plan)
    {
        try
        {
            foreach (var request in plan.Requests)
            {
                long length = request.Length;
                if (request.ElementBytes == sizeof(double))
                {
                    var buffer = accelerator.Allocate1D<double>(length);
                    doubles[request.Name] = buffer;
                    buffer.MemSetToZero();
                }
                else
                {
                    var buffer = accelerator.Allocate1D<float>(length);
                    floats[request.Name] = buffer;
                    buffer.MemSetToZero();
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public bool Has(string name) => floats.ContainsKey(name) || doubles.ContainsKey(name);

    /// <summary>The float buffer named <paramref name="name"/>; a model that asks for a buffer it did not plan
    /// is a bug in that model, reported with the buffer's name.</summary>
    public MemoryBuffer1D<float, Stride1D.Dense> Floats(string name) =>
        floats.TryGetValue(name, out var buffer) ? buffer : throw Missing(name);

    public MemoryBuffer1D<double, Stride1D.Dense> Doubles(string name) =>
        doubles.TryGetValue(name, out var buffer) ? buffer : throw Missing(name);

    private static InvalidOperationException Missing(string name) =>
        new($"the model asked for device buffer '{name}', which its workspace plan does not list");

    public void Dispose()
    {
        foreach (var buffer in floats.Values)
            buffer.Dispose();
        foreach (var buffer in doubles.Values)
            buffer.Dispose();
        floats.Clear();
        doubles.Clear();
    }
}
