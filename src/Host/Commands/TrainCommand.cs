using System.CommandLine;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Distributed;
using IlgpuVae.Model.Models;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`train`: its options, a preset, the catalog's model defaults, and the run (see <see cref="Training"/>).</summary>
internal static class TrainCommand
{
    public static Command Create(TextWriter output, CancellationToken interrupt, Communicator ranks)
    {
        var defaults = new TrainOptions();
        var preset = new Option<string?>("--preset") { Description = $"Start from the settings of a published result (options given beside it win): {string.Join(", ", Presets.Names)}" };
        preset.AcceptOnlyFromAmong(Presets.Names.ToArray());
        preset.HelpName = "NAME";
        var model = new Option<ModelKind>("--model") { Description = string.Join("; ", ModelCatalog.All.Select(spec => $"{spec.Name} ({spec.Help})")), DefaultValueFactory = _ => defaults.Config.Model, HelpName = string.Join("|", ModelCatalog.Names), CustomParser = ModelName };
        // The settings some models alone take come from their catalog entries, one option each.
        var modelOptions = CatalogOptions();
        var samples = new Option<int>("--k") { Description = "z samples per example: the IWAE's k; the VAE averages its ELBO over them", DefaultValueFactory = _ => defaults.Config.Samples };
        var beta = new Option<double>("--beta") { Description = "Weight of the VAE's KL term (β-VAE; 1 is the ELBO)", DefaultValueFactory = _ => defaults.Config.Beta };
        var warmup = new Option<int>("--warmup-epochs") { Description = "KL warm-up: β rises linearly from 0 to --beta over this many epochs (0: none)", DefaultValueFactory = _ => defaults.WarmupEpochs };
        var data = new Option<string>("--data") { Description = "mnist, fashion-mnist (fetched on first use), or a folder with train.csv and test.csv (label, then pixels 0-255 per row) or the four MNIST-format IDX files", DefaultValueFactory = _ => defaults.Data };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training set (default 10, or the length of --lr-schedule)", DefaultValueFactory = _ => defaults.Epochs };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per step", DefaultValueFactory = _ => defaults.BatchSize };
        var hidden = new Option<string>("--hidden") { Description = "Hidden layer widths, comma-separated (the decoder mirrors them)", DefaultValueFactory = _ => "400" };
        var latent = new Option<int>("--latent") { Description = "Latent dimensions (of z1 with two stochastic layers; of all the VLAE's layers together, 6 for it unless given)", DefaultValueFactory = _ => defaults.Config.Latent };
        var stochasticLayers = new Option<int>("--stochastic-layers") { Description = "1, or 2 for the IWAE paper's x → z1 → z2 model with p(z2) p(z1|z2) p(x|z1)", DefaultValueFactory = _ => defaults.Config.StochasticLayers };
        var hidden2 = new Option<string>("--hidden2") { Description = "Two stochastic layers: widths between z1 and z2, comma-separated (p(z1|z2) mirrors them)", DefaultValueFactory = _ => "100,100" };
        var batchNorm = new Option<bool>("--batch-norm") { Description = "Batch normalisation on the hidden layers, with running averages for evaluation (Ladder VAE only; default on for it: --batch-norm false turns it off)" };
        var latent2 = new Option<int>("--latent2") { Description = "Two stochastic layers: dimensions of z2", DefaultValueFactory = _ => defaults.Config.Latent2 };
        var learningRate = new Option<double>("--lr") { Description = "Adam learning rate (the start of --lr-schedule)", DefaultValueFactory = _ => defaults.LearningRate };
        var schedule = new Option<LearningRateScheduleKind>("--lr-schedule") { Description = "constant; iwae (the IWAE paper's: 3^i epochs at lr·10^(-i/7), i = 0..7, 3280 epochs); iwae-short (those eight rates, one epoch each)", DefaultValueFactory = _ => defaults.LearningRateSchedule, CustomParser = ParseSchedule, HelpName = "constant|iwae|iwae-short" };
        var adamEpsilon = new Option<double>("--adam-eps") { Description = "Adam's ε (the IWAE paper uses 1e-4)", DefaultValueFactory = _ => defaults.AdamEpsilon };
        var clipGradNorm = new Option<double?>("--clip-grad-norm") { Description = "Scale the gradient down to this L2 norm (over all parameters) before each step when it is larger (default: no clipping)" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every random draw (initialisation, order, ε)", DefaultValueFactory = _ => defaults.Seed };
        var likelihood = new Option<LikelihoodKind>("--likelihood") { Description = "Decoder: bernoulli (logits), gaussian (N(f(z), c·I)) or poisson (each pixel's byte a Poisson count; --model def)", DefaultValueFactory = _ => defaults.Config.Likelihood, CustomParser = Named<LikelihoodKind>("--likelihood") };
        var variance = new Option<double>("--gaussian-c") { Description = "c of the Gaussian decoder", DefaultValueFactory = _ => defaults.Config.GaussianVariance };
        var activation = new Option<ActivationKind>("--activation") { Description = "Hidden activation: relu, tanh, sigmoid, identity", DefaultValueFactory = _ => defaults.Config.Activation, CustomParser = Named<ActivationKind>("--activation") };
        var binarize = new Option<BinarizeMode>("--binarize") { Description = "Binary targets for the Bernoulli decoder: none (grey levels), dynamic (each pixel drawn as Bernoulli(grey) every time it is seen), static (drawn once)", DefaultValueFactory = _ => defaults.Binarize, CustomParser = Named<BinarizeMode>("--binarize") };
        var accelerator = AcceleratorOption();
        var outDirectory = new Option<string?>("--out") { Description = "Run folder for config.json and metrics.csv (default runs/DATA-TIME)" };
        var trainLimit = new Option<int>("--train-limit") { Description = "Use only the first N training examples (0: all)" };
        var testLimit = new Option<int>("--test-limit") { Description = "Use only the first N test examples (0: all)" };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Also checkpoint every N steps within epochs (0: at epoch ends only)" };
        var stream = new Option<bool>("--stream") { Description = "Keep the data on the host and copy each minibatch to the device from pinned memory, the next one while the current one computes (the same result bit for bit; chosen by itself when the data set does not fit the device)" };
        var deviceMemory = new Option<int>("--device-memory") { Description = "Plan for at most this many MiB of the accelerator's memory (0: all it offers); a data set that no longer fits is streamed", HelpName = "MIB" };
        var dense = DenseOption();
        var precision = new Option<TrainingPrecision>("--precision") { Description = "single (the float kernels on the accelerator) or double (the double-precision reference pipeline on the host with the same draws: slow, to tell a result from float rounding; the kernels still evaluate the trained weights)", DefaultValueFactory = _ => defaults.Precision, HelpName = "single|double", CustomParser = Named<TrainingPrecision>("--precision") };
        var exchange = new Option<GradientExchangeKind>("--gradient-exchange") { Description = "Under mpirun or srun: how the ranks sum their gradients: auto (NCCL on CUDA where it loads, else host), host (MPI on host copies, summed in rank order), nccl (NCCL on device memory; also for one process, to check it on a machine with one GPU)", DefaultValueFactory = _ => defaults.GradientExchange, CustomParser = Named<GradientExchangeKind>("--gradient-exchange"), HelpName = "auto|host|nccl" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder from its last checkpoint, with its settings (--epochs, --accelerator, --checkpoint-every, --dense, --precision, --stream, --device-memory and --gradient-exchange may change)" };

        var command = new Command("train", "Train a VAE, IWAE or autoencoder and write metrics.csv, pictures and checkpoints")
        {
            preset, model, samples, beta, warmup, stochasticLayers, hidden2, latent2, batchNorm, data, epochs, batchSize, hidden, latent, learningRate, schedule, adamEpsilon,
            clipGradNorm, seed, likelihood, variance, activation, binarize, accelerator, outDirectory, trainLimit, testLimit,
            checkpointEvery, dense, precision, resume, stream, deviceMemory, exchange,
        };
        foreach (var (_, option) in modelOptions)
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            // An option given on the command line wins over the preset, which wins over the defaults.
            T Pick<T>(Option<T> option, T current) => parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option)! : current;
            if (parse.GetValue(resume) is { } runDirectory)
            {
                var resumed = TrainOptions.ForResume(runDirectory);
                resumed = resumed with
                {
                    Epochs = Pick(epochs, resumed.Epochs),
                    Accelerator = parse.GetResult(accelerator) is { Implicit: false } ? Compute.ParseChoice(parse.GetValue(accelerator)) : resumed.Accelerator,
                    CheckpointEvery = Pick(checkpointEvery, resumed.CheckpointEvery),
                    Precision = Pick(precision, resumed.Precision),
                    Dense = parse.GetResult(dense) is { Implicit: false } ? ParseDense(parse.GetValue(dense)) : resumed.Dense,
                    Stream = Pick(stream, resumed.Stream),
                    DeviceMemory = Pick(deviceMemory, resumed.DeviceMemory),
                    GradientExchange = Pick(exchange, resumed.GradientExchange),
                };
                return new Training(resumed, output, interrupt, ranks).Run();
            }
            var options = parse.GetValue(preset) is { } name ? Presets.Apply(name, defaults) : defaults;
            var chosenSchedule = Pick(schedule, options.LearningRateSchedule);
            int scheduleEpochs = LearningRateSchedule.Epochs(chosenSchedule);
            // The InfoVAE replaces the KL term by MMD unless a β is asked for; the Deep VIB takes Alemi et al.'s.
            var chosenModel = ModelCatalog.For(Pick(model, options.Config.Model));
            var config = options.Config;
            config = config with
            {
                Model = chosenModel.Kind,
                Samples = Pick(samples, chosenModel.DefaultSamples ?? config.Samples),
                Beta = Pick(beta, chosenModel.DefaultBeta ?? config.Beta),
                Hidden = parse.GetResult(hidden) is { Implicit: false } ? ParseWidths(parse.GetValue(hidden)!) : chosenModel.DefaultHidden ?? config.Hidden,
                Latent = Pick(latent, chosenModel.DefaultLatent ?? config.Latent),
                // A model's own defaults (the Ladder VAE's two stochastic layers and batch norm) unless told otherwise.
                StochasticLayers = Pick(stochasticLayers, Math.Max(chosenModel.DefaultStochasticLayers, config.StochasticLayers)),
                BatchNorm = Pick(batchNorm, chosenModel.DefaultBatchNorm || config.BatchNorm),
                Hidden2 = parse.GetResult(hidden2) is { Implicit: false } ? ParseWidths(parse.GetValue(hidden2)!, "--hidden2") : chosenModel.DefaultHidden ?? config.Hidden2,
                Latent2 = Pick(latent2, config.Latent2),
                Likelihood = Pick(likelihood, config.Likelihood),
                GaussianVariance = Pick(variance, config.GaussianVariance),
                Activation = Pick(activation, config.Activation),
                // A model's flow steps unless a preset gives some (--flow-length, applied next, wins over both).
                FlowLength = chosenModel.FlowLengthOrDefault(config.FlowLength),
            };
            config = ApplyCatalogOptions(parse, modelOptions, chosenModel, config);
            options = options with
            {
                Config = config,
                WarmupEpochs = Pick(warmup, options.WarmupEpochs),
                Data = Pick(data, options.Data),
                // A schedule sets the length unless --epochs is given.
                Epochs = Pick(epochs, scheduleEpochs > 0 ? scheduleEpochs : options.Epochs),
                BatchSize = Pick(batchSize, options.BatchSize),
                LearningRate = Pick(learningRate, options.LearningRate),
                LearningRateSchedule = chosenSchedule,
                AdamEpsilon = Pick(adamEpsilon, options.AdamEpsilon),
                MaxGradientNorm = Pick(clipGradNorm, options.MaxGradientNorm),
                Seed = Pick(seed, options.Seed),
                Binarize = Pick(binarize, options.Binarize),
                Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)),
                Out = parse.GetValue(outDirectory),
                TrainLimit = parse.GetValue(trainLimit),
                TestLimit = parse.GetValue(testLimit),
                CheckpointEvery = parse.GetValue(checkpointEvery),
                Precision = parse.GetValue(precision),
                Dense = ParseDense(parse.GetValue(dense)),
                Stream = parse.GetValue(stream),
                DeviceMemory = parse.GetValue(deviceMemory),
                GradientExchange = parse.GetValue(exchange),
            };
            return new Training(options, output, interrupt, ranks).Run();
        });
        return command;
    }

    /// <summary>Parses --model: a name from the catalog as a user types it; anything else is a usage error that
    /// lists the catalog's names.</summary>
    private static ModelKind ModelName(System.CommandLine.Parsing.ArgumentResult result)
    {
        string text = result.Tokens.Count == 0 ? "" : result.Tokens[0].Value;
        if (ModelCatalog.Find(text) is { } spec)
            return spec.Kind;
        result.AddError($"unknown --model '{text}': use {string.Join(", ", ModelCatalog.Names)}");
        return default;
    }

    /// <summary>Schedule names as written in --help (iwae-short), not the enum's spelling.</summary>
    internal static LearningRateScheduleKind ParseSchedule(System.CommandLine.Parsing.ArgumentResult result)
    {
        string text = result.Tokens.Count == 0 ? "constant" : result.Tokens[0].Value;
        switch (text.ToLowerInvariant())
        {
            case "constant": return LearningRateScheduleKind.Constant;
            case "iwae": return LearningRateScheduleKind.Iwae;
            case "iwae-short": return LearningRateScheduleKind.IwaeShort;
            default:
                result.AddError($"--lr-schedule must be constant, iwae or iwae-short (got {text})");
                return LearningRateScheduleKind.Constant;
        }
    }
}
