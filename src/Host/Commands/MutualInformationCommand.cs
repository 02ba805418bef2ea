using System.CommandLine;
using IlgpuVae.Model.Distributed;
using System.Globalization;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Models;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`mutual-information`: one mutual-autoencoder run per target M (see <see cref="MutualInformationSweep"/>).</summary>
internal static class MutualInformationCommand
{
    public static Command Create(TextWriter output, CancellationToken interrupt, Communicator ranks)
    {
        var defaults = new TrainOptions();
        var targets = new Option<string>("--targets") { Description = "Targets M of Î(x; z) in nats, comma-separated", DefaultValueFactory = _ => "2,5,10,20" };
        var weight = new Option<double>("--mi-weight") { Description = "C, the weight of |Î − M|", DefaultValueFactory = _ => defaults.Config.MiWeight };
        var likelihood = new Option<LikelihoodKind>("--likelihood") { Description = "Decoder: bernoulli (REINFORCE through x) or gaussian (pathwise)", DefaultValueFactory = _ => defaults.Config.Likelihood, CustomParser = Named<LikelihoodKind>("--likelihood") };
        var data = new Option<string>("--data") { Description = "As for train", DefaultValueFactory = _ => defaults.Data };
        var epochs = new Option<int>("--epochs") { Description = "Epochs per target", DefaultValueFactory = _ => 3 };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per step (and pairs drawn from the model per step)", DefaultValueFactory = _ => defaults.BatchSize };
        var hidden = new Option<string>("--hidden") { Description = "Hidden layer widths, comma-separated (r(z|x) has the same)", DefaultValueFactory = _ => "400" };
        var latent = new Option<int>("--latent") { Description = "Latent dimensions", DefaultValueFactory = _ => defaults.Config.Latent };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every run", DefaultValueFactory = _ => defaults.Seed };
        var accelerator = AcceleratorOption();
        var outDirectory = new Option<string?>("--out") { Description = "Folder for one run per M, mutual-information.csv and mutual-information.png (default runs/mutual-information-TIME)" };
        var trainLimit = new Option<int>("--train-limit") { Description = "Use only the first N training examples (0: all)" };
        var testLimit = new Option<int>("--test-limit") { Description = "Use only the first N test examples (0: all)" };
        var command = new Command("mutual-information", "Train the mutual autoencoder at several targets M of I(x; z) and plot the achieved Î against M beside the distortion")
        {
            targets, weight, likelihood, data, epochs, batchSize, hidden, latent, seed, accelerator, outDirectory, trainLimit, testLimit,
        };
        command.SetAction(parse =>
        {
            var values = parse.GetValue(targets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(text => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value >= 0 && double.IsFinite(value)
                    ? value
                    : throw new ArgumentException($"--targets: '{text}' is not an amount of information in nats ≥ 0; write targets like 2,5,10"))
                .ToArray();
            if (values.Length == 0)
                throw new ArgumentException("--targets needs at least one target");
            var options = defaults with
            {
                Data = parse.GetValue(data)!, Epochs = parse.GetValue(epochs), BatchSize = parse.GetValue(batchSize),
                Config = defaults.Config with
                {
                    // The catalog's model that takes a target M (the mutual autoencoder).
                    Model = ModelCatalog.All.Single(spec => spec.Declares(nameof(VaeConfig.MutualInformation))).Kind, Hidden = ParseWidths(parse.GetValue(hidden)!), Latent = parse.GetValue(latent),
                    MiWeight = parse.GetValue(weight), Likelihood = parse.GetValue(likelihood),
                },
                Seed = parse.GetValue(seed), Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)), TrainLimit = parse.GetValue(trainLimit),
                TestLimit = parse.GetValue(testLimit),
            };
            string folder = ranks.Broadcast(parse.GetValue(outDirectory) ?? Path.Combine("runs", $"mutual-information-{DateTime.Now:yyyyMMdd-HHmmss}")); // the ranks share one folder, named by rank 0's clock
            return MutualInformationSweep.Run(options, values, folder, output, interrupt, ranks);
        });
        return command;
    }
}
