using System.CommandLine;
using System.Globalization;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Models.DeepGp;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`dgp`: a deep Gaussian process on one split of a regression table (see <see cref="DeepGpTraining"/>);
/// `dgp-splits`: the same for several depths over many splits (see <see cref="DeepGpSplits"/>).</summary>
internal static class DeepGpCommand
{
    /// <summary>The options both commands share: the data, the model but its depth, and the schedule.</summary>
    private sealed class SharedOptions
    {
        private static readonly DeepGpOptions Defaults = new();
        private static DeepGpSettings Settings => Defaults.Settings;

        public readonly Option<string> Data = new("--data") { Description = "Regression: boston or diabetes (fetched on first use), toy (a 1-D step), or a CSV file (a header row, then the features and the target on each line). Classification: mnist, fashion-mnist or an image folder", DefaultValueFactory = _ => Defaults.Data };
        public readonly Option<string> Likelihood = new("--likelihood") { Description = "auto (Gaussian for a table, softmax for images), softmax or robust-max (images: the authors' MNIST likelihood, ε = 10⁻³), gaussian", DefaultValueFactory = _ => Defaults.Likelihood };
        public readonly Option<int> Inducing = new("--inducing") { Description = "Inducing points per layer (k-means initialised)", DefaultValueFactory = _ => Settings.Inducing };
        public readonly Option<int> InnerWidth = new("--inner-width") { Description = "Width of the inner layers (0: min(D, 30))", DefaultValueFactory = _ => Settings.InnerWidth };
        public readonly Option<int> Batch = new("--batch-size") { Description = "Points per step (the whole training set when smaller)", DefaultValueFactory = _ => Settings.BatchSize };
        public readonly Option<double> LearningRate = new("--lr") { Description = "Adam learning rate", DefaultValueFactory = _ => Settings.LearningRate };
        public readonly Option<double> Jitter = new("--jitter") { Description = "Added to K_ZZ's diagonal before its Cholesky factorisation", DefaultValueFactory = _ => Settings.Jitter };
        public readonly Option<double> Noise = new("--initial-noise") { Description = "Noise variance at the start, on the standardised targets", DefaultValueFactory = _ => Settings.InitialNoise };
        public readonly Option<double> Lengthscale = new("--initial-lengthscale") { Description = "Every layer's RBF lengthscales at the start (0: √D for D inputs; the authors' MNIST runs: 2)", DefaultValueFactory = _ => Settings.InitialLengthscale };
        public readonly Option<double> SignalVariance = new("--initial-signal-variance") { Description = "Every layer's RBF signal variance at the start (the authors' MNIST runs: 2)", DefaultValueFactory = _ => Settings.InitialSignalVariance };
        public readonly Option<double> InnerScale = new("--inner-scale") { Description = "Inner layers' q(u) start at this squared times the prior (nearly deterministic)", DefaultValueFactory = _ => Settings.InnerScale };
        public readonly Option<bool> Whitened = new("--whitened") { Description = "Hold q(u) whitened (u = Lv, q(v) against N(0, I)); --whitened false: as N(m, S) against N(0, K_ZZ) [default: true]", DefaultValueFactory = _ => Settings.Whitened };
        public readonly Option<ulong> Seed = new("--seed") { Description = "Seed of the k-means start and every draw", DefaultValueFactory = _ => Settings.Seed };
        public readonly Option<double> TestFraction = new("--test-fraction") { Description = "Fraction of the rows held out for testing", DefaultValueFactory = _ => Defaults.TestFraction };
        public readonly Option<ulong> SplitSeed = new("--split-seed") { Description = "Seed of the splits (kept apart from --seed, so models are scored on the same rows)", DefaultValueFactory = _ => Defaults.SplitSeed };
        public readonly Option<int> Steps = new("--steps") { Description = "Adam steps (with --resume: the total to reach)", DefaultValueFactory = _ => Defaults.Steps };
        public readonly Option<int> EvalEvery = new("--eval-every") { Description = "Steps between evaluations (and checkpoints)", DefaultValueFactory = _ => Defaults.EvalEvery };
        public readonly Option<int> Samples = new("--samples") { Description = "Passes through the layers averaged for predictions", DefaultValueFactory = _ => Defaults.Samples };
        public readonly Option<string> Accelerator = AcceleratorOption();

        /// <summary>The options that fix the model and its data (refused beside --resume).</summary>
        public Option[] Model => [Data, Likelihood, Inducing, InnerWidth, Batch, LearningRate, Jitter, Noise, Lengthscale, SignalVariance, InnerScale, Whitened, Seed, TestFraction, SplitSeed];

        public Option[] All => [.. Model, Steps, EvalEvery, Samples, Accelerator];

