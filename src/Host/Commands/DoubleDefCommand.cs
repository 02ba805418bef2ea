using System.CommandLine;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Models.DoubleDef;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`double-def`: the double deep exponential family on a count matrix (see <see cref="DoubleDefTraining"/>).</summary>
internal static class DoubleDefCommand
{
    public static Command Create(TextWriter output, CancellationToken interrupt)
    {
        var defaults = new DoubleDefOptions();
        var settings = defaults.Settings;
        var data = new Option<string>("--data") { Description = "digits (the UCI optical digits, 1797 images × 64 cells of counts 0-16, fetched on first use) or a CSV file of counts, one matrix row per line", DefaultValueFactory = _ => defaults.Data };
        var rowLayers = new Option<string>("--def-layers") { Description = "The rows' gamma layers, bottom first, e.g. gamma:20,gamma:10 (one layer: Poisson factorization)", DefaultValueFactory = _ => settings.RowLayers };
        var columnLayers = new Option<string?>("--column-layers") { Description = "The columns' gamma layers (default: as --def-layers); the bottom widths must agree" };
        var alpha = new Option<double>("--def-shape") { Description = "α of every gamma layer's prior Gamma(α, α/μ)", DefaultValueFactory = _ => settings.Alpha };
        var samples = new Option<int>("--k") { Description = "Draws of q per step (the leave-one-out baseline needs 2 or more)", DefaultValueFactory = _ => settings.Samples };
        var learningRate = new Option<double>("--lr") { Description = "Adam learning rate", DefaultValueFactory = _ => settings.LearningRate };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the initialisation and every draw", DefaultValueFactory = _ => settings.Seed };
        var heldOut = new Option<double>("--held-out") { Description = "Fraction of the cells held out for the held-out log-likelihood", DefaultValueFactory = _ => settings.HeldOut };
        var splitSeed = new Option<ulong>("--split-seed") { Description = "Seed that picks the held-out cells (kept apart from --seed, so models are scored on the same cells)", DefaultValueFactory = _ => settings.SplitSeed };
        var steps = new Option<int>("--steps") { Description = "Adam steps on the whole matrix (with --resume: the total to reach)", DefaultValueFactory = _ => defaults.Steps };
        var evalEvery = new Option<int>("--eval-every") { Description = "Steps between evaluations (and checkpoints)", DefaultValueFactory = _ => defaults.EvalEvery };
        var evalDraws = new Option<int>("--eval-draws") { Description = "Draws of k samples of q for each evaluation", DefaultValueFactory = _ => defaults.EvalDraws };
        var outDirectory = new Option<string?>("--out") { Description = "Run folder (default runs/double-def-TIME)" };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder with its own model, data and split (settings.json) and checkpoint up to --steps (--eval-every and --eval-draws stay the run's own, schedule.json, unless given); with no steps left, evaluate it" };
        var profile = new Option<int>("--profile") { Description = "Time each kernel launch of the first N steps and print a line per kernel (the results are the same)" };
        var accelerator = AcceleratorOption();
        var command = new Command("double-def", "Fit the double deep exponential family (gamma DEFs on rows and columns, Poisson counts) to a count matrix by black-box VI, with the held-out Poisson log-likelihood")
        {
            data, rowLayers, columnLayers, alpha, samples, learningRate, seed, heldOut, splitSeed, steps, evalEvery, evalDraws, outDirectory, resume, profile, accelerator,
        };
        command.SetAction(parse =>
        {
            RefuseBesideResume(parse, resume, [data, rowLayers, columnLayers, alpha, samples, learningRate, seed, heldOut, splitSeed]);
            string rows = parse.GetValue(rowLayers)!;
            var options = new DoubleDefOptions
            {
                Settings = new DoubleDefSettings
                {
                    RowLayers = rows,
                    ColumnLayers = parse.GetValue(columnLayers) ?? rows,
                    Alpha = parse.GetValue(alpha),
                    Samples = parse.GetValue(samples),
                    LearningRate = parse.GetValue(learningRate),
                    Seed = parse.GetValue(seed),
                    HeldOut = parse.GetValue(heldOut),
                    SplitSeed = parse.GetValue(splitSeed),
                },
                Data = parse.GetValue(data)!,
                Steps = parse.GetValue(steps),
                EvalEvery = parse.GetValue(evalEvery),
                EvalDraws = parse.GetValue(evalDraws),
                Out = parse.GetValue(outDirectory),
                Resume = parse.GetValue(resume),
                Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)),
                ProfileSteps = parse.GetValue(profile),
            };
            options = options with
            {
                EvalEvery = RunSchedule.Keep(options.Resume, parse.GetResult(evalEvery) is { Implicit: false }, "eval_every", options.EvalEvery, "double-def"),
                EvalDraws = RunSchedule.Keep(options.Resume, parse.GetResult(evalDraws) is { Implicit: false }, "eval_draws", options.EvalDraws, "double-def"),
            };
            return DoubleDefTraining.Run(options, output, interrupt);
        });
        return command;
    }
}
