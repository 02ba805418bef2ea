using System.Globalization;

namespace IlgpuVae.Model.Data;

/// <summary>A matrix of counts y_ij ≥ 0 (rows × columns, row-major, each a whole number held exactly in a float):
/// what the double deep exponential family factorises (users × items, documents × terms, images × cells).</summary>
public sealed record CountMatrix(string Name, int Rows, int Columns, float[] Counts)
{
    public float this[int row, int column] => Counts[(long)row * Columns + column];
}

/// <summary>
/// Reads a count matrix from CSV: one matrix row per line, every field a whole number from 0 to 2²⁴ (the largest
/// count a float holds exactly), the same number of fields on every line. A header row (its first field not a
/// number) is skipped; blank lines are ignored.
/// </summary>
/// <remarks>Strict, as <see cref="CsvImageReader"/> is: a fraction, a negative number, text or a ragged line is
/// reported with its line and column, never rounded or padded.</remarks>
public static class CountMatrixReader
{
    /// <summary>The largest count: every whole number up to 2²⁴ is exact in a float.</summary>
    public const int MaxCount = 1 << 24;

    public static CountMatrix Read(string name, string path) => StrictCsv.Open(path, reader => Parse(name, path, reader));

    public static CountMatrix Parse(string name, string path, TextReader text)
    {
        var counts = new List<float>();
        int columns = -1, rows = 0;
        long firstDataLine = 0;
        StrictCsv.ForEachRecord(path, text, (record, line) =>
        {
            if (columns < 0)
            {
                columns = record.Length;
                firstDataLine = line;
            }
            else if (record.Length != columns)
                throw new DataFormatException(path, $"line {line}: {record.Length} fields, but line {firstDataLine} has {columns}; every row of a count matrix must have the same number of columns");
            if ((long)(rows + 1) * columns > Array.MaxLength)
                throw new DataFormatException(path, $"line {line}: more cells than one array can hold ({Array.MaxLength})");
            for (int column = 0; column < record.Length; column++)
                counts.Add(Count(path, line, column + 1, record[column]));
            rows++;
        });
        if (rows == 0)
            throw new DataFormatException(path, "no data rows; a count matrix is one row per line of whole numbers ≥ 0");
        return new CountMatrix(name, rows, columns, counts.ToArray());
    }

    private static float Count(string path, long line, int column, string field)
    {
        if (int.TryParse(field.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value is >= 0 and <= MaxCount)
            return value;
        string where = $"line {line}, column {column}";
        if (field.Trim().Length == 0)
            throw new DataFormatException(path, $"{where}: the cell is empty; a count matrix has no missing values (write 0 for none)");
        if (!double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out double number))
            throw new DataFormatException(path, $"{where}: '{Shorten(field)}' is not a number");
        if (!double.IsFinite(number))
            throw new DataFormatException(path, $"{where}: {Shorten(field)}; counts must be finite");
        if (number != Math.Floor(number))
            throw new DataFormatException(path, $"{where}: {Shorten(field)} is not a whole number; the Poisson likelihood needs counts");
        if (number < 0)
            throw new DataFormatException(path, $"{where}: {Shorten(field)} is negative; counts are ≥ 0");
        throw new DataFormatException(path, $"{where}: {Shorten(field)} is above {MaxCount}, the largest count a float holds exactly");
    }

    private static string Shorten(string field) => StrictCsv.Shorten(field);
}