        public DeepGpOptions Read(ParseResult parse, int layers) => new()
        {
            Settings = new DeepGpSettings
            {
                Layers = layers,
                Inducing = parse.GetValue(Inducing),
                InnerWidth = parse.GetValue(InnerWidth),
                BatchSize = parse.GetValue(Batch),
                LearningRate = parse.GetValue(LearningRate),
                Jitter = parse.GetValue(Jitter),
                InitialNoise = parse.GetValue(Noise),
                InitialLengthscale = parse.GetValue(Lengthscale),
                InitialSignalVariance = parse.GetValue(SignalVariance),
                InnerScale = parse.GetValue(InnerScale),
                Whitened = parse.GetValue(Whitened),
                Seed = parse.GetValue(Seed),
            },
            Data = parse.GetValue(Data)!,
            Likelihood = CheckLikelihood(parse.GetValue(Likelihood)!),
            TestFraction = parse.GetValue(TestFraction),
            SplitSeed = parse.GetValue(SplitSeed),
            Steps = parse.GetValue(Steps),
            EvalEvery = parse.GetValue(EvalEvery),
            Samples = parse.GetValue(Samples),
            Accelerator = Compute.ParseChoice(parse.GetValue(Accelerator)),
        };
    }

    /// <summary>Refuses an unknown --likelihood as the options are read, before any data is loaded.</summary>
    private static string CheckLikelihood(string name) => DeepGpTraining.LikelihoodNames.Contains(name) ? name : throw DeepGpTraining.UnknownLikelihood(name);

    public static Command Create(TextWriter output, CancellationToken interrupt)
    {
        var shared = new SharedOptions();
        var layers = new Option<int>("--dgp-layers") { Description = "GP layers (1: a single sparse variational GP)", DefaultValueFactory = _ => new DeepGpSettings().Layers };
        var split = new Option<int>("--split") { Description = "Which random train/test split (0, 1, …; the paper uses 20)" };
        var outDirectory = new Option<string?>("--out") { Description = "Run folder (default runs/dgp-TIME)" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder with its own model, data and split (settings.json) up to --steps; --eval-every and --samples stay the run's own (schedule.json) unless given" };
        var profile = new Option<int>("--profile") { Description = "Time each kernel launch of the first N steps and print a line per kernel (the results are the same)" };
        var command = new Command("dgp", "Fit a deep Gaussian process (doubly stochastic VI, Salimbeni and Deisenroth 2017) to a regression table and score its test split, or classify an image set");
        foreach (var option in shared.All.Concat([layers, split, outDirectory, resume, profile]))
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            RefuseBesideResume(parse, resume, shared.Model.Concat([layers, split]));
            var options = shared.Read(parse, parse.GetValue(layers)) with
            {
                Split = parse.GetValue(split),
                Out = parse.GetValue(outDirectory),
                Resume = parse.GetValue(resume),
                ProfileSteps = parse.GetValue(profile),
            };
            options = options with
            {
                EvalEvery = RunSchedule.Keep(options.Resume, parse.GetResult(shared.EvalEvery) is { Implicit: false }, "eval_every", options.EvalEvery, "dgp"),
                Samples = RunSchedule.Keep(options.Resume, parse.GetResult(shared.Samples) is { Implicit: false }, "samples", options.Samples, "dgp"),
            };
            return DeepGpTraining.Run(options, output, interrupt);
        });
        return command;
    }

    public static Command CreateSplits(TextWriter output, CancellationToken interrupt)
    {
        var shared = new SharedOptions();
        var defaults = new DeepGpSplitsOptions();
        var depths = new Option<string>("--dgp-layers") { Description = "The depths to compare, e.g. 1,2,3 (1: a single sparse variational GP)", DefaultValueFactory = _ => string.Join(",", defaults.Depths) };
        var splits = new Option<int>("--splits") { Description = "How many random train/test splits (the paper uses 20)", DefaultValueFactory = _ => defaults.Splits };
        var outDirectory = new Option<string>("--out") { Description = "Folder of the runs, results.csv and summary.md (rerun to continue)", DefaultValueFactory = _ => defaults.Out };
        var command = new Command("dgp-splits", "Train deep GPs of several depths on each random split of a regression table, and tabulate the mean and standard error of the test log-likelihood and RMSE");
        foreach (var option in shared.All.Concat([depths, splits, outDirectory]))
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            string text = parse.GetValue(depths)!;
            var list = text.Split(',').Select(part => int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int depth) ? depth
                : throw new ArgumentException($"--dgp-layers: '{part}' in '{text}' is not a whole number of layers")).ToArray();
            foreach (int depth in list)
                (shared.Read(parse, depth)).Settings.Validate();
            var options = new DeepGpSplitsOptions { Run = shared.Read(parse, list[0]), Depths = list, Splits = parse.GetValue(splits), Out = parse.GetValue(outDirectory)! };
            return DeepGpSplits.Run(options, output, interrupt);
        });
        return command;
    }
}
