using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsvHelper;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Data;

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
/// several sessions or machines. protocol.json records the settings the runs share; while it matches, the rows of the
/// folder's results.csv count as finished even where their run folders are gone, so a table carried to another
/// machine as those two files (a few kilobytes, where the run folders hold megabytes of checkpoints) continues there
/// with the splits still missing. A call whose settings differ from protocol.json is refused rather than mixed in.
/// </summary>
public static class DeepGpSplits
{
    public const string ResultsFile = "results.csv", SummaryFile = "summary.md", ProtocolFile = "protocol.json";

    public static int Run(DeepGpSplitsOptions options, TextWriter output, CancellationToken interrupt)
    {
        if (options.Splits < 1)
            throw new ArgumentException($"--splits must be ≥ 1 (got {options.Splits})");
        if (options.Depths.Length == 0 || options.Depths.Any(depth => depth < 1))
            throw new ArgumentException($"--dgp-layers must list depths ≥ 1 (got {string.Join(",", options.Depths)})");
        if (DataSets.Names.Contains(options.Run.Data) || Directory.Exists(options.Run.Data))
            throw new ArgumentException($"dgp-splits draws random splits of a regression table; {options.Run.Data} is an image set with its own test images: train on it with dgp");
        Directory.CreateDirectory(options.Out);
        var recorded = RecordedResults(options);
        var rows = new SortedDictionary<(int Layers, int Split), (double LogLikelihood, double Rmse)>(recorded);
        foreach (int layers in options.Depths)
            for (int split = 0; split < options.Splits; split++)
            {
                string folder = Path.Combine(options.Out, $"layers{layers}-split{split}");
                var score = Finished(folder, options.Run.Steps);
                if (score is null && recorded.TryGetValue((layers, split), out var row))
                    score = row;
                else if (score is null)
                {
                    var run = options.Run with
                    {
                        Settings = options.Run.Settings with { Layers = layers },
                        Split = split,
                        Out = folder,
                        Resume = File.Exists(Path.Combine(folder, DeepGpTraining.CheckpointFile)) ? folder : null,
                        Quiet = true,
                        ProgressLabel = $"layers {layers}, split {split}",
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
                rows[(layers, split)] = score.Value;
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"layers {layers}, split {split}: test log-likelihood {score.Value.LogLikelihood:F4}, RMSE {score.Value.Rmse:F4}"));
            }
        WriteTables(options, rows, output);
        return 0;
    }

    /// <summary>
    /// The rows of results.csv that this call may take as finished: none where protocol.json is absent (a folder from
    /// before it, whose table is rebuilt from its run folders), all of them where it matches this call's settings.
    /// Writes protocol.json for this call; a mismatch is refused, naming the settings that differ.
    /// </summary>
    private static Dictionary<(int Layers, int Split), (double LogLikelihood, double Rmse)> RecordedResults(DeepGpSplitsOptions options)
    {
        var protocol = Protocol(options.Run);
        string protocolPath = Path.Combine(options.Out, ProtocolFile), resultsPath = Path.Combine(options.Out, ResultsFile);
        var recorded = new Dictionary<(int, int), (double, double)>();
        if (File.Exists(protocolPath))
        {
            JsonObject existing;
            try
            {
                existing = JsonNode.Parse(File.ReadAllText(protocolPath))?.AsObject() ?? throw new JsonException("empty");
            }
            catch (Exception exception) when (exception is JsonException or InvalidOperationException)
            {
                throw new DataFormatException(protocolPath, $"not a JSON object of settings ({exception.Message}); delete it to start the table again from its run folders");
            }
            string Text(JsonNode? node) => node?.ToJsonString() ?? "(absent)";
            var differing = protocol.Select(pair => pair.Key).Union(existing.Select(pair => pair.Key))
                .Where(key => Text(protocol[key]) != Text(existing[key]))
                .Select(key => $"{key} {Text(existing[key])} there, {Text(protocol[key])} here").ToList();
            if (differing.Count > 0)
                throw new DataFormatException(protocolPath, $"this table was run with other settings ({string.Join("; ", differing)}): ask for the same ones, or give another --out");
            if (File.Exists(resultsPath))
                recorded = ReadResults(resultsPath);
        }
        AtomicFile.WriteText(protocolPath, protocol.ToJsonString(RunSettingsFile.Indented));
        return recorded;
    }

