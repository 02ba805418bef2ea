using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Model.Library;

/// <summary>How a <see cref="VaeModel"/> trains: the settings of <c>ilgpu-vae train</c> that are not the model's.</summary>
public sealed record TrainingSettings
{
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 1e-3;
    public LearningRateScheduleKind LearningRateSchedule { get; init; } = LearningRateScheduleKind.Constant;
    public double AdamEpsilon { get; init; } = 1e-8;
    /// <summary>Clip the gradient's L2 norm to this before each step (null: no clipping).</summary>
    public double? MaxGradientNorm { get; init; }
    /// <summary>Seed of every random draw: initialisation, the order of each epoch, ε, binarization.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>KL warm-up: β rises linearly from 0 over this many epochs (0: none).</summary>
    public int WarmupEpochs { get; init; }
    /// <summary>Draw every pixel as Bernoulli(grey level) each time it is seen (the IWAE paper's binarization).</summary>
    public bool DynamicBinarization { get; init; }
    /// <summary>How data-parallel ranks exchange gradients (ignored by one process).</summary>
    public Distributed.GradientExchangeKind GradientExchange { get; init; }

    public AdamSettings Adam() => new() { LearningRate = LearningRate, Epsilon = AdamEpsilon, MaxGradientNorm = MaxGradientNorm };

    /// <summary>Throws with a message naming the setting and what to change.</summary>
    public void Validate()
    {
        if (Epochs < 1)
            throw new SettingException($"@Epochs must be at least 1 (got {Epochs})");
        if (BatchSize < 1)
            throw new SettingException($"@BatchSize must be at least 1 (got {BatchSize})");
        if (WarmupEpochs < 0)
            throw new SettingException($"@WarmupEpochs must be 0 (no warm-up) or more (got {WarmupEpochs})");
        if (!(AdamEpsilon > 0) || double.IsInfinity(AdamEpsilon))
            throw new SettingException($"@AdamEpsilon must be a positive finite number (got {AdamEpsilon})");
        Adam().Validate();
    }
}

/// <summary>Where training is, after each progress tick and at the end of each epoch.</summary>
/// <param name="RunningLoss">The mean loss of the epoch's steps so far.</param>
public readonly record struct TrainingProgress(int Epoch, int Epochs, int Step, int StepsPerEpoch, double RunningLoss);

/// <summary>One epoch's training sums, its test sums (one z per example; null without a test set) and its time.</summary>
public sealed record EpochResult(int Epoch, LossSums Train, LossSums? Test, double Seconds);

/// <summary>
/// A model on an accelerator with everything a program does with it: train on images in memory, evaluate the
/// ELBO, the k-sample bound L_k, active units and ELBO surgery, encode, decode, sample, save and load. The
/// training loop is the one <c>ilgpu-vae train</c> runs (the same order, learning rates, warm-up and draws), so a
/// model trained here and one trained by the command from the same data and settings hold the same weights.
/// </summary>
public sealed class VaeModel : IDisposable
{
    private readonly Context context;
    private readonly Accelerator accelerator;
    private readonly KernelSet kernels;

    private VaeModel(Context context, Accelerator accelerator, KernelSet kernels, Vae vae, TrainingSettings settings, int epochsDone)
    {
        this.context = context;
        this.accelerator = accelerator;
        this.kernels = kernels;
        Vae = vae;
        Settings = settings;
        EpochsDone = epochsDone;
    }

    /// <summary>
    /// A freshly initialised model of <paramref name="config"/> on <paramref name="accelerator"/> (Auto: a CUDA
    /// GPU when there is one, else the CPU accelerator), holding batches of up to <paramref name="maxBatch"/>
    /// examples (default: the settings' batch size). Before anything is allocated, the model, its batches and
    /// <paramref name="dataBytes"/> of data sets are checked against the accelerator's memory (see
    /// <see cref="MemoryPlan"/>): a refusal says which batch size fits. <paramref name="denseKernels"/> picks the
    /// dense product kernels (null: the accelerator's default).
    /// </summary>
    public static VaeModel Create(VaeConfig config, TrainingSettings? settings = null, AcceleratorChoice accelerator = AcceleratorChoice.Auto,
        int? maxBatch = null, DenseVariant? denseKernels = null, long dataBytes = 0) =>
        Create(config, settings, accelerator, maxBatch, denseKernels, new DataPlan(dataBytes, null, false, null));

