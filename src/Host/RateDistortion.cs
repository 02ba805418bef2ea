using System.Globalization;
using IlgpuVae.Model.Distributed;

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

    /// <param name="ranks">With several (mpirun), each rank trains its share of the σ values, one run at a time on
    /// its GPU, and rank 0 writes the table.</param>
    public static int Run(TrainOptions options, IReadOnlyList<double> targets, string folder, TextWriter output, CancellationToken interrupt,
        Communicator? ranks = null)
    {
        ranks ??= SingleProcess.Instance;
        Directory.CreateDirectory(folder);
        Sweep.FetchOnce(options.Data, ranks);
        var (exitCode, points) = Sweep.RunPoints(ranks, targets.Count, 4, (index, device) =>
        {
            double target = targets[index];
            string run = Path.Combine(folder, "sigma-" + target.ToString(CultureInfo.InvariantCulture));
            var (code, last) = Sweep.TrainUnlessDone(options with { Config = options.Config with { TargetRate = target } }, run,
                $"target rate σ = {target.ToString(CultureInfo.InvariantCulture)} nats", output, interrupt, device);
            return (code, last is null ? null : new Point(target, last.TestKl, last.TestReconstruction, last.TestKl + last.TestReconstruction));
        }, point => [point.TargetRate, point.TestRate, point.TestDistortion, point.TestElbo], values => new Point(values[0], values[1], values[2], values[3]));
        if (exitCode != 0)
            return exitCode;

        output.WriteLine("σ        R (test)   D (test)   R + D");
        foreach (var point in points)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{point.TargetRate,-8:G4} {point.TestRate,9:F2} {point.TestDistortion,10:F2} {point.TestElbo,8:F2}"));
        string plotPath = Path.Combine(folder, "rate-distortion.png");
        if (ranks.IsRoot)
            Sweep.WriteResults(Path.Combine(folder, "rate-distortion.csv"), points, plotPath,
            () => Plots.WriteRateDistortion(plotPath, points.Select(point => (point.TargetRate, point.TestRate, point.TestDistortion)).ToList(),
                $"rate–distortion, {options.Data}, {options.Epochs} epochs per σ"), output);
        return 0;
    }
}
