using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration.Attributes;
using IlgpuVae.Model.Checkpoints;

namespace IlgpuVae.Host;

/// <summary>One row of metrics.csv. Losses are nats per example; test figures are single-sample ELBO estimates.</summary>
public sealed record EpochMetrics
{
    [Name("epoch")] public int Epoch { get; init; }
    [Name("train_loss")] public double TrainLoss { get; init; }
    [Name("test_loss")] public double TestLoss { get; init; }
    [Name("reconstruction")] public double TestReconstruction { get; init; }
    [Name("kl")] public double TestKl { get; init; }
    [Name("train_reconstruction")] public double TrainReconstruction { get; init; }
    [Name("train_kl")] public double TrainKl { get; init; }
    [Name("seconds")] public double Seconds { get; init; }
    [Name("samples_per_second")] public double SamplesPerSecond { get; init; }
}

public static class MetricsFile
{
    /// <summary>Rewrites the whole file through a temporary file and a rename, so a crash never leaves half a file.</summary>
    public static void Write(string path, IEnumerable<EpochMetrics> rows) =>
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            csv.WriteRecords(rows);
        });

    public static List<EpochMetrics> Read(string path)
    {
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, CultureInfo.InvariantCulture);
        return csv.GetRecords<EpochMetrics>().ToList();
    }
}
