using System.Globalization;
using System.Text;
using CsvHelper;
using CsvHelper.Configuration;

namespace IlgpuVae.Model.Data;

/// <summary>
/// What the strict CSV readers (<see cref="CsvImageReader"/>, <see cref="CountMatrixReader"/>,
/// <see cref="RegressionTableReader"/>) share: opening a file
/// with a one-line error when it is missing, and reading its records with CsvHelper's parser — blank lines skipped,
/// a header row skipped when the first record's first field is not a number, and the parser's own complaints
/// (a stray quote) turned into a <see cref="DataFormatException"/> naming the line.
/// </summary>
internal static class StrictCsv
{
    public static T Open<T>(string path, Func<TextReader, T> parse)
    {
        try
        {
            using var reader = new StreamReader(path, new UTF8Encoding(false, throwOnInvalidBytes: false));
            return parse(reader);
        }
        catch (IOException error) when (error is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataFormatException(path, "file not found");
        }
    }

    /// <summary>Calls <paramref name="record"/> with each data record's fields and its line number (and
    /// <paramref name="header"/> with the header row's, when there is one).</summary>
    public static void ForEachRecord(string path, TextReader text, Action<string[], long> record, Action<string[]>? header = null)
    {
        var configuration = new CsvConfiguration(CultureInfo.InvariantCulture)
        {
            HasHeaderRecord = false,
            DetectColumnCountChanges = false,
            // A stray quote or similar is reported by the parser; we turn it into our one-line error below.
            BadDataFound = arguments => throw new DataFormatException(path,
                $"line {arguments.Context.Parser?.RawRow}: malformed CSV (a quote inside an unquoted field?) in '{Shorten(arguments.Field)}'"),
        };
        using var parser = new CsvParser(text, configuration);
        bool headerAllowed = true;
        try
        {
            while (parser.Read())
            {
                var fields = parser.Record ?? [];
                if (fields.Length == 1 && fields[0].Length == 0)
                    continue; // a blank line, typically the last one
                bool isHeader = headerAllowed && !IsNumber(fields[0]);
                headerAllowed = false; // only the first row may be a header
                if (!isHeader)
                    record(fields, parser.RawRow);
                else
                    header?.Invoke(fields);
            }
        }
        catch (CsvHelperException error) when (error.InnerException is DataFormatException format)
        {
            throw format;
        }
        catch (CsvHelperException error)
        {
            throw new DataFormatException(path, $"line {parser.RawRow}: malformed CSV: {error.Message.Split('\n')[0]}");
        }
    }

    public static bool IsNumber(string field) => double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    /// <summary>A field as an error message quotes it: at most 20 characters.</summary>
    public static string Shorten(string field) => field.Length <= 20 ? field : field[..20] + "...";
}
