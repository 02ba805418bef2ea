using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Models.Ladder;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Distributed;
using IlgpuVae.Model.Library;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

/// <summary>How training images become Bernoulli targets: as grey levels (none), drawn afresh every time they
/// are seen (dynamic, the IWAE paper's choice), or drawn once (static).</summary>
public enum BinarizeMode
{
    None,
    Dynamic,
    Static,
}

/// <summary>What trains the weights: the float kernels on the accelerator, or the double-precision reference
/// pipeline on the host with the same draws (slow; to tell a result from float rounding).</summary>
public enum TrainingPrecision
{
    Single,
    Double,
}

public sealed record TrainOptions
{
    /// <summary>The preset the run started from (informational; its settings are already in these options).</summary>
    public string? Preset { get; init; }
    /// <summary>The model to train (its input size, image width and classes are set from the data). Stored as the
    /// run's config.json "model" section, beside these options' "training" section.</summary>
    [JsonIgnore] public VaeConfig Config { get; init; } = new();
    /// <summary>KL warm-up: β rises linearly from 0 over this many epochs (0: none).</summary>
    public int WarmupEpochs { get; init; }
    public double AdamEpsilon { get; init; } = 1e-8;
    public LearningRateScheduleKind LearningRateSchedule { get; init; } = LearningRateScheduleKind.Constant;
    public string Data { get; init; } = "mnist";
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Clip the gradient's L2 norm to this before each step (null: no clipping).</summary>
    public double? MaxGradientNorm { get; init; }
    public ulong Seed { get; init; } = 1;
    public BinarizeMode Binarize { get; init; } = BinarizeMode.None;
    /// <summary>Double: the steps run through <see cref="ReferenceTrainer"/>; the kernels still evaluate,
    /// checkpoint and draw the trained weights, rounded to float.</summary>
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Single;
    /// <summary>The dense kernel variant (null: the accelerator's default).</summary>
    public DenseVariant? Dense { get; init; }
    public AcceleratorChoice Accelerator { get; init; } = AcceleratorChoice.Auto;
    public string? Out { get; init; }
    /// <summary>Use only the first N training / test examples (0: all), for quick runs.</summary>
    public int TrainLimit { get; init; }
    public int TestLimit { get; init; }
    /// <summary>Also checkpoint every N optimiser steps within epochs (0: only at the end of each epoch).</summary>
    public int CheckpointEvery { get; init; }
    /// <summary>Stream minibatches from the host even when the data set would fit on the device.</summary>
    public bool Stream { get; init; }
    /// <summary>Plan for at most this many MiB of the accelerator's memory (0: all of it).</summary>
    public int DeviceMemory { get; init; }
    /// <summary>Under mpirun: how the ranks exchange gradients (auto: NCCL on CUDA where it loads, else MPI on the host).</summary>
    public GradientExchangeKind GradientExchange { get; init; }
    /// <summary>For tests: stop as Ctrl+C does once this many optimiser steps are done.</summary>
    [JsonIgnore] internal long? StopAtStep { get; init; }
    /// <summary>A run folder to continue from its checkpoint (set by train --resume).</summary>
    [JsonIgnore] public string? Resume { get; init; }

    public AdamSettings AdamSettings() => Settings().Adam();

    /// <summary>How the library's <see cref="TrainingRun"/> trains these options' epochs.</summary>
    public TrainingSettings Settings() => new()
    {
        Epochs = Epochs, BatchSize = BatchSize, LearningRate = LearningRate, LearningRateSchedule = LearningRateSchedule,
        AdamEpsilon = AdamEpsilon, MaxGradientNorm = MaxGradientNorm, Seed = Seed, WarmupEpochs = WarmupEpochs,
        DynamicBinarization = Binarize == BinarizeMode.Dynamic,
        GradientExchange = GradientExchange,
    };

    public const string RunConfigFile = "config.json";
    public const string CheckpointFolder = "checkpoint";

