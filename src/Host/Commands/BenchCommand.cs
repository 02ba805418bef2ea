using System.CommandLine;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Models;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`bench`: timed training steps (see <see cref="Benchmark"/>).</summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter output, IlgpuVae.Model.Distributed.Communicator ranks)
    {
        var defaults = new BenchOptions();
        var steps = new Option<int>("--steps") { Description = "Timed training steps (469 = one MNIST epoch at batch 128)", DefaultValueFactory = _ => defaults.Steps };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first (kernel compilation)", DefaultValueFactory = _ => defaults.WarmupSteps };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per step (default: the preset's, else 128)", DefaultValueFactory = _ => BenchOptions.DefaultBatchSize };
        var hidden = new Option<string>("--hidden") { Description = "Hidden layer widths, comma-separated", DefaultValueFactory = _ => "400" };
        var latent = new Option<int>("--latent") { Description = "Latent dimensions (default: the model's own, else 20)", DefaultValueFactory = _ => BenchOptions.DefaultLatent };
        var model = new Option<string?>("--model") { Description = $"Time this model of the catalog with its own defaults (--hidden and --latent set its size): {string.Join(", ", ModelCatalog.Names)}", HelpName = string.Join("|", ModelCatalog.Names) };
        model.AcceptOnlyFromAmong(ModelCatalog.Names.ToArray());
        var accelerator = AcceleratorOption();
        var csv = new Option<string?>("--csv") { Description = "Also write the figures to this CSV file" };
        var data = new Option<string?>("--data") { Description = "random (MNIST-shaped random bytes), or mnist, fashion-mnist or a folder as for train [default: random, or with --from the run's data set]" };
        var kernelTimes = new Option<bool>("--kernels") { Description = "Also time the dense kernels alone (GFLOP/s at the default model's shapes and 4096×784→400)" };
        var dense = DenseOption();
        var preset = new Option<string?>("--preset") { Description = $"Time this Table 1 preset's model (its batch size unless --batch-size is given; Adam ε 1e-4, dynamic binarization) instead of the default model: {string.Join(", ", Presets.Names)}", HelpName = "NAME" };
        preset.AcceptOnlyFromAmong(Presets.Names.ToArray());
        var profile = new Option<int>("--profile") { Description = "After the timed steps, time this many more with every launch waited for, and print each kernel's launches and ms per step (0: no profile)" };
        var stream = new Option<bool>("--stream") { Description = "Stream the minibatches from pinned host memory, as train --stream does" };
        var exchange = new Option<IlgpuVae.Model.Distributed.GradientExchangeKind>("--gradient-exchange") { Description = "Under mpirun or srun: how the ranks sum their gradients, as for train: auto, host or nccl", CustomParser = Named<IlgpuVae.Model.Distributed.GradientExchangeKind>("--gradient-exchange"), HelpName = "auto|host|nccl" };
        var from = new Option<string?>("--from") { Description = "Time a trained run's model from its checkpoint (weights, Adam state, batch, binarization, data set) instead of a fresh one: a trained model can cost more per step", HelpName = "RUN_DIR" };
        var command = new Command("bench", "Time training steps of the default model (or another of the catalog, a preset's, or a trained run's), optionally per kernel")
        {
            steps, warmup, batchSize, model, hidden, latent, accelerator, csv, data, kernelTimes, dense, preset, profile, from, stream, exchange,
        };
        // A model's own settings, as train offers them.
        var modelOptions = CatalogOptions();
        foreach (var (_, option) in modelOptions)
            command.Options.Add(option);
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
                Latent = parse.GetResult(latent) is { Implicit: false } ? parse.GetValue(latent) : null,
                Model = parse.GetValue(model),
                Configure = (spec, config) => ApplyCatalogOptions(parse, modelOptions, spec, config),
                Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)),
                Csv = parse.GetValue(csv),
                Data = parse.GetValue(data),
                Kernels = parse.GetValue(kernelTimes),
                Dense = ParseDense(parse.GetValue(dense)),
                Stream = parse.GetValue(stream),
                GradientExchange = parse.GetValue(exchange),
            }, output, ranks).Run();
            return 0;
        });
        return command;
    }
}
