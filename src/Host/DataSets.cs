using System.Diagnostics;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Host;

/// <summary>
/// Resolves --data: the names mnist and fashion-mnist, or a folder holding the four MNIST-format IDX files or
/// train.csv and test.csv (see <see cref="CsvImageReader"/>). A
/// named data set lives in data/cache/NAME of the repository (or $ILGPUVAE_DATA_DIR/NAME) and is fetched by
/// data/fetch-NAME.sh on first use.
/// </summary>
public static class DataSets
{
    public const string DataDirectoryVariable = "ILGPUVAE_DATA_DIR";
    public static readonly string[] Names = ["mnist", "fashion-mnist"];

    /// <summary>As <see cref="Load(string, TextWriter)"/> for every rank of a job: rank 0 fetches a missing data set
    /// while the others wait, then they read what it fetched (several fetches into one cache would race).</summary>
    public static MnistFormatData Load(string data, TextWriter log, Model.Distributed.Communicator ranks)
    {
        if (!ranks.IsRoot)
            ranks.Any(false);
        var loaded = Load(data, log);
        if (ranks.IsRoot)
            ranks.Any(false);
        return loaded;
    }

    public static MnistFormatData Load(string data, TextWriter log)
    {
        if (!Names.Contains(data))
        {
            if (!Directory.Exists(data))
                throw new DataFormatException(data, $"no such folder, and not a known data set name ({string.Join(", ", Names)}); pass --data mnist, --data fashion-mnist, or a folder with train.csv and test.csv or with {string.Join(", ", MnistFormatData.FileStems)}");
            string name = Path.GetFileName(Path.GetFullPath(data).TrimEnd(Path.DirectorySeparatorChar));
            return CsvImageReader.Find(data) is null
                ? MnistFormatData.Load(name, data)
                : CsvImageReader.LoadFolder(name, data);
        }

        string directory = CacheDirectory(data, out string? repository);
        if (MnistFormatData.Missing(directory).Count > 0)
            Fetch(data, directory, repository, log, $"get the four IDX files ({string.Join(", ", MnistFormatData.FileStems)}) into {directory} "
                                                  + $"with `bash data/fetch-{data}.sh {directory}` from the IlgpuVae repository, or pass --data FOLDER");
        return MnistFormatData.Load(data, directory);
    }

    /// <summary>The count matrices known by name (fetched on first use into data/cache/NAME/counts.csv).</summary>
    public static readonly string[] CountMatrixNames = ["digits"];

    /// <summary>
    /// Resolves the double DEF's --data: the name digits (the UCI optical digits, 1 797 × 64 counts of 0 to 16, fetched
    /// by data/fetch-digits.sh on first use) or a CSV file of counts (see <see cref="CountMatrixReader"/>).
    /// </summary>
    public static CountMatrix LoadCountMatrix(string data, TextWriter log)
    {
        if (!CountMatrixNames.Contains(data))
        {
            if (Directory.Exists(data) || !File.Exists(data))
                throw new DataFormatException(data, $"not a CSV file of counts, nor a known count matrix ({string.Join(", ", CountMatrixNames)}); pass --data digits or a CSV file with one row of whole numbers ≥ 0 per line");
            return CountMatrixReader.Read(Path.GetFileNameWithoutExtension(data), data);
        }
        string directory = CacheDirectory(data, out string? repository);
        string path = Path.Combine(directory, "counts.csv");
        if (!File.Exists(path))
            Fetch(data, directory, repository, log, $"put the count matrix into {path} with `bash data/fetch-{data}.sh {directory}` from the IlgpuVae repository, or pass --data FILE.csv");
        return CountMatrixReader.Read(data, path);
    }

    public static readonly string[] RegressionTableNames = ["boston", "diabetes", "toy"];

