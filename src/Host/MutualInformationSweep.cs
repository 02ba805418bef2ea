using System.Globalization;
using CsvHelper;
using IlgpuVae.Model.Checkpoints;

namespace IlgpuVae.Host;

/// <summary>
/// The mutual-information command: one mutual-autoencoder run per target M (Phuong et al. 2018), each in
/// FOLDER/m-M, then for each run's last checkpoint the achieved Î(x; z) (on pairs drawn from the model, as eval
/// reports it) beside the test reconstruction and −ELBO, in FOLDER/mutual-information.csv and
/// FOLDER/mutual-information.png. A run already finished is not trained again, so an interrupted sweep continues.
/// </summary>
public static class MutualInformationSweep
{
    public sealed record Point(double Target, double Achieved, double TestDistortion, double TestRate, double TestElbo);

    public static int Run(TrainOptions options, IReadOnlyList<double> targets, string folder, TextWriter output, CancellationToken interrupt)
    {
        Directory.CreateDirectory(folder);
        var points = new List<Point>();
        foreach (double target in targets)
        {
            string run = Path.Combine(folder, "m-" + target.ToString(CultureInfo.InvariantCulture));
            string metricsPath = Path.Combine(run, "metrics.csv");
            bool done = File.Exists(metricsPath) && MetricsFile.Read(metricsPath).Any(row => row.Epoch == options.Epochs);
            if (!done)
            {
                output.WriteLine($"== target information M = {target.ToString(CultureInfo.InvariantCulture)} nats: {run}");
                int exitCode = new Training(options with { Config = options.Config with { MutualInformation = target }, Out = run }, output, interrupt).Run();
                if (exitCode != 0)
                    return exitCode;
            }
            var last = MetricsFile.Read(metricsPath).Single(row => row.Epoch == options.Epochs);
            using var folderRun = new RunFolder(run, options.Accelerator, options.BatchSize);
            double achieved = folderRun.Vae.InformationEstimate() ?? throw new InvalidOperationException($"{run} holds no mutual autoencoder");
            points.Add(new Point(target, achieved, last.TestReconstruction, last.TestKl, last.TestLoss));
        }

        string csvPath = Path.Combine(folder, "mutual-information.csv");
        AtomicFile.Write(csvPath, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            csv.WriteRecords(points);
        });
        output.WriteLine("M        Î (achieved)  D (test)   R (test)   −ELBO");
        foreach (var point in points)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{point.Target,-8:G4} {point.Achieved,12:F2} {point.TestDistortion,10:F2} {point.TestRate,10:F2} {point.TestElbo,8:F2}"));
        string plotPath = Path.Combine(folder, "mutual-information.png");
        try
        {
            Plots.WriteMutualInformation(plotPath, points.Select(point => (point.Target, point.Achieved, point.TestDistortion)).ToList(),
                $"mutual autoencoder, {options.Data}, {options.Epochs} epochs per M");
            output.WriteLine($"written: {csvPath}, {plotPath}");
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            output.WriteLine($"written: {csvPath}; warning: could not draw {plotPath}: {exception.GetType().Name}: {exception.Message}");
        }
        return 0;
    }
}
