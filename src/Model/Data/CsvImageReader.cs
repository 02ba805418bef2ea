using System.Globalization;

namespace IlgpuVae.Model.Data;

/// <summary>
/// Reads images from CSV in the layout most MNIST-like CSV exports use: one image per row, the label first, then
/// the pixel intensities as whole numbers from 0 to 255, row-major. An optional header row (its first field not a
/// number, such as "label") is skipped. Square images (784 pixels → 28×28) keep their shape; any other pixel count
/// is read as one row of pixels.
/// </summary>
/// <remarks>
/// Strict on purpose: a fraction, NaN, a value out of range or a ragged row is reported with its line and column
/// rather than rounded, clamped or padded, because a silently altered data set is worse than a refused one.
/// </remarks>
public static class CsvImageReader
{
    /// <summary>Train and test file names looked for in a data folder, in order of preference.</summary>
    public static readonly (string Train, string Test)[] FileNames =
        [("train.csv", "test.csv"), ("mnist_train.csv", "mnist_test.csv")];

    /// <summary>The train and test CSV files of a folder, or null when it holds neither pair.</summary>
    public static (string Train, string Test)? Find(string directory)
    {
        foreach (var (train, test) in FileNames)
        {
            string trainPath = Path.Combine(directory, train), testPath = Path.Combine(directory, test);
            if (File.Exists(trainPath) || File.Exists(testPath))
                return (trainPath, testPath);
        }
        return null;
    }

    public static MnistFormatData LoadFolder(string name, string directory)
    {
        var (trainPath, testPath) = Find(directory)
            ?? throw new DataFormatException(directory, "no train.csv and test.csv here");
        foreach (var path in new[] { trainPath, testPath })
            if (!File.Exists(path))
                throw new DataFormatException(path, $"file not found; a CSV data folder needs both {Path.GetFileName(trainPath)} and {Path.GetFileName(testPath)}");
        var train = Read(name, trainPath);
        var test = Read(name, testPath);
        if (train.Features != test.Features)
            throw new DataFormatException(testPath, $"rows hold {test.Features} pixels but {Path.GetFileName(trainPath)}'s hold {train.Features}; train and test images must be the same size");
        return new MnistFormatData(train, test);
    }

    public static ImageDataset Read(string name, string path) => StrictCsv.Open(path, reader => Parse(name, path, reader));

    public static ImageDataset Parse(string name, string path, TextReader text)
    {
        var pixels = new List<byte>();
        var labels = new List<byte>();
        int features = -1;
        long firstDataLine = 0;
        StrictCsv.ForEachRecord(path, text, (record, line) =>
        {
            if (features < 0)
            {
                if (record.Length < 2)
                    throw new DataFormatException(path, $"line {line}: 1 field; each row needs a label and at least one pixel");
                features = record.Length - 1;
                firstDataLine = line;
            }
            else if (record.Length != features + 1)
                throw new DataFormatException(path, $"line {line}: {record.Length} fields, but line {firstDataLine} has {features + 1}; every row must hold a label and the same number of pixels");
            if ((long)(labels.Count + 1) * features > Array.MaxLength)
                throw new DataFormatException(path, $"line {line}: more pixels than one array can hold ({Array.MaxLength}); split the data set");

            labels.Add(Intensity(path, line, 1, record[0], "label"));
            for (int column = 1; column < record.Length; column++)
                pixels.Add(Intensity(path, line, column + 1, record[column], "pixel"));
        });

        if (labels.Count == 0)
            throw new DataFormatException(path, "no data rows; each row needs a label and the pixel intensities (0-255)");
        int side = (int)Math.Round(Math.Sqrt(features));
        var (height, width) = side * side == features ? (side, side) : (1, features);
        return new ImageDataset(name, pixels.ToArray(), labels.ToArray(), labels.Count, height, width);
    }

    private static byte Intensity(string path, long line, int column, string field, string what)
    {
        if (int.TryParse(field.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value is >= 0 and <= 255)
            return (byte)value;
        string where = $"line {line}, column {column}";
        if (!double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out double number))
            throw new DataFormatException(path, $"{where}: {what} '{Shorten(field)}' is not a number");
        if (!double.IsFinite(number))
            throw new DataFormatException(path, $"{where}: {what} is {Shorten(field)}; values must be finite");
        if (number != Math.Floor(number))
            throw new DataFormatException(path, $"{where}: {what} {Shorten(field)} is not a whole number; intensities are whole numbers 0-255 (multiply data in [0,1] by 255 and round)");
        throw new DataFormatException(path, $"{where}: {what} {Shorten(field)} is outside 0-255");
    }

    private static string Shorten(string field) => StrictCsv.Shorten(field);
}
