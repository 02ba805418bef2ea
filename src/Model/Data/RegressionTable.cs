using System.Globalization;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Data;

/// <summary>A regression table: <see cref="Rows"/> rows of <see cref="Features"/> real features (row-major) and one
/// real target each; <see cref="FeatureNames"/> from the header row (or x1, x2, …) and the target's name.</summary>
public sealed record RegressionTable(string Name, string[] FeatureNames, string TargetName, int Rows, int Features, double[] Inputs, double[] Targets)
{
    /// <summary>
    /// Split <paramref name="index"/> of the random train/test splits used for the UCI tables (20 of them in the deep
    /// GP paper): the rows ordered by a Philox shuffle keyed by (<paramref name="seed"/>, index), the first
    /// ⌈testFraction·N⌉ for testing. Each split's parts are standardised by the training part's means and standard
    /// deviations (a feature constant on it is only centred).
    /// </summary>
    public RegressionSplit Split(int index, double testFraction = 0.1, ulong seed = 1)
    {
        if (!(testFraction > 0 && testFraction < 1))
            throw new SettingException($"the test fraction must be between 0 and 1 (got {testFraction.ToString(CultureInfo.InvariantCulture)})");
        int testCount = Math.Clamp((int)Math.Ceiling(testFraction * Rows), 1, Rows - 1);
        var order = Enumerable.Range(0, Rows).OrderBy(row => Philox.Uniform(seed, Philox.Streams.Shuffle, index, row)).ThenBy(row => row).ToArray();
        var test = order[..testCount].Order().ToArray();
        var train = order[testCount..].Order().ToArray();
        return new RegressionSplit(this, train, test);
    }
}

/// <summary>One train/test split of a <see cref="RegressionTable"/>, standardised by the training rows: x' = (x − μ)/σ
/// per feature, y' = (y − μ_y)/σ_y; predictions are turned back with <see cref="TargetMean"/> and
/// <see cref="TargetScale"/> (RMSE and log-likelihoods are reported in the target's own units).</summary>
public sealed class RegressionSplit
{
    public RegressionSplit(RegressionTable table, int[] train, int[] test)
    {
        Table = table;
        TrainRows = train;
        TestRows = test;
        int features = table.Features;
        FeatureMeans = new double[features];
        FeatureScales = new double[features];
        for (int f = 0; f < features; f++)
        {
            var values = train.Select(row => table.Inputs[(long)row * features + f]).ToArray();
            (FeatureMeans[f], FeatureScales[f]) = MeanAndScale(values);
        }
        (TargetMean, TargetScale) = MeanAndScale(train.Select(row => table.Targets[row]).ToArray());
    }

    public RegressionTable Table { get; }
    public int[] TrainRows { get; }
    public int[] TestRows { get; }
    public double[] FeatureMeans { get; }
    public double[] FeatureScales { get; }
    public double TargetMean { get; }
    public double TargetScale { get; }

    /// <summary>The mean and the standard deviation (1 where it is 0: a constant column is only centred).</summary>
    private static (double Mean, double Scale) MeanAndScale(double[] values)
    {
        double mean = values.Average();
        double deviation = Math.Sqrt(values.Sum(value => (value - mean) * (value - mean)) / values.Length);
        return (mean, deviation > 0 ? deviation : 1);
    }

    /// <summary>The standardised inputs [rows, features] and targets of the given rows.</summary>
    public (double[] Inputs, double[] Targets) Standardised(int[] rows)
    {
        int features = Table.Features;
        var inputs = new double[rows.Length * features];
        for (int r = 0; r < rows.Length; r++)
            for (int f = 0; f < features; f++)
                inputs[r * features + f] = (Table.Inputs[(long)rows[r] * features + f] - FeatureMeans[f]) / FeatureScales[f];
        return (inputs, rows.Select(row => (Table.Targets[row] - TargetMean) / TargetScale).ToArray());
    }
}

/// <summary>
/// Reads a regression table from CSV: a header row (optional: its first field not a number), then one row per line,
/// the features and the target last, every cell a finite number. A missing cell, a text cell, a ragged line or a
/// target that is the same on every row is refused with one line naming the file (and the line and column).
/// </summary>
public static class RegressionTableReader
{
    public static RegressionTable Read(string name, string path) => StrictCsv.Open(path, reader => Parse(name, path, reader));

    public static RegressionTable Parse(string name, string path, TextReader text)
    {
        var inputs = new List<double>();
        var targets = new List<double>();
        string[]? header = null;
        int columns = -1;
        long firstDataLine = 0;
        StrictCsv.ForEachRecord(path, text, (record, line) =>
        {
            if (columns < 0)
            {
                if (record.Length < 2)
                    throw new DataFormatException(path, $"line {line}: {record.Length} field; a regression table needs at least one feature and the target (last)");
                columns = record.Length;
                firstDataLine = line;
            }
            else if (record.Length != columns)
                throw new DataFormatException(path, $"line {line}: {record.Length} fields, but line {firstDataLine} has {columns}; every row holds the features and the target");
            for (int column = 0; column < record.Length; column++)
            {
                double value = Number(path, line, column + 1, record[column]);
                if (column < record.Length - 1)
                    inputs.Add(value);
                else
                    targets.Add(value);
            }
        }, record => header = record);
        if (targets.Count == 0)
            throw new DataFormatException(path, "no data rows; a regression table is a header row, then one row of numbers per line, the target last");
        int features = columns - 1;
        var names = header is { } given && given.Length == columns ? given : [.. Enumerable.Range(1, features).Select(f => $"x{f}"), "y"];
        if (targets.All(target => target == targets[0]))
            throw new DataFormatException(path, $"the target column ('{names[^1]}', the last) is {targets[0].ToString(CultureInfo.InvariantCulture)} on every row: there is nothing to regress (is the target the last column?)");
        return new RegressionTable(name, names[..features], names[^1], targets.Count, features, inputs.ToArray(), targets.ToArray());
    }

    private static double Number(string path, long line, int column, string field)
    {
        string where = $"line {line}, column {column}";
        if (field.Trim().Length == 0)
            throw new DataFormatException(path, $"{where}: the cell is empty; a regression table has no missing values (drop or fill the row first)");
        if (!double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
            throw new DataFormatException(path, $"{where}: '{StrictCsv.Shorten(field)}' is not a number; every cell after the header is a number");
        if (!double.IsFinite(value))
            throw new DataFormatException(path, $"{where}: {StrictCsv.Shorten(field)}; values must be finite");
        return value;
    }
}
