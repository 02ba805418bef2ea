using System.CommandLine;
using IlgpuVae.Model.Distributed;
using System.Globalization;
using IlgpuVae.GpuKernels;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`rate-distortion`: one target-rate run per σ (see <see cref="RateDistortion"/>).</summary>
internal static class RateDistortionCommand
{
    public static Command Create(TextWriter output, CancellationToken interrupt, Communicator ranks)
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
            string folder = ranks.Broadcast(parse.GetValue(outDirectory) ?? Path.Combine("runs", $"rate-distortion-{DateTime.Now:yyyyMMdd-HHmmss}")); // the ranks share one folder, named by rank 0's clock
            return RateDistortion.Run(options, targets, folder, output, interrupt, ranks);
        });
        return command;
    }
}
