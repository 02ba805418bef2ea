using System.Globalization;
using CsvHelper;
using IlgpuVae.Model.Checkpoints;

namespace IlgpuVae.Host;

/// <summary>What the sweep commands (rate-distortion, mutual-information) share: one run per point, trained unless
/// it already holds every epoch (so an interrupted sweep continues), and a table written atomically beside a plot.</summary>
internal static class Sweep
{
    /// <summary>Trains <paramref name="options"/> into <paramref name="run"/> unless its metrics already reach the last
    /// epoch; returns the training's exit code (0 when there was nothing to do) and the last epoch's metrics.</summary>
    public static (int ExitCode, EpochMetrics? Last) TrainUnlessDone(TrainOptions options, string run, string banner, TextWriter output,
        CancellationToken interrupt)
    {
        string metricsPath = Path.Combine(run, "metrics.csv");
        bool done = File.Exists(metricsPath) && MetricsFile.Read(metricsPath).Any(row => row.Epoch == options.Epochs);
        if (!done)
        {
            output.WriteLine($"== {banner}: {run}");
            int exitCode = new Training(options with { Out = run }, output, interrupt).Run();
            if (exitCode != 0)
                return (exitCode, null);
        }
        return (0, MetricsFile.Read(metricsPath).Single(row => row.Epoch == options.Epochs));
    }

    /// <summary>The records as CSV (written whole or not at all), then the plot; a plot that cannot be drawn is a
    /// warning, never a failure of the sweep.</summary>
    public static void WriteResults<T>(string csvPath, IReadOnlyList<T> records, string plotPath, Action draw, TextWriter output)
    {
        AtomicFile.Write(csvPath, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            csv.WriteRecords(records);
        });
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