    /// <summary>
    /// The options a run was started with, from RUN/config.json, to continue it: the same data, model, batch and
    /// seed; the run folder stays the output folder.
    /// </summary>
    public static TrainOptions ForResume(string runDirectory)
    {
        string path = Path.Combine(runDirectory, RunConfigFile);
        if (!File.Exists(path))
            throw new DataFormatException(path, "file not found: give a run folder written by train (its --out)");
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            var options = document.RootElement.GetProperty("training").Deserialize<TrainOptions>(Checkpoint.JsonOptions)
                          ?? throw new JsonException("no training section");
            // Runs written before the options held the config repeated its settings in "training"; the "model"
            // section has always held all of them.
            var config = document.RootElement.GetProperty("model").Deserialize<VaeConfig>(Checkpoint.JsonOptions)
                         ?? throw new JsonException("no model section");
            return options with { Config = config, Out = runDirectory, Resume = runDirectory };
        }
        catch (Exception exception) when (exception is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new DataFormatException(path, $"not a run configuration written by train ({exception.Message})", inner: exception);
        }
    }
}

/// <summary>
/// The train command: data on the device once, then epochs of queued steps and a test pass each. With several
/// <paramref name="ranks"/> (mpirun or srun), each rank trains its slice of every minibatch (see
/// <see cref="Vae.TrainStep"/>) and rank 0 alone writes the run folder and prints.
/// </summary>
public sealed class Training(TrainOptions options, TextWriter output, CancellationToken interrupt = default, Communicator? ranks = null)
{
    private readonly Communicator ranks = ranks ?? SingleProcess.Instance;

    /// <summary>The run folder being trained in this process, for the line a rank prints when the launcher stops
    /// the job (see Program.Main); null before a run has one.</summary>
    internal static volatile string? ActiveRunFolder;

    /// <summary>Exit code after an interruption (Ctrl+C), as shells report SIGINT: the checkpoint is written.</summary>
    public const int Interrupted = 130;

