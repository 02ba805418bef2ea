using System.Diagnostics;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Time per kernel, filled by a <see cref="KernelSet"/> whose <see cref="KernelSet.Profile"/> is set: each launch
/// is timed from an idle stream to its end, under the name of the launching method (dense layers add their
/// shape). Waiting around every launch is what makes the times per kernel; on a GPU it also removes the overlap
/// of launch overhead with execution, so a profiled step is slower than a plain one.
/// </summary>
public sealed class KernelProfile
{
    private readonly Dictionary<string, (long Launches, long Ticks)> entries = [];

    /// <summary>One launch of <paramref name="kernel"/> that took <paramref name="ticks"/> stopwatch ticks.</summary>
    public void Add(string kernel, long ticks)
    {
        var (count, total) = entries.GetValueOrDefault(kernel);
        entries[kernel] = (count + 1, total + ticks);
    }

    /// <summary>Each kernel's launches and seconds, the most expensive first.</summary>
    public IReadOnlyList<(string Kernel, long Launches, double Seconds)> Entries =>
        entries.Select(entry => (entry.Key, entry.Value.Launches, (double)entry.Value.Ticks / Stopwatch.Frequency))
            .OrderByDescending(entry => entry.Item3).ThenBy(entry => entry.Key, StringComparer.Ordinal).ToList();

    public long Launches => entries.Values.Sum(entry => entry.Launches);
    public double Seconds => (double)entries.Values.Sum(entry => entry.Ticks) / Stopwatch.Frequency;
}
