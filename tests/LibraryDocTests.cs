using System.Reflection;
using System.Runtime.Loader;
using System.Text.RegularExpressions;
using IlgpuVae.Host;
using IlgpuVae.Model;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Library;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace IlgpuVae.Tests;

/// <summary>The program in docs/LIBRARY.md is compiled and run as it stands, so the documentation cannot drift
/// from the API.</summary>
public sealed class LibraryDocTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("ilgpuvae-library-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void TheDocumentedProgramCompilesAndRuns()
    {
        string? repository = DataSets.FindRepositoryRoot();
        Assert.NotNull(repository);
        string markdown = File.ReadAllText(Path.Combine(repository, "docs", "LIBRARY.md"));
        var block = Regex.Match(markdown, "```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.True(block.Success, "docs/LIBRARY.md has no csharp block");

        // Compiled against the assemblies this test runs with: the framework's and the project's own.
        _ = typeof(VaeModel).Assembly;
        var references = AppDomain.CurrentDomain.GetAssemblies()
            .Where(assembly => !assembly.IsDynamic && assembly.Location.Length > 0)
            .Select(assembly => MetadataReference.CreateFromFile(assembly.Location))
            .Concat(((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
                .Select(path => MetadataReference.CreateFromFile(path)))
            .GroupBy(reference => Path.GetFileName(reference.FilePath)).Select(group => group.First());
        var compilation = CSharpCompilation.Create("LibraryDoc",
            [CSharpSyntaxTree.ParseText(block.Groups[1].Value, new CSharpParseOptions(LanguageVersion.Latest), cancellationToken: TestContext.Current.CancellationToken)],
            references, new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var emitted = compilation.Emit(image, cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));

        var context = new AssemblyLoadContext("library-doc", isCollectible: true);
        try
        {
            image.Position = 0;
            var entry = context.LoadFromStream(image).EntryPoint!;
            var output = new StringWriter();
            var console = Console.Out;
            Console.SetOut(TextWriter.Synchronized(output));
            try
            {
                entry.Invoke(null, [new[] { Path.Combine(directory, "model") }]);
            }
            finally
            {
                Console.SetOut(console);
            }
            string text = output.ToString();
            var elbo = Regex.Match(text, @"^test ELBO (-?[0-9.]+) nats", RegexOptions.Multiline);
            Assert.True(elbo.Success, text);
            // 8×8 images: a Bernoulli −log p of 64 pixels near 0.1 or 0.9 is about 64·0.33 = 21 nats at best.
            double value = double.Parse(elbo.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(value, -60, -15);
            Assert.Matches(@"L_100 -[0-9.]+ nats; active units [0-2] of 2", text);
            Assert.Contains("40 codes; 16 samples of 64 pixels", text);
            Assert.Contains("reloaded after 4 epochs: test ELBO", text);
            Assert.True(File.Exists(Path.Combine(directory, "model", "model.safetensors")));
        }
        catch (TargetInvocationException exception) when (exception.InnerException is not null)
        {
            throw exception.InnerException;
        }
        finally
        {
            context.Unload();
        }
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("--model iwae --k 3 --warmup-epochs 0 --binarize dynamic --clip-grad-norm 5", true)]
    public void TheLibraryTrainsTheWeightsTheCommandTrains(string modelOptions, bool iwae)
    {
        // The same data, model and settings through `ilgpu-vae train` and through VaeModel.Train: the same order,
        // learning rates and draws, so the same weights bit for bit.
        string data = Path.Combine(directory, "data");
        Directory.CreateDirectory(data);
        var random = new Random(5);
        foreach (var (prefix, count) in new[] { ("train", 30), ("t10k", 7) })
        {
            var pixels = new byte[count * 20];
            random.NextBytes(pixels);
            File.WriteAllBytes(Path.Combine(data, $"{prefix}-images-idx3-ubyte"), IdxReaderTests.Idx([count, 4, 5], pixels));
            File.WriteAllBytes(Path.Combine(data, $"{prefix}-labels-idx1-ubyte"), IdxReaderTests.Idx([count], new byte[count]));
        }
        string run = Path.Combine(directory, "run");
        var error = new StringWriter();
        int exitCode = Program.Run($"train --data {data} --accelerator cpu --out {run} --hidden 8 --latent 3 --epochs 2 --batch-size 6 --lr 0.003 --seed 9 {modelOptions}"
            .Split(' ', StringSplitOptions.RemoveEmptyEntries), new StringWriter(), error, TestContext.Current.CancellationToken);
        Assert.True(exitCode == 0, error.ToString());

        var sets = DataSets.Load(data, TextWriter.Null);
        var config = new VaeConfig
        {
            InputSize = 20, ImageWidth = 5, Hidden = [8], Latent = 3,
            Model = iwae ? ModelKind.Iwae : ModelKind.Vae, Samples = iwae ? 3 : 1,
        };
        var settings = new TrainingSettings
        {
            Epochs = 2, BatchSize = 6, LearningRate = 0.003, Seed = 9, DynamicBinarization = iwae, MaxGradientNorm = iwae ? 5 : null,
        };
        using var model = VaeModel.Create(config, settings, GpuKernels.AcceleratorChoice.Cpu, maxBatch: 6);
        var results = model.Train(sets.Train, sets.Test, cancellation: TestContext.Current.CancellationToken);
        Assert.Equal(2, results.Count);
        var command = Checkpoint.Load(Path.Combine(run, "checkpoint"));
        Assert.Equal(command.Parameters, model.Vae.GetParameters());
        var metrics = MetricsFile.Read(Path.Combine(run, "metrics.csv"));
        Assert.Equal(metrics.Select(row => row.TestLoss), results.Select(result => result.Test!.Value.MeanLoss));
    }

    [Fact]
    public void CancellingStopsAfterTheCurrentStep()
    {
        var pixels = Enumerable.Range(0, 40 * 16).Select(i => (i % 7) / 6f).ToArray();
        var data = ImageDatasetOf(pixels, 40);
        using var cancel = new CancellationTokenSource();
        using var model = VaeModel.Create(new VaeConfig { InputSize = 16, Hidden = [4], Latent = 2 },
            new TrainingSettings { Epochs = 3, BatchSize = 4 }, GpuKernels.AcceleratorChoice.Cpu);
        var progress = new SynchronousProgress(report => { if (report.Step >= 3) cancel.Cancel(); });
        Assert.Throws<OperationCanceledException>(() => model.Train(data, progress: progress, cancellation: cancel.Token));
        Assert.Equal(0, model.EpochsDone);
        Assert.InRange(model.Vae.Step, 3, 4);
    }

    [Fact]
    public void FloatsOutsideTheUnitIntervalAreRefusedByPosition()
    {
        var error = Assert.Throws<ArgumentException>(() => ImageDatasetOf([0.5f, 1.5f, 0, 0], 1));
        Assert.Contains("value 1 (image 0) is 1.5", error.Message);
    }

    private static Model.Data.ImageDataset ImageDatasetOf(float[] pixels, int count) =>
        Model.Data.ImageDataset.FromFloats("floats", pixels, count, (int)Math.Sqrt(pixels.Length / count), (int)Math.Sqrt(pixels.Length / count));

    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
