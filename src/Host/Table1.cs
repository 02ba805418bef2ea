using System.Globalization;
using System.Text.Json;
using IlgpuVae.Model;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Distributed;

namespace IlgpuVae.Host;

/// <summary>
/// The table1 command: the IWAE paper's Table 1 presets, each trained into FOLDER/PRESET and scored by eval with
/// k importance samples, then one table of our test NLL beside the paper's in FOLDER/table1.csv and
/// FOLDER/table1.md. Under mpirun the presets are shared out over the ranks, one run at a time per rank on its
/// GPU; a run that already holds every epoch is not trained again, and an eval.json of the same k and images is
/// reused, so an interrupted table continues.
/// </summary>
public static class Table1
{
    public sealed record Row(string Preset, double Nll, double PaperNll, double Difference, double TestLoss, int ActiveUnits, int LatentUnits,
        int Epochs, int K, int Examples);

    public static int Run(IReadOnlyList<string> presets, Func<string, TrainOptions> optionsFor, int k, int examples, string folder,
        TextWriter output, CancellationToken interrupt, Communicator? ranks = null)
    {
        ranks ??= SingleProcess.Instance;
        Directory.CreateDirectory(folder);
        Sweep.FetchOnce(optionsFor(presets[0]).Data, ranks);
        if (ranks.Size > 1)
            output.WriteLine($"table1: {presets.Count} presets over {ranks.Size} ranks, one run at a time on each (rank 0's runs shown)");
        var (exitCode, rows) = Sweep.RunPoints(ranks, presets.Count, 9, (index, device) =>
        {
            string preset = presets[index], run = Path.Combine(folder, preset);
            var options = optionsFor(preset);
            var (code, _) = Sweep.TrainUnlessDone(options, run, $"preset {preset}", output, interrupt, device);
            if (code != 0)
                return (code, null);
            var report = FinishedEvaluation(run, k, examples)
                         ?? Evaluate.Run(run, k, examples, options.Accelerator, output, ranks: device);
            double nll = report.NegativeLogLikelihood ?? double.NaN, paper = Presets.PaperNll[preset];
            return (0, new Row(preset, nll, paper, nll - paper, report.Loss, report.ActiveUnits, report.LatentUnits, options.Epochs, k, report.Examples));
        }, row => [presets.ToList().IndexOf(row.Preset), row.Nll, row.PaperNll, row.Difference, row.TestLoss, row.ActiveUnits, row.LatentUnits, row.Epochs, row.Examples],
            values => new Row(presets[(int)values[0]], values[1], values[2], values[3], values[4], (int)values[5], (int)values[6], (int)values[7], k, (int)values[8]));
        if (exitCode != 0)
            return exitCode;

        string table = Markdown(rows);
        output.Write(table);
        if (ranks.IsRoot)
        {
            string csvPath = Path.Combine(folder, "table1.csv"), markdownPath = Path.Combine(folder, "table1.md");
            Sweep.WriteResults(csvPath, rows, null, null, output);
            AtomicFile.WriteText(markdownPath, table);
            output.WriteLine($"written: {markdownPath}");
        }
        return 0;
    }

    private static string Markdown(IReadOnlyList<Row> rows)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine("| preset | epochs | test NLL (−L_k) | paper | ours − paper | test loss | active units |");
        text.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var row in rows)
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Preset} | {row.Epochs} | {row.Nll:F2} (k = {row.K}, {row.Examples} images) | {row.PaperNll:F2} | {row.Difference:+0.00;−0.00} | {row.TestLoss:F2} | {row.ActiveUnits} of {row.LatentUnits} |"));
        return text.ToString();
    }

    /// <summary>The run's eval.json when it was written after the last checkpoint with this k and number of images
    /// (0: the whole test set, whatever its size); null otherwise.</summary>
    private static EvaluationReport? FinishedEvaluation(string run, int k, int examples)
    {
        string path = Path.Combine(run, "eval.json"), state = Path.Combine(run, TrainOptions.CheckpointFolder, Checkpoint.StateFile);
        if (!File.Exists(path) || !File.Exists(state) || File.GetLastWriteTimeUtc(path) < File.GetLastWriteTimeUtc(state))
            return null;
        try
        {
            var report = JsonSerializer.Deserialize<EvaluationReport>(File.ReadAllText(path), Checkpoint.JsonOptions);
            return report is not null && report.K == k && (examples == 0 || report.Examples == examples) && report.LowerBound is not null ? report : null;
        }
        catch (JsonException)
        {
            return null; // not ours to trust: evaluate again
        }
    }
}
