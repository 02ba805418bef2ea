using System.CommandLine;
using System.Globalization;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

public static class Program
{
    public static int Main(string[] args)
    {
        // Ctrl+C asks the running command to stop at the next step and checkpoint; a second Ctrl+C kills.
        using var interrupt = new CancellationTokenSource();
        Console.CancelKeyPress += (_, press) =>
        {
            if (interrupt.IsCancellationRequested)
                return;
            press.Cancel = true;
            Console.Error.WriteLine("\nstopping after this step and writing a checkpoint (Ctrl+C again to kill)");
            interrupt.Cancel();
        };
        return Run(args, Console.Out, Console.Error, interrupt.Token);
    }

    /// <summary>
    /// Exit codes: 0 success; 2 bad input (a data file, an option, an absent accelerator); 3 training diverged;
    /// 1 anything else.
    /// Errors are one line; --verbose adds the stack trace.
    /// </summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken interrupt = default)
    {
        var verbose = new Option<bool>("--verbose") { Description = "Print stack traces with errors", Recursive = true };
        var root = new RootCommand("IlgpuVae: variational autoencoders on GPUs (and the CPU) through ILGPU") { verbose };
        root.Subcommands.Add(TrainCommand(output, interrupt));
        root.Subcommands.Add(BenchCommand(output));
        root.Subcommands.Add(RateDistortionCommand(output, interrupt));
        root.Subcommands.Add(CheckCommand(output));
        root.Subcommands.Add(EvalCommand(output));
        root.Subcommands.Add(InterpolateCommand(output));
        root.Subcommands.Add(EncodeCommand(output));
        root.Subcommands.Add(LatentMapCommand(output));
        root.Subcommands.Add(PictureCommand("sample", "Decode samples from the prior of a trained run into a PNG grid (default RUN_DIR/samples.png)",
            (run, count, seed, path, accelerator) => Pictures.Sample(run, count, seed, path, accelerator, output)));
        root.Subcommands.Add(PictureCommand("reconstruct", "Test images beside their reconstructions from a trained run, as a PNG (default RUN_DIR/reconstructions.png)",
            (run, count, _, path, accelerator) => Pictures.Reconstruct(run, count, path, accelerator, output)));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var parseError in parse.Errors)
                error.WriteLine($"error: {parseError.Message}");
            error.WriteLine("see ilgpu-vae --help");
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception exception) when (exception is DataFormatException or ArgumentException or AcceleratorUnavailableException)
        {
            error.WriteLine($"error: {exception.Message}");
            if (parse.GetValue(verbose))
                error.WriteLine(exception);
            return 2;
        }
        catch (Exception exception)
        {
            error.WriteLine($"error: {exception.GetType().Name}: {exception.Message}");
            if (parse.GetValue(verbose))
                error.WriteLine(exception);
            return 1;
        }
    }

    private static Command TrainCommand(TextWriter output, CancellationToken interrupt)
    {
        var defaults = new TrainOptions();
        var preset = new Option<string?>("--preset") { Description = $"Start from the settings of a published result (options given beside it win): {string.Join(", ", Presets.Names)}" };
        preset.AcceptOnlyFromAmong(Presets.Names.ToArray());
        preset.HelpName = "NAME";
        var model = new Option<ModelKind>("--model") { Description = string.Join("; ", ModelCatalog.All.Select(spec => $"{spec.Name} ({spec.Help})")), DefaultValueFactory = _ => defaults.Config.Model, HelpName = string.Join("|", ModelCatalog.Names), CustomParser = ModelName };
        var mmdLambda = new Option<double>("--mmd-lambda") { Description = "InfoVAE: λ, the weight of MMD² between the batch's codes and as many prior draws", DefaultValueFactory = _ => defaults.Config.MmdLambda };
        var mmdKernel = new Option<MmdKernelKind>("--mmd-kernel") { Description = "InfoVAE: gaussian (exp(-d²/2K)) or imq (inverse multiquadric 2K/(2K + d²))", DefaultValueFactory = _ => defaults.Config.MmdKernel, CustomParser = ParseMmdKernel, HelpName = "gaussian|imq" };
        var samples = new Option<int>("--k") { Description = "z samples per example: the IWAE's k; the VAE averages its ELBO over them", DefaultValueFactory = _ => defaults.Config.Samples };
        var beta = new Option<double>("--beta") { Description = "Weight of the VAE's KL term (β-VAE; 1 is the ELBO)", DefaultValueFactory = _ => defaults.Config.Beta };
        var targetRate = new Option<double?>("--target-rate") { Description = "Train the VAE on D + |σ − R| for this rate σ in nats (Alemi et al. 2018) instead of the ELBO" };
        var warmup = new Option<int>("--warmup-epochs") { Description = "KL warm-up: β rises linearly from 0 to --beta over this many epochs (0: none)", DefaultValueFactory = _ => defaults.WarmupEpochs };
        var data = new Option<string>("--data") { Description = "mnist, fashion-mnist (fetched on first use), or a folder with train.csv and test.csv (label, then pixels 0-255 per row) or the four MNIST-format IDX files", DefaultValueFactory = _ => defaults.Data };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training set (default 10, or the length of --lr-schedule)", DefaultValueFactory = _ => defaults.Epochs };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per step", DefaultValueFactory = _ => defaults.BatchSize };
        var hidden = new Option<string>("--hidden") { Description = "Hidden layer widths, comma-separated (the decoder mirrors them)", DefaultValueFactory = _ => "400" };
        var latent = new Option<int>("--latent") { Description = "Latent dimensions (of z1 with two stochastic layers)", DefaultValueFactory = _ => defaults.Config.Latent };
        var stochasticLayers = new Option<int>("--stochastic-layers") { Description = "1, or 2 for the IWAE paper's x → z1 → z2 model with p(z2) p(z1|z2) p(x|z1)", DefaultValueFactory = _ => defaults.Config.StochasticLayers };
        var hidden2 = new Option<string>("--hidden2") { Description = "Two stochastic layers: widths between z1 and z2, comma-separated (p(z1|z2) mirrors them)", DefaultValueFactory = _ => "100,100" };
        var batchNorm = new Option<bool>("--batch-norm") { Description = "Batch normalisation on the hidden layers, with running averages for evaluation (Ladder VAE only; default on for it: --batch-norm false turns it off)" };
        var latent2 = new Option<int>("--latent2") { Description = "Two stochastic layers: dimensions of z2", DefaultValueFactory = _ => defaults.Config.Latent2 };
        var learningRate = new Option<double>("--lr") { Description = "Adam learning rate (the start of --lr-schedule)", DefaultValueFactory = _ => defaults.LearningRate };
        var schedule = new Option<LearningRateScheduleKind>("--lr-schedule") { Description = "constant; iwae (the IWAE paper's: 3^i epochs at lr·10^(-i/7), i = 0..7, 3280 epochs); iwae-short (those eight rates, one epoch each)", DefaultValueFactory = _ => defaults.LearningRateSchedule, CustomParser = ParseSchedule, HelpName = "constant|iwae|iwae-short" };
        var adamEpsilon = new Option<double>("--adam-eps") { Description = "Adam's ε (the IWAE paper uses 1e-4)", DefaultValueFactory = _ => defaults.AdamEpsilon };
        var clipGradNorm = new Option<double?>("--clip-grad-norm") { Description = "Scale the gradient down to this L2 norm (over all parameters) before each step when it is larger (default: no clipping)" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every random draw (initialisation, order, ε)", DefaultValueFactory = _ => defaults.Seed };
        var likelihood = new Option<LikelihoodKind>("--likelihood") { Description = "Decoder: bernoulli (logits) or gaussian (N(f(z), c·I))", DefaultValueFactory = _ => defaults.Config.Likelihood, CustomParser = Named<LikelihoodKind>("--likelihood") };
        var variance = new Option<double>("--gaussian-c") { Description = "c of the Gaussian decoder", DefaultValueFactory = _ => defaults.Config.GaussianVariance };
        var activation = new Option<ActivationKind>("--activation") { Description = "Hidden activation: relu, tanh, sigmoid, identity", DefaultValueFactory = _ => defaults.Config.Activation, CustomParser = Named<ActivationKind>("--activation") };
        var binarize = new Option<BinarizeMode>("--binarize") { Description = "Binary targets for the Bernoulli decoder: none (grey levels), dynamic (each pixel drawn as Bernoulli(grey) every time it is seen), static (drawn once)", DefaultValueFactory = _ => defaults.Binarize, CustomParser = Named<BinarizeMode>("--binarize") };
        var accelerator = AcceleratorOption();
        var outDirectory = new Option<string?>("--out") { Description = "Run folder for config.json and metrics.csv (default runs/DATA-TIME)" };
        var trainLimit = new Option<int>("--train-limit") { Description = "Use only the first N training examples (0: all)" };
        var testLimit = new Option<int>("--test-limit") { Description = "Use only the first N test examples (0: all)" };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Also checkpoint every N steps within epochs (0: at epoch ends only)" };
        var dense = DenseOption();
        var precision = new Option<TrainingPrecision>("--precision") { Description = "single (the float kernels on the accelerator) or double (the double-precision reference pipeline on the host with the same draws: slow, to tell a result from float rounding; the kernels still evaluate the trained weights)", DefaultValueFactory = _ => defaults.Precision, HelpName = "single|double", CustomParser = Named<TrainingPrecision>("--precision") };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder from its last checkpoint, with its settings (--epochs, --accelerator, --dense and --precision may change)" };

        var command = new Command("train", "Train a VAE, IWAE or autoencoder and write metrics.csv, pictures and checkpoints")
        {
            preset, model, mmdLambda, mmdKernel, targetRate, samples, beta, warmup, stochasticLayers, hidden2, latent2, batchNorm, data, epochs, batchSize, hidden, latent, learningRate, schedule, adamEpsilon,
            clipGradNorm, seed, likelihood, variance, activation, binarize, accelerator, outDirectory, trainLimit, testLimit,
            checkpointEvery, dense, precision, resume,
        };
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
                };
                return new Training(resumed, output, interrupt).Run();
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
                Samples = Pick(samples, config.Samples),
                Beta = Pick(beta, chosenModel.DefaultBeta ?? config.Beta),
                MmdLambda = Pick(mmdLambda, config.MmdLambda),
                MmdKernel = Pick(mmdKernel, config.MmdKernel),
                TargetRate = Pick(targetRate, config.TargetRate),
                Hidden = parse.GetResult(hidden) is { Implicit: false } ? ParseWidths(parse.GetValue(hidden)!) : config.Hidden,
                Latent = Pick(latent, config.Latent),
                // A model's own defaults (the Ladder VAE's two stochastic layers and batch norm) unless told otherwise.
                StochasticLayers = Pick(stochasticLayers, Math.Max(chosenModel.DefaultStochasticLayers, config.StochasticLayers)),
                BatchNorm = Pick(batchNorm, chosenModel.DefaultBatchNorm || config.BatchNorm),
                Hidden2 = parse.GetResult(hidden2) is { Implicit: false } ? ParseWidths(parse.GetValue(hidden2)!, "--hidden2") : config.Hidden2,
                Latent2 = Pick(latent2, config.Latent2),
                Likelihood = Pick(likelihood, config.Likelihood),
                GaussianVariance = Pick(variance, config.GaussianVariance),
                Activation = Pick(activation, config.Activation),
            };
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
            };
            return new Training(options, output, interrupt).Run();
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

    /// <summary>Parses an option whose values are an enum's members, written as a user types them (lower case: vae,
    /// infovae, relu); anything else is a usage error that lists those names, not the C# type and its members.</summary>
    private static Func<System.CommandLine.Parsing.ArgumentResult, TEnum> Named<TEnum>(string option) where TEnum : struct, Enum =>
        result =>
        {
            string text = result.Tokens.Count == 0 ? "" : result.Tokens[0].Value;
            var names = Enum.GetNames<TEnum>().Select(name => name.ToLowerInvariant()).ToArray();
            int index = Array.IndexOf(names, text.ToLowerInvariant());
            if (index >= 0)
                return Enum.GetValues<TEnum>()[index];
            result.AddError($"unknown {option} '{text}': use {string.Join(", ", names)}");
            return default;
        };

    private static MmdKernelKind ParseMmdKernel(System.CommandLine.Parsing.ArgumentResult result)
    {
        string text = result.Tokens.Count == 0 ? "gaussian" : result.Tokens[0].Value;
        switch (text.ToLowerInvariant())
        {
            case "gaussian": return MmdKernelKind.Gaussian;
            case "imq" or "inversemultiquadric": return MmdKernelKind.InverseMultiquadric;
            default:
                result.AddError($"--mmd-kernel must be gaussian or imq (got {text})");
                return MmdKernelKind.Gaussian;
        }
    }

    /// <summary>Schedule names as written in --help (iwae-short), not the enum's spelling.</summary>
    private static LearningRateScheduleKind ParseSchedule(System.CommandLine.Parsing.ArgumentResult result)
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

    private static Command RateDistortionCommand(TextWriter output, CancellationToken interrupt)
    {
        var defaults = new TrainOptions();
        var rates = new Option<string>("--rates") { Description = "Target rates σ in nats, comma-separated", DefaultValueFactory = _ => "2,5,10,20,40" };
        var data = new Option<string>("--data") { Description = "As for train", DefaultValueFactory = _ => defaults.Data };
        var epochs = new Option<int>("--epochs") { Description = "Epochs per target rate", DefaultValueFactory = _ => 3 };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per step", DefaultValueFactory = _ => defaults.BatchSize };
        var hidden = new Option<string>("--hidden") { Description = "Hidden layer widths, comma-separated", DefaultValueFactory = _ => "400" };
        var latent = new Option<int>("--latent") { Description = "Latent dimensions", DefaultValueFactory = _ => defaults.Config.Latent };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every run", DefaultValueFactory = _ => defaults.Seed };
        var accelerator = AcceleratorOption();
        var outDirectory = new Option<string?>("--out") { Description = "Folder for one run per σ, rate-distortion.csv and rate-distortion.png (default runs/rate-distortion-TIME)" };
        var trainLimit = new Option<int>("--train-limit") { Description = "Use only the first N training examples (0: all)" };
        var testLimit = new Option<int>("--test-limit") { Description = "Use only the first N test examples (0: all)" };
        var command = new Command("rate-distortion", "Train the VAE at several target rates σ (D + |σ − R|) and plot the test rate against the test distortion")
        {
            rates, data, epochs, batchSize, hidden, latent, seed, accelerator, outDirectory, trainLimit, testLimit,
        };
        command.SetAction(parse =>
        {
            var targets = parse.GetValue(rates)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(text => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value >= 0
                    ? value
                    : throw new ArgumentException($"--rates: '{text}' is not a rate in nats ≥ 0; write rates like 2,5,10"))
                .ToArray();
            if (targets.Length == 0)
                throw new ArgumentException("--rates needs at least one rate");
            var options = defaults with
            {
                Data = parse.GetValue(data)!, Epochs = parse.GetValue(epochs), BatchSize = parse.GetValue(batchSize),
                Config = defaults.Config with { Hidden = ParseWidths(parse.GetValue(hidden)!), Latent = parse.GetValue(latent) }, Seed = parse.GetValue(seed),
                Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)), TrainLimit = parse.GetValue(trainLimit),
                TestLimit = parse.GetValue(testLimit),
            };
            string folder = parse.GetValue(outDirectory) ?? Path.Combine("runs", $"rate-distortion-{DateTime.Now:yyyyMMdd-HHmmss}");
            return RateDistortion.Run(options, targets, folder, output, interrupt);
        });
        return command;
    }

    private static Command BenchCommand(TextWriter output)
    {
        var defaults = new BenchOptions();
        var steps = new Option<int>("--steps") { Description = "Timed training steps (469 = one MNIST epoch at batch 128)", DefaultValueFactory = _ => defaults.Steps };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first (kernel compilation)", DefaultValueFactory = _ => defaults.WarmupSteps };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per step (default: the preset's, else 128)", DefaultValueFactory = _ => BenchOptions.DefaultBatchSize };
        var hidden = new Option<string>("--hidden") { Description = "Hidden layer widths, comma-separated", DefaultValueFactory = _ => "400" };
        var latent = new Option<int>("--latent") { Description = "Latent dimensions", DefaultValueFactory = _ => defaults.Latent };
        var accelerator = AcceleratorOption();
        var csv = new Option<string?>("--csv") { Description = "Also write the figures to this CSV file" };
        var data = new Option<string?>("--data") { Description = "random (MNIST-shaped random bytes), or mnist, fashion-mnist or a folder as for train [default: random, or with --from the run's data set]" };
        var kernelTimes = new Option<bool>("--kernels") { Description = "Also time the dense kernels alone (GFLOP/s at the default model's shapes and 4096×784→400)" };
        var dense = DenseOption();
        var preset = new Option<string?>("--preset") { Description = $"Time this Table 1 preset's model (its batch size unless --batch-size is given; Adam ε 1e-4, dynamic binarization) instead of the default model: {string.Join(", ", Presets.Names)}", HelpName = "NAME" };
        preset.AcceptOnlyFromAmong(Presets.Names.ToArray());
        var profile = new Option<int>("--profile") { Description = "After the timed steps, time this many more with every launch waited for, and print each kernel's launches and ms per step (0: no profile)" };
        var from = new Option<string?>("--from") { Description = "Time a trained run's model from its checkpoint (weights, Adam state, batch, binarization, data set) instead of a fresh one: a trained model can cost more per step", HelpName = "RUN_DIR" };
        var command = new Command("bench", "Time training steps of the default model (or a preset's, or a trained run's), optionally per kernel")
        {
            steps, warmup, batchSize, hidden, latent, accelerator, csv, data, kernelTimes, dense, preset, profile, from,
        };
        command.SetAction(parse =>
        {
            new Benchmark(new BenchOptions
            {
                Steps = parse.GetValue(steps),
                WarmupSteps = parse.GetValue(warmup),
                // Left to the preset (or the default) unless given on the command line.
                BatchSize = parse.GetResult(batchSize) is { Implicit: false } ? parse.GetValue(batchSize) : null,
                Preset = parse.GetValue(preset),
                From = parse.GetValue(from),
                ProfileSteps = parse.GetValue(profile),
                Hidden = ParseWidths(parse.GetValue(hidden)!),
                Latent = parse.GetValue(latent),
                Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)),
                Csv = parse.GetValue(csv),
                Data = parse.GetValue(data),
                Kernels = parse.GetValue(kernelTimes),
                Dense = ParseDense(parse.GetValue(dense)),
            }, output).Run();
            return 0;
        });
        return command;
    }

    private static Option<string> DenseOption()
    {
        var dense = new Option<string>("--dense") { Description = "Dense kernels for the training steps: auto (the accelerator's default), simple, cpu (the CPU-shaped kernels) or tiled (shared memory, GPUs)", DefaultValueFactory = _ => "auto" };
        dense.AcceptOnlyFromAmong("auto", "simple", "cpu", "tiled");
        return dense;
    }

    /// <summary>A --dense choice; null is auto, the accelerator's default.</summary>
    private static DenseVariant? ParseDense(string? text) => text switch
    {
        "simple" => DenseVariant.Simple,
        "cpu" => DenseVariant.CpuShaped,
        "tiled" => DenseVariant.GpuTiled,
        _ => null,
    };

    private static Command PictureCommand(string name, string description,
        Func<string, int, ulong, string?, AcceleratorChoice, string> draw)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train" };
        var count = new Option<int>("--count") { Description = "How many images", DefaultValueFactory = _ => 64 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the prior draws", DefaultValueFactory = _ => 1 };
        var outPath = new Option<string?>("--out") { Description = "PNG file to write" };
        var accelerator = AcceleratorOption();
        var command = new Command(name, description) { run, count, outPath, accelerator };
        if (name == "sample")
            command.Options.Add(seed);
        command.SetAction(parse =>
        {
            draw(parse.GetValue(run)!, parse.GetValue(count), parse.GetValue(seed), parse.GetValue(outPath),
                Compute.ParseChoice(parse.GetValue(accelerator)));
            return 0;
        });
        return command;
    }

    private static Command EvalCommand(TextWriter output)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train" };
        var k = new Option<int>("--k") { Description = "Importance samples per image for L_k and NLL = −L_k", DefaultValueFactory = _ => 5000 };
        var examples = new Option<int>("--examples") { Description = "Evaluate only the first N test images (0: all)" };
        var surgery = new Option<bool>("--surgery") { Description = "ELBO surgery: split the average KL into the index-code mutual information and KL(q(z) ‖ p(z)) of the aggregate posterior" };
        var surgerySamples = new Option<int>("--surgery-samples") { Description = "z samples from q(z) for KL(q(z) ‖ p(z)) (0: one per test image)" };
        var accelerator = AcceleratorOption();
        var command = new Command("eval", "Test ELBO, rate and distortion, the k-sample bound L_k, NLL and active units of a trained run (writes RUN_DIR/eval.json)")
        {
            run, k, examples, surgery, surgerySamples, accelerator,
        };
        command.SetAction(parse =>
        {
            Evaluate.Run(parse.GetValue(run)!, parse.GetValue(k), parse.GetValue(examples), Compute.ParseChoice(parse.GetValue(accelerator)), output,
                parse.GetValue(surgery), parse.GetValue(surgerySamples));
            return 0;
        });
        return command;
    }

    private static Command InterpolateCommand(TextWriter output)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train" };
        var pairs = new Option<int>("--pairs") { Description = "Pairs of consecutive test images, one row each", DefaultValueFactory = _ => 8 };
        var steps = new Option<int>("--steps") { Description = "Decoded points along each walk, ends included", DefaultValueFactory = _ => 10 };
        var outPath = new Option<string?>("--out") { Description = "PNG file to write (default RUN_DIR/interpolations.png)" };
        var accelerator = AcceleratorOption();
        var command = new Command("interpolate", "Decode straight walks in latent space between test images, as a PNG") { run, pairs, steps, outPath, accelerator };
        command.SetAction(parse =>
        {
            Pictures.Interpolate(parse.GetValue(run)!, parse.GetValue(pairs), parse.GetValue(steps), parse.GetValue(outPath),
                Compute.ParseChoice(parse.GetValue(accelerator)), output);
            return 0;
        });
        return command;
    }

    private static Command EncodeCommand(TextWriter output)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train" };
        var split = new Option<string>("--split") { Description = "test or train", DefaultValueFactory = _ => "test" };
        split.AcceptOnlyFromAmong("test", "train");
        var outPath = new Option<string?>("--out") { Description = "CSV file to write (default RUN_DIR/codes-SPLIT.csv)" };
        var accelerator = AcceleratorOption();
        var command = new Command("encode", "Write μ and log σ² of q(z|x) for every image, with its label, as CSV") { run, split, outPath, accelerator };
        command.SetAction(parse =>
        {
            Encode.Run(parse.GetValue(run)!, parse.GetValue(split)!, parse.GetValue(outPath), Compute.ParseChoice(parse.GetValue(accelerator)), output);
            return 0;
        });
        return command;
    }

    private static Command LatentMapCommand(TextWriter output)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train with --latent 2" };
        var grid = new Option<int>("--grid") { Description = "Decoded images per side of the manifold", DefaultValueFactory = _ => 20 };
        var accelerator = AcceleratorOption();
        var command = new Command("latent-map", "For 2-D latents: the decoded manifold and the test codes coloured by label, as PNGs") { run, grid, accelerator };
        command.SetAction(parse =>
        {
            Pictures.LatentMap(parse.GetValue(run)!, parse.GetValue(grid), Compute.ParseChoice(parse.GetValue(accelerator)), output);
            return 0;
        });
        return command;
    }

    private static Command CheckCommand(TextWriter output)
    {
        var accelerator = AcceleratorOption();
        var command = new Command("check", "List the accelerators and check every kernel against its reference on one of them (exit 1 if any check fails)")
        {
            accelerator,
        };
        command.SetAction(parse => Check.Run(Compute.ParseChoice(parse.GetValue(accelerator)), output));
        return command;
    }

    private static Option<string> AcceleratorOption()
    {
        var option = new Option<string>("--accelerator")
        {
            Description = "auto (CUDA, then OpenCL, then CPU), cuda, opencl or cpu",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(Compute.AcceleratorVariable) ?? "auto",
        };
        option.AcceptOnlyFromAmong("auto", "cuda", "opencl", "cpu");
        return option;
    }

    private static int[] ParseWidths(string text, string option = "--hidden")
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out widths[i]) || widths[i] < 1)
                throw new ArgumentException($"{option}: '{parts[i]}' is not a positive width; write widths like 400 or 500,200");
        return widths;
    }
}
