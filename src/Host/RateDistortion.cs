using System.Globalization;
using CsvHelper;
using IlgpuVae.Model.Checkpoints;

namespace IlgpuVae.Host;

/// <summary>
/// The rate-distortion command: one target-rate run per σ (Alemi et al. 2018), each in FOLDER/sigma-σ, then the
/// test rate and distortion of each run's last epoch in FOLDER/rate-distortion.csv and the curve in
/// FOLDER/rate-distortion.png. A run already finished (its metrics hold every epoch) is not trained again, so an
/// interrupted sweep continues where it stopped.
/// </summary>
public static class RateDistortion
{
    public sealed record Point(double TargetRate, double TestRate, double TestDistortion, double TestElbo);

    public static int Run(TrainOptions options, IReadOnlyList<double> targets, string folder, TextWriter output, CancellationToken interrupt)
    {
        Directory.CreateDirectory(folder);
        var points = new List<Point>();
        foreach (double target in targets)
        {
            string name = "sigma-" + target.ToString(CultureInfo.InvariantCulture);
            string run = Path.Combine(folder, name);
            string metricsPath = Path.Combine(run, "metrics.csv");
            bool done = File.Exists(metricsPath) && MetricsFile.Read(metricsPath).Any(row => row.Epoch == options.Epochs);
            if (!done)
            {
                output.WriteLine($"== target rate σ = {target.ToString(CultureInfo.InvariantCulture)} nats: {run}");
                int exitCode = new Training(options with { Config = options.Config with { TargetRate = target }, Out = run }, output, interrupt).Run();
                if (exitCode != 0)
                    return exitCode;
            }
            var last = MetricsFile.Read(metricsPath).Single(row => row.Epoch == options.Epochs);
            points.Add(new Point(target, last.TestKl, last.TestReconstruction, last.TestKl + last.TestReconstruction));
        }

        string csvPath = Path.Combine(folder, "rate-distortion.csv");
        AtomicFile.Write(csvPath, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            csv.WriteRecords(points);
        });
        output.WriteLine("σ        R (test)   D (test)   R + D");
        foreach (var point in points)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{point.TargetRate,-8:G4} {point.TestRate,9:F2} {point.TestDistortion,10:F2} {point.TestElbo,8:F2}"));
        string plotPath = Path.Combine(folder, "rate-distortion.png");
        try
        {
            Plots.WriteRateDistortion(plotPath, points.Select(point => (point.TargetRate, point.TestRate, point.TestDistortion)).ToList(),
                $"rate–distortion, {options.Data}, {options.Epochs} epochs per σ");
            output.WriteLine($"written: {csvPath}, {plotPath}");
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            output.WriteLine($"written: {csvPath}; warning: could not draw {plotPath}: {exception.GetType().Name}: {exception.Message}");
        }
        return 0;
    }
}
