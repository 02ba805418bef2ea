using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;
using IlgpuVae.Model;
using IlgpuVae.Model.Models;
using IlgpuVae.Model.Checkpoints;

namespace IlgpuVae.Host;

/// <summary>One row of metrics.csv. Losses are nats per example; test figures are single-sample estimates.</summary>
public sealed record EpochMetrics
{
    public int Epoch { get; init; }
    public double TrainLoss { get; init; }
    public double TestLoss { get; init; }
    /// <summary>The first term of the loss on the test set (the reconstruction; the Deep VIB's cross-entropy).</summary>
    public double TestReconstruction { get; init; }
    /// <summary>The second term (the KL; sampled KL terms with two stochastic layers).</summary>
    public double TestKl { get; init; }
    public double TrainReconstruction { get; init; }
    public double TrainKl { get; init; }
    public double Seconds { get; init; }
    public double SamplesPerSecond { get; init; }
}

public static class MetricsFile
{
    /// <summary>Rewrites the whole file through a temporary file and a rename, so a crash never leaves half a file.
    /// The terms' columns are named as the model names them (reconstruction or cross_entropy, kl).</summary>
    public static void Write(string path, IEnumerable<EpochMetrics> rows, ObjectiveTerms? terms = null) =>
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            csv.Context.RegisterClassMap(new MetricsMap(terms ?? ObjectiveTerms.Elbo));
            csv.WriteRecords(rows);
        });

    /// <summary>Reads metrics.csv with the terms' columns under any name a model gives them.</summary>
    public static List<EpochMetrics> Read(string path)
    {
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, CultureInfo.InvariantCulture);
        csv.Context.RegisterClassMap(new MetricsMap(ObjectiveTerms.Elbo));
        return csv.GetRecords<EpochMetrics>().ToList();
    }

    /// <summary>The columns: the terms' under the model's names when writing; every model's names when reading.</summary>
    private sealed class MetricsMap : ClassMap<EpochMetrics>
    {
        private static readonly string[] DistortionColumns = ModelCatalog.All.Select(spec => spec.Terms(new VaeConfig { Model = spec.Kind }).DistortionColumn)
            .Prepend("reconstruction").Distinct().ToArray();
        private static readonly string[] RateColumns = ModelCatalog.All.Select(spec => spec.Terms(new VaeConfig { Model = spec.Kind }).RateColumn)
            .Prepend("kl").Distinct().ToArray();

        public MetricsMap(ObjectiveTerms terms)
        {
            string[] Names(string first, IEnumerable<string> others, string prefix = "") =>
                others.Prepend(first).Distinct().Select(name => prefix + name).ToArray();
            Map(row => row.Epoch).Name("epoch");
            Map(row => row.TrainLoss).Name("train_loss");
            Map(row => row.TestLoss).Name("test_loss");
            Map(row => row.TestReconstruction).Name(Names(terms.DistortionColumn, DistortionColumns));
            Map(row => row.TestKl).Name(Names(terms.RateColumn, RateColumns));
            Map(row => row.TrainReconstruction).Name(Names(terms.DistortionColumn, DistortionColumns, "train_"));
            Map(row => row.TrainKl).Name(Names(terms.RateColumn, RateColumns, "train_"));
            Map(row => row.Seconds).Name("seconds");
            Map(row => row.SamplesPerSecond).Name("samples_per_second");
        }
    }
}
