using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using CsvHelper;
using IlgpuVae.Model.Checkpoints;

namespace IlgpuVae.Host;

/// <summary>What `dgp-splits` was asked to do: one deep GP setting run for several depths on several splits.</summary>
public sealed record DeepGpSplitsOptions
{
    public DeepGpOptions Run { get; init; } = new();
    public int[] Depths { get; init; } = [1, 2, 3];
    public int Splits { get; init; } = 20;
    public string Out { get; init; } = "runs/dgp-splits";
}

/// <summary>
/// The paper's protocol for the UCI tables: each depth trained on each of the random 90/10 splits, each run in its own
/// folder (OUT/layers{L}-split{i}, a `dgp` run folder), then results.csv (one row per run) and summary.md (per depth
/// the mean and standard error over the splits of the test log-likelihood and RMSE). A run already finished to the
/// asked steps is read back, not retrained, and one stopped part way is resumed, so the table can be filled in over
/// several sessions or machines.
/// </summary>
public static class DeepGpSplits
{
    public const string ResultsFile = "results.csv", SummaryFile = "summary.md";

    public static int Run(DeepGpSplitsOptions options, TextWriter output, CancellationToken interrupt)
    {
        if (options.Splits < 1)
            throw new ArgumentException($"--splits must be ≥ 1 (got {options.Splits})");
        if (options.Depths.Length == 0 || options.Depths.Any(depth => depth < 1))
            throw new ArgumentException($"--dgp-layers must list depths ≥ 1 (got {string.Join(",", options.Depths)})");
        if (DataSets.Names.Contains(options.Run.Data) || Directory.Exists(options.Run.Data))
            throw new ArgumentException($"dgp-splits draws random splits of a regression table; {options.Run.Data} is an image set with its own test images: train on it with dgp");
        Directory.CreateDirectory(options.Out);
        var rows = new List<(int Layers, int Split, double LogLikelihood, double Rmse)>();
        foreach (int layers in options.Depths)
            for (int split = 0; split < options.Splits; split++)
            {
                string folder = Path.Combine(options.Out, $"layers{layers}-split{split}");
                var score = Finished(folder, options.Run.Steps);
                if (score is null)
                {
                    var run = options.Run with
                    {
                        Settings = options.Run.Settings with { Layers = layers },
                        Split = split,
                        Out = folder,
                        Resume = File.Exists(Path.Combine(folder, DeepGpTraining.CheckpointFile)) ? folder : null,
                        Quiet = true,
                    };
                    var (exitCode, last) = DeepGpTraining.Train(run, output, interrupt);
                    if (exitCode != 0 || last is null)
                    {
                        output.WriteLine($"layers {layers}, split {split}: stopped (exit {exitCode}); run dgp-splits again to continue");
                        WriteTables(options, rows, output);
                        return exitCode == 0 ? 1 : exitCode;
                    }
                    score = (last.TestLogLikelihood, last.TestRmse);
                }
                rows.Add((layers, split, score.Value.LogLikelihood, score.Value.Rmse));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"layers {layers}, split {split}: test log-likelihood {score.Value.LogLikelihood:F4}, RMSE {score.Value.Rmse:F4}"));
            }
        WriteTables(options, rows, output);
        return 0;
    }

    /// <summary>results.csv and summary.md for the runs finished so far (all of them, or a partial table when stopped).</summary>
    private static void WriteTables(DeepGpSplitsOptions options, List<(int Layers, int Split, double LogLikelihood, double Rmse)> rows, TextWriter output)
    {
        using (var writer = new StreamWriter(Path.Combine(options.Out, ResultsFile)))
        using (var csv = new CsvWriter(writer, CultureInfo.InvariantCulture))
        {
            foreach (var name in new[] { "layers", "split", "test_log_likelihood", "test_rmse" })
                csv.WriteField(name);
            csv.NextRecord();
            foreach (var row in rows)
            {
                csv.WriteField(row.Layers);
                csv.WriteField(row.Split);
                csv.WriteField(row.LogLikelihood.ToString("R", CultureInfo.InvariantCulture));
                csv.WriteField(row.Rmse.ToString("R", CultureInfo.InvariantCulture));
                csv.NextRecord();
            }
        }
        var summary = new StringBuilder();
        int planned = options.Depths.Length * options.Splits;
        if (rows.Count < planned)
            summary.AppendLine(CultureInfo.InvariantCulture, $"Partial: {rows.Count} of {planned} runs finished (run dgp-splits again to continue).");
        summary.AppendLine(CultureInfo.InvariantCulture, $"{options.Run.Data}: {options.Splits} splits ({options.Run.TestFraction:P0} test, split seed {options.Run.SplitSeed}), {options.Run.Settings.Inducing} inducing points, {options.Run.Steps} Adam steps at {options.Run.Settings.LearningRate}, {options.Run.Samples} samples");
        summary.AppendLine();
        summary.AppendLine("| model | splits | test log-likelihood | RMSE |");
        summary.AppendLine("|---|---|---|---|");
        foreach (var group in rows.GroupBy(row => row.Layers))
        {
            var (ll, llError) = MeanAndStandardError(group.Select(row => row.LogLikelihood).ToArray());
            var (rmse, rmseError) = MeanAndStandardError(group.Select(row => row.Rmse).ToArray());
            string name = group.Key == 1 ? "sparse GP (1 layer)" : $"DGP {group.Key}";
            summary.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {group.Count()} | {ll:F2} ± {llError:F2} | {rmse:F2} ± {rmseError:F2} |");
        }
        AtomicFile.WriteText(Path.Combine(options.Out, SummaryFile), summary.ToString());
        output.Write(summary.ToString());
    }

    /// <summary>The mean and its standard error (sample standard deviation over √n; 0 for one value).</summary>
    public static (double Mean, double StandardError) MeanAndStandardError(double[] values)
    {
        double mean = values.Average();
        if (values.Length < 2)
            return (mean, 0);
        double variance = values.Sum(value => (value - mean) * (value - mean)) / (values.Length - 1);
        return (mean, Math.Sqrt(variance / values.Length));
    }

    /// <summary>The scores of a run folder whose eval.json is at the asked step, else null.</summary>
    private static (double LogLikelihood, double Rmse)? Finished(string folder, int steps)
    {
        string path = Path.Combine(folder, DeepGpTraining.EvalFile);
        if (!File.Exists(path))
            return null;
        var eval = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        if (eval["step"]!.GetValue<long>() != steps)
            return null;
        return (eval["test_log_likelihood"]!.GetValue<double>(), eval["test_rmse"]!.GetValue<double>());
    }
}
