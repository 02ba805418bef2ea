using System.CommandLine;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Models.DeepGp;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`dgp`: a deep Gaussian process on one split of a regression table (see <see cref="DeepGpTraining"/>).</summary>
internal static class DeepGpCommand
{
    public static Command Create(TextWriter output, CancellationToken interrupt)
    {
        var defaults = new DeepGpOptions();
        var settings = defaults.Settings;
        var data = new Option<string>("--data") { Description = "boston or diabetes (fetched on first use), toy (a 1-D step), or a CSV file: a header row, then the features and the target on each line", DefaultValueFactory = _ => defaults.Data };
        var layers = new Option<int>("--dgp-layers") { Description = "GP layers (1: a single sparse variational GP)", DefaultValueFactory = _ => settings.Layers };
        var inducing = new Option<int>("--inducing") { Description = "Inducing points per layer (k-means initialised)", DefaultValueFactory = _ => settings.Inducing };
        var innerWidth = new Option<int>("--inner-width") { Description = "Width of the inner layers (0: min(D, 30))", DefaultValueFactory = _ => settings.InnerWidth };
        var batch = new Option<int>("--batch-size") { Description = "Points per step (the whole training set when smaller)", DefaultValueFactory = _ => settings.BatchSize };
        var learningRate = new Option<double>("--lr") { Description = "Adam learning rate", DefaultValueFactory = _ => settings.LearningRate };
        var jitter = new Option<double>("--jitter") { Description = "Added to K_ZZ's diagonal before its Cholesky factorisation", DefaultValueFactory = _ => settings.Jitter };
        var noise = new Option<double>("--initial-noise") { Description = "Noise variance at the start, on the standardised targets", DefaultValueFactory = _ => settings.InitialNoise };
        var innerScale = new Option<double>("--inner-scale") { Description = "Inner layers' q(u) start at this squared times the prior (nearly deterministic)", DefaultValueFactory = _ => settings.InnerScale };
        var whitened = new Option<bool>("--whitened") { Description = "Hold q(u) whitened (u = Lv, q(v) against N(0, I)); false: as N(m, S) against N(0, K_ZZ)", DefaultValueFactory = _ => settings.Whitened };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the k-means start and every draw", DefaultValueFactory = _ => settings.Seed };
        var split = new Option<int>("--split") { Description = "Which random train/test split (0, 1, …; the paper uses 20)", DefaultValueFactory = _ => defaults.Split };
        var testFraction = new Option<double>("--test-fraction") { Description = "Fraction of the rows held out for testing", DefaultValueFactory = _ => defaults.TestFraction };
        var splitSeed = new Option<ulong>("--split-seed") { Description = "Seed of the splits (kept apart from --seed, so models are scored on the same rows)", DefaultValueFactory = _ => defaults.SplitSeed };
        var steps = new Option<int>("--steps") { Description = "Adam steps (with --resume: the total to reach)", DefaultValueFactory = _ => defaults.Steps };
        var evalEvery = new Option<int>("--eval-every") { Description = "Steps between evaluations (and checkpoints)", DefaultValueFactory = _ => defaults.EvalEvery };
        var samples = new Option<int>("--samples") { Description = "Passes through the layers averaged for predictions", DefaultValueFactory = _ => defaults.Samples };
        var outDirectory = new Option<string?>("--out") { Description = "Run folder (default runs/dgp-TIME)" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder with its own model, data and split (settings.json) up to --steps" };
        var profile = new Option<int>("--profile") { Description = "Time each kernel launch of the first N steps and print a line per kernel (the results are the same)" };
        var accelerator = AcceleratorOption();
        var command = new Command("dgp", "Fit a deep Gaussian process (doubly stochastic VI, Salimbeni and Deisenroth 2017) to a regression table and score its test split")
        {
            data, layers, inducing, innerWidth, batch, learningRate, jitter, noise, innerScale, whitened, seed, split, testFraction, splitSeed, steps, evalEvery, samples,
            outDirectory, resume, profile, accelerator,
        };
        var modelOptions = new Option[] { data, layers, inducing, innerWidth, batch, learningRate, jitter, noise, innerScale, whitened, seed, split, testFraction, splitSeed };
        command.SetAction(parse =>
        {
            if (parse.GetValue(resume) is { } run)
                foreach (var option in modelOptions)
                    if (parse.GetResult(option) is { Implicit: false })
                        throw new ArgumentException($"{option.Name} is set by {run}'s settings.json: leave it out with --resume (or start a new run)");
            var options = new DeepGpOptions
            {
                Settings = new DeepGpSettings
                {
                    Layers = parse.GetValue(layers),
                    Inducing = parse.GetValue(inducing),
                    InnerWidth = parse.GetValue(innerWidth),
                    BatchSize = parse.GetValue(batch),
                    LearningRate = parse.GetValue(learningRate),
                    Jitter = parse.GetValue(jitter),
                    InitialNoise = parse.GetValue(noise),
                    InnerScale = parse.GetValue(innerScale),
                    Whitened = parse.GetValue(whitened),
                    Seed = parse.GetValue(seed),
                },
                Data = parse.GetValue(data)!,
                Split = parse.GetValue(split),
                TestFraction = parse.GetValue(testFraction),
                SplitSeed = parse.GetValue(splitSeed),
                Steps = parse.GetValue(steps),
                EvalEvery = parse.GetValue(evalEvery),
                Samples = parse.GetValue(samples),
                Out = parse.GetValue(outDirectory),
                Resume = parse.GetValue(resume),
                Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)),
                ProfileSteps = parse.GetValue(profile),
            };
            return DeepGpTraining.Run(options, output, interrupt);
        });
        return command;
    }
}
