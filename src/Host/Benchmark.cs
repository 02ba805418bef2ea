using System.Diagnostics;
using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration.Attributes;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

public sealed record BenchOptions
{
    /// <summary>Under mpirun: how the ranks sum their gradients (as train's --gradient-exchange).</summary>
    public Model.Distributed.GradientExchangeKind GradientExchange { get; init; }

    public int Steps { get; init; } = 469;
    public int WarmupSteps { get; init; } = 10;
    /// <summary>Examples per step; null: the preset's batch, or <see cref="DefaultBatchSize"/> without one.</summary>
    public int? BatchSize { get; init; }
    public const int DefaultBatchSize = 128;
    public int[] Hidden { get; init; } = [400];
    /// <summary>Latent dimensions; null: the model's own default (<see cref="ModelSpec.DefaultLatent"/>), else <see cref="DefaultLatent"/>.</summary>
    public int? Latent { get; init; }
    public const int DefaultLatent = 20;
    /// <summary>A model of the catalog by name, with its own defaults (null: the VAE).</summary>
    public string? Model { get; init; }
    /// <summary>The model's own settings given for a fresh model (the catalog's options: --covariance, --latent-layers, ...).</summary>
    public Func<ModelSpec, VaeConfig, VaeConfig>? Configure { get; init; }
    public AcceleratorChoice Accelerator { get; init; } = AcceleratorChoice.Auto;
    public string? Csv { get; init; }
    /// <summary>The dense kernel variant for the training steps (null: the accelerator's default).</summary>
    public DenseVariant? Dense { get; init; }
    /// <summary>Stream the minibatches from the host, as train --stream does.</summary>
    public bool Stream { get; init; }
    /// <summary>Also time the dense kernels alone at the shapes of <see cref="Benchmark.DenseShapes"/>.</summary>
    public bool Kernels { get; init; }
    /// <summary>random (MNIST-shaped random bytes, no data set needed), or a data set as for train; null: random,
    /// or with <see cref="From"/> the run's own data set.</summary>
    public string? Data { get; init; }
    /// <summary>Time a Table 1 preset's model (with its batch, Adam ε and dynamic binarization) instead of the
    /// default model; null: the default model with <see cref="Hidden"/> and <see cref="Latent"/>.</summary>
    public string? Preset { get; init; }
    /// <summary>After the timed steps, this many more with every launch timed alone (0: none).</summary>
    public int ProfileSteps { get; init; }
    /// <summary>A run folder written by train: time its model from its checkpoint (weights, Adam state, step,
    /// batch, binarization and the epoch's learning rate) instead of a fresh one. A trained model can cost more
    /// per step than a fresh one (see "Subnormal gradients" in docs/PERFORMANCE.md). Null: a fresh model.</summary>
    public string? From { get; init; }
}

/// <summary>One row of the bench CSV.</summary>
public sealed record BenchResult
{
    [Name("accelerator")] public string Accelerator { get; init; } = "";
    [Name("model")] public string Model { get; init; } = "";
    [Name("dense_kernels")] public string DenseKernels { get; init; } = "";
    [Name("batch")] public int Batch { get; init; }
    [Name("steps")] public int Steps { get; init; }
    [Name("seconds")] public double Seconds { get; init; }
    [Name("samples_per_second")] public double SamplesPerSecond { get; init; }
    [Name("ms_per_epoch")] public double MillisecondsPerEpoch { get; init; }
    [Name("launches_per_step")] public double LaunchesPerStep { get; init; }
    /// <summary>Host waits during the timed steps (progress reads every quarter of a 60 000-example epoch, and
    /// the final read); with the default 469 steps at batch 128 that is exactly one epoch.</summary>
    [Name("host_waits")] public long HostWaits { get; init; }
}