    /// <summary>As above, with the data sets' device bytes both ways (<paramref name="data"/>): resident when they
    /// fit beside the model (and streaming is not asked for), else streamed when that fits; see <see cref="DataStreamed"/>.</summary>
    /// <param name="ranks">The processes training this model together (default: this one alone); each rank takes the
    /// GPU of its rank on the node.</param>
    public static VaeModel Create(VaeConfig config, TrainingSettings? settings, AcceleratorChoice accelerator, int? maxBatch, DenseVariant? denseKernels,
        DataPlan data, Distributed.Communicator? ranks = null)
    {
        settings ??= new TrainingSettings();
        settings.Validate();
        config.Validate();
        int batch = maxBatch ?? settings.BatchSize;
        var adam = settings.Adam();
        bool streamed = false;
        void CheckMemory(Accelerator device)
        {
            long available = Math.Min(MemoryPlan.Available(device), data.MemoryLimit ?? long.MaxValue);
            void Check(long bytes) => MemoryPlan.Check(config, batch, bytes, available, Compute.Describe(device), adam);
            if (data.StreamedBytes is { } asked && data.Stream)
            {
                Check(asked);
                streamed = true;
                return;
            }
            try
            {
                Check(data.ResidentBytes);
            }
            catch (SettingException) when (data.StreamedBytes is { } fallback)
            {
                // Too large to hold: stream it, if the model and two minibatch slots fit.
                Check(fallback);
                streamed = true;
            }
        }
        var model = Open(accelerator, denseKernels, CheckMemory, kernels =>
        {
            var vae = new Vae(kernels, config, batch, settings.Seed, adam, ranks);
            // Asked for by name, NCCL runs even for one rank (its all-reduce is then a copy): how a machine with
            // one GPU checks the path.
            if ((vae.Ranks.Size > 1 && settings.GradientExchange != Distributed.GradientExchangeKind.Host)
                || settings.GradientExchange == Distributed.GradientExchangeKind.Nccl)
                vae.UseGradientExchange(buffers => Distributed.GradientExchange.Create(buffers, settings.GradientExchange));
            return vae;
        }, settings, 0, ranks?.LocalRank ?? 0);
        model.DataStreamed = streamed;
        return model;
    }

    /// <summary>Whether the data sets should be streamed (see <see cref="DeviceDataset"/>): asked for, or too large
    /// to hold on the device beside the model.</summary>
    public bool DataStreamed { get; private set; }

    /// <summary>The model saved in <paramref name="checkpointDirectory"/> (by <see cref="Save"/> or <c>ilgpu-vae
    /// train</c>: a run's checkpoint folder), ready to evaluate, draw from or train further.</summary>
    /// <param name="ranks">The processes evaluating this model together (default: this one alone).</param>
    public static VaeModel Load(string checkpointDirectory, TrainingSettings? settings = null, AcceleratorChoice accelerator = AcceleratorChoice.Auto,
        int? maxBatch = null, Distributed.Communicator? ranks = null)
    {
        var checkpoint = Checkpoint.Load(checkpointDirectory, optimizerRequired: false);
        settings ??= new TrainingSettings { Seed = checkpoint.State.Seed, LearningRate = checkpoint.State.Adam.LearningRate,
            AdamEpsilon = checkpoint.State.Adam.Epsilon, MaxGradientNorm = checkpoint.State.Adam.MaxGradientNorm };
        settings.Validate();
        int batch = maxBatch ?? settings.BatchSize;
        return Open(accelerator, null, accelerator => MemoryPlan.Check(checkpoint.State.Model, batch, 0, MemoryPlan.Available(accelerator),
                Compute.Describe(accelerator), checkpoint.State.Adam),
            kernels =>
        {
            var vae = new Vae(kernels, checkpoint.State.Model, batch, checkpoint.State.Seed, checkpoint.State.Adam, ranks);
            checkpoint.RestoreInto(vae);
            return vae;
        }, settings, checkpoint.State.Epoch, ranks?.LocalRank ?? 0);
    }