    /// <summary>
    /// Resolves the deep GP's --data: boston (506 × 13, the median home value) or diabetes (442 × 10, disease
    /// progression after a year), fetched by data/fetch-NAME.sh on first use; toy, a one-dimensional step function
    /// made here (<see cref="ToyStep"/>); or a CSV file (see <see cref="RegressionTableReader"/>).
    /// </summary>
    public static RegressionTable LoadRegressionTable(string data, TextWriter log)
    {
        if (data == "toy")
            return ToyStep();
        if (!RegressionTableNames.Contains(data))
        {
            if (Directory.Exists(data) || !File.Exists(data))
                throw new DataFormatException(data, $"not a CSV file, nor a known regression table ({string.Join(", ", RegressionTableNames)}); pass --data boston or a CSV file with a header row, the features and then the target on each line");
            return RegressionTableReader.Read(Path.GetFileNameWithoutExtension(data), data);
        }
        string directory = CacheDirectory(data, out string? repository);
        string path = Path.Combine(directory, data + ".csv");
        if (!File.Exists(path))
            Fetch(data, directory, repository, log, $"put the table into {path} with `bash data/fetch-{data}.sh {directory}` from the IlgpuVae repository, or pass --data FILE.csv");
        return RegressionTableReader.Read(data, path);
    }

    /// <summary>The one-dimensional toy problem: 200 inputs uniform on [−2, 2] (Philox, seed 1), targets a unit step at 0
    /// (−1 then +1) plus Gaussian noise of standard deviation 0.1; the non-stationary kind of function on which a
    /// deep GP's predictive bands differ visibly from a single GP's.</summary>
    public static RegressionTable ToyStep()
    {
        const int rows = 200;
        var inputs = Enumerable.Range(0, rows).Select(row => -2 + 4.0 * Philox.Uniform(1, Philox.Streams.Sample, 0, row)).ToArray();
        var targets = inputs.Select((x, row) => (x < 0 ? -1 : 1) + 0.1 * Philox.NormalDouble(1, Philox.Streams.Sample, 1, row)).ToArray();
        return new RegressionTable("toy", ["x"], "y", rows, 1, inputs, targets);
    }

    /// <summary>Where the named data set lives: $ILGPUVAE_DATA_DIR/NAME, else the repository's data/cache/NAME, else
    /// ~/.cache/ilgpu-vae/NAME.</summary>
    private static string CacheDirectory(string name, out string? repository)
    {
        repository = FindRepositoryRoot();
        string root = Environment.GetEnvironmentVariable(DataDirectoryVariable)
                      ?? (repository is null
                          ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ilgpu-vae")
                          : Path.Combine(repository, "data", "cache"));
        return Path.Combine(root, name);
    }

    private static void Fetch(string name, string directory, string? repository, TextWriter log, string howTo)
    {
        // The repository's data/ folder, or the copy that ships beside the program (an installed tool).
        var candidates = new[] { repository is null ? null : Path.Combine(repository, "data"), Path.Combine(AppContext.BaseDirectory, "data") }
            .OfType<string>().Select(folder => Path.Combine(folder, $"fetch-{name}.sh")).ToList();
        string? script = candidates.FirstOrDefault(File.Exists);
        if (script is null)
            throw new DataFormatException(directory, $"{name} is not there and the fetch script was not found (looked for {string.Join(" and ", candidates)}); {howTo}");

        log.WriteLine($"{name} not found in {directory}: fetching it with {script}");
        var start = new ProcessStartInfo("bash", [script, directory]) { UseShellExecute = false };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start bash");
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new DataFormatException(directory, $"fetching {name} failed (exit code {process.ExitCode}, see above); {howTo}");
    }

    /// <summary>The folder holding IlgpuVae.sln, searched upward from the working directory and the program.</summary>
    public static string? FindRepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
                if (File.Exists(Path.Combine(directory.FullName, "IlgpuVae.sln")) &&
                    Directory.Exists(Path.Combine(directory.FullName, "data")))
                    return directory.FullName;
        }
        return null;
    }
}
