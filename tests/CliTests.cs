using IlgpuVae.Host;

namespace IlgpuVae.Tests;

/// <summary>The ilgpu-vae command line end to end, on small MNIST-format data written by the test.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class CliTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("ilgpuvae-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>A data folder of random 4×5 images in the four MNIST file names.</summary>
    private string WriteDataSet(int train, int test) => TestData.WriteMnistFormat(directory, train, test, height: 4, width: 5, seed: 1);

    private static (int exitCode, string output, string error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exitCode = Program.Run(args, output, error, TestContext.Current.CancellationToken);
        return (exitCode, output.ToString(), error.ToString());
    }

    [Fact]
    public void TrainWritesMetricsForEveryEpoch()
    {
        var data = WriteDataSet(train: 50, test: 13);
        var run = Path.Combine(directory, "run");
        var (exitCode, output, error) = Run("train", "--data", data, "--epochs", "2", "--batch-size", "16",
            "--hidden", "8", "--latent", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("accelerator: CPU", output);
        var rows = MetricsFile.Read(Path.Combine(run, "metrics.csv"));
        Assert.Equal([1, 2], rows.Select(row => row.Epoch));
        Assert.All(rows, row =>
        {
            Assert.True(double.IsFinite(row.TestLoss) && row.TestLoss > 0, $"test loss {row.TestLoss}");
            Assert.Equal(row.TestReconstruction + row.TestKl, row.TestLoss, 6);
            Assert.True(row.SamplesPerSecond > 0);
        });
        Assert.True(File.Exists(Path.Combine(run, "config.json")));
        Assert.DoesNotContain("warning", output);
        Assert.Equal((800, 500), PngSize(Path.Combine(run, "loss.png")));
        // 13 test images of 4×5 (fewer than 32) beside their reconstructions; as many samples as a batch holds
        // (16, fewer than 64), each a 1×20 strip since 20 is not a square.
        Assert.Equal((8 * 7 + 2, 4 * 6 + 2), PngSize(Path.Combine(run, "reconstructions.png")));
        Assert.Equal((4 * 7 + 2, 4 * 6 + 2), PngSize(Path.Combine(run, "samples.png")));
    }

    [Fact]
    public void GaussianDecoderWithBinarizationTrains()
    {
        var data = WriteDataSet(train: 20, test: 7);
        var (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--batch-size", "7", "--hidden", "6,5",
            "--latent", "3", "--likelihood", "gaussian", "--gaussian-c", "0.5", "--activation", "tanh", "--binarize", "static", "--clip-grad-norm", "2",
            "--accelerator", "cpu", "--out", Path.Combine(directory, "run"));
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
    }

    [Fact]
    public void BenchReportsThroughputLaunchesAndWaits()
    {
        var csvPath = Path.Combine(directory, "bench.csv");
        var (exitCode, output, error) = Run("bench", "--steps", "3", "--warmup", "1", "--batch-size", "4",
            "--hidden", "8", "--latent", "2", "--accelerator", "cpu", "--csv", csvPath);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("samples/s", output);
        var lines = File.ReadAllLines(csvPath);
        var row = lines[0].Split(',').Zip(lines[1].Split(',')).ToDictionary(pair => pair.First, pair => pair.Second);
        Assert.True(double.Parse(row["samples_per_second"], System.Globalization.CultureInfo.InvariantCulture) > 0, "samples per second");
        // One hidden layer each side: gather, 4 dense forwards, reparameterize, loss+gradient, loss totals,
        // 4 dense backwards of 1 launch each (weights with bias and, but for the first layer, the input gradient
        // with the activation below), reparameterize backward, Adam.
        Assert.Equal("14", row["launches_per_step"]);
        // Three steps are less than a quarter epoch: no progress read, only the final one.
        Assert.Equal("1", row["host_waits"]);
    }

    /// <summary>bench finds every model through the catalog, with its own defaults (the VLAE's six dimensions, the
    /// Ladder VAE's second layer).</summary>
    [Fact]
    public void BenchTimesEveryModelOfTheCatalog()
    {
        foreach (var name in IlgpuVae.Model.Models.ModelCatalog.Names)
        {
            var (exitCode, output, error) = Run("bench", "--model", name, "--steps", "2", "--warmup", "1", "--batch-size", "4",
                "--hidden", "8", "--accelerator", "cpu");
            Assert.True(exitCode == 0, $"{name}: exit {exitCode}: {error}");
            Assert.Contains($"model {name} 784-8-", output);
        }
        Assert.Contains("model vlae 784-8-6, 3 latent layers of 2,", Run("bench", "--model", "vlae", "--steps", "1", "--warmup", "0", "--batch-size", "2",
            "--hidden", "8", "--accelerator", "cpu").output);
        // A model's own settings, as train takes them.
        Assert.Contains("model 784-8-20, rank-one covariance,", Run("bench", "--covariance", "rank1", "--steps", "1", "--warmup", "0", "--batch-size", "2",
            "--hidden", "8", "--accelerator", "cpu").output);
        var refused = Run("bench", "--model", "ae", "--covariance", "rank1", "--accelerator", "cpu");
        Assert.Equal(2, refused.exitCode);
        Assert.Contains("--covariance applies to --model vae, iwae, infovae, vib, vcca, ladder, vlae, corex, mae, hvm, not ae", refused.error);
    }

    [Fact]
    public void BenchTimesAPresetAndProfilesEachKernel()
    {
        var (exitCode, output, error) = Run("bench", "--preset", "iwae-2layer-k5", "--steps", "2", "--warmup", "1",
            "--profile", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // The preset's batch of 20 (no --batch-size given) and its launches, as train counts them.
        Assert.Contains("model iwae-2layer-k5, CpuShaped dense kernels, batch 20, 2 steps", output);
        Assert.Contains("37 launches/step", output);
        var rows = output.Split('\n').SkipWhile(line => !line.StartsWith("  kernel,")).Skip(1)
            .Where(line => line.StartsWith("  ")).Select(line => line.Trim().Split(", ")).ToList();
        // Every launch is profiled under its kernel (dense layers by shape: the decoder's first layer reads
        // z1, 100 wide, for 20·5 rows), and the per-kernel launches add up to the step's.
        Assert.Contains(rows, row => row[0] == "DenseForward 100x100->200");
        Assert.Contains(rows, row => row[0] == "TwoLayerLogWeights");
        Assert.Equal(37, rows.Sum(row => int.Parse(row[1], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.All(rows, row => Assert.True(double.Parse(row[2], System.Globalization.CultureInfo.InvariantCulture) >= 0));
    }

    [Fact]
    public void BenchTimesATrainedRunFromItsCheckpointWithoutTouchingIt()
    {
        var data = WriteDataSet(train: 21, test: 7);
        var run = Path.Combine(directory, "run");
        var (exitCode, _, error) = Run("train", "--data", data, "--epochs", "2", "--batch-size", "7", "--hidden", "6",
            "--latent", "3", "--binarize", "static", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        var state = Path.Combine(run, "checkpoint", "state.json");
        var before = File.ReadAllBytes(state);

        (exitCode, var output, error) = Run("bench", "--from", run, "--steps", "4", "--warmup", "1", "--profile", "1",
            "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // Two epochs of three steps: the trained state, on the run's own batch and its data set of 4×5 images.
        Assert.Contains($"model: {run} after epoch 2 (step 6)", output);
        Assert.Contains("batch 7, 4 steps", output);
        Assert.Contains("DenseForward 7x20->6", output);
        Assert.Equal(before, File.ReadAllBytes(state));

        (exitCode, _, error) = Run("bench", "--from", run, "--preset", "iwae-1layer-k5", "--accelerator", "cpu");
        Assert.NotEqual(0, exitCode);
        Assert.Contains("give one of --from", error);
    }

    [Fact]
    public void CheckRunsEveryKernelAgainstItsReference()
    {
        var (exitCode, output, error) = Run("check", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}\n{output}");
        Assert.Contains("accelerators found:", output);
        Assert.DoesNotContain("FAIL", output);
        foreach (var kernel in new[] { "dense forward Relu (Simple)", "dense backward, Tanh below (CpuShaped)", "reparameterize + KL backward",
                     "Gaussian reconstruction + gradient", "Adam step", "gradient-norm clipping", "minibatch gather, binarized" })
            Assert.Contains(kernel, output);
        // Every model of the catalog, found through it.
        foreach (var name in IlgpuVae.Model.Models.ModelCatalog.Names)
            Assert.Contains($"model {name}: training gradient", output);
        Assert.Matches(@"(\d+) of \1 checks passed on CPU", output);
    }

    /// <summary>Width and height from a PNG's IHDR chunk, after checking the signature.</summary>
    /// <summary>A random 12 × 9 count matrix as CSV, with a header row.</summary>
    private string WriteCounts()
    {
        var random = new Random(4);
        var lines = new List<string> { string.Join(",", Enumerable.Range(0, 9).Select(i => $"c{i}")) };
        for (int row = 0; row < 12; row++)
            lines.Add(string.Join(",", Enumerable.Range(0, 9).Select(_ => random.Next(0, 9))));
        string path = Path.Combine(directory, "counts.csv");
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>
    /// double-def end to end: a run on a CSV count matrix writes its settings, checkpoint (the tensors named per side),
    /// metrics for every evaluation and eval.json; resumed to more steps it continues from the step it stopped at and
    /// gives what one run of as many steps gives (profiled: each launch waited for), bit for bit, evaluating as the run
    /// did without being told again; with no steps left it only evaluates.
    /// </summary>
    [Fact]
    public void DoubleDefTrainsResumesAndEvaluates()
    {
        var data = WriteCounts();
        string[] model = ["--def-layers", "gamma:3,gamma:2", "--column-layers", "gamma:3", "--k", "3", "--eval-every", "2", "--eval-draws", "2", "--accelerator", "cpu"];
        var whole = Path.Combine(directory, "whole");
        // Profiled: the launches are waited for, the numbers the same (the resumed run below matches it bit for bit).
        var (exitCode, output, error) = Run(["double-def", "--data", data, .. model, "--steps", "4", "--profile", "2", "--out", whole]);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("profile of 2 steps", output);
        Assert.Contains("GammaPosteriorSample, 3,", output);
        Assert.Contains("12 × 9 counts", output);
        Assert.Contains("held-out log-likelihood per cell", output);
        var metrics = File.ReadAllLines(Path.Combine(whole, "metrics.csv"));
        Assert.Equal(3, metrics.Length);
        Assert.StartsWith("step,negative_elbo_per_cell", metrics[0]);
        var (tensors, metadata) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(whole, "model.safetensors"));
        Assert.Equal("4", metadata["step"]);
        Assert.Equal([12, 2 * 5], tensors["rows.q"].Shape);
        Assert.Equal([3, 2], tensors["rows.theta1"].Shape);
        Assert.Equal([9, 2 * 3], tensors["columns.q"].Shape);
        Assert.False(tensors.ContainsKey("columns.theta1"));
        // 9 columns are a 3×3 image: each of the column DEF's 3 units drawn at 4× (12×12) in a row of 10.
        Assert.Equal((10 * 14 + 2, 14 + 2), PngSize(Path.Combine(whole, "components.png")));

        var split = Path.Combine(directory, "split");
        (exitCode, _, error) = Run(["double-def", "--data", data, .. model, "--steps", "2", "--out", split]);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // The run's own --eval-every and --eval-draws (schedule.json) hold when the resuming call leaves them out.
        (exitCode, output, error) = Run("double-def", "--resume", split, "--steps", "4", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("resumed at step 2 of " + split + "; evaluations every 2 steps with 2 draws", output);
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "model.safetensors")), File.ReadAllBytes(Path.Combine(split, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(whole, "eval.json")), File.ReadAllText(Path.Combine(split, "eval.json")));

        (exitCode, output, error) = Run("double-def", "--resume", split, "--steps", "4", "--eval-draws", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("step 4: −ELBO per training cell", output);
        // The run's own settings hold: a model option beside --resume is refused.
        (exitCode, _, error) = Run("double-def", "--resume", split, "--lr", "0.5", "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("--lr is set by", error);
    }

    /// <summary>A learning rate that blows the parameters up: exit code 3, the divergence named, and no checkpoint
    /// written with parameters that are not finite.</summary>
    [Fact]
    public void DoubleDefDivergenceExitsWithoutAnUnusableCheckpoint()
    {
        var run = Path.Combine(directory, "diverged");
        var (exitCode, output, error) = Run("double-def", "--data", WriteCounts(), "--def-layers", "gamma:3,gamma:2", "--lr", "1e20", "--steps", "4",
            "--eval-every", "2", "--eval-draws", "1", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 3, $"exit {exitCode}: {output} {error}");
        Assert.Contains("training diverged by step", output);
        Assert.False(File.Exists(Path.Combine(run, "model.safetensors")));
    }

    [Theory]
    [InlineData("--def-layers gamma:3,poisson:2", "--def-layers: the double DEF's layers are gamma")]
    [InlineData("--column-layers gamma:x", "--column-layers: layer 1's width")]
    [InlineData("--column-layers gamma:4", "--def-layers starts with 3 units, --column-layers with 4")]
    [InlineData("--def-shape 0", "--def-shape, the gamma layers' shape α, must be a finite number > 0")]
    [InlineData("--k 1", "--k must be 2 to 1024")]
    [InlineData("--held-out 1", "--held-out, the fraction of cells held out")]
    [InlineData("--steps -1", "--steps must be ≥ 0")]
    [InlineData("--profile -1", "--profile must be ≥ 0 steps")]
    [InlineData("--data nowhere.csv", "nowhere.csv: not a CSV file of counts")]
    public void DoubleDefRefusesBadSettings(string arguments, string expected)
    {
        var given = arguments.Split(' ');
        var settings = new Dictionary<string, string> { ["--data"] = WriteCounts(), ["--def-layers"] = "gamma:3", ["--steps"] = "1", ["--accelerator"] = "cpu" };
        settings[given[0]] = given[1];
        var (exitCode, _, error) = Run(["double-def", "--out", Path.Combine(directory, "bad"), .. settings.SelectMany(pair => new[] { pair.Key, pair.Value })]);
        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error);
        Assert.Single(error.Trim().Split('\n'));
    }

    /// <summary>A regression table of 30 rows: two features and a smooth target with noise (a header row); the first two
    /// rows the same when <paramref name="duplicateFirstRows"/>.</summary>
    private string WriteRegressionTable(bool duplicateFirstRows = false, string name = "table.csv")
    {
        var random = new Random(7);
        var lines = new List<string> { "a,b,target" };
        for (int row = 0; row < 30; row++)
        {
            double a = random.NextDouble() * 4 - 2, b = random.NextDouble() * 4 - 2;
            lines.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{a:R},{b:R},{Math.Sin(a) + 0.5 * b + 0.1 * random.NextDouble():R}"));
        }
        if (duplicateFirstRows)
            lines[2] = lines[1];
        string path = Path.Combine(directory, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>
    /// dgp end to end on a CSV table: settings, an F64 checkpoint with every layer's tensors, metrics for every
    /// evaluation and eval.json; resumed to more steps it gives what one run of as many steps gives (profiled: each
    /// launch waited for), bit for bit, evaluating as the run did without being told again; model options beside
    /// --resume are refused; `eval` gives the same eval.json.
    /// </summary>
    [Fact]
    public void DeepGpTrainsResumesAndEvaluates()
    {
        var data = WriteRegressionTable();
        string[] model = ["--dgp-layers", "2", "--inducing", "6", "--samples", "3", "--eval-every", "2", "--accelerator", "cpu"];
        var whole = Path.Combine(directory, "whole");
        var (exitCode, output, error) = Run(["dgp", "--data", data, .. model, "--steps", "4", "--profile", "2", "--out", whole]);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("profile of 2 steps", output);
        Assert.Contains("CovarianceProjection, 2,", output);
        Assert.Contains("30 rows × 2 features; split 0 (seed 1): 27 to train, 3 to test", output);
        Assert.Contains("test log-likelihood", output);
        var metrics = File.ReadAllLines(Path.Combine(whole, "metrics.csv"));
        Assert.Equal(3, metrics.Length);
        Assert.StartsWith("step,negative_elbo_per_point,test_log_likelihood,test_rmse", metrics[0]);
        var (floats, doubles, metadata) = IlgpuVae.Model.Checkpoints.SafeTensors.ReadAll(Path.Combine(whole, "model.safetensors"));
        Assert.Empty(floats);
        Assert.Equal("4", metadata["step"]);
        Assert.Equal([6, 2], doubles["layer1.z"].Shape);
        Assert.Equal([3], doubles["layer2.hyper"].Shape);
        Assert.Equal([2, 6, 6], doubles["layer1.q_sqrt"].Shape);
        Assert.Equal([1, 6], doubles["layer2.q_mu"].Shape);
        Assert.Equal([2, 2], doubles["layer1.mean_weights"].Shape);
        Assert.Equal([1], doubles["likelihood.log_noise"].Shape);
        // A float-only reader is told what the file is, not handed half of it.
        var refused = Assert.Throws<IlgpuVae.Model.Data.DataFormatException>(() => IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(whole, "model.safetensors")));
        Assert.Contains("F64", refused.Message);

        var split = Path.Combine(directory, "split");
        (exitCode, _, error) = Run(["dgp", "--data", data, .. model, "--steps", "2", "--out", split]);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // The run's own --eval-every and --samples (schedule.json) hold when the resuming call leaves them out.
        (exitCode, output, error) = Run("dgp", "--resume", split, "--steps", "4", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("resumed at step 2 of " + split + "; evaluations every 2 steps with 3 samples", output);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(split, "metrics.csv")).Length);
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "model.safetensors")), File.ReadAllBytes(Path.Combine(split, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(whole, "eval.json")), File.ReadAllText(Path.Combine(split, "eval.json")));
        (exitCode, _, error) = Run("dgp", "--resume", split, "--inducing", "5", "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("--inducing is set by", error);
        // A schedule it cannot use is named with its file (and an explicit option still wins over it).
        File.WriteAllText(Path.Combine(split, "schedule.json"), """{ "eval_every": 0, "samples": 3 }""");
        (exitCode, _, error) = Run("dgp", "--resume", split, "--steps", "4", "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("schedule.json", error);
        Assert.Contains("'eval_every' must be ≥ 1 (got 0)", error);
        (exitCode, output, error) = Run("dgp", "--resume", split, "--steps", "4", "--eval-every", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("evaluations every 2 steps with 3 samples", output);

        // eval scores the checkpoint as the run's last evaluation did, and writes nothing else.
        var evalJson = File.ReadAllText(Path.Combine(whole, "eval.json"));
        File.Delete(Path.Combine(whole, "eval.json"));
        var checkpoint = File.ReadAllBytes(Path.Combine(whole, "model.safetensors"));
        (exitCode, output, error) = Run("eval", whole, "--samples", "3", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("step 4: −ELBO per training point", output);
        Assert.Equal(evalJson, File.ReadAllText(Path.Combine(whole, "eval.json")));
        Assert.Equal(checkpoint, File.ReadAllBytes(Path.Combine(whole, "model.safetensors")));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(whole, "metrics.csv")).Length);
    }

    /// <summary>
    /// dgp-splits: stopped at once, a checkpoint and a partial table; then two depths on two splits, each a run folder
    /// (the stopped one resumed), results.csv and summary.md (mean ± standard error per depth, with the standard error
    /// of two values checked by hand); run again, it reads the finished runs back and writes the same table without
    /// training.
    /// </summary>
    [Fact]
    public void DeepGpSplitsTabulatesTheDepthsAndContinues()
    {
        var data = WriteRegressionTable();
        var out_ = Path.Combine(directory, "splits");
        string[] arguments = ["dgp-splits", "--data", data, "--dgp-layers", "1,2", "--splits", "2", "--inducing", "4", "--steps", "2", "--samples", "2",
            "--accelerator", "cpu", "--out", out_];
        // Stopped before its first step (Ctrl+C), it checkpoints the run it was in and writes a partial table.
        var stoppedOutput = new StringWriter();
        int stopped = DeepGpSplits.Run(new DeepGpSplitsOptions
        {
            Run = new DeepGpOptions { Data = data, Settings = new() { Inducing = 4 }, Steps = 2, Samples = 2, Accelerator = IlgpuVae.GpuKernels.AcceleratorChoice.Cpu },
            Depths = [1, 2],
            Splits = 2,
            Out = out_,
        }, stoppedOutput, new CancellationToken(canceled: true));
        Assert.Equal(Training.Interrupted, stopped);
        Assert.True(File.Exists(Path.Combine(out_, "layers1-split0", "model.safetensors")));
        Assert.StartsWith("Partial: 0 of 4 runs finished", File.ReadAllText(Path.Combine(out_, "summary.md")));

        var (exitCode, output, error) = Run(arguments);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("layers 2, split 1: test log-likelihood", output);
        // Each run shows its progress under its depth and split (a plain line per report, the output being redirected).
        Assert.Contains("layers 2, split 1 [##########          ] 1/2 steps, −ELBO/point ", output);
        var results = File.ReadAllLines(Path.Combine(out_, "results.csv"));
        Assert.Equal("layers,split,test_log_likelihood,test_rmse", results[0]);
        Assert.Equal(5, results.Length);
        Assert.True(File.Exists(Path.Combine(out_, "layers2-split1", "model.safetensors")));
        var summary = File.ReadAllText(Path.Combine(out_, "summary.md"));
        Assert.Contains("| sparse GP (1 layer) | 2 |", summary);
        Assert.Contains("| DGP 2 | 2 |", summary);
        Assert.DoesNotContain("Partial", summary);
        var (mean, standardError) = DeepGpSplits.MeanAndStandardError([1.0, 3.0]);
        Assert.Equal((2.0, 1.0), (mean, standardError));
        // One split has no spread: its standard error is undefined and printed as such, not as a certain ± 0.00.
        Assert.True(double.IsNaN(DeepGpSplits.MeanAndStandardError([5.0]).StandardError));
        Assert.Equal("n/a", DeepGpSplits.Spread(double.NaN));
        Assert.Equal("0.00", DeepGpSplits.Spread(0.001));
        Assert.Contains("DGP 2 against the sparse GP on the 2 splits both finished: test log-likelihood ", summary);

        var checkpoints = Directory.GetFiles(out_, "model.safetensors", SearchOption.AllDirectories).ToDictionary(path => path, File.GetLastWriteTimeUtc);
        Assert.Equal(4, checkpoints.Count);
        (exitCode, _, error) = Run(arguments);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.All(checkpoints, pair => Assert.Equal(pair.Value, File.GetLastWriteTimeUtc(pair.Key)));
        Assert.Equal(summary, File.ReadAllText(Path.Combine(out_, "summary.md")));
    }

    /// <summary>The deeper models against the single GP split by split, on values worked by hand: differences +0.5 and
    /// −0.5 in log-likelihood (mean 0, standard error 0.5, higher on one), −0.5 and −1.5 in RMSE (mean −1, 0.5, lower
    /// on both); a depth with one shared split (standard error n/a; and one without a single-GP partner, left out).</summary>
    [Fact]
    public void DeepGpSplitsCompareEachDepthWithTheSingleGpSplitBySplit()
    {
        var rows = new Dictionary<(int Layers, int Split), (double LogLikelihood, double Rmse)>
        {
            [(1, 0)] = (-3, 4), [(1, 1)] = (-2, 3.5),
            [(2, 0)] = (-2.5, 3.5), [(2, 1)] = (-2.5, 2),
            [(3, 1)] = (-1, 5), [(3, 2)] = (0, 0),
        };
        Assert.Equal(
        [
            "DGP 2 against the sparse GP on the 2 splits both finished: test log-likelihood +0.00 ± 0.50 (higher on 1), RMSE −1.00 ± 0.50 (lower on 2).",
            "DGP 3 against the sparse GP on the 1 split both finished: test log-likelihood +1.00 ± n/a (higher on 1), RMSE +1.50 ± n/a (lower on 0).",
        ], DeepGpSplits.PairedAgainstOneLayer(rows));
        rows.Remove((1, 0));
        rows.Remove((1, 1));
        Assert.Empty(DeepGpSplits.PairedAgainstOneLayer(rows));
    }

    /// <summary>
    /// dgp-splits carried to another machine as results.csv and protocol.json alone: the recorded rows are taken as
    /// finished (no run folder is made for them) and only the missing splits train; the table keeps every recorded
    /// row to the last digit. Other settings against the same folder, a text cell and a repeated row in results.csv
    /// are each refused in one line (exit 2) naming the file.
    /// </summary>
    [Fact]
    public void DeepGpSplitsContinueFromTheirRecordedResultsAlone()
    {
        var data = WriteRegressionTable();
        var out_ = Path.Combine(directory, "splits");
        string[] Arguments(int splits, string steps = "2") => ["dgp-splits", "--data", data, "--dgp-layers", "1,2", "--splits", splits.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--inducing", "4", "--steps", steps, "--samples", "2", "--accelerator", "cpu", "--out", out_];
        var (exitCode, _, error) = Run(Arguments(1));
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        var first = File.ReadAllLines(Path.Combine(out_, "results.csv"));
        Assert.Equal(3, first.Length);
        foreach (var folder in Directory.GetDirectories(out_))
            Directory.Delete(folder, recursive: true);

        string output;
        (exitCode, output, error) = Run(Arguments(2));
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.False(Directory.Exists(Path.Combine(out_, "layers1-split0")));
        Assert.False(Directory.Exists(Path.Combine(out_, "layers2-split0")));
        Assert.True(File.Exists(Path.Combine(out_, "layers2-split1", "eval.json")));
        Assert.Contains("layers 2, split 0: test log-likelihood", output);
        var results = File.ReadAllLines(Path.Combine(out_, "results.csv"));
        Assert.Equal(5, results.Length);
        Assert.Equal(first[1], results[1]);
        Assert.Equal(first[2], results[3]);
        Assert.Contains("| DGP 2 | 2 |", File.ReadAllText(Path.Combine(out_, "summary.md")));

        (exitCode, _, error) = Run(Arguments(2, steps: "3"));
        Assert.Equal(2, exitCode);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains(Path.Combine(out_, "protocol.json"), error);
        Assert.Contains("steps 2 there, 3 here", error);

        var resultsPath = Path.Combine(out_, "results.csv");
        File.WriteAllLines(resultsPath, [.. results, "2,2,minus one,3"]);
        (exitCode, _, error) = Run(Arguments(2));
        Assert.Equal(2, exitCode);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains(resultsPath + ": line 6:", error);
        File.WriteAllLines(resultsPath, [.. results, results[4]]);
        (exitCode, _, error) = Run(Arguments(2));
        Assert.Equal(2, exitCode);
        Assert.Contains("line 6: layers 2, split 1 is listed twice", error);
    }

    /// <summary>dgp on an image folder classifies: softmax over the labels' classes, the inner layer narrowed from 20
    /// pixels to 3 by the principal directions, scored by the test error (with progress when the test images take more
    /// than one batch); dgp-splits refuses image sets.</summary>
    [Fact]
    public void DeepGpClassifiesImages()
    {
        // WriteDataSet's labels are all 0; the runs read the same images with labels 0, 1, 2 in turn.
        var data = WriteDataSet(train: 40, test: 9);
        string threeClasses = Path.Combine(directory, "three-classes");
        Directory.CreateDirectory(threeClasses);
        foreach (var (prefix, count) in new[] { ("train", 40), ("t10k", 9) })
        {
            File.Copy(Path.Combine(data, $"{prefix}-images-idx3-ubyte"), Path.Combine(threeClasses, $"{prefix}-images-idx3-ubyte"));
            File.WriteAllBytes(Path.Combine(threeClasses, $"{prefix}-labels-idx1-ubyte"), IdxReaderTests.Idx([count], Enumerable.Range(0, count).Select(at => (byte)(at % 3)).ToArray()));
        }
        var run = Path.Combine(directory, "images");
        var (exitCode, output, error) = Run("dgp", "--data", threeClasses, "--inducing", "5", "--inner-width", "3", "--steps", "3", "--samples", "2", "--accelerator", "cpu",
            "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // The classes are those the labels reach (0 to the largest): here 0, 1, 2.
        int classes = 3;
        Assert.Contains($"40 training and 9 test images of 20 pixels, {classes} classes", output);
        Assert.Contains($"(20 → 3 → {classes}), softmax likelihood", output);
        Assert.Contains("error ", output);
        var eval = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run, "eval.json")))!;
        double testError = eval["test_error"]!.GetValue<double>();
        Assert.InRange(testError, 0, 1);
        Assert.Equal(0, testError * 9 % 1, 9);
        Assert.InRange(eval["test_log_likelihood"]!.GetValue<double>(), double.MinValue, 0);
        Assert.Null(eval["test_rmse"]);
        Assert.Equal("auto", System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run, "settings.json")))!["likelihood"]!.GetValue<string>());
        Assert.Null(eval["noise_variance_standardised"]);
        var (_, doubles, _) = IlgpuVae.Model.Checkpoints.SafeTensors.ReadAll(Path.Combine(run, "model.safetensors"));
        Assert.Equal([20, 3], doubles["layer1.mean_weights"].Shape);
        Assert.False(doubles.ContainsKey("likelihood.log_noise"));

        (exitCode, _, error) = Run("dgp-splits", "--data", data, "--steps", "1", "--accelerator", "cpu", "--out", Path.Combine(directory, "no"));
        Assert.Equal(2, exitCode);
        Assert.Contains("is an image set with its own test images", error);

        // The robust-max likelihood (the authors' MNIST setting, their starting lengthscale and signal variance): it
        // needs a rival class, so refused on the all-zero labels, then run on the three classes; a resumed run keeps
        // the likelihood its settings.json names.
        (exitCode, _, error) = Run("dgp", "--data", data, "--likelihood", "robust-max", "--steps", "1", "--accelerator", "cpu", "--out", Path.Combine(directory, "one"));
        Assert.Equal(2, exitCode);
        Assert.Contains("the robust-max likelihood needs at least two classes (the labels have 1)", error);
        var robust = Path.Combine(directory, "images-robust-max");
        (exitCode, output, error) = Run("dgp", "--data", threeClasses, "--likelihood", "robust-max", "--initial-lengthscale", "2", "--initial-signal-variance", "2",
            "--inducing", "5", "--inner-width", "3", "--batch-size", "4", "--steps", "2", "--eval-every", "2", "--samples", "2", "--accelerator", "cpu", "--out", robust);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains($"(20 → 3 → {classes}), robust-max likelihood", output);
        // The 9 test images are scored in chunks of the batch size (4, 4, 1), with progress after those that leave rows
        // to go (redirected: once per quarter, here every 2 rows).
        Assert.Contains("scoring [", output);
        Assert.Contains("] 4/9 test rows, 2 samples, eta", output);
        Assert.Contains("] 8/9 test rows, 2 samples, eta", output);
        Assert.DoesNotContain("9/9 test rows", output);
        (_, doubles, _) = IlgpuVae.Model.Checkpoints.SafeTensors.ReadAll(Path.Combine(robust, "model.safetensors"));
        Assert.False(doubles.ContainsKey("likelihood.log_noise"));
        (exitCode, output, error) = Run("dgp", "--resume", robust, "--steps", "3", "--eval-every", "1", "--samples", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("robust-max likelihood", output);
        eval = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(robust, "eval.json")))!;
        Assert.InRange(eval["test_log_likelihood"]!.GetValue<double>(), Math.Log(1e-3 / (classes - 1)), Math.Log(1 - 1e-3));
    }

    /// <summary>The one-dimensional toy problem draws its predictive mean and bands (800 × 500 pixels).</summary>
    [Fact]
    public void DeepGpDrawsThePredictiveOfAOneDimensionalProblem()
    {
        var run = Path.Combine(directory, "toy");
        var (exitCode, _, error) = Run("dgp", "--data", "toy", "--inducing", "8", "--steps", "3", "--samples", "4", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Equal((800, 500), PngSize(Path.Combine(run, "predictive.png")));
    }

    /// <summary>Bad tables and settings: exit code 2 and one line naming what was wrong (for the non-positive-definite
    /// K_ZZ: two equal training rows as inducing inputs with no jitter, the layer named).</summary>
    [Theory]
    [InlineData("missing", "line 4, column 2: the cell is empty")]
    [InlineData("text", "line 4, column 2: 'abc' is not a number")]
    [InlineData("constant", "the target")]
    [InlineData("singular", "layer 1 of the deep GP: K_ZZ + 0·I is not positive definite (pivot 2 of 27) at step 1")]
    [InlineData("layers", "--dgp-layers must be 1 to 10 (got 0)")]
    [InlineData("profile", "--profile must be ≥ 0 steps (got -1)")]
    [InlineData("inducing", "--inducing (28) is more than the 27 training points")]
    [InlineData("nowhere", "nowhere.csv: not a CSV file, nor a known regression table")]
    [InlineData("robust-max", "--likelihood robust-max classifies images; a regression table takes the Gaussian likelihood")]
    [InlineData("likelihood", "--likelihood: unknown 'probit'; use auto, gaussian, softmax, robust-max")]
    [InlineData("lengthscale", "--initial-lengthscale must be a finite number > 0, or 0 for √D (got -1)")]
    public void DeepGpRefusesBadTablesAndSettings(string what, string expected)
    {
        var data = WriteRegressionTable(duplicateFirstRows: what == "singular");
        var lines = File.ReadAllLines(data);
        string[] extra = [];
        switch (what)
        {
            case "missing":
                lines[3] = "0.5,,1.0";
                break;
            case "text":
                lines[3] = "0.5,abc,1.0";
                break;
            case "constant":
                lines = lines.Select((line, at) => at == 0 ? line : line[..line.LastIndexOf(',')] + ",3").ToArray();
                break;
            case "singular":
                extra = ["--inducing", "27", "--jitter", "0"];
                break;
            case "layers":
                extra = ["--dgp-layers", "0"];
                break;
            case "profile":
                extra = ["--profile", "-1"];
                break;
            case "inducing":
                extra = ["--inducing", "28"];
                break;
            case "nowhere":
                data = Path.Combine(directory, "nowhere.csv");
                break;
            case "robust-max":
                extra = ["--likelihood", "robust-max"];
                break;
            case "likelihood":
                extra = ["--likelihood", "probit"];
                break;
            case "lengthscale":
                extra = ["--initial-lengthscale", "-1"];
                break;
        }
        if (what != "nowhere")
            File.WriteAllLines(data, lines);
        var (exitCode, _, error) = Run(["dgp", "--data", data, "--steps", "2", "--accelerator", "cpu", "--out", Path.Combine(directory, "bad"), .. extra]);
        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error);
        Assert.Single(error.Trim().Split('\n'));
    }

    private static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10 }, bytes[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        return (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)),
                System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public void SampleAndReconstructWritePngGrids()
    {
        var data = WriteDataSet(train: 30, test: 7);
        var run = Path.Combine(directory, "run");
        var (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--batch-size", "8", "--hidden", "8",
            "--latent", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");

        (exitCode, _, error) = Run("sample", run, "--count", "5", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // 20 inputs are not a square: each sample is a 1×20 strip; 5 tiles in 3 columns, 2-pixel gaps.
        Assert.Equal((3 * 7 + 2, 2 * 6 + 2), PngSize(Path.Combine(run, "samples.png")));

        var pairs = Path.Combine(directory, "pairs.png");
        (exitCode, _, error) = Run("reconstruct", run, "--count", "3", "--out", pairs, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // 3 images of 4×5, each beside its reconstruction: 6 tiles in 4 columns.
        Assert.Equal((4 * 7 + 2, 2 * 6 + 2), PngSize(pairs));

        (exitCode, _, error) = Run("interpolate", run, "--pairs", "2", "--steps", "4", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // Two rows of original, 4 decoded steps, original.
        Assert.Equal((6 * 7 + 2, 2 * 6 + 2), PngSize(Path.Combine(run, "interpolations.png")));

        (exitCode, _, error) = Run("latent-map", run, "--grid", "3", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Equal((3 * 7 + 2, 3 * 6 + 2), PngSize(Path.Combine(run, "latent-manifold.png")));
        Assert.Equal((700, 700), PngSize(Path.Combine(run, "latent-codes.png")));

        (exitCode, _, error) = Run("encode", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        var lines = File.ReadAllLines(Path.Combine(run, "codes-test.csv"));
        Assert.Equal("index,label,mu_0,mu_1,logvar_0,logvar_1", lines[0]);
        Assert.Equal(1 + 7, lines.Length);
        Assert.All(lines.Skip(1), line => Assert.Equal(6, line.Split(',').Length));
    }

    [Fact]
    public void EvalReportsTheBoundsAndWritesJson()
    {
        var data = WriteDataSet(train: 30, test: 6);
        var run = Path.Combine(directory, "run");
        var (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--batch-size", "8", "--hidden", "8",
            "--latent", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, var output, error) = Run("eval", run, "--k", "20", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL = ", output);
        using var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "eval.json")));
        var root = report.RootElement;
        Assert.Equal(6, root.GetProperty("Examples").GetInt32());
        Assert.Equal(20, root.GetProperty("K").GetInt32());
        double loss = root.GetProperty("Loss").GetDouble(), rate = root.GetProperty("Rate").GetDouble();
        Assert.Equal(loss, root.GetProperty("Distortion").GetDouble() + rate, 6);
        Assert.True(double.IsFinite(root.GetProperty("LowerBound").GetDouble()));
        Assert.Equal(-root.GetProperty("LowerBound").GetDouble(), root.GetProperty("NegativeLogLikelihood").GetDouble());
        Assert.InRange(root.GetProperty("ActiveUnits").GetInt32(), 0, 2);
    }

    [Fact]
    public void DivergedTrainingStopsWithExit3AndWritesNoCheckpoint()
    {
        var data = WriteDataSet(train: 40, test: 4);
        var run = Path.Combine(directory, "run");
        // Adam moves every parameter by about lr per step: at 1e10 the second step's log σ² overflows exp. With 5
        // steps an epoch, progress ticks come after every step, so the run stops at the tick after step 2.
        var (exitCode, output, _) = Run("train", "--data", data, "--epochs", "2", "--batch-size", "8", "--hidden", "8",
            "--latent", "2", "--lr", "1e10", "--accelerator", "cpu", "--out", run);
        Assert.Equal(3, exitCode);
        Assert.Contains("term of the loss is not finite in epoch 1 (by step 2)", output);
        Assert.False(File.Exists(Path.Combine(run, "checkpoint", "state.json")), "a diverged epoch must not be checkpointed");
    }

    [Fact]
    public void LatentMapNeedsTwoLatentDimensions()
    {
        var data = WriteDataSet(train: 16, test: 4);
        var run = Path.Combine(directory, "run");
        var (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--batch-size", "8", "--hidden", "8",
            "--latent", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, _, error) = Run("latent-map", run, "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("needs a model with 2 latent dimensions; this one has 3", error);
    }

    [Fact]
    public void SampleFromAFolderWithoutARunIsAUsageError()
    {
        var (exitCode, _, error) = Run("sample", directory, "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("config.json: file not found", error);
    }

    [Fact]
    public void MissingFolderIsOneLineErrorWithExitCode2()
    {
        var missing = Path.Combine(directory, "nowhere");
        var (exitCode, _, error) = Run("train", "--data", missing, "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains(missing, error);
    }

    [Fact]
    public void TruncatedFileIsOneLineErrorNamingTheFile()
    {
        var data = WriteDataSet(train: 10, test: 5);
        var images = Path.Combine(data, "t10k-images-idx3-ubyte");
        var bytes = File.ReadAllBytes(images);
        File.WriteAllBytes(images, bytes.AsSpan(0, bytes.Length - 7).ToArray());
        var (exitCode, _, error) = Run("train", "--data", data, "--accelerator", "cpu", "--out", Path.Combine(directory, "run"));
        Assert.Equal(2, exitCode);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains(images, error);
        Assert.Contains("truncated", error);
    }

    [Fact]
    public void NonIdxFileIsOneLineErrorNamingTheFile()
    {
        var data = WriteDataSet(train: 10, test: 5);
        var labels = Path.Combine(data, "train-labels-idx1-ubyte");
        File.WriteAllText(labels, "label,0\nlabel,1\n");
        var (exitCode, _, error) = Run("train", "--data", data, "--accelerator", "cpu", "--out", Path.Combine(directory, "run"));
        Assert.Equal(2, exitCode);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains(labels, error);
        Assert.Contains("magic number", error);
    }

    [Fact]
    public void TrainsFromCsvAndRefusesARaggedRowWithItsLine()
    {
        var data = Path.Combine(directory, "csv");
        Directory.CreateDirectory(data);
        var random = new Random(2);
        string Rows(int count) => "label," + string.Join(',', Enumerable.Range(0, 16).Select(i => $"p{i}")) + "\n" +
            string.Concat(Enumerable.Range(0, count).Select(_ =>
                $"{random.Next(10)},{string.Join(',', Enumerable.Range(0, 16).Select(_ => random.Next(256)))}\n"));
        File.WriteAllText(Path.Combine(data, "train.csv"), Rows(20));
        File.WriteAllText(Path.Combine(data, "test.csv"), Rows(6));
        var run = Path.Combine(directory, "run");
        var (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--batch-size", "5", "--hidden", "6",
            "--latent", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Single(MetricsFile.Read(Path.Combine(run, "metrics.csv")));

        var test = Path.Combine(data, "test.csv");
        File.AppendAllText(test, "1,2,3\n");
        (exitCode, _, error) = Run("train", "--data", data, "--accelerator", "cpu", "--out", Path.Combine(directory, "run2"));
        Assert.Equal(2, exitCode);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains($"{test}: line 8: 3 fields, but line 2 has 17", error);
    }

    [Fact]
    public void NonPositiveClipNormIsAUsageError()
    {
        var data = WriteDataSet(train: 10, test: 5);
        var (exitCode, _, error) = Run("train", "--data", data, "--clip-grad-norm", "0", "--accelerator", "cpu", "--out", Path.Combine(directory, "run"));
        Assert.Equal(2, exitCode);
        Assert.Contains("--clip-grad-norm must be a positive finite number (got 0)", error);
    }

    [Fact]
    public void IwaeAndAutoencoderTrainAndEvaluate()
    {
        var data = WriteDataSet(train: 24, test: 9);
        var iwae = Path.Combine(directory, "iwae");
        var (exitCode, output, error) = Run("train", "--data", data, "--model", "iwae", "--k", "3", "--epochs", "2", "--batch-size", "8",
            "--hidden", "6", "--latent", "2", "--binarize", "dynamic", "--adam-eps", "1e-4", "--lr-schedule", "iwae-short",
            "--accelerator", "cpu", "--out", iwae);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("model iwae k=3", output);
        Assert.Contains("iwaeshort schedule", output);
        Assert.Equal(2, MetricsFile.Read(Path.Combine(iwae, "metrics.csv")).Count);
        (exitCode, output, error) = Run("eval", iwae, "--k", "10", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("IWAE bound −L_3", output);

        var autoencoder = Path.Combine(directory, "ae");
        (exitCode, _, error) = Run("train", "--data", data, "--model", "ae", "--epochs", "1", "--batch-size", "8",
            "--hidden", "6", "--latent", "2", "--accelerator", "cpu", "--out", autoencoder);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        var row = Assert.Single(MetricsFile.Read(Path.Combine(autoencoder, "metrics.csv")));
        Assert.Equal(0, row.TestKl);
        Assert.Equal(row.TestReconstruction, row.TestLoss);
        (exitCode, output, error) = Run("eval", autoencoder, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("not defined (the autoencoder has no q(z|x)", output);
        using var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(autoencoder, "eval.json")));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, report.RootElement.GetProperty("LowerBound").ValueKind);
        (exitCode, _, error) = Run("encode", autoencoder, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.DoesNotContain("logvar", File.ReadLines(Path.Combine(autoencoder, "codes-test.csv")).First());
    }

    [Fact]
    public void InfoVaeTrainsWithMmdAndReportsItsObjective()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "infovae");
        var (exitCode, output, error) = Run("train", "--data", data, "--model", "infovae", "--mmd-lambda", "30", "--mmd-kernel", "imq",
            "--epochs", "2", "--batch-size", "8", "--hidden", "6", "--latent", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("model infovae", output);
        Assert.Contains("β 0, MMD λ 30 (inversemultiquadric kernel)", output);
        var rows = MetricsFile.Read(Path.Combine(run, "metrics.csv"));
        // The objective adds λ·MMD² ≥ 0 to the reconstruction (β = 0).
        Assert.All(rows, row => Assert.True(row.TestLoss >= row.TestReconstruction, $"{row.TestLoss} < {row.TestReconstruction}"));
        (exitCode, output, error) = Run("eval", run, "--k", "10", "--surgery", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("InfoVAE objective", output);
        Assert.Contains("ELBO surgery (8 images, 8 samples of q(z))", output);
        using var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "eval.json")));
        var surgery = report.RootElement.GetProperty("Surgery");
        Assert.True(surgery.GetProperty("MutualInformation").GetDouble() <= Math.Log(8) + 1e-9);
    }

    [Fact]
    public void RateDistortionTrainsEachTargetRateOnceAndPlotsTheCurve()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var folder = Path.Combine(directory, "rd");
        var (exitCode, output, error) = Run("rate-distortion", "--data", data, "--rates", "0,30", "--epochs", "1", "--batch-size", "8",
            "--hidden", "6", "--latent", "2", "--accelerator", "cpu", "--out", folder);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("target rate 0 nats (D + |σ − R|)", output);
        var lines = File.ReadAllLines(Path.Combine(folder, "rate-distortion.csv"));
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("TargetRate,TestRate,TestDistortion,TestElbo", lines[0]);
        Assert.True(PngSize(Path.Combine(folder, "rate-distortion.png")).Width > 0);
        // Done runs are not trained again.
        (exitCode, output, error) = Run("rate-distortion", "--data", data, "--rates", "0,30", "--epochs", "1", "--batch-size", "8",
            "--hidden", "6", "--latent", "2", "--accelerator", "cpu", "--out", folder);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.DoesNotContain("== target rate", output);
    }

    [Fact]
    public void MutualInformationSweepTrainsEachTargetOnceAndPlotsIt()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var folder = Path.Combine(directory, "mi");
        string[] arguments = ["mutual-information", "--data", data, "--targets", "1,4", "--epochs", "1", "--batch-size", "8",
            "--hidden", "6", "--latent", "2", "--likelihood", "gaussian", "--accelerator", "cpu", "--out", folder];
        var (exitCode, output, error) = Run(arguments);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("Î held to M = 4 nats with C = 10 (pathwise through the Gaussian draws)", output);
        var lines = File.ReadAllLines(Path.Combine(folder, "mutual-information.csv"));
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("Target,Achieved,TestDistortion,TestRate,TestElbo", lines[0]);
        Assert.True(PngSize(Path.Combine(folder, "mutual-information.png")).Width > 0);
        // Done runs are not trained again.
        (exitCode, output, error) = Run(arguments);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.DoesNotContain("== target information", output);
    }

    /// <summary>The mutual autoencoder (Bernoulli: REINFORCE) trains, resumes and evaluates, eval reporting Î.</summary>
    [Fact]
    public void MutualAutoencoderTrainsResumesAndReportsItsInformation()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "mae");
        var (exitCode, output, error) = Run("train", "--model", "mae", "--mutual-information", "3", "--mi-weight", "5", "--data", data,
            "--epochs", "1", "--batch-size", "6", "--hidden", "7", "--latent", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("Î held to M = 3 nats with C = 5 (REINFORCE through the Bernoulli draws)", output);
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([2, 7], tensors["mutual.mu.weight"].Shape);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("mutual information Î(x; z) = H(z) + E log r(z|x) = ", output);
        Assert.Contains("NLL", output);
        var report = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run, "eval.json")))!;
        Assert.True(double.IsFinite(report["MutualInformation"]!.GetValue<double>()));
    }

    [Fact]
    public void DeepVibClassifiesAndReportsItsTestError()
    {
        var data = WriteDataSet(train: 30, test: 10);
        // The synthetic labels are all 0: two classes (a classifier needs at least two).
        var run = Path.Combine(directory, "vib");
        var (exitCode, output, error) = Run("train", "--data", data, "--model", "vib", "--epochs", "2", "--batch-size", "10",
            "--hidden", "6", "--latent", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("β 0.001", output);
        Assert.Matches(@"epoch 2/2: .*; test error \d+\.\d\d% \(one z per image\)", output);
        // Its terms by their own names: a cross-entropy, not a reconstruction.
        Assert.Matches(@"epoch 2/2: .*\(−log q\(y\|z\) \+ β·KL: cross-entropy \d+\.\d\d, KL ", output);
        Assert.StartsWith("epoch,train_loss,test_loss,cross_entropy,kl,train_cross_entropy,train_kl,", File.ReadLines(Path.Combine(run, "metrics.csv")).First());
        Assert.Equal(2, MetricsFile.Read(Path.Combine(run, "metrics.csv")).Count);
        Assert.False(File.Exists(Path.Combine(run, "samples.png")));
        (exitCode, output, error) = Run("eval", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("test error", output);
        Assert.Contains("distortion (cross-entropy)", output);
        using var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "eval.json")));
        Assert.Equal("cross-entropy", report.RootElement.GetProperty("Terms").GetProperty("Distortion").GetString());
        (exitCode, _, error) = Run("sample", run, "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("is a --model vib run", error);
    }

    [Fact]
    public void VccaTrainsOnTwoViewsAndDrawsTheCrossViewPicture()
    {
        // 4×5 images: the left view is 3 columns (12 pixels), the right 2 (8 pixels).
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "vcca");
        var (exitCode, output, error) = Run("train", "--data", data, "--model", "vcca", "--epochs", "2", "--warmup-epochs", "1",
            "--batch-size", "8", "--hidden", "6", "--latent", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("model vcca", output);
        // 8 test images, three tiles each (image, left + predicted right, both decoded), 6 columns of 5-pixel tiles.
        Assert.Equal((6 * 7 + 2, 4 * 6 + 2), PngSize(Path.Combine(run, "cross-view.png")));
        Assert.True(PngSize(Path.Combine(run, "samples.png")).Width > 0);
        File.Delete(Path.Combine(run, "cross-view.png"));
        (exitCode, output, error) = Run("reconstruct", run, "--count", "4", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("right half predicted from the left alone", output);
        Assert.True(File.Exists(Path.Combine(run, "cross-view.png")));
        // The likelihood of both views, with q(z | left view) as the proposal.
        (exitCode, output, error) = Run("eval", run, "--k", "10", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Matches(@"NLL", output);

        // The first form, q(z|x, y): it sees the right half, so there is no prediction of it to draw.
        var both = Path.Combine(directory, "vcca-both");
        (exitCode, output, error) = Run("train", "--data", data, "--model", "vcca", "--encoder-views", "2", "--epochs", "1",
            "--batch-size", "8", "--hidden", "6", "--latent", "2", "--accelerator", "cpu", "--out", both);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("q(z|x, y) from both views", output);
        Assert.False(File.Exists(Path.Combine(both, "cross-view.png")));
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(both, "checkpoint", "model.safetensors"));
        Assert.Equal([6, 20], tensors["encoder.0.weight"].Shape);
        (exitCode, output, error) = Run("eval", both, "--k", "10", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
    }

    [Fact]
    public void PresetSetsThePapersSettingsAndGivenOptionsWin()
    {
        var data = WriteDataSet(train: 30, test: 6);
        var run = Path.Combine(directory, "preset");
        var (exitCode, output, error) = Run("train", "--preset", "iwae-1layer-k5", "--data", data, "--lr-schedule", "iwae-short",
            "--epochs", "1", "--hidden", "6,5", "--latent", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("model iwae k=5 20-6-5-3, Tanh, Bernoulli, binarize dynamic", output);
        Assert.Contains("batch 20", output);
        Assert.Contains("ε 0.0001", output);
        Assert.Contains("preset iwae-1layer-k5", output);
        using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "config.json")));
        var training = config.RootElement.GetProperty("training");
        Assert.Equal(1, training.GetProperty("Epochs").GetInt32());
        Assert.Equal(20, training.GetProperty("BatchSize").GetInt32());
    }

    [Fact]
    public void TwoStochasticLayersTrainEvaluateAndDraw()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "two");
        var (exitCode, output, error) = Run("train", "--preset", "iwae-2layer-k5", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "4", "--hidden2", "5", "--latent2", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("model iwae k=5 20-7-4(z1)-5-2(z2)", output);
        Assert.True(double.IsFinite(Assert.Single(MetricsFile.Read(Path.Combine(run, "metrics.csv"))).TestLoss));
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
        foreach (var command in new[] { "sample", "reconstruct", "interpolate", "latent-map" })
        {
            (exitCode, _, error) = Run(command, run, "--accelerator", "cpu");
            Assert.True(exitCode == 0, $"{command}: exit {exitCode}: {error}");
        }
    }

    [Fact]
    public void DeepLadderWithSoftplusVariancesTrainsResumesAndEvaluates()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "ladder3");
        var (exitCode, output, error) = Run("train", "--model", "ladder", "--ladder-layers", "3", "--ladder-variance", "softplus", "--data", data,
            "--epochs", "1", "--batch-size", "6", "--hidden", "7", "--latent", "4", "--hidden2", "6", "--latent2", "4", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // z3 halves z2's widths.
        Assert.Contains("model ladder 20-7-4(z1)-6-4(z2)-3-2(z3), batch norm", output);
        Assert.Contains("3 stochastic layers, softplus variances", output);
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([2, 3], tensors["encoder3.softplus_var.weight"].Shape);
        // p(z2|z3): z3 (2) through rung 3's hidden width (3) to z2's μ (4).
        Assert.Equal([3, 2], tensors["prior2.0.weight"].Shape);
        Assert.Equal([4, 3], tensors["prior2.mu.weight"].Shape);
        Assert.False(tensors.ContainsKey("encoder.logvar.weight"));
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Equal(2, MetricsFile.Read(Path.Combine(run, "metrics.csv")).Count);
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
        Assert.Contains("active units", output);
        Assert.Contains("of 2", output);
        // Each layer's units, bottom first, on the top-down mean path.
        Assert.Matches(@"active units per stochastic layer: z1 \d of 4, z2 \d of 4, z3 \d of 2", output);
        var report = System.Text.Json.JsonSerializer.Deserialize<IlgpuVae.Model.EvaluationReport>(File.ReadAllText(Path.Combine(run, "eval.json")))!;
        Assert.Equal(3, report.LayerActiveUnits!.Length);
        Assert.Equal(report.ActiveUnits, report.LayerActiveUnits[2]);
        (exitCode, _, error) = Run("sample", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"sample: exit {exitCode}: {error}");
    }

    [Fact]
    public void LadderVaeTrainsWithBatchNormAndWarmUpResumesAndEvaluates()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "ladder");
        string[] arguments = ["train", "--model", "ladder", "--data", data, "--epochs", "1", "--warmup-epochs", "2", "--batch-size", "6",
            "--hidden", "7", "--latent", "4", "--hidden2", "5", "--latent2", "2", "--accelerator", "cpu", "--out", run];
        var (exitCode, output, error) = Run(arguments);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("model ladder 20-7-4(z1)-5-2(z2), batch norm", output);
        Assert.Contains("KL warm-up 2 epochs", output);
        // The running averages are saved with the parameters, under PyTorch's names.
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Contains(tensors["encoder.0.norm.running_var"].Data, value => value != 1f);
        (exitCode, output, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Equal(2, MetricsFile.Read(Path.Combine(run, "metrics.csv")).Count);
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--surgery", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
        Assert.Contains("ELBO surgery (z2, 8 images", output);
        foreach (var command in new[] { "sample", "reconstruct" })
        {
            (exitCode, _, error) = Run(command, run, "--accelerator", "cpu");
            Assert.True(exitCode == 0, $"{command}: exit {exitCode}: {error}");
        }
    }

    [Fact]
    public void VlaeTrainsResumesEvaluatesAndDrawsEachLayer()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "vlae");
        var (exitCode, output, error) = Run("train", "--model", "vlae", "--data", data, "--epochs", "1", "--warmup-epochs", "2",
            "--batch-size", "6", "--hidden", "7", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // Its own default latent (three layers of two) and its layers in the banner.
        Assert.Contains("model vlae 20-7-6", output);
        Assert.Contains("3 latent layers of 2", output);
        Assert.True(File.Exists(Path.Combine(run, "layers.png")), "train draws layers.png for a model of several latent layers");
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([2, 7], tensors["rung3.encoder.mu.weight"].Shape);
        Assert.Equal([7, 9], tensors["rung1.decoder.0.weight"].Shape); // [z̃_2 | z_1]
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Equal(2, MetricsFile.Read(Path.Combine(run, "metrics.csv")).Count);
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--surgery", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
        Assert.Contains("of 6", output); // active units of all six dimensions
        // The layers' KL, from the encoded μ and log σ² in double, adds up to the rate the kernels summed in float.
        var report = System.Text.Json.JsonSerializer.Deserialize<IlgpuVae.Model.EvaluationReport>(File.ReadAllText(Path.Combine(run, "eval.json")))!;
        Assert.Equal(["z3", "z2", "z1"], report.LayerKl!.Keys);
        Assert.Equal(report.Rate, report.LayerKl.Values.Sum(), 1e-4 * Math.Max(1, report.Rate));
        Assert.Contains("KL per latent layer (nats): z3 ", output);
        foreach (var command in new[] { "sample", "reconstruct", "interpolate", "traverse" })
        {
            (exitCode, _, error) = Run(command, run, "--accelerator", "cpu");
            Assert.True(exitCode == 0, $"{command}: exit {exitCode}: {error}");
        }
    }

    [Fact]
    public void RankOneCovarianceTrainsResumesEvaluatesAndSavesItsThreeParts()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "rank1");
        var (exitCode, output, error) = Run("train", "--covariance", "rank1", "--weight-prior", "1000", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "3", "--k", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("rank-one covariance", output);
        Assert.Contains("weight prior N(0, 1000·I) on the decoder", output);
        // [μ | log d | u] saved as three pairs of tensors.
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        foreach (var part in new[] { "mu", "logd", "u" })
            Assert.Equal([3, 7], tensors[$"encoder.{part}.weight"].Shape);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--surgery", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
        Assert.Contains("ELBO surgery", output);
        Assert.Contains("rank-one posterior: mean |correlation| between dimensions of q(z|x) 0.", output);
        var report = System.Text.Json.JsonSerializer.Deserialize<IlgpuVae.Model.EvaluationReport>(File.ReadAllText(Path.Combine(run, "eval.json")))!;
        Assert.InRange(report.PosteriorCorrelation!.MeanAbsolute, 0, report.PosteriorCorrelation.Largest);
        Assert.InRange(report.PosteriorCorrelation.Largest, 0, 1);
    }

    [Fact]
    public void TwoRankOneLayersTrainAndReportTheFirstLayersCorrelations()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "dlgm");
        var (exitCode, output, error) = Run("train", "--stochastic-layers", "2", "--covariance", "rank1", "--data", data, "--epochs", "1",
            "--batch-size", "6", "--hidden", "7", "--latent", "4", "--hidden2", "5", "--latent2", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([3, 5], tensors["encoder2.u.weight"].Shape);
        // p(z1|z2) stays diagonal.
        Assert.Equal([4, 5], tensors["prior.logvar.weight"].Shape);
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--surgery", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("rank-one posterior: mean |correlation| between dimensions of q(z1|x) 0.", output);
        Assert.Contains("active units per stochastic layer: z1 ", output);
    }

    [Fact]
    public void MutualAutoencoderWithARankOnePosteriorKeepsItsAuxiliaryNetworkDiagonal()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "mae-rank1");
        var (exitCode, output, error) = Run("train", "--model", "mae", "--covariance", "rank1", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("rank-one covariance", output);
        // q(z|x) saves [μ | log d | u]; r(z|x) is still [μ | log σ²].
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([3, 7], tensors["encoder.u.weight"].Shape);
        Assert.Equal([3, 7], tensors["mutual.logvar.weight"].Shape);
        Assert.DoesNotContain("mutual.u.weight", tensors.Keys);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"resume: exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("rank-one posterior: mean |correlation| between dimensions of q(z|x) 0.", output);
    }

    [Fact]
    public void CorexWithARankOnePosteriorReportsItsMarginalsInformationAndRefusesAnchors()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "corex-rank1");
        var (exitCode, output, error) = Run("train", "--model", "corex", "--covariance", "rank1", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("learned factorized marginal r(z), rank-one covariance", output);
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([3, 7], tensors["encoder.u.weight"].Shape);
        // r(z) stays [m | log s²]: not a posterior.
        Assert.Equal([3, 1], tensors["marginal.logvar.weight"].Shape);
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("KL of each dimension's marginal of q(z|x) against r(z) (nats): z0 ", output);
        Assert.Contains("rank-one posterior: mean |correlation| between dimensions of q(z|x) 0.", output);
        (exitCode, _, error) = Run("train", "--model", "corex", "--covariance", "rank1", "--anchors", "1", "--data", data, "--epochs", "1",
            "--accelerator", "cpu", "--out", Path.Combine(directory, "corex-rank1-anchors"));
        Assert.Equal(2, exitCode);
        Assert.Contains("does not split by dimension", error);
        // Stacked: q(z2|z1) rank-one too, q(z1|z2) (a decoder of z1) still [m | log σ²].
        var stacked = Path.Combine(directory, "corex-stacked-rank1");
        (exitCode, _, error) = Run("train", "--model", "corex", "--stochastic-layers", "2", "--covariance", "rank1", "--data", data, "--epochs", "1",
            "--batch-size", "6", "--hidden", "7", "--latent", "3", "--hidden2", "5", "--latent2", "2", "--accelerator", "cpu", "--out", stacked);
        Assert.True(exitCode == 0, $"stacked: exit {exitCode}: {error}");
        (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(stacked, "checkpoint", "model.safetensors"));
        Assert.Equal([2, 5], tensors["encoder2.u.weight"].Shape);
        Assert.Equal([3, 5], tensors["z1_decoder.logvar.weight"].Shape);
    }

    [Fact]
    public void LadderWithRankOnePosteriorsSavesEachRungsThreePartsAndResumes()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "ladder-rank1");
        var (exitCode, output, error) = Run("train", "--model", "ladder", "--ladder-layers", "3", "--covariance", "rank1", "--data", data, "--epochs", "1",
            "--batch-size", "6", "--hidden", "7", "--latent", "4", "--hidden2", "6", "--latent2", "4", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("3 stochastic layers, rank-one covariance", output);
        // Every rung's head is [μ | log d | u]; the prior networks p(z_l|z_{l+1}) stay [μ | log σ²].
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([4, 7], tensors["encoder.u.weight"].Shape);
        Assert.Equal([2, 3], tensors["encoder3.u.weight"].Shape);
        Assert.Equal([4, 3], tensors["prior2.logvar.weight"].Shape);
        Assert.DoesNotContain("prior2.u.weight", tensors.Keys);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"resume: exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("rank-one posterior: mean |correlation| between dimensions of q(z1|x) 0.", output);
        Assert.Contains("active units per stochastic layer: z1 ", output);
        (exitCode, _, error) = Run("sample", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"sample: exit {exitCode}: {error}");
    }

    [Fact]
    public void PlanarFlowOnARankOneBaseSavesItsBaseAndStepsAndReportsItsCorrelations()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "flow-rank1");
        var (exitCode, output, error) = Run("train", "--flow-length", "2", "--covariance", "rank1", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("2 planar flow steps, rank-one covariance", output);
        // [μ | log d | u] of the base, then the two steps' (u, w, b): 2·(2·3 + 1) rows.
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([3, 7], tensors["encoder.u.weight"].Shape);
        Assert.Equal([14, 7], tensors["encoder.flow.weight"].Shape);
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("rank-one posterior: mean |correlation| between dimensions of q(z|x) 0.", output);
        // The HVM's q(λ|x) on a rank-one base; r(λ|z) stays [a | log b²].
        var hvm = Path.Combine(directory, "hvm-rank1");
        (exitCode, _, error) = Run("train", "--model", "hvm", "--covariance", "rank1", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "3", "--accelerator", "cpu", "--out", hvm);
        Assert.True(exitCode == 0, $"hvm: exit {exitCode}: {error}");
        (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(hvm, "checkpoint", "model.safetensors"));
        Assert.Equal([3, 7], tensors["encoder.u.weight"].Shape);
        Assert.Equal([3, 7], tensors["hvm.r.logvar.weight"].Shape);
    }

    /// <summary>--stream trains the same weights as the resident data set; a memory cap that leaves no room for the
    /// data set streams it by itself; a cap that leaves no room for the model is refused.</summary>
    [Fact]
    public void StreamedTrainingMatchesResidentAndStartsByItselfUnderAMemoryCap()
    {
        // 60 000 images of 20 pixels: 1.3 MiB on the device held whole, two 6-image slots streamed.
        var data = WriteDataSet(train: 60000, test: 8);
        string[] Train(string folder, params string[] extra) =>
            ["train", "--data", data, "--epochs", "1", "--batch-size", "6", "--train-limit", "60", "--hidden", "7", "--latent", "3",
             "--binarize", "dynamic", "--accelerator", "cpu", "--out", Path.Combine(directory, folder), .. extra];
        string Hash(string folder) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(
            File.ReadAllBytes(Path.Combine(directory, folder, "checkpoint", "model.safetensors"))));
        var (exitCode, output, error) = Run(Train("resident"));
        Assert.True(exitCode == 0, $"resident: exit {exitCode}: {error}");
        Assert.DoesNotContain("streamed", output);
        (exitCode, output, error) = Run(Train("streamed", "--stream"));
        Assert.True(exitCode == 0, $"streamed: exit {exitCode}: {error}");
        Assert.Contains("data: streamed from the host in minibatches of up to 6 (--stream)", output);
        Assert.Equal(Hash("resident"), Hash("streamed"));
        (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--device-memory", "-1", "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("--device-memory is MiB of the accelerator's memory to plan for", error);
    }

    /// <summary>The library's choice: a data set that does not fit beside the model under the memory cap is
    /// streamed; one that fits stays resident unless streaming is asked for.</summary>
    [Fact]
    public void AModelStreamsItsDataOnlyWhenItDoesNotFitOrIsAskedTo()
    {
        var config = new IlgpuVae.Model.VaeConfig { InputSize = 20, Hidden = [7], Latent = 3 };
        var settings = new IlgpuVae.Model.Library.TrainingSettings { BatchSize = 6 };
        const long MiB = 1 << 20;
        bool Streamed(long residentBytes, bool ask)
        {
            using var model = IlgpuVae.Model.Library.VaeModel.Create(config, settings, IlgpuVae.GpuKernels.AcceleratorChoice.Cpu, null, null,
                new IlgpuVae.Model.Library.DataPlan(residentBytes, 1000, ask, 8 * MiB));
            return model.DataStreamed;
        }
        Assert.False(Streamed(1000, ask: false));
        Assert.True(Streamed(1000, ask: true));
        Assert.True(Streamed(20 * MiB, ask: false));
    }

    [Fact]
    public void VlaeWithARankOneCovarianceSavesEachHeadsThreePartsAndReportsItsCorrelations()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "vlae-rank1");
        var (exitCode, output, error) = Run("train", "--model", "vlae", "--covariance", "rank1", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "6", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("3 latent layers of 2, rank-one covariance", output);
        // Each rung's head writes its share of [μ | log d | u]: two columns of each.
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        foreach (var part in new[] { "mu", "logd", "u" })
        {
            Assert.Equal([2, 7], tensors[$"encoder.{part}.weight"].Shape);
            Assert.Equal([2, 7], tensors[$"rung3.encoder.{part}.weight"].Shape);
        }
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("rank-one posterior: mean |correlation| between dimensions of q(z|x) 0.", output);
        Assert.Contains("of 6", output);
        (exitCode, _, error) = Run("traverse", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"traverse: exit {exitCode}: {error}");
    }

    [Fact]
    public void StackedCorexTrainsEvaluatesAndSamplesFromItsTopMarginal()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "corex-stacked");
        var (exitCode, output, error) = Run("train", "--model", "corex", "--stochastic-layers", "2", "--anchors", "1", "--data", data, "--epochs", "1",
            "--batch-size", "6", "--hidden", "7", "--latent", "4", "--hidden2", "5", "--latent2", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("model corex 20-7-4(z1)-5-2(z2)", output);
        Assert.Contains("stacked: z2 over z1, learned factorized marginals r1(z1) and r2(z2), 1 anchors", output);
        Assert.Contains("KL1 + KL2 − log q(z1|z2)/r1(z1)", output);
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([2, 1], tensors["marginal2.mu.weight"].Shape);
        Assert.Equal([4, 5], tensors["z1_decoder.mu.weight"].Shape);
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
        // The information of the codes, z2's two dimensions against r2; the anchor is z1's, not among them.
        Assert.Contains("KL per latent dimension against r(z) (nats): z0 ", output);
        Assert.Contains(", z1 ", output);
        (exitCode, _, error) = Run("sample", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"sample: exit {exitCode}: {error}");
    }

    [Fact]
    public void VccaPrivateTrainsEvaluatesAndDrawsSharedAndPrivateLatents()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "vcca-private");
        var (exitCode, output, error) = Run("train", "--model", "vcca", "--private-latent", "2", "--data", data, "--epochs", "1",
            "--batch-size", "8", "--hidden", "6", "--latent", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("private latents h_x, h_y of 2", output);
        // h_y is inferred from the right half, so there is no prediction of it from the left to draw.
        Assert.False(File.Exists(Path.Combine(run, "cross-view.png")));
        Assert.True(File.Exists(Path.Combine(run, "layers.png")), "z, h_x and h_y each varied with the others held");
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([5, 6], tensors["encoder.mu.weight"].Shape); // z and h_x from the left view
        Assert.Equal([2, 6], tensors["encoder2.mu.weight"].Shape); // h_y from the right
        Assert.Equal([6, 5], tensors["decoder.0.weight"].Shape); // [z | h_x]
        (exitCode, output, error) = Run("eval", run, "--k", "10", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("active units", output);
        Assert.Contains("of 7", output);
        Assert.Contains("KL per latent layer (nats): z ", output);
        (exitCode, _, error) = Run("traverse", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        // encode names each column by its latent.
        (exitCode, _, error) = Run("encode", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Equal("index,label,mu_z_0,mu_z_1,mu_z_2,mu_h_x_0,mu_h_x_1,mu_h_y_0,mu_h_y_1,logvar_z_0,logvar_z_1,logvar_z_2,logvar_h_x_0,logvar_h_x_1,logvar_h_y_0,logvar_h_y_1",
            File.ReadLines(Path.Combine(run, "codes-test.csv")).First());
    }

    [Fact]
    public void PlanarFlowTrainsResumesAndEvaluates()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "flow");
        var (exitCode, output, error) = Run("train", "--flow-length", "3", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "2", "--k", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("3 planar flow steps", output);
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([3 * (2 * 2 + 1), 7], tensors["encoder.flow.weight"].Shape);
        Assert.Equal([2, 7], tensors["encoder.logvar.weight"].Shape);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
    }

    /// <summary>A learned prior trains, resumes, evaluates (L_k from the sampled KL, surgery against the mixture)
    /// and draws its components; its layers are saved under their own names.</summary>
    [Theory]
    [InlineData("mog:3", "a mixture of 3 learned Gaussians", "mixture.mu.weight", 2)]
    [InlineData("vamp:4", "VampPrior with 4 pseudo-inputs", "vamp.pseudo_inputs.weight", 20)]
    public void LearnedPriorTrainsResumesEvaluatesAndDrawsItsComponents(string prior, string banner, string tensor, int rows)
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "prior");
        var (exitCode, output, error) = Run("train", "--prior", prior, "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "2", "--k", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains(banner, output);
        Assert.True(File.Exists(Path.Combine(run, "prior.png")), "prior.png is drawn after training");
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        int components = int.Parse(prior.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal([rows, components], tensors[tensor].Shape);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--surgery", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
        Assert.Contains("average KL", output);
        Assert.Contains("(sampled: the learned mixture has no closed form)", output);
        (exitCode, _, error) = Run("sample", run, "--count", "5", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
    }

    /// <summary>The sparse gamma DEF trains on Poisson counts, resumes, evaluates its NLL with every layer's active units,
    /// and draws components.png (train, and the components command): one row of 20 units per layer here, 4×5
    /// images with 2-pixel gaps. The positive weights are saved under their layers' names; a model without
    /// components is refused.</summary>
    [Fact]
    public void DeepExponentialFamilyTrainsResumesEvaluatesAndDrawsItsComponents()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "def");
        var (exitCode, output, error) = Run("train", "--model", "def", "--def-layers", "gamma:4,gamma:3", "--likelihood", "poisson", "--data", data,
            "--epochs", "1", "--batch-size", "6", "--hidden", "7", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("sparse gamma layers 4-3 with α = 0.1", output);
        Assert.Contains("leave-one-out baseline over 4 samples", output);
        var expectedSize = (20 * (5 + 2) + 2, 2 * (4 + 2) + 2);
        Assert.Equal(expectedSize, PngSize(Path.Combine(run, "components.png")));
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([20, 4], tensors["def.weights0.weight"].Shape);
        Assert.Equal([4, 3], tensors["def.weights1.weight"].Shape);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("NLL", output);
        Assert.Contains("active units per stochastic layer: z1 ", output);
        Assert.Contains(" of 4, z2 ", output);
        File.Delete(Path.Combine(run, "components.png"));
        (exitCode, output, error) = Run("components", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Equal(expectedSize, PngSize(Path.Combine(run, "components.png")));

        var vae = Path.Combine(directory, "vae");
        (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--batch-size", "6", "--hidden", "7", "--latent", "2", "--accelerator", "cpu", "--out", vae);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, _, error) = Run("components", vae, "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("has no components to draw", error);
    }

    /// <summary>AnchorVAE trains, resumes and evaluates: eval reports the KL of each dimension against r(z) and
    /// draws information.png; train draws the anchors' traversals; the marginal is saved as its own tensors.</summary>
    [Fact]
    public void CorexWithAnchorsTrainsResumesAndReportsInformationPerDimension()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "corex");
        var (exitCode, output, error) = Run("train", "--model", "corex", "--anchors", "2", "--anchor-weight", "0.7", "--data", data,
            "--epochs", "1", "--batch-size", "6", "--hidden", "7", "--latent", "3", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("2 anchors with KL weight 1 − 0.7", output);
        Assert.True(File.Exists(Path.Combine(run, "layers.png")), "the anchors' traversals are drawn after training");
        Assert.True(File.Exists(Path.Combine(run, "information.png")), "the information per dimension is drawn after training");
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([3, 1], tensors["marginal.mu.weight"].Shape);
        Assert.Equal([3], tensors["marginal.logvar.bias"].Shape);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        File.Delete(Path.Combine(run, "information.png"));
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--surgery", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("KL per latent dimension against r(z) (nats): anchor 0 ", output);
        Assert.Contains(", z2 ", output);
        Assert.Contains("NLL", output);
        Assert.True(File.Exists(Path.Combine(run, "information.png")), "eval draws information.png");
        var report = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run, "eval.json")))!;
        Assert.Equal(3, report["DimensionKl"]!.AsArray().Count);
    }

    /// <summary>The hierarchical variational model trains, resumes and evaluates its hierarchical bound; log τ² and
    /// r(λ|z) are saved under their own names.</summary>
    [Fact]
    public void HierarchicalVariationalModelTrainsResumesAndEvaluates()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "hvm");
        var (exitCode, output, error) = Run("train", "--model", "hvm", "--flow-length", "2", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "3", "--k", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("variational prior q(λ|x) with 2 planar flow steps, auxiliary r(λ|z)", output);
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([3, 1], tensors["hvm.tau.weight"].Shape);
        Assert.Equal([3, 7], tensors["hvm.r.mu.weight"].Shape);
        Assert.Equal([2 * (2 * 3 + 1), 7], tensors["encoder.flow.weight"].Shape);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("hierarchical ELBO", output);
        Assert.Contains("NLL", output);
    }

    /// <summary>The Bernoulli HVM trains with its default two flow steps, resumes, evaluates its hierarchical bound and
    /// samples binary codes; q(λ|x)'s base and flow, the prior's logits and r(λ|z, x) (reading [z | x]) are saved under
    /// their own names.</summary>
    [Fact]
    public void BernoulliHierarchicalModelTrainsResumesEvaluatesAndSamples()
    {
        var data = WriteDataSet(train: 24, test: 8);
        var run = Path.Combine(directory, "hvm-bernoulli");
        var (exitCode, output, error) = Run("train", "--model", "hvm-bernoulli", "--data", data, "--epochs", "1", "--batch-size", "6",
            "--hidden", "7", "--latent", "3", "--k", "2", "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("binary units, variational prior q(λ|x) with 2 planar flow steps, auxiliary r(λ|z, x)", output);
        var (tensors, _) = IlgpuVae.Model.Checkpoints.SafeTensors.Read(Path.Combine(run, "checkpoint", "model.safetensors"));
        Assert.Equal([3, 7], tensors["encoder.mu.weight"].Shape);
        Assert.Equal([3, 7], tensors["encoder.logvar.weight"].Shape);
        Assert.Equal([2 * (2 * 3 + 1), 7], tensors["encoder.flow.weight"].Shape);
        Assert.Equal([3, 1], tensors["hvm.prior.weight"].Shape);
        Assert.Equal([3, 7], tensors["hvm.r.mu.weight"].Shape);
        Assert.Equal([3, 7], tensors["hvm.r.logvar.weight"].Shape);
        // r reads [z | x]: 3 units and 4·5 pixels into its hidden layer of 7.
        Assert.Equal([7, 3 + 4 * 5], tensors["hvm.r.0.weight"].Shape);
        (exitCode, _, error) = Run("train", "--resume", run, "--epochs", "2", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        (exitCode, output, error) = Run("eval", run, "--k", "12", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("hierarchical ELBO", output);
        Assert.Contains("NLL", output);
        (exitCode, _, error) = Run("sample", run, "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
    }

    [Fact]
    public void TraverseNeedsSeveralLatentLayers()
    {
        var data = WriteDataSet(train: 12, test: 6);
        var run = Path.Combine(directory, "plain");
        var (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--batch-size", "6", "--hidden", "5", "--latent", "2",
            "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.False(File.Exists(Path.Combine(run, "layers.png")));
        (exitCode, _, error) = Run("traverse", run, "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("layer traversals need a model with several latent layers (train --model vlae, or --model vcca --private-latent P)", error);
    }

    [Theory]
    [InlineData("--model iwae --beta 0.5", "leave --beta at 1")]
    [InlineData("--model ae --k 2", "leave --k at 1")]
    [InlineData("--model iwae --warmup-epochs 2", "ramps the KL weight of --model vae, vcca, ladder, vlae")]
    [InlineData("--model ladder --stochastic-layers 1", "the Ladder VAE has two or more stochastic layers")]
    [InlineData("--model ladder --ladder-layers 1", "--ladder-layers must be from 2 to 8 (got 1)")]
    [InlineData("--model ladder --ladder-layers 9", "--ladder-layers must be from 2 to 8 (got 9)")]
    [InlineData("--model ladder --ladder-layers x", "--ladder-layers must be a whole number (got 'x')")]
    [InlineData("--model ladder --ladder-variance exp", "--ladder-variance must be log or softplus (got exp)")]
    [InlineData("--ladder-layers 3", "--ladder-layers applies to --model ladder, not vae")]
    [InlineData("--model hvm --auxiliary-flow-length -1", "--auxiliary-flow-length is the inverse flow steps of the auxiliary r(λ|z) of --model hvm or hvm-bernoulli, at least 0 (got -1)")]
    [InlineData("--auxiliary-flow-length 2", "--auxiliary-flow-length applies to --model hvm, hvm-bernoulli, not vae")]
    [InlineData("--model hvm-bernoulli --stochastic-layers 2", "the Bernoulli hierarchical variational model has one stochastic layer: leave --stochastic-layers at 1")]
    [InlineData("--model hvm-bernoulli --covariance rank1", "--covariance applies to")]
    [InlineData("--model ladder --ladder-layers 5 --latent2 4", "layer 5 of the Ladder VAE halves z2's widths 3 times, which leaves none of --latent2 4 or --hidden2 100,100")]
    [InlineData("--batch-norm", "--batch-norm is implemented for --model ladder only")]
    [InlineData("--model vcca --stochastic-layers 2", "VCCA shares one stochastic layer")]
    [InlineData("--k 0", "--k must be from 1")]
    [InlineData("--lr-schedule bogus", "--lr-schedule must be constant, iwae or iwae-short")]
    [InlineData("--preset nope", "nope")]
    [InlineData("--adam-eps 0", "--adam-eps must be a positive")]
    [InlineData("--stochastic-layers 3", "--stochastic-layers must be 1 or 2")]
    [InlineData("--model def --def-layers gamma:0", "--def-layers: layer 1's width must be a whole number ≥ 1 (got '0')")]
    [InlineData("--model def --def-layers gamma:10,gamma", "--def-layers: layer 2 is 'gamma'; write each layer as TYPE:WIDTH, bottom first")]
    [InlineData("--model def --def-layers gamma:10,sbn:-5", "--def-layers: layer 2's width must be a whole number ≥ 1 (got '-5')")]
    [InlineData("--model def --def-layers normal:10", "--def-layers: layer 1 has type 'normal'; the types are gamma, poisson and sbn")]
    [InlineData("--model def --def-shape 0", "--def-shape, the gamma layers' shape α, must be a finite number > 0 (got 0)")]
    [InlineData("--model def --def-shape -0.5", "--def-shape, the gamma layers' shape α, must be a finite number > 0 (got -0.5)")]
    [InlineData("--model def --latent 50", "--latent is the DEF's bottom layer, 100 units in --def-layers")]
    [InlineData("--def-layers gamma:4", "--def-layers applies to --model def, not vae")]
    [InlineData("--model darn --darn-decoder bogus", "--darn-decoder: the DARN decoder is factorized or autoregressive (got bogus)")]
    [InlineData("--model darn --darn-decoder autoregressive --likelihood gaussian", "--darn-decoder reads binary pixels: it needs --likelihood bernoulli (got gaussian)")]
    [InlineData("--darn-decoder autoregressive", "--darn-decoder applies to --model darn, not vae")]
    [InlineData("--model darn --darn-estimator reinforce", "--darn-estimator: the DARN estimator is nvil or taylor (got reinforce)")]
    [InlineData("--model sbn --darn-estimator taylor", "--darn-estimator applies to --model darn, not sbn")]
    [InlineData("--model darn --stochastic-layers 2 --darn-estimator taylor", "--darn-estimator taylor is built for one layer of DARN units: with --stochastic-layers 2 use nvil")]
    [InlineData("--likelihood poisson", "--likelihood poisson (grey levels as counts) is for --model def, whose rates are positive")]
    [InlineData("--model infovae --k 2", "use --k 1 and one stochastic layer")]
    [InlineData("--model infovae --mmd-lambda -1", "--mmd-lambda must be a finite number ≥ 0")]
    [InlineData("--model infovae --mmd-kernel rbf", "--mmd-kernel must be gaussian or imq")]
    [InlineData("--mmd-lambda 5", "--mmd-lambda applies to --model infovae, not vae")]
    [InlineData("--model infovae --mmd-lambda x", "--mmd-lambda must be a number (got 'x')")]
    [InlineData("--target-rate 5 --model iwae", "--target-rate applies to --model vae, not iwae")]
    [InlineData("--target-rate 5 --k 2", "--target-rate replaces β·KL")]
    [InlineData("--target-rate -1", "--target-rate must be a finite number of nats ≥ 0")]
    [InlineData("--model ae --stochastic-layers 2", "needs --model vae or iwae")]
    [InlineData("--dense tiled", "--dense tiled needs groups of 256 threads")]
    [InlineData("--stochastic-layers 2 --hidden2 0", "--hidden2: '0' is not a positive width")]
    [InlineData("--model vlae --latent-layers 4", "the VLAE splits --latent evenly among --latent-layers: give a number of layers from 1 to 6 that divides 6 (got 4)")]
    [InlineData("--model vlae --latent-layers two", "--latent-layers must be a whole number (got 'two')")]
    [InlineData("--latent-layers 2", "--latent-layers applies to --model vlae, not vae")]
    [InlineData("--model vlae --stochastic-layers 2", "leave --stochastic-layers at 1")]
    [InlineData("--model vlae --hidden 400 --latent 7", "divides 7 (got 3)")]
    [InlineData("--model ae --covariance rank1", "--covariance applies to --model vae, iwae, infovae, vib, vcca, ladder, vlae, corex, mae, hvm, not ae")]
    [InlineData("--covariance full", "--covariance must be diagonal or rank1 (got full)")]
    [InlineData("--covariance rank1 --target-rate 5", "target-rate training is built for the diagonal posterior: use --covariance rank1 without --target-rate")]
    [InlineData("--model vcca --encoder-views 3", "--encoder-views is 1 (the left half) or 2 (both halves) (got 3)")]
    [InlineData("--encoder-views 2", "--encoder-views applies to --model vcca, not vae")]
    [InlineData("--model vcca --private-latent 2 --encoder-views 2", "VCCA-private infers z from the left view and h_y from the right")]
    [InlineData("--private-latent 2", "--private-latent applies to --model vcca, not vae")]
    [InlineData("--weight-prior 0", "--weight-prior is κ > 0 of the generative weights' prior, for --model vae or iwae (got 0)")]
    [InlineData("--model vlae --weight-prior 100", "--weight-prior applies to --model vae, iwae, not vlae")]
    [InlineData("--flow-length 2 --target-rate 5", "planar flows start from the one-layer VAE's Gaussian: use --flow-length without --stochastic-layers 2 or --target-rate")]
    [InlineData("--model iwae --flow-length 2", "--flow-length applies to --model vae, hvm, hvm-bernoulli, not iwae")]
    [InlineData("--flow-length -1", "--flow-length is the planar flow steps of --model vae or hvm or hvm-bernoulli, at least 0 (got -1)")]
    [InlineData("--prior mog:0", "--prior takes 1 to 5000 components, as mog:C or vamp:C, and the standard normal none (got mixture with 0)")]
    [InlineData("--prior vamp:x", "--prior vamp:C takes a whole number of components C (got 'x')")]
    [InlineData("--prior gmm:3", "--prior is standard, mog:C or vamp:C with C components (got 'gmm:3')")]
    [InlineData("--prior mog:3 --flow-length 2", "a learned prior is built for the one-layer VAE's diagonal Gaussian")]
    [InlineData("--model ae --prior mog:3", "--prior applies to --model vae, iwae, not ae")]
    [InlineData("--model corex --anchors 30", "--anchors is how many of the 20 latent dimensions are anchors, from 0 to 20 (got 30)")]
    [InlineData("--model corex --anchors 2 --anchor-weight 1", "--anchor-weight is λ in [0, 1), leaving the anchors a KL weight 1 − λ > 0 (got 1)")]
    [InlineData("--anchors 2", "--anchors applies to --model corex, not vae")]
    [InlineData("--model mae --mi-weight -1", "--mi-weight is C, a finite number ≥ 0 (got -1)")]
    [InlineData("--mutual-information 5", "--mutual-information applies to --model mae, not vae")]
    public void BadObjectiveSettingsAreUsageErrors(string arguments, string expected)
    {
        var data = WriteDataSet(train: 10, test: 5);
        string runFolder = Path.Combine(directory, "run");
        var (exitCode, output, error) = Run(["train", "--data", data, "--accelerator", "cpu", "--out", runFolder, .. arguments.Split(' ')]);
        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error + output);
        // A refused run leaves nothing behind that `train --resume` could later mistake for a started run.
        Assert.False(Directory.Exists(runFolder), $"a refused run created {runFolder}");
    }

    [Fact]
    public void VerboseAddsTheStackTrace()
    {
        var missing = Path.Combine(directory, "absent");
        var (exitCode, _, error) = Run("train", "--data", missing, "--accelerator", "cpu", "--verbose");
        Assert.Equal(2, exitCode);
        Assert.Contains(" at IlgpuVae.", error);
    }

    [Fact]
    public void AbsentAcceleratorIsAUsageError()
    {
        // Ask for a GPU kind this machine lacks (CI machines have neither CUDA nor an OpenCL 2.x device that ILGPU
        // accepts); the refusal must be a plain usage error, not a crash or a quiet fallback to the CPU.
        using var context = GpuKernels.Compute.CreateContext();
        var absent = new[] { ("cuda", ILGPU.Runtime.AcceleratorType.Cuda, "Cuda"), ("opencl", ILGPU.Runtime.AcceleratorType.OpenCL, "OpenCL") }
            .FirstOrDefault(kind => context.Devices.All(device => device.AcceleratorType != kind.Item2));
        if (absent.Item1 is null)
            return; // a machine with both kinds has nothing to refuse
        var data = WriteDataSet(train: 10, test: 5);
        var (exitCode, _, error) = Run("train", "--data", data, "--accelerator", absent.Item1, "--out", Path.Combine(directory, "run"));
        Assert.Equal(2, exitCode);
        Assert.StartsWith($"error: no {absent.Item3} accelerator", error);
    }

    [Theory]
    [InlineData("--epochs", "0")]
    [InlineData("--hidden", "400,x")]
    [InlineData("--accelerator", "tpu")]
    [InlineData("--likelihood", "poisson")]
    [InlineData("--precision", "half")]
    public void BadOptionsExitWith2(string option, string value)
    {
        var data = WriteDataSet(train: 10, test: 5);
        var (exitCode, _, error) = Run("train", "--data", data, option, value, "--out", Path.Combine(directory, "run"));
        Assert.Equal(2, exitCode);
        Assert.StartsWith("error:", error);
    }

    /// <summary>An unknown value of an option that names a kind lists the values as they are typed, not the C#
    /// type behind them.</summary>
    [Theory]
    [InlineData("--model", "dlgm", "unknown --model 'dlgm': use vae, iwae, ae, infovae, vib, vcca, ladder")]
    [InlineData("--activation", "swish", "unknown --activation 'swish': use identity, relu, tanh, sigmoid")]
    [InlineData("--binarize", "1", "unknown --binarize '1': use none, dynamic, static")]
    public void UnknownKindListsTheNamesAsTyped(string option, string value, string expected)
    {
        var (exitCode, _, error) = Run("train", option, value, "--out", Path.Combine(directory, "run"));
        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error);
        Assert.DoesNotContain("IlgpuVae", error);
        Assert.False(Directory.Exists(Path.Combine(directory, "run")));
    }

    /// <summary>table1 refuses what it cannot run with one line and exit 2, before any run folder is made.</summary>
    [Theory]
    [InlineData("--presets", "vae-3layer-k1", "--presets: unknown preset vae-3layer-k1; the presets are vae-1layer-k1")]
    [InlineData("--lr-schedule", "constant", "--lr-schedule for table1 is iwae-short or iwae")]
    [InlineData("--k", "0", "--k must be at least 1 (got 0)")]
    public void Table1RefusesBadSettingsInOneLine(string option, string value, string expected)
    {
        var data = WriteDataSet(train: 10, test: 5);
        var (exitCode, _, error) = Run("table1", "--data", data, option, value, "--out", Path.Combine(directory, "table"));
        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(directory, "table")));
    }

    /// <summary>table1 trains a preset, scores it with eval's L_k, and a second call finds the run and its
    /// eval.json done and only rewrites the table.</summary>
    [Fact]
    public void Table1TrainsScoresAndContinuesAFinishedTable()
    {
        var data = WriteDataSet(train: 40, test: 6);
        string table = Path.Combine(directory, "table");
        string[] args = ["table1", "--data", data, "--presets", "iwae-1layer-k5", "--train-limit", "20", "--k", "4", "--accelerator", "cpu", "--out", table];
        var (exitCode, output, error) = Run(args);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.Contains("| iwae-1layer-k5 | 8 |", output);
        Assert.Contains("| 85.54 |", output);
        var markdown = File.ReadAllText(Path.Combine(table, "table1.md"));
        (exitCode, output, error) = Run(args);
        Assert.True(exitCode == 0, $"again: exit {exitCode}: {error}");
        Assert.DoesNotContain("== preset", output);
        Assert.DoesNotContain("L_4 =", output);
        Assert.Equal(markdown, File.ReadAllText(Path.Combine(table, "table1.md")));
    }

    /// <summary>NCCL asked for by name runs even for one process (how a machine with one GPU checks it), so on the
    /// CPU accelerator it is refused in one line, exit 2, before a run folder exists.</summary>
    [Fact]
    public void NcclAskedForOnTheCpuIsRefusedInOneLine()
    {
        var data = WriteDataSet(train: 10, test: 5);
        var run = Path.Combine(directory, "run");
        var (exitCode, _, error) = Run("train", "--data", data, "--accelerator", "cpu", "--gradient-exchange", "nccl", "--out", run);
        Assert.Equal(2, exitCode);
        Assert.Equal("error: --gradient-exchange nccl all-reduces CUDA device memory; this run is on CPU (use host or auto)", error.Trim());
        Assert.False(Directory.Exists(run));
    }

    /// <summary>eval --stream (the test images copied to the device a minibatch at a time) writes the eval.json of the
    /// resident evaluation byte for byte: the test ELBO, L_k over each image's importance samples, active units.</summary>
    [Fact]
    public void StreamedEvaluationWritesTheResidentReport()
    {
        var data = WriteDataSet(train: 30, test: 9);
        var run = Path.Combine(directory, "run");
        var (exitCode, _, error) = Run("train", "--data", data, "--epochs", "1", "--batch-size", "6", "--hidden", "7", "--latent", "3",
            "--accelerator", "cpu", "--out", run);
        Assert.True(exitCode == 0, $"train: exit {exitCode}: {error}");
        (exitCode, var output, error) = Run("eval", run, "--k", "5", "--accelerator", "cpu");
        Assert.True(exitCode == 0, $"eval: exit {exitCode}: {error}");
        Assert.DoesNotContain("streamed", output);
        var resident = File.ReadAllText(Path.Combine(run, "eval.json"));
        (exitCode, output, error) = Run("eval", run, "--k", "5", "--accelerator", "cpu", "--stream");
        Assert.True(exitCode == 0, $"eval --stream: exit {exitCode}: {error}");
        Assert.Contains("data: test images streamed from the host in minibatches of up to 128 (--stream)", output);
        Assert.Equal(resident, File.ReadAllText(Path.Combine(run, "eval.json")));
        (exitCode, _, error) = Run("eval", run, "--device-memory", "-2", "--accelerator", "cpu");
        Assert.Equal(2, exitCode);
        Assert.Contains("--device-memory is MiB of the accelerator's memory to plan for", error);
    }
}
