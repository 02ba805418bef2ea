namespace IlgpuVae.Model.Data;

/// <summary>
/// A data file that cannot be used, with the file, where in it, and what was wrong; the host prints
/// <see cref="Exception.Message"/> as one line and exits with code 2.
/// </summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string path, string problem, long? offset = null, Exception? inner = null)
        : base(offset is null ? $"{path}: {problem}" : $"{path}: at byte {offset}: {problem}", inner)
    {
        Path = path;
        Problem = problem;
        Offset = offset;
    }

    public string Path { get; }
    public string Problem { get; }
    public long? Offset { get; }
}
