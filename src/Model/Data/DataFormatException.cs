namespace IlgpuVae.Model.Data;

/// <summary>
/// A data file that cannot be used, with the file, where in it, and what was wrong; the host prints
/// <see cref="Exception.Message"/> as one line and exits with code 2.
/// </summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string path, string problem, long? offset = null, Exception? inner = null)
        : base(OneLine(offset is null ? $"{path}: {problem}" : $"{path}: at byte {offset}: {problem}"), inner)
    {
        Path = path;
        Problem = OneLine(problem);
        Offset = offset;
    }

    /// <summary>The message is printed as one line, so line breaks quoted from a file (or from a parser's own
    /// message about it) become spaces.</summary>
    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    public string Path { get; }
    public string Problem { get; }
    public long? Offset { get; }
}