    private static VaeModel Open(AcceleratorChoice choice, DenseVariant? denseKernels, Action<Accelerator> checkMemory, Func<KernelSet, Vae> create,
        TrainingSettings settings, int epochsDone, int deviceOrdinal = 0)
    {
        var context = Compute.CreateContext();
        Accelerator? accelerator = null;
        KernelSet? kernels = null;
        try
        {
            accelerator = Compute.CreateAccelerator(context, choice, deviceOrdinal);
            checkMemory(accelerator);
            kernels = new KernelSet(accelerator);
            kernels.UseDenseKernels(denseKernels);
            return new VaeModel(context, accelerator, kernels, create(kernels), settings, epochsDone);
        }
        catch
        {
            kernels?.Dispose();
            accelerator?.Dispose();
            context.Dispose();
            throw;
        }
    }

    /// <summary>The model on the device, for what this class does not wrap.</summary>
    public Vae Vae { get; }

    public VaeConfig Config => Vae.Config;
    public TrainingSettings Settings { get; }

    /// <summary>Complete epochs trained so far (a loaded model continues from its checkpoint's).</summary>
    public int EpochsDone { get; private set; }

    /// <summary>The accelerator the model lives on, for data sets of one's own (<see cref="DeviceDataset"/>).</summary>
    public Accelerator Accelerator => accelerator;

    /// <summary>The accelerator, as a user would read it ("CPU accelerator (...)", "CUDA ...").</summary>
    public string AcceleratorName => Compute.Describe(accelerator);

