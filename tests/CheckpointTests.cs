using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using IlgpuVae.Host;
using IlgpuVae.Model;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class CheckpointTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("ilgpuvae-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>Every model's checkpoint tensors hold each parameter exactly once (weights, biases and batch-norm
    /// state; not the padding between layers), with its settings that change the stats layers' shapes: the rank-one
    /// covariance (where only posteriors' stats split into three), flows on either base (and none where a model has steps
    /// by default), two layers, deeper ladders, private latents, learned priors and marginals, an inverse-flow r.</summary>
    [Fact]
    public void CheckpointTensorsHoldEveryParameterOnce()
    {
        foreach (var spec in IlgpuVae.Model.Models.ModelCatalog.All)
        {
            var small = IlgpuVae.Model.Verification.ModelCheck.SmallConfig(spec);
            var variants = new List<VaeConfig> { small };
            foreach (var covariance in new[] { CovarianceKind.Diagonal, CovarianceKind.RankOne })
            {
                var config = small with { Covariance = covariance };
                variants.AddRange([config, config with { FlowLength = 2 }, config with { FlowLength = 0 }, config with { StochasticLayers = 2 }, config with { LadderLayers = 3 },
                    config with { PrivateLatent = 2 }, config with { Prior = PriorKind.Mixture, PriorComponents = 3 }, config with { Prior = PriorKind.Vamp, PriorComponents = 2 },
                    config with { FlowLength = 1, AuxiliaryFlowLength = 2 }, config with { Anchors = 1 }]);
            }
            foreach (var config in variants)
            {
                try
                {
                    config.Validate();
                }
                catch (IlgpuVae.GpuKernels.SettingException)
                {
                    continue; // a combination the model does not take
                }
                var layout = new IlgpuVae.Model.ParameterLayout(config);
                // Each parameter holds its own index, exactly representable as a float at these sizes.
                var indices = Enumerable.Range(0, layout.Count).Select(i => (float)i).ToArray();
                var saved = Checkpoint.ModelTensors(layout, config, indices).SelectMany(tensor => tensor.Data).Select(value => (int)value).ToList();
                var expected = layout.Layers.SelectMany(layer => Enumerable.Range(layer.WeightOffset, layer.End - layer.WeightOffset)).ToList();
                Assert.True(saved.Count == saved.Distinct().Count(), $"{spec.Name} {config.Covariance} flow {config.FlowLength}: a parameter saved twice");
                Assert.True(expected.Order().SequenceEqual(saved.Order()),
                    $"{spec.Name} {config.Covariance} flow {config.FlowLength} layers {config.StochasticLayers}: {expected.Except(saved).Count()} parameters not saved");
            }
        }
    }

    [Fact]
    public void SafeTensorsRoundTripsAndFollowsTheLayoutOfTheSpecification()
    {
        var path = Path.Combine(directory, "t.safetensors");
        var tensors = new[]
        {
            new Tensor("a.weight", [2, 3], [1, 2, 3, 4, 5, 6]),
            new Tensor("a.bias", [2], [-0.5f, float.Epsilon]),
        };
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["note"] = "x" });

        // Read the bytes as the specification lays them out, without our reader: u64 header length, JSON, data.
        var bytes = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength));
        var bias = header.RootElement.GetProperty("a.bias");
        Assert.Equal("F32", bias.GetProperty("dtype").GetString());
        var offsets = bias.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt32()).ToArray();
        Assert.Equal([24, 32], offsets);
        Assert.Equal(-0.5f, BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + (int)headerLength + 24)));
        Assert.Equal("x", header.RootElement.GetProperty("__metadata__").GetProperty("note").GetString());

        var (read, metadata) = SafeTensors.Read(path);
        Assert.Equal("x", metadata["note"]);
        Assert.Equal([2, 3], read["a.weight"].Shape);
        Assert.Equal(tensors[0].Data, read["a.weight"].Data);
        Assert.Equal(tensors[1].Data, read["a.bias"].Data);
    }

    public static TheoryData<string, string> BadFiles => new()
    {
        { "empty", "too short" },
        { "huge header", "larger than the file" },
        { "not json", "not valid JSON" },
        { "f16", "only F32" },
        { "short data", "needs 8 bytes" },
        { "gap", "gap or overlap" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void RejectsBadSafeTensorsFilesNamingTheProblem(string name, string expected)
    {
        static byte[] File(string json, int dataBytes)
        {
            var header = Encoding.UTF8.GetBytes(json);
            var bytes = new byte[8 + header.Length + dataBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
            header.CopyTo(bytes, 8);
            return bytes;
        }
        byte[] content = name switch
        {
            "empty" => [],
            "huge header" => [255, 255, 255, 255, 0, 0, 0, 0, 1],
            "not json" => File("{\"a\": [", 0),
            "f16" => File("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4),
            "short data" => File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4),
            "gap" => File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
            _ => throw new ArgumentException(name),
        };
        var path = Path.Combine(directory, name.Replace(' ', '-'));
        System.IO.File.WriteAllBytes(path, content);
        var error = Assert.Throws<DataFormatException>(() => SafeTensors.Read(path));
        Assert.StartsWith(path + ":", error.Message);
        Assert.Contains(expected, error.Message);
    }

    private string WriteDataSet() => TestData.WriteMnistFormat(directory, train: 40, test: 9, height: 4, width: 4, seed: 3);

    private static void Train(params string[] args)
    {
        var error = new StringWriter();
        int exitCode = Program.Run(args, new StringWriter(), error, TestContext.Current.CancellationToken);
        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
    }

    [Fact]
    public void ResumedRunEndsBitForBitWhereAnUninterruptedRunEnds()
    {
        var data = WriteDataSet();
        string[] common = ["--data", data, "--batch-size", "8", "--hidden", "8", "--latent", "4", "--accelerator", "cpu", "--binarize", "dynamic"];
        var straight = Path.Combine(directory, "straight");
        var resumed = Path.Combine(directory, "resumed");
        Train(["train", .. common, "--epochs", "3", "--out", straight]);
        Train(["train", .. common, "--epochs", "1", "--out", resumed]);
        Train("train", "--resume", resumed, "--epochs", "3");

        var a = Checkpoint.Load(Path.Combine(straight, "checkpoint"));
        var b = Checkpoint.Load(Path.Combine(resumed, "checkpoint"));
        Assert.Equal(3, b.State.Epoch);
        Assert.Equal(a.State.Step, b.State.Step);
        Assert.Equal(a.Parameters, b.Parameters);
        Assert.Equal(a.FirstMoment, b.FirstMoment);
        Assert.Equal(a.SecondMoment, b.SecondMoment);
        var straightMetrics = MetricsFile.Read(Path.Combine(straight, "metrics.csv"));
        var resumedMetrics = MetricsFile.Read(Path.Combine(resumed, "metrics.csv"));
        Assert.Equal(straightMetrics.Select(row => (row.Epoch, row.TrainLoss, row.TestLoss)),
            resumedMetrics.Select(row => (row.Epoch, row.TrainLoss, row.TestLoss)));
    }

    [Theory]
    [InlineData(7)]   // mid-epoch: 40 examples at batch 8 are 5 steps an epoch
    [InlineData(10)]  // exactly at the end of epoch 2
    public void InterruptedRunResumesBitForBit(long stopAtStep)
    {
        var data = WriteDataSet();
        var options = new TrainOptions
        {
            Data = data, BatchSize = 8, Config = new() { Hidden = [8], Latent = 4 }, Epochs = 3, Binarize = BinarizeMode.Dynamic,
            Accelerator = GpuKernels.AcceleratorChoice.Cpu,
        };
        var straight = Path.Combine(directory, "straight");
        var interrupted = Path.Combine(directory, "interrupted");
        Assert.Equal(0, new Training(options with { Out = straight }, new StringWriter()).Run());
        var log = new StringWriter();
        Assert.Equal(Training.Interrupted, new Training(options with { Out = interrupted, StopAtStep = stopAtStep }, log).Run());
        Assert.Contains("train --resume", log.ToString());
        var stopped = Checkpoint.Load(Path.Combine(interrupted, "checkpoint"));
        Assert.Equal(stopAtStep, stopped.State.Step);
        Assert.Equal((int)(stopAtStep % 5), stopped.State.StepInEpoch);
        Train("train", "--resume", interrupted);

        var a = Checkpoint.Load(Path.Combine(straight, "checkpoint"));
        var b = Checkpoint.Load(Path.Combine(interrupted, "checkpoint"));
        Assert.Equal(a.State.Step, b.State.Step);
        Assert.Equal(a.Parameters, b.Parameters);
        Assert.Equal(a.FirstMoment, b.FirstMoment);
        Assert.Equal(a.SecondMoment, b.SecondMoment);
        Assert.Equal(MetricsFile.Read(Path.Combine(straight, "metrics.csv")).Select(row => (row.Epoch, row.TrainLoss, row.TestLoss)),
            MetricsFile.Read(Path.Combine(interrupted, "metrics.csv")).Select(row => (row.Epoch, row.TrainLoss, row.TestLoss)));
    }

    [Fact]
    public void DoublePrecisionRunTracksTheFloatRunAndResumesFromItsCheckpoints()
    {
        // train --precision double through the whole command: the same epochs, order and binarization as the float
        // kernels, progress ticks, a mid-epoch interruption and a resume from the (float) checkpoint.
        var data = WriteDataSet();
        var options = new TrainOptions
        {
            Data = data, BatchSize = 8, Config = new() { Hidden = [8], Latent = 4 }, Epochs = 3, Binarize = BinarizeMode.Dynamic,
            WarmupEpochs = 1, Accelerator = GpuKernels.AcceleratorChoice.Cpu,
        };
        var single = Path.Combine(directory, "single");
        var straight = Path.Combine(directory, "double");
        var interrupted = Path.Combine(directory, "double-interrupted");
        Assert.Equal(0, new Training(options with { Out = single }, new StringWriter()).Run());
        var log = new StringWriter();
        var doubleOptions = options with { Precision = TrainingPrecision.Double };
        Assert.Equal(0, new Training(doubleOptions with { Out = straight }, log).Run());
        Assert.Contains("double precision (reference pipeline)", log.ToString());
        Assert.Contains("trained in double on the host", log.ToString());
        Assert.Equal(Training.Interrupted, new Training(doubleOptions with { Out = interrupted, StopAtStep = 7 }, new StringWriter()).Run());
        Assert.Equal(7, Checkpoint.Load(Path.Combine(interrupted, "checkpoint")).State.Step);
        Train("train", "--resume", interrupted);

        // 15 steps of a 4×4 model: float and double stay within a small fraction of Adam's lr = 1e-3 per step.
        var singleRun = Checkpoint.Load(Path.Combine(single, "checkpoint"));
        var doubleRun = Checkpoint.Load(Path.Combine(straight, "checkpoint"));
        Assert.Equal(singleRun.State.Step, doubleRun.State.Step);
        Assert.Equal(15, doubleRun.State.Step);
        Assert.All(singleRun.Parameters.Zip(doubleRun.Parameters), pair => Assert.Equal(pair.First, pair.Second, 1e-4f));
        var singleMetrics = MetricsFile.Read(Path.Combine(single, "metrics.csv"));
        var doubleMetrics = MetricsFile.Read(Path.Combine(straight, "metrics.csv"));
        Assert.All(singleMetrics.Zip(doubleMetrics), pair =>
        {
            Assert.Equal(pair.First.TrainLoss, pair.Second.TrainLoss, 1e-4 * pair.First.TrainLoss);
            Assert.Equal(pair.First.TestLoss, pair.Second.TestLoss, 1e-4 * pair.First.TestLoss);
        });
        // A resume continues in double from the checkpoint's float values, so it may differ from the straight
        // double run in the last bits of what was rounded at step 7, no more.
        var resumed = Checkpoint.Load(Path.Combine(interrupted, "checkpoint"));
        Assert.Equal(15, resumed.State.Step);
        Assert.All(doubleRun.Parameters.Zip(resumed.Parameters), pair => Assert.Equal(pair.First, pair.Second, 1e-5f));
        Assert.Equal(doubleMetrics.Select(row => row.Epoch), MetricsFile.Read(Path.Combine(interrupted, "metrics.csv")).Select(row => row.Epoch));
    }

    [Fact]
    public void KilledProcessResumesBitForBit()
    {
        // A real SIGKILL of a training process that checkpoints every step, at whatever moment it lands (even
        // inside a save), then a resume: the result must equal an uninterrupted run exactly.
        var data = WriteDataSet();
        string host = Path.Combine(AppContext.BaseDirectory, "ilgpu-vae.dll");
        string[] settings = ["--data", data, "--batch-size", "8", "--hidden", "8", "--latent", "4", "--accelerator", "cpu",
            "--binarize", "dynamic", "--epochs", "30", "--checkpoint-every", "1"];
        var straight = Path.Combine(directory, "straight");
        var killed = Path.Combine(directory, "killed");
        Train(["train", .. settings, "--out", straight]);

        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { host, "train" }.Concat(settings).Concat(["--out", killed]))
            start.ArgumentList.Add(argument);
        using var child = System.Diagnostics.Process.Start(start)!;
        child.OutputDataReceived += (_, _) => { };
        child.ErrorDataReceived += (_, _) => { };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        var statePath = Path.Combine(killed, "checkpoint", Checkpoint.StateFile);
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (ReadIfPresent(statePath)?.Contains("\"Epoch\": 3") != true)
        {
            Assert.False(child.HasExited, "the child finished before it could be killed");
            Assert.True(DateTime.UtcNow < deadline, "the child made no progress");
            Thread.Sleep(20);
        }
        child.Kill(entireProcessTree: true);
        child.WaitForExit();

        Train("train", "--resume", killed);
        var a = Checkpoint.Load(Path.Combine(straight, "checkpoint"));
        var b = Checkpoint.Load(Path.Combine(killed, "checkpoint"));
        Assert.Equal(30, b.State.Epoch);
        Assert.Equal(a.Parameters, b.Parameters);
        Assert.Equal(a.FirstMoment, b.FirstMoment);
        Assert.Equal(a.SecondMoment, b.SecondMoment);
    }

    /// <summary>
    /// The file's text, or null while it is absent. A save swaps whole checkpoint folders by renaming them, so the
    /// file can vanish between an existence check and the read; the poll must treat that as "not yet".
    /// </summary>
    private static string? ReadIfPresent(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception error) when (error is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    [Fact]
    public void CheckpointNamesMatchThePyTorchExampleLayers()
    {
        var data = WriteDataSet();
        var run = Path.Combine(directory, "run");
        Train("train", "--data", data, "--epochs", "1", "--batch-size", "8", "--hidden", "8", "--latent", "4", "--accelerator", "cpu", "--out", run);
        var (tensors, _) = SafeTensors.Read(Path.Combine(run, "checkpoint", Checkpoint.ModelFile));
        // fc1, fc21, fc22, fc3, fc4 of the PyTorch example, under our names, shaped [out, in] as nn.Linear.
        Assert.Equal([8, 16], tensors["encoder.0.weight"].Shape);
        Assert.Equal([4, 8], tensors["encoder.mu.weight"].Shape);
        Assert.Equal([4, 8], tensors["encoder.logvar.weight"].Shape);
        Assert.Equal([8, 4], tensors["decoder.0.weight"].Shape);
        Assert.Equal([16, 8], tensors["decoder.out.weight"].Shape);
        Assert.Equal(10, tensors.Count);
    }

    [Fact]
    public void AnIndependentReaderSeesTheSameTensors()
    {
        // scripts/load_in_pytorch.py carries a reader written from the format's specification in Python's
        // standard library (the one it falls back to without Hugging Face's package); it must see our names,
        // shapes and values.
        string? repository = DataSets.FindRepositoryRoot();
        Assert.NotNull(repository);
        string? python = new[] { "python3", "/usr/bin/python3" }.FirstOrDefault(candidate =>
        {
            try
            {
                using var probe = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(candidate, "--version") { RedirectStandardOutput = true });
                probe!.WaitForExit();
                return probe.ExitCode == 0;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return false;
            }
        });
        if (python is null)
            Assert.Skip("no python3 on this machine to run the independent reader");

        var path = Path.Combine(directory, "model.safetensors");
        var random = new Random(4);
        var tensors = new[]
        {
            new Tensor("encoder.0.weight", [3, 5], Enumerable.Range(0, 15).Select(_ => (float)random.NextDouble()).ToArray()),
            new Tensor("encoder.0.bias", [3], [1.5f, -2.25f, 1e-30f]),
        };
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["format"] = "ilgpu-vae" });
        string script = "import sys, json; sys.path.insert(0, sys.argv[1]); from load_in_pytorch import read_safetensors; " +
                        "t = read_safetensors(sys.argv[2]); print(json.dumps({k: [s, [repr(v) for v in d]] for k, (s, d) in t.items()}))";
        var start = new System.Diagnostics.ProcessStartInfo(python!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-c", script, Path.Combine(repository!, "scripts"), path })
            start.ArgumentList.Add(argument);
        using var process = System.Diagnostics.Process.Start(start)!;
        string stdout = process.StandardOutput.ReadToEnd();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, stderr);
        using var read = JsonDocument.Parse(stdout);
        foreach (var tensor in tensors)
        {
            var entry = read.RootElement.GetProperty(tensor.Name);
            Assert.Equal(tensor.Shape, entry[0].EnumerateArray().Select(size => size.GetInt32()));
            // Python reads the same 32-bit values and prints them as doubles; they must round-trip exactly.
            Assert.Equal(tensor.Data, entry[1].EnumerateArray().Select(value => (float)double.Parse(value.GetString()!, System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    [Fact]
    public void AModelWithoutAdamStateEvaluatesAlikeButDoesNotResume()
    {
        var data = WriteDataSet();
        var full = Path.Combine(directory, "full");
        Train("train", "--data", data, "--batch-size", "8", "--hidden", "8", "--latent", "4", "--accelerator", "cpu", "--epochs", "1", "--out", full);
        var modelOnly = Path.Combine(directory, "model-only");
        Directory.CreateDirectory(Path.Combine(modelOnly, "checkpoint"));
        foreach (var file in new[] { "config.json", Path.Combine("checkpoint", Checkpoint.StateFile), Path.Combine("checkpoint", Checkpoint.ModelFile) })
            File.Copy(Path.Combine(full, file), Path.Combine(modelOnly, file));

        foreach (var run in new[] { full, modelOnly })
            Train("eval", run, "--k", "5", "--accelerator", "cpu");
        // The moments never reach an evaluation, so both folders give the same numbers to the last digit.
        Assert.Equal(File.ReadAllText(Path.Combine(full, "eval.json")), File.ReadAllText(Path.Combine(modelOnly, "eval.json")));

        var error = new StringWriter();
        int exitCode = Program.Run(["train", "--resume", modelOnly, "--epochs", "2"], new StringWriter(), error, TestContext.Current.CancellationToken);
        Assert.Equal(2, exitCode);
        Assert.Contains(Checkpoint.OptimizerFile + ": file not found", error.ToString());
    }

    [Fact]
    public void ResumeWithoutACheckpointIsAOneLineError()
    {
        var error = new StringWriter();
        int exitCode = Program.Run(["train", "--resume", Path.Combine(directory, "nothing")], new StringWriter(), error, TestContext.Current.CancellationToken);
        Assert.Equal(2, exitCode);
        Assert.Contains("config.json: file not found", error.ToString());
    }
}
