using System.Globalization;
using IlgpuVae.Model.Distributed;

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

    /// <param name="ranks">With several (mpirun), each rank trains its share of the targets, one run at a time on
    /// its GPU, and rank 0 writes the table.</param>
    public static int Run(TrainOptions options, IReadOnlyList<double> targets, string folder, TextWriter output, CancellationToken interrupt,
        Communicator? ranks = null)
    {
        ranks ??= SingleProcess.Instance;
        Directory.CreateDirectory(folder);
        Sweep.FetchOnce(options.Data, ranks);
        var (exitCode, points) = Sweep.RunPoints(ranks, targets.Count, 5, (index, device) =>
        {
            double target = targets[index];
            string run = Path.Combine(folder, "m-" + target.ToString(CultureInfo.InvariantCulture));
            var (code, last) = Sweep.TrainUnlessDone(options with { Config = options.Config with { MutualInformation = target } }, run,
                $"target information M = {target.ToString(CultureInfo.InvariantCulture)} nats", output, interrupt, device);
            if (code != 0)
                return (code, null);
            using var folderRun = new RunFolder(run, options.Accelerator, options.BatchSize, device);
            double achieved = folderRun.Vae.InformationEstimate() ?? throw new InvalidOperationException($"{run} holds no mutual autoencoder");
            return (0, new Point(target, achieved, last!.TestReconstruction, last.TestKl, last.TestLoss));
        }, point => [point.Target, point.Achieved, point.TestDistortion, point.TestRate, point.TestElbo],
            values => new Point(values[0], values[1], values[2], values[3], values[4]));
        if (exitCode != 0)
            return exitCode;

        output.WriteLine("M        Î (achieved)  D (test)   R (test)   −ELBO");
        foreach (var point in points)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{point.Target,-8:G4} {point.Achieved,12:F2} {point.TestDistortion,10:F2} {point.TestRate,10:F2} {point.TestElbo,8:F2}"));
        string plotPath = Path.Combine(folder, "mutual-information.png");
        if (ranks.IsRoot)
            Sweep.WriteResults(Path.Combine(folder, "mutual-information.csv"), points, plotPath,
            () => Plots.WriteMutualInformation(plotPath, points.Select(point => (point.Target, point.Achieved, point.TestDistortion)).ToList(),
                $"mutual autoencoder, {options.Data}, {options.Epochs} epochs per M"), output);
        return 0;
    }
}
