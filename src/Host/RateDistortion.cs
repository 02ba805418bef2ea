using System.Globalization;

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
            string run = Path.Combine(folder, "sigma-" + target.ToString(CultureInfo.InvariantCulture));
            var (exitCode, last) = Sweep.TrainUnlessDone(options with { Config = options.Config with { TargetRate = target } }, run,
                $"target rate σ = {target.ToString(CultureInfo.InvariantCulture)} nats", output, interrupt);
            if (exitCode != 0)
                return exitCode;
            points.Add(new Point(target, last!.TestKl, last.TestReconstruction, last.TestKl + last.TestReconstruction));
        }

        output.WriteLine("σ        R (test)   D (test)   R + D");
        foreach (var point in points)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{point.TargetRate,-8:G4} {point.TestRate,9:F2} {point.TestDistortion,10:F2} {point.TestElbo,8:F2}"));
        string plotPath = Path.Combine(folder, "rate-distortion.png");
        Sweep.WriteResults(Path.Combine(folder, "rate-distortion.csv"), points, plotPath,
            () => Plots.WriteRateDistortion(plotPath, points.Select(point => (point.TargetRate, point.TestRate, point.TestDistortion)).ToList(),
                $"rate–distortion, {options.Data}, {options.Epochs} epochs per σ"), output);
        return 0;
    }
}