/// <summary>
/// The bench command: trains the model for a set number of steps on MNIST-shaped random bytes (speed does not
/// depend on the pixel values, and no data set is needed), exactly as an epoch of train runs them, and reports
/// throughput. An "epoch" here is 60 000 examples, MNIST's training set.
/// </summary>
/// <remarks>Under mpirun every rank takes its slice of each step's batch, as train does; the figures are the job's
/// (samples of the global batch per second, timed by rank 0).</remarks>
public sealed class Benchmark(BenchOptions options, TextWriter output, Model.Distributed.Communicator? ranks = null)
{
    private readonly Model.Distributed.Communicator ranks = ranks ?? Model.Distributed.SingleProcess.Instance;

    public const int ExamplesPerEpoch = 60_000;

    public BenchResult Run()
    {
        if (new[] { options.From, options.Preset, options.Model }.Count(choice => choice is not null) > 1)
            throw new ArgumentException("give one of --from (a trained run's model), --preset (a fresh preset model) or --model (a fresh model of the catalog)");
        var model = options.From is { } run ? TrainOptions.ForResume(run)
            : options.Preset is { } preset ? Presets.Apply(preset, new TrainOptions()) : null;
        var checkpoint = options.From is null ? null : Checkpoint.Load(Path.Combine(options.From, TrainOptions.CheckpointFolder));
        int batchSize = options.BatchSize ?? model?.BatchSize ?? BenchOptions.DefaultBatchSize;
        if (options.Steps < 1 || batchSize < 1 || options.WarmupSteps < 0 || options.ProfileSteps < 0)
            throw new ArgumentException("--steps and --batch-size must be at least 1, --warmup and --profile at least 0");
        var spec = options.Model is null ? new VaeConfig().Spec
            : ModelCatalog.Find(options.Model) ?? throw new ArgumentException($"unknown --model '{options.Model}': use {string.Join(", ", ModelCatalog.Names)}");
        var config = checkpoint?.State.Model ?? model?.Config
            ?? (options.Configure ?? ((_, config) => config))(spec,
                spec.WithDefaults(new VaeConfig { Hidden = options.Hidden, Latent = options.Latent ?? spec.DefaultLatent ?? BenchOptions.DefaultLatent }));
        config.Validate();
        bool binarize = model?.Binarize == BinarizeMode.Dynamic;

        using var context = Compute.CreateContext();
        using var accelerator = Compute.CreateAccelerator(context, options.Accelerator, ranks.LocalRank);
        using var kernels = new KernelSet(accelerator);
        output.WriteLine($"accelerator: {Compute.Describe(accelerator)}");
        if (options.Kernels)
            TimeDenseKernels(kernels);
        kernels.UseDenseKernels(options.Dense);

        int count = options.Steps * batchSize;
        using var data = new DeviceDataset(accelerator, BenchData(count, config.InputSize, model), options.Stream ? batchSize : null);
        using var vae = checkpoint is null
            ? new Vae(kernels, config, batchSize, seed: 1, model?.AdamSettings(), ranks)
            : new Vae(kernels, config, batchSize, checkpoint.State.Seed, checkpoint.State.Adam, ranks);
        if ((ranks.Size > 1 && options.GradientExchange != Model.Distributed.GradientExchangeKind.Host)
            || options.GradientExchange == Model.Distributed.GradientExchangeKind.Nccl)
            vae.UseGradientExchange(buffers => Model.Distributed.GradientExchange.Create(buffers, options.GradientExchange));
        if (vae.Exchange is { } exchange)
            output.WriteLine($"{(ranks.Size > 1 ? $"data parallel: {ranks.Description}; " : "")}gradients by {exchange.Description}");
        if (checkpoint is not null)
        {
            checkpoint.RestoreInto(vae);
            // The rate of the epoch the run would train next, as train --resume would set it.
            vae.LearningRate = LearningRateSchedule.Rate(model!.LearningRateSchedule, model.LearningRate, checkpoint.State.Epoch + 1);
            output.WriteLine($"model: {options.From} {checkpoint.State.Position()}");
        }

        // Warm-up: compiles every kernel and touches every buffer before the clock starts.
        for (int step = 0; step < options.WarmupSteps; step++)
            vae.TrainStep(data, step % options.Steps * batchSize, batchSize, binarize);
        vae.ReadTrainingSums(reset: true);

        double stepsPerEpoch = Epoch.StepsFor(ExamplesPerEpoch, batchSize);
        long launches = vae.LaunchCount, waits = vae.SynchronizationCount;
        var clock = Stopwatch.StartNew();
        // The same loop as train, with its quarter-epoch progress reads, so host waits are counted as in training.
        Epoch.Train(vae, data, batchSize, binarize, tickInterval: Math.Max(1, (int)stepsPerEpoch / 4),
            onTick: (_, _) => { });
        double seconds = clock.Elapsed.TotalSeconds;
        string modelName = (options.From ?? options.Preset ?? $"{(options.Model is null ? "" : spec.Name + " ")}{config.InputSize}-{string.Join("-", config.Hidden)}-{config.Latent}{spec.Settings(config)}")
            + (options.Stream ? ", data streamed" : "");

        var result = new BenchResult
        {
            Accelerator = Compute.Describe(accelerator),
            Model = modelName,
            DenseKernels = kernels.DenseKernels.ToString(),
            Batch = batchSize,
            Steps = options.Steps,
            Seconds = seconds,
            SamplesPerSecond = count / seconds,
            MillisecondsPerEpoch = 1000 * seconds / options.Steps * stepsPerEpoch,
            LaunchesPerStep = (vae.LaunchCount - launches) / (double)options.Steps,
            HostWaits = vae.SynchronizationCount - waits,
        };
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model {result.Model}, {result.DenseKernels} dense kernels, batch {result.Batch}, {result.Steps} steps in {result.Seconds:F2} s: " +
            $"{result.SamplesPerSecond:F0} samples/s, {result.MillisecondsPerEpoch:F0} ms per 60 000-example epoch, " +
            $"{result.LaunchesPerStep:F0} launches/step, {result.HostWaits} host waits in {result.Steps} steps (an epoch is {stepsPerEpoch} steps)"));
        if (options.Csv is not null && ranks.IsRoot)
        {
            using var writer = new StreamWriter(options.Csv);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            csv.WriteRecords([result]);
            output.WriteLine($"csv: {options.Csv}");
        }
        if (options.ProfileSteps > 0)
            Profile(kernels, vae, data, batchSize, binarize);
        return result;
    }

    /// <summary>
    /// --profile: more steps with each launch timed alone, then a line per kernel (per shape for dense layers):
    /// launches and milliseconds per step, and its share of the profiled step.
    /// </summary>
    private void Profile(KernelSet kernels, Vae vae, DeviceDataset data, int batchSize, bool binarize)
    {
        var profile = new KernelProfile();
        kernels.Profile = profile;
        int steps = Math.Min(options.ProfileSteps, options.Steps);
        for (int step = 0; step < steps; step++)
            vae.TrainStep(data, step * batchSize, batchSize, binarize);
        kernels.Synchronize();
        kernels.Profile = null;
        vae.ReadTrainingSums(reset: true);
        WriteProfile(output, profile, steps);
    }

    /// <summary>A profile's lines: the time and launches per step, then per kernel its launches and milliseconds per
    /// step and its share.</summary>
    internal static void WriteProfile(TextWriter output, KernelProfile profile, int steps)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"profile of {steps} steps, each launch waited for: {1000 * profile.Seconds / steps:F2} ms and {profile.Launches / (double)steps:F0} launches per step"));
        output.WriteLine("  kernel, launches/step, ms/step, share");
        foreach (var (kernel, launches, seconds) in profile.Entries)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {kernel}, {launches / (double)steps:F0}, {1000 * seconds / steps:F3}, {100 * seconds / profile.Seconds:F1}%"));
    }

    /// <summary>Dense layer shapes timed by --kernels: the default model's, a large batch, an odd shape, and the
    /// decoder of the IWAE paper's one-layer model at k = 50 (1000 rows a step).</summary>
    public static readonly (int Batch, int Inputs, int Outputs)[] DenseShapes =
        [(128, 784, 400), (128, 400, 40), (128, 400, 784), (4096, 784, 400), (127, 785, 401),
         (1000, 50, 200), (1000, 200, 200), (1000, 200, 784)];

    /// <summary>
    /// Times each dense forward (ReLU) and backward (dInput, dWeights, dBias) alone: repetitions queued back to
    /// back, one wait at the end. GFLOP/s counts 2·B·I·O for the forward and 4·B·I·O for the backward.
    /// </summary>
    public void TimeDenseKernels(KernelSet kernels)
    {
        output.WriteLine("dense kernels (ReLU): variant, shape, forward ms, forward GFLOP/s, backward ms, backward GFLOP/s");
        var original = kernels.DenseKernels;
        var random = new Random(2);
        foreach (var variant in Enum.GetValues<DenseVariant>().Where(v => v != DenseVariant.GpuTiled || kernels.SupportsTiled))
        {
            kernels.DenseKernels = variant;
            foreach (var (batch, inputs, outputs) in DenseShapes)
            {
                float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
                var accelerator = kernels.Accelerator;
                using var x = accelerator.Allocate1D(Values(batch * inputs));
                using var weights = accelerator.Allocate1D(Values(outputs * inputs));
                using var bias = accelerator.Allocate1D(Values(outputs));
                using var y = accelerator.Allocate1D<float>(batch * outputs);
                using var dY = accelerator.Allocate1D(Values(batch * outputs));
                using var dX = accelerator.Allocate1D<float>(batch * inputs);
                using var dWeights = accelerator.Allocate1D<float>(outputs * inputs);
                using var dBias = accelerator.Allocate1D<float>(outputs);
                double flops = 2.0 * batch * inputs * outputs;
                // Enough repetitions for about 0.2 GFLOP of forward work on the CPU (at least 3) and 20 GFLOP on a
                // GPU, after one warm-up launch.
                int repetitions = (int)Math.Clamp((kernels.IsCpu ? 2e8 : 2e10) / flops, 3, 2000);
                double Time(Action launch)
                {
                    launch();
                    kernels.Synchronize();
                    var clock = Stopwatch.StartNew();
                    for (int i = 0; i < repetitions; i++)
                        launch();
                    kernels.Synchronize();
                    return clock.Elapsed.TotalMilliseconds / repetitions;
                }
                double forward = Time(() => kernels.DenseForward(ActivationKind.Relu, x.View, weights.View, bias.View, y.View, batch, inputs, outputs));
                double backward = Time(() => kernels.DenseBackward(x.View, weights.View, dY.View, dX.View, ActivationKind.Relu, dWeights.View, dBias.View, batch, inputs, outputs));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {variant,-9} {batch}x{inputs}->{outputs}: {forward:F3} ms, {flops / forward / 1e6:F1} GFLOP/s; {backward:F3} ms, {2 * flops / backward / 1e6:F1} GFLOP/s"));
            }
        }
        kernels.DenseKernels = original;
    }

    /// <summary>The examples the timed steps run over, in order: real images where a data set is named (repeated
    /// when it holds fewer than the steps need; binarized once where the run was trained so), else random bytes.</summary>
    private ImageDataset BenchData(int count, int inputSize, TrainOptions? model)
    {
        string name = options.Data ?? (options.From is not null ? model!.Data : "random");
        if (name == "random")
        {
            var random = new byte[(long)count * inputSize];
            new Random(1).NextBytes(random);
            return new ImageDataset("random", random, new byte[count], count, 1, inputSize);
        }
        var train = DataSets.Load(name, output).Train;
        if (train.Features != inputSize)
            throw new ArgumentException($"the model takes {inputSize} inputs but {name} has {train.Features} features per image");
        if (model?.Binarize == BinarizeMode.Static)
            train = train.BinarizeOnce(model.Seed, part: 0);
        var images = new byte[(long)count * train.Features];
        for (int i = 0; i < count; i++)
            train.Images.AsSpan(i % train.Count * train.Features, train.Features).CopyTo(images.AsSpan(i * train.Features));
        return new ImageDataset(train.Name, images, new byte[count], count, train.Height, train.Width);
    }
}