    /// <summary>The settings every run of a table shares: a run's settings.json less its depth and split, with the
    /// steps and the evaluation's samples.</summary>
    private static JsonObject Protocol(DeepGpOptions run)
    {
        var protocol = DeepGpTraining.SettingsObject(run);
        protocol.Remove("split");
        protocol.Remove("layers");
        protocol["steps"] = run.Steps;
        protocol["samples"] = run.Samples;
        return protocol;
    }

    private static Dictionary<(int Layers, int Split), (double LogLikelihood, double Rmse)> ReadResults(string path)
    {
        var rows = new Dictionary<(int, int), (double, double)>();
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, CultureInfo.InvariantCulture);
        try
        {
            csv.Read();
            csv.ReadHeader();
            csv.ValidateHeader<ResultRow>();
            foreach (var row in csv.GetRecords<ResultRow>())
                if (!rows.TryAdd((row.Layers, row.Split), (row.TestLogLikelihood, row.TestRmse)))
                    throw new DataFormatException(path, $"line {csv.Parser.RawRow}: layers {row.Layers}, split {row.Split} is listed twice; keep one of the two lines");
        }
        catch (CsvHelperException exception)
        {
            throw new DataFormatException(path, $"line {exception.Context?.Parser?.RawRow}: not a row of layers,split,test_log_likelihood,test_rmse ({exception.GetType().Name}); mend or delete the line", inner: exception);
        }
        return rows;
    }

    /// <summary>One line of results.csv.</summary>
    private sealed record ResultRow
    {
        [CsvHelper.Configuration.Attributes.Name("layers")] public int Layers { get; init; }
        [CsvHelper.Configuration.Attributes.Name("split")] public int Split { get; init; }
        [CsvHelper.Configuration.Attributes.Name("test_log_likelihood")] public double TestLogLikelihood { get; init; }
        [CsvHelper.Configuration.Attributes.Name("test_rmse")] public double TestRmse { get; init; }
    }

    /// <summary>results.csv and summary.md for the runs finished so far (all of them, or a partial table when stopped),
    /// with the rows recorded before for depths or splits this call did not ask for.</summary>
    private static void WriteTables(DeepGpSplitsOptions options, SortedDictionary<(int Layers, int Split), (double LogLikelihood, double Rmse)> rows, TextWriter output)
    {
        AtomicFile.Write(Path.Combine(options.Out, ResultsFile), stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            foreach (var name in new[] { "layers", "split", "test_log_likelihood", "test_rmse" })
                csv.WriteField(name);
            csv.NextRecord();
            foreach (var ((layers, split), (logLikelihood, rmse)) in rows)
            {
                csv.WriteField(layers);
                csv.WriteField(split);
                csv.WriteField(logLikelihood.ToString("R", CultureInfo.InvariantCulture));
                csv.WriteField(rmse.ToString("R", CultureInfo.InvariantCulture));
                csv.NextRecord();
            }
        });
        var summary = new StringBuilder();
        int planned = options.Depths.Length * options.Splits;
        int finished = options.Depths.Sum(layers => Enumerable.Range(0, options.Splits).Count(split => rows.ContainsKey((layers, split))));
        if (finished < planned)
            summary.AppendLine(CultureInfo.InvariantCulture, $"Partial: {finished} of {planned} runs finished (run dgp-splits again to continue).");
        summary.AppendLine(CultureInfo.InvariantCulture, $"{options.Run.Data}: {options.Splits} splits ({options.Run.TestFraction:P0} test, split seed {options.Run.SplitSeed}), {options.Run.Settings.Inducing} inducing points, {options.Run.Steps} Adam steps at {options.Run.Settings.LearningRate}, {options.Run.Samples} samples");
        summary.AppendLine();
        summary.AppendLine("| model | splits | test log-likelihood | RMSE |");
        summary.AppendLine("|---|---|---|---|");
        foreach (var group in rows.GroupBy(row => row.Key.Layers))
        {
            var (ll, llError) = MeanAndStandardError(group.Select(row => row.Value.LogLikelihood).ToArray());
            var (rmse, rmseError) = MeanAndStandardError(group.Select(row => row.Value.Rmse).ToArray());
            string name = group.Key == 1 ? "sparse GP (1 layer)" : $"DGP {group.Key}";
            summary.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {group.Count()} | {ll:F2} ± {Spread(llError)} | {rmse:F2} ± {Spread(rmseError)} |");
        }
        // The splits are shared, so a deeper model is best judged against the single GP split by split: the spread
        // between splits (some are harder than others) is most of each row's standard error but cancels in a pair.
        var comparisons = PairedAgainstOneLayer(rows);
        if (comparisons.Count > 0)
            summary.AppendLine();
        foreach (var line in comparisons)
            summary.AppendLine(line);
        AtomicFile.WriteText(Path.Combine(options.Out, SummaryFile), summary.ToString());
        output.Write(summary.ToString());
    }

    /// <summary>
    /// For each depth above 1, against the single sparse GP on the splits both have: the mean difference (deeper minus
    /// single) of the test log-likelihood and of the RMSE with their standard errors, and on how many splits the deeper
    /// model did better (a higher log-likelihood, a lower RMSE).
    /// </summary>
    public static List<string> PairedAgainstOneLayer(IReadOnlyDictionary<(int Layers, int Split), (double LogLikelihood, double Rmse)> rows)
    {
        var lines = new List<string>();
        foreach (int layers in rows.Keys.Select(key => key.Layers).Where(layers => layers > 1).Distinct().Order())
        {
            var pairs = rows.Where(row => row.Key.Layers == layers && rows.ContainsKey((1, row.Key.Split)))
                .Select(row => (Deeper: row.Value, Single: rows[(1, row.Key.Split)])).ToArray();
            if (pairs.Length == 0)
                continue;
            var (ll, llError) = MeanAndStandardError(pairs.Select(pair => pair.Deeper.LogLikelihood - pair.Single.LogLikelihood).ToArray());
            var (rmse, rmseError) = MeanAndStandardError(pairs.Select(pair => pair.Deeper.Rmse - pair.Single.Rmse).ToArray());
            int betterLikelihood = pairs.Count(pair => pair.Deeper.LogLikelihood > pair.Single.LogLikelihood);
            int betterRmse = pairs.Count(pair => pair.Deeper.Rmse < pair.Single.Rmse);
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"DGP {layers} against the sparse GP on the {pairs.Length} split{(pairs.Length == 1 ? "" : "s")} both finished: test log-likelihood {ll:+0.00;−0.00} ± {Spread(llError)} (higher on {betterLikelihood}), RMSE {rmse:+0.00;−0.00} ± {Spread(rmseError)} (lower on {betterRmse})."));
        }
        return lines;
    }

    /// <summary>
    /// The mean and its standard error (sample standard deviation over √n). One value has no spread to measure, so its
    /// standard error is NaN rather than 0, which would read as a certain result.
    /// </summary>
    public static (double Mean, double StandardError) MeanAndStandardError(double[] values)
    {
        double mean = values.Average();
        if (values.Length < 2)
            return (mean, double.NaN);
        double variance = values.Sum(value => (value - mean) * (value - mean)) / (values.Length - 1);
        return (mean, Math.Sqrt(variance / values.Length));
    }

    /// <summary>A standard error for the tables: two decimals, or "n/a" where it is undefined (one split).</summary>
    public static string Spread(double standardError) =>
        double.IsNaN(standardError) ? "n/a" : standardError.ToString("F2", CultureInfo.InvariantCulture);

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
