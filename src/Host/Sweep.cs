using System.Globalization;
using CsvHelper;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Distributed;

namespace IlgpuVae.Host;

/// <summary>What the sweep commands (rate-distortion, mutual-information) share: one run per point, trained unless
/// it already holds every epoch (so an interrupted sweep continues), and a table written atomically beside a plot.</summary>
internal static class Sweep
{
    /// <summary>Trains <paramref name="options"/> into <paramref name="run"/> unless its metrics already reach the last
    /// epoch; returns the training's exit code (0 when there was nothing to do) and the last epoch's metrics.</summary>
    /// <param name="device">The process the run is alone in, on its rank's GPU (default: this process).</param>
    public static (int ExitCode, EpochMetrics? Last) TrainUnlessDone(TrainOptions options, string run, string banner, TextWriter output,
        CancellationToken interrupt, Communicator? device = null)
    {
        string metricsPath = Path.Combine(run, "metrics.csv");
        bool done = File.Exists(metricsPath) && MetricsFile.Read(metricsPath).Any(row => row.Epoch == options.Epochs);
        if (!done)
        {
            output.WriteLine($"== {banner}: {run}");
            int exitCode = new Training(options with { Out = run }, output, interrupt, device).Run();
            if (exitCode != 0)
                return (exitCode, null);
        }
        return (0, MetricsFile.Read(metricsPath).Single(row => row.Epoch == options.Epochs));
    }

    /// <summary>Under mpirun, the sweep's data set fetched once by rank 0 before the ranks' runs start (each run then
    /// finds it in the cache; runs on several ranks fetching at once would race).</summary>
    public static void FetchOnce(string data, Communicator ranks)
    {
        if (ranks.Size > 1)
            DataSets.Load(data, TextWriter.Null, ranks);
    }

    /// <summary>
    /// Runs the points of a sweep, <paramref name="count"/> of them, over the ranks of the job: rank r takes points
    /// r, r + N, r + 2N, ... one after another, each a run of its own on the rank's GPU (<paramref name="run"/> gets
    /// the point's index and the process to run it in), and every rank gets every point back in index order
    /// (gathered as <paramref name="width"/> doubles each). The exit code is the first failed point's, 0 when all
    /// succeeded; a rank stops taking points after a failure of its own. One process runs them all in order,
    /// stopping at the first failure, as before.
    /// </summary>
    public static (int ExitCode, List<T> Points) RunPoints<T>(Communicator ranks, int count, int width,
        Func<int, Communicator, (int ExitCode, T? Point)> run, Func<T, double[]> toValues, Func<double[], T> fromValues) where T : class
    {
        var device = ranks.Size == 1 ? ranks : SingleProcess.OnDeviceOf(ranks);
        int perRank = (count + ranks.Size - 1) / ranks.Size, entry = 2 + width;
        // Each entry: [point index (−1: none), exit code, the point's values].
        var mine = new double[perRank * entry];
        Array.Fill(mine, -1);
        int slot = 0;
        for (int index = ranks.Rank; index < count; index += ranks.Size, slot++)
        {
            var (exitCode, point) = run(index, device);
            mine[slot * entry] = index;
            mine[slot * entry + 1] = exitCode;
            if (point is not null)
                toValues(point).CopyTo(mine, slot * entry + 2);
            if (exitCode != 0)
                break;
        }
        var all = new double[mine.Length * ranks.Size];
        ranks.AllGather(mine, all);
        var gathered = new SortedDictionary<int, (int ExitCode, double[] Values)>();
        for (int start = 0; start < all.Length; start += entry)
            if (all[start] >= 0)
                gathered[(int)all[start]] = ((int)all[start + 1], all[(start + 2)..(start + entry)]);
        var points = new List<T>();
        foreach (var (_, (exitCode, values)) in gathered)
        {
            if (exitCode != 0)
                return (exitCode, points);
            points.Add(fromValues(values));
        }
        return (0, points);
    }

    /// <summary>The records as CSV (written whole or not at all), then the plot (if any); a plot that cannot be
    /// drawn is a warning, never a failure of the sweep.</summary>
    public static void WriteResults<T>(string csvPath, IReadOnlyList<T> records, string? plotPath, Action? draw, TextWriter output)
    {
        AtomicFile.Write(csvPath, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            csv.WriteRecords(records);
        });
        if (plotPath is null || draw is null)
        {
            output.WriteLine($"written: {csvPath}");
            return;
        }
        try
        {
            draw();
            output.WriteLine($"written: {csvPath}, {plotPath}");
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            output.WriteLine($"written: {csvPath}; warning: could not draw {plotPath}: {exception.GetType().Name}: {exception.Message}");
        }
    }
}