    /// <summary>
    /// Trains until <see cref="TrainingSettings.Epochs"/> epochs are done, evaluating on <paramref name="test"/>
    /// after each (when given). Progress comes a few times per epoch; cancelling stops after the current step,
    /// with the epoch's steps so far applied, and throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public IReadOnlyList<EpochResult> Train(ImageDataset train, ImageDataset? test = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        RequireFeatures(train);
        if (test is not null)
            RequireFeatures(test);
        if (Config.Spec.Has(Models.ModelCapabilities.Labels) && train.Labels.Length < train.Count)
            throw new ArgumentException($"{Config.Spec.Name} trains on labels: give the training set one label per image");
        using var trainData = new DeviceDataset(accelerator, train);
        using var testData = test is null ? null : new DeviceDataset(accelerator, test);
        var run = new TrainingRun(Vae, train, trainData, testData, Settings);
        int tickInterval = Math.Max(1, run.StepsPerEpoch / 10);
        var results = new List<EpochResult>();
        bool stopped = false;
        for (int epoch = EpochsDone + 1; epoch <= Settings.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            int epochNumber = epoch;
            var sums = run.TrainEpoch(epoch, 0, tickInterval, (step, running) =>
            {
                progress?.Report(new TrainingProgress(epochNumber, Settings.Epochs, step, run.StepsPerEpoch, running.MeanLoss));
                return true;
            }, _ => !(stopped = Vae.Ranks.Any(cancellation.IsCancellationRequested)));
            // Ranks stop together: one rank's cancellation stops them all after the same step.
            if (stopped)
                throw new OperationCanceledException(cancellation.IsCancellationRequested ? cancellation : CancellationToken.None);
            var trainSums = sums!.Value;
            var result = new EpochResult(epoch, trainSums, run.Test(epoch), clock.Elapsed.TotalSeconds);
            EpochsDone = epoch;
            results.Add(result);
            progress?.Report(new TrainingProgress(epoch, Settings.Epochs, run.StepsPerEpoch, run.StepsPerEpoch, trainSums.MeanLoss));
            if (!double.IsFinite(trainSums.MeanLoss))
                throw new ArithmeticException($"the training loss is not finite in epoch {epoch}: try a smaller LearningRate");
        }
        return results;
    }

    /// <summary>The loss terms with one z per example (the test loss <c>train</c> reports): for a VAE, −ELBO =
    /// <see cref="LossSums.MeanLoss"/>, with its distortion and rate.</summary>
    public LossSums Evaluate(ImageDataset data, int epoch = 0)
    {
        using var device = Upload(data);
        // Batches of 128 at most, as `ilgpu-vae eval` takes them: the batch keys the draws.
        return Epoch.Evaluate(Vae, device, Math.Min(128, Vae.MaxBatch), epoch);
    }

    /// <summary>The mean k-sample importance-weighted bound L_k over the images (−NLL as k grows); progress reports
    /// images done.</summary>
    public double LowerBound(ImageDataset data, int k, IProgress<int>? progress = null, CancellationToken cancellation = default)
    {
        if (Vae.NoLikelihoodBound is { } reason)
            throw new InvalidOperationException(reason);
        using var device = Upload(data);
        return Evaluation.LowerBound(Vae, device, k, data.Count, (done, _) =>
        {
            cancellation.ThrowIfCancellationRequested();
            progress?.Report(done);
        });
    }

    /// <summary>Latent units whose posterior mean varies across the images (Burda et al.'s active units).</summary>
    public int ActiveUnits(ImageDataset data)
    {
        using var device = Upload(data);
        return Evaluation.ActiveUnits(Vae, device, data.Count);
    }

    /// <summary>ELBO surgery: the average KL split into index-code mutual information and marginal KL, with
    /// <paramref name="samples"/> draws of q(z) (0: one per image).</summary>
    public SurgeryReport Surgery(ImageDataset data, int samples = 0)
    {
        var (mu, logVariance) = Encode(data);
        if (logVariance.Length == 0)
            throw new InvalidOperationException($"{Config.Spec.Name} has no q(z|x) with a variance: there is no KL to split");
        return ElboSurgery.Estimate(mu, logVariance, data.Count, Config.TopLatent, samples == 0 ? data.Count : samples, Vae.Seed, Vae.PriorComponents());
    }

    /// <summary>q(z|x) of every image of the top latent: μ and log σ², each [count, latent] row-major (an
    /// autoencoder's codes, and no log σ²).</summary>
    public (float[] Mu, float[] LogVariance) Encode(ImageDataset data)
    {
        using var device = Upload(data);
        device.SetOrder(Enumerable.Range(0, data.Count).ToArray());
        int latent = Config.TopLatent;
        var mu = new float[data.Count * latent];
        var logVariance = new List<float>();
        for (int first = 0; first < data.Count; first += Vae.MaxBatch)
        {
            int batch = Math.Min(Vae.MaxBatch, data.Count - first);
            var (batchMu, batchLogVariance) = Vae.Encode(device, first, batch);
            batchMu.CopyTo(mu, first * latent);
            logVariance.AddRange(batchLogVariance);
        }
        return (mu, [.. logVariance]);
    }

    /// <summary>The decoder's mean for each code [n, latent]: pixel probabilities (Bernoulli) or means (Gaussian), [n, input].</summary>
    public float[] Decode(float[] codes)
    {
        int latent = Config.TopLatent;
        if (codes.Length % latent != 0)
            throw new ArgumentException($"codes hold {latent} values each (got {codes.Length} values)");
        var images = new float[codes.Length / latent * Config.InputSize];
        for (int first = 0; first < codes.Length / latent; first += Vae.MaxBatch)
        {
            int count = Math.Min(Vae.MaxBatch, codes.Length / latent - first);
            Vae.Decode(codes[(first * latent)..((first + count) * latent)]).CopyTo(images, first * Config.InputSize);
        }
        return images;
    }

    /// <summary><paramref name="count"/> images decoded from codes drawn from the prior N(0, I), keyed by
    /// <paramref name="seed"/> (the same draws as <c>ilgpu-vae sample</c>).</summary>
    public float[] Sample(int count, ulong seed) => Decode(Vae.PriorCodes(count, seed));

    /// <summary>Saves the model, Adam's state and the epochs done to <paramref name="directory"/> (the format of
    /// a run's checkpoint folder: model.safetensors opens in PyTorch).</summary>
    public void Save(string directory) => Checkpoint.Save(directory, Vae, EpochsDone);

    private DeviceDataset Upload(ImageDataset data)
    {
        RequireFeatures(data);
        return new DeviceDataset(accelerator, data);
    }

    private void RequireFeatures(ImageDataset data)
    {
        if (data.Count < 1)
            throw new ArgumentException($"{data.Name} has no images");
        if (data.Features != Config.InputSize)
            throw new ArgumentException($"{data.Name} has {data.Features} features per image but the model expects {Config.InputSize}");
    }

    public void Dispose()
    {
        Vae.Dispose();
        kernels.Dispose();
        accelerator.Dispose();
        context.Dispose();
    }
}

/// <summary>The device bytes of a run's data sets held whole (<paramref name="ResidentBytes"/>) and streamed
/// (<paramref name="StreamedBytes"/>, null: not possible), whether streaming is asked for, and a cap on the
/// accelerator memory to plan with (null: all it offers).</summary>
public sealed record DataPlan(long ResidentBytes, long? StreamedBytes, bool Stream, long? MemoryLimit);