    public int Run()
    {
        if (options.CheckpointEvery < 0)
            throw new ArgumentException($"--checkpoint-every must be 0 (epoch ends only) or more (got {options.CheckpointEvery})");
        // Epochs, batch size, warm-up and Adam's settings, checked by the library (its messages name the options).
        options.Settings().Validate();
        if (options.WarmupEpochs > 0 && !options.Config.Spec.Has(ModelCapabilities.KlWarmup))
            throw new ArgumentException($"--warmup-epochs ramps the KL weight of --model {ModelCatalog.NamesWith(ModelCapabilities.KlWarmup)}; the other models' KL terms are not warmed up");
        var config = options.Config;
        config.Validate();
        if (ranks.Size > 1)
        {
            if (Vae.DataParallelRefusal(config) is { } refusal)
                throw new SettingException(refusal);
            if (options.Precision == TrainingPrecision.Double)
                throw new SettingException("--precision double trains through the reference pipeline in one process; run it without mpirun or srun");
        }

        var data = DataSets.Load(options.Data, output, ranks);
        var train = options.TrainLimit > 0 ? data.Train.Take(options.TrainLimit) : data.Train;
        var test = options.TestLimit > 0 ? data.Test.Take(options.TestLimit) : data.Test;
        if (options.Binarize == BinarizeMode.Static)
        {
            train = train.BinarizeOnce(options.Seed, part: 0);
            test = test.BinarizeOnce(options.Seed, part: 1);
        }
        config = config with { InputSize = train.Features, ImageWidth = train.Width };
        if (config.Spec.Has(ModelCapabilities.Labels))
        {
            // As many classes as the labels name; a test label beyond them could never be predicted.
            int classes = Math.Max(2, train.Labels.Max() + 1);
            if (test.Labels.Length > 0 && test.Labels.Max() >= classes)
                throw new DataFormatException(options.Data, $"a test label is {test.Labels.Max()} but the training labels go up to {classes - 1}");
            config = config with { Classes = classes };
        }

        // Named by rank 0's clock: the ranks' clocks may tick over between their starts.
        string outDirectory = ranks.Broadcast(options.Out ?? Path.Combine("runs", $"{train.Name}-{DateTime.Now:yyyyMMdd-HHmmss}"));
        string checkpointDirectory = Path.Combine(outDirectory, TrainOptions.CheckpointFolder);
        ActiveRunFolder = outDirectory;
        var resume = options.Resume is null ? null : Checkpoint.Load(checkpointDirectory);
        if (resume is not null && resume.State.Model != config)
            throw new DataFormatException(Path.Combine(checkpointDirectory, Checkpoint.StateFile),
                "the checkpoint's model does not match the run's config.json; the run folder was changed by hand");

        // The model through the library: the memory plan is checked before any kernel is compiled or buffer
        // allocated, so a refusal costs nothing.
        int maxBatch = Math.Min(options.BatchSize, Math.Max(train.Count, test.Count));
        if (options.DeviceMemory < 0)
            throw new SettingException($"--device-memory is MiB of the accelerator's memory to plan for, 0 for all of it (got {options.DeviceMemory})");
        long DataBytes(int? streamRows) => DeviceDataset.DeviceBytes(train.Count, train.Features, streamRows) + DeviceDataset.DeviceBytes(test.Count, test.Features, streamRows);
        using var model = VaeModel.Create(config, options.Settings(), options.Accelerator, maxBatch, options.Dense,
            new DataPlan(DataBytes(null), DataBytes(maxBatch), options.Stream, options.DeviceMemory > 0 ? options.DeviceMemory * (1L << 20) : null), ranks);
        var accelerator = model.Accelerator;
        var vae = model.Vae;
        output.WriteLine($"accelerator: {Compute.Describe(accelerator)} (asked for {options.Accelerator.ToString().ToLowerInvariant()})");
        output.WriteLine($"data: {train.Name}, {train.Count} training and {test.Count} test images of {train.Height}×{train.Width}; " +
                         $"model {config.Spec.Name}{(config.Samples > 1 ? $" k={config.Samples}" : "")} " +
                         $"{config.InputSize}-{string.Join("-", config.Hidden)}-{config.Latent}" +
                         (config.StochasticLayers == 2 ? $"(z1)-{string.Join("-", config.Hidden2)}-{config.Latent2}(z2)" : "") +
                         string.Concat(Enumerable.Range(3, Math.Max(0, config.LadderLayers - 2)).Select(layer =>
                             $"-{string.Join("-", LadderRungs.Hidden(config, layer))}-{LadderRungs.Latent(config, layer)}(z{layer})")) +
                         (config.BatchNorm ? ", batch norm" : "") +
                         $", {config.Activation}, {config.Likelihood}, " +
                         $"binarize {options.Binarize.ToString().ToLowerInvariant()}" +
                         (config.Beta != 1 ? $", β {config.Beta.ToString(CultureInfo.InvariantCulture)}" : "") +
                         config.Spec.Settings(config) +
                         (options.WarmupEpochs > 0 ? $", KL warm-up {options.WarmupEpochs} epochs" : "") +
                         (config.TargetRate is { } rate ? $", target rate {rate.ToString(CultureInfo.InvariantCulture)} nats (D + |σ − R|)" : "") + "; " +
                         $"batch {options.BatchSize}, Adam lr {options.LearningRate.ToString(CultureInfo.InvariantCulture)}" +
                         (options.LearningRateSchedule != LearningRateScheduleKind.Constant ? $" ({options.LearningRateSchedule.ToString().ToLowerInvariant()} schedule)" : "") +
                         $" ε {options.AdamEpsilon.ToString(CultureInfo.InvariantCulture)}, seed {options.Seed}" +
                         (options.Precision == TrainingPrecision.Double ? ", double precision (reference pipeline)" : "") +
                         (options.Dense is { } dense ? $", dense kernels {dense}" : "") +
                         (options.Preset is null ? "" : $", preset {options.Preset}"));
        if (ranks.Size > 1)
            output.WriteLine($"data parallel: {ranks.Description}; each minibatch of {options.BatchSize} split " +
                             string.Join(" + ", Enumerable.Range(0, ranks.Size).Select(rank => BatchSlice.Of(options.BatchSize, rank, ranks.Size).Count)) +
                             $"; gradients by {vae.Exchange?.Description}; rank 0 writes the run folder");
        else if (vae.Exchange is { } exchange)
            output.WriteLine($"gradients by {exchange.Description} (one rank: the sum is a copy)");

        // Written once every check has passed, so a refused run leaves no run folder behind.
        if (ranks.IsRoot)
        {
            Directory.CreateDirectory(outDirectory);
            AtomicFile.WriteText(Path.Combine(outDirectory, TrainOptions.RunConfigFile),
                JsonSerializer.Serialize(new { model = config, training = options with { Out = outDirectory } }, Checkpoint.JsonOptions));
        }
        int? streamRows = model.DataStreamed ? maxBatch : null;
        if (model.DataStreamed)
            output.WriteLine($"data: streamed from the host in minibatches of up to {maxBatch} (" +
                (options.Stream ? "--stream" : $"the data set's {DataBytes(null) >> 20} MiB do not fit beside the model") + ")");
        using var trainData = new DeviceDataset(accelerator, train, streamRows);
        using var testData = new DeviceDataset(accelerator, test, streamRows);

        var metrics = new List<EpochMetrics>();
        string metricsPath = Path.Combine(outDirectory, "metrics.csv");
        int firstEpoch = 1, firstStep = 0;
        if (resume is not null)
        {
            resume.RestoreInto(vae);
            firstEpoch = resume.State.Epoch + 1;
            firstStep = resume.State.StepInEpoch;
            vae.RestoreTrainingSums(LossSums.FromArray(resume.State.TrainingSums, config.Beta));
            if (File.Exists(metricsPath))
                metrics.AddRange(MetricsFile.Read(metricsPath).Where(row => row.Epoch < firstEpoch));
            output.WriteLine($"resuming {outDirectory} {resume.State.Position()}");
            if (firstEpoch > options.Epochs)
                output.WriteLine($"nothing to do: the run has {resume.State.Epoch} epochs and --epochs is {options.Epochs}");
        }
        // The epochs themselves are the library's (order, learning rate, warm-up, steps, test pass); this command
        // adds progress, metrics.csv, checkpoints, pictures and stopping. --precision double: the steps run in
        // double on the host from the Vae's state; the Vae gets the weights back (rounded) whenever its kernels
        // need them: the test pass, checkpoints, pictures.
        var terms = config.Spec.Terms(config);
        var run = new TrainingRun(vae, train, trainData, testData, options.Settings(), options.Precision == TrainingPrecision.Double);
        int stepsPerEpoch = run.StepsPerEpoch;
        // Every rank must read the sums at the same ticks (each read is a collective call), so ranks report as a
        // redirected output does whatever their terminals are.
        var progress = new Progress(output, stepsPerEpoch, "steps", interactive: ranks.Size > 1 ? false : null);
        for (int epoch = firstEpoch; epoch <= options.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            long launchesBefore = vae.LaunchCount, waitsBefore = vae.SynchronizationCount;
            progress.Start($"epoch {epoch}/{options.Epochs}");
            int epochNumber = epoch;
            string? brokenTerm = null;
            bool OnTick(int steps, LossSums sums)
            {
                // The running sums come back at every progress tick anyway: a NaN or infinity in them stops the
                // epoch within a tick of where it appeared, without a per-step wait on the device.
                if (!double.IsFinite(sums.Reconstruction))
                    brokenTerm = "reconstruction";
                else if (!double.IsFinite(sums.Kl))
                    brokenTerm = "KL";
                else
                    progress.Report(steps, string.Create(CultureInfo.InvariantCulture, $"loss {sums.MeanLoss:F2}"));
                return brokenTerm is null;
            }
            bool AfterStep(int stepsDone)
            {
                // The ranks stop together: one rank's Ctrl+C (or SIGTERM) stops them all at this step.
                bool stop = ranks.Any(interrupt.IsCancellationRequested || run.StepsTaken == options.StopAtStep);
                if (stepsDone < stepsPerEpoch && (stop || (options.CheckpointEvery > 0 && run.StepsTaken % options.CheckpointEvery == 0)))
                {
                    run.Synchronize();
                    var partialSums = vae.ReadTrainingSums(reset: false);
                    if (ranks.IsRoot)
                        Checkpoint.Save(checkpointDirectory, vae, epochNumber - 1, stepsDone, partialSums);
                }
                return !stop || stepsDone == stepsPerEpoch;
            }
            var finished = run.TrainEpoch(epoch, epoch == firstEpoch ? firstStep : 0, progress.Interval, OnTick, AfterStep);
            if (brokenTerm is not null)
            {
                progress.End();
                return Diverged(brokenTerm, epoch, vae.Step);
            }
            if (finished is not { } trainSums)
            {
                progress.End();
                output.WriteLine($"interrupted in epoch {epoch} after step {vae.Step}: checkpoint written to {checkpointDirectory}; " +
                                 $"continue with: train --resume {outDirectory}");
                return Interrupted;
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;
            double launchesPerStep = (vae.LaunchCount - launchesBefore) / (double)stepsPerEpoch;
            long waits = vae.SynchronizationCount - waitsBefore;

            var testSums = run.Test(epoch)!.Value;
            double seconds = clock.Elapsed.TotalSeconds;
            var row = new EpochMetrics
            {
                Epoch = epoch,
                TrainLoss = trainSums.MeanLoss,
                TestLoss = testSums.MeanLoss,
                TestReconstruction = testSums.MeanReconstruction,
                TestKl = testSums.MeanKl,
                TrainReconstruction = trainSums.MeanReconstruction,
                TrainKl = trainSums.MeanKl,
                Seconds = seconds,
                SamplesPerSecond = train.Count / trainSeconds,
            };
            metrics.Add(row);
            if (ranks.IsRoot)
                MetricsFile.Write(metricsPath, metrics, terms);
            progress.End();
            string error = config.Spec.Has(ModelCapabilities.Labels)
                ? string.Create(CultureInfo.InvariantCulture, $"; test error {100 * testSums.ErrorRate:F2}% (one z per image)")
                : "";
            string engine = run.Reference is null
                ? string.Create(CultureInfo.InvariantCulture, $"{launchesPerStep:F0} launches/step, {waits} host waits")
                : "trained in double on the host";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"epoch {epoch}/{options.Epochs}: train loss {row.TrainLoss:F2}, test loss {row.TestLoss:F2} " +
                $"({terms.Loss}: {terms.Distortion} {row.TestReconstruction:F2}, {terms.Rate} {row.TestKl:F2}), {seconds:F1} s, " +
                $"{row.SamplesPerSecond:F0} samples/s, {engine}") + error);
            if (!double.IsFinite(row.TrainLoss) || !double.IsFinite(row.TestLoss))
                return Diverged(!double.IsFinite(row.TrainReconstruction) || !double.IsFinite(row.TestReconstruction) ? "reconstruction" : "KL",
                    epoch, vae.Step);
            if (ranks.IsRoot)
            {
                Checkpoint.Save(checkpointDirectory, vae, epoch);
                WritePictures(outDirectory, vae, accelerator, test, metrics);
            }
            if (ranks.Any(interrupt.IsCancellationRequested || vae.Step == options.StopAtStep) && epoch < options.Epochs)
            {
                output.WriteLine($"interrupted after epoch {epoch}: checkpoint written; continue with: train --resume {outDirectory}");
                return Interrupted;
            }
        }
        output.WriteLine($"metrics: {metricsPath}; checkpoint: {checkpointDirectory}");
        return 0;
    }

    /// <summary>Draws one picture; one that cannot be drawn is reported and skipped, never stopping a run.</summary>
    private void TryDraw(string name, Action draw)
    {
        try
        {
            draw();
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            output.WriteLine($"warning: could not write {name}: {exception.GetType().Name}: {exception.Message}");
        }
    }

    /// <summary>Stops a run whose loss is NaN or infinite. The checkpoint is not replaced: it holds the last
    /// point where the loss was finite.</summary>
    private int Diverged(string term, int epoch, long step)
    {
        output.WriteLine($"error: the {term} term of the loss is not finite in epoch {epoch} (by step {step}); " +
                         "stopping with the last checkpoint kept (try a smaller --lr)");
        return 3;
    }

    /// <summary>
    /// The run folder's pictures after each epoch: loss.png (the curves of metrics.csv), samples.png (64 prior
    /// samples) and reconstructions.png (32 test images beside their reconstructions); for the VLAE layers.png (each
    /// latent layer varied with the others held); for a learned prior prior.png (its components decoded, beside the
    /// VampPrior's pseudo-inputs); for the DEF components.png (each layer's units as images); for CorEx information.png (each dimension's KL against r(z) over the test set);
    /// for VCCA also
    /// cross-view.png (each test image's right half predicted from its left). A picture that cannot be
    /// drawn (a machine without the native graphics library, say) is reported and skipped: it never stops a run.
    /// </summary>
    private void WritePictures(string outDirectory, Vae vae, Accelerator accelerator, ImageDataset test, List<EpochMetrics> metrics)
    {
        TryDraw("loss.png", () => Plots.WriteLossCurves(Path.Combine(outDirectory, "loss.png"), metrics, Path.GetFileName(Path.GetFullPath(outDirectory)), vae.Config.Spec.Terms(vae.Config)));
        if (!vae.Config.Spec.Has(ModelCapabilities.Images))
            return; // its decoder predicts labels: there are no images to draw
        TryDraw("samples.png", () => Pictures.WriteSamples(vae, Math.Min(64, vae.MaxBatch), options.Seed, Path.Combine(outDirectory, "samples.png")));
        TryDraw("reconstructions.png", () => Pictures.WriteReconstructions(vae, accelerator, test, Math.Min(32, Math.Min(test.Count, vae.MaxBatch)), Path.Combine(outDirectory, "reconstructions.png")));
        if (vae.Config.Spec.LatentGroups(vae.Config).Count > 1)
            TryDraw("layers.png", () => Pictures.WriteLayerTraversals(vae, 7, options.Seed, Path.Combine(outDirectory, "layers.png")));
        if (vae.Config.ModelPrior == PriorKind.Factorized)
            TryDraw("information.png", () =>
            {
                using var data = new DeviceDataset(accelerator, test);
                Evaluate.WriteInformation(vae, Evaluate.EncodeAll(vae, data, test.Count), test.Count, Path.Combine(outDirectory, "information.png"));
            });
        if (vae.Config.ModelPrior is PriorKind.Mixture or PriorKind.Vamp)
            TryDraw("prior.png", () => Pictures.WritePriorComponents(vae, Path.Combine(outDirectory, "prior.png")));
        if (vae.LayerComponents() is not null)
            TryDraw("components.png", () => Pictures.WriteLayerComponents(vae, accelerator, test, Path.Combine(outDirectory, "components.png")));
        if (vae.Config.PredictsSecondView)
            TryDraw("cross-view.png", () => Pictures.WriteCrossView(vae, accelerator, test, Math.Min(32, Math.Min(test.Count, vae.MaxBatch)), Path.Combine(outDirectory, "cross-view.png")));
    }
}
