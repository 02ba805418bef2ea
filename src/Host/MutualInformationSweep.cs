using System.Globalization;

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
            var (exitCode, last) = Sweep.TrainUnlessDone(options with { Config = options.Config with { MutualInformation = target } }, run,
                $"target information M = {target.ToString(CultureInfo.InvariantCulture)} nats", output, interrupt);
            if (exitCode != 0)
                return exitCode;
            using var folderRun = new RunFolder(run, options.Accelerator, options.BatchSize);
            double achieved = folderRun.Vae.InformationEstimate() ?? throw new InvalidOperationException($"{run} holds no mutual autoencoder");
            points.Add(new Point(target, achieved, last!.TestReconstruction, last.TestKl, last.TestLoss));
        }

        output.WriteLine("M        Î (achieved)  D (test)   R (test)   −ELBO");
        foreach (var point in points)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{point.Target,-8:G4} {point.Achieved,12:F2} {point.TestDistortion,10:F2} {point.TestRate,10:F2} {point.TestElbo,8:F2}"));
        string plotPath = Path.Combine(folder, "mutual-information.png");
        Sweep.WriteResults(Path.Combine(folder, "mutual-information.csv"), points, plotPath,
            () => Plots.WriteMutualInformation(plotPath, points.Select(point => (point.Target, point.Achieved, point.TestDistortion)).ToList(),
                $"mutual autoencoder, {options.Data}, {options.Epochs} epochs per M"), output);
        return 0;
    }
}
