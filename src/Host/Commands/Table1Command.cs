using System.CommandLine;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Distributed;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`table1`: the IWAE paper's Table 1 presets trained and scored into one table (see <see cref="Table1"/>).</summary>
internal static class Table1Command
{
    public static Command Create(TextWriter output, CancellationToken interrupt, Communicator ranks)
    {
        var defaults = new TrainOptions();
        var presets = new Option<string>("--presets") { Description = $"Presets, comma-separated (default all ten: {string.Join(", ", Presets.Names)})", DefaultValueFactory = _ => string.Join(",", Presets.Names) };
        var schedule = new Option<LearningRateScheduleKind>("--lr-schedule") { Description = "iwae-short (the paper's eight learning rates, one epoch each: minutes per preset on a GPU) or iwae (the paper's 3280 epochs)", DefaultValueFactory = _ => LearningRateScheduleKind.IwaeShort, CustomParser = TrainCommand.ParseSchedule, HelpName = "iwae-short|iwae" };
        var k = new Option<int>("--k") { Description = "Importance samples per test image for the NLL", DefaultValueFactory = _ => 5000 };
        var examples = new Option<int>("--examples") { Description = "Score only the first N test images (0: all)" };
        var data = new Option<string>("--data") { Description = "As for train", DefaultValueFactory = _ => defaults.Data };
        var accelerator = AcceleratorOption();
        var outDirectory = new Option<string?>("--out") { Description = "Folder for one run per preset, table1.csv and table1.md (default runs/table1-TIME)" };
        var trainLimit = new Option<int>("--train-limit") { Description = "Train on only the first N training examples (0: all), for a quick look" };
        var command = new Command("table1", "Train and score the IWAE paper's Table 1 presets (one run per rank under mpirun) and write our NLL beside the paper's")
        {
            presets, schedule, k, examples, data, accelerator, outDirectory, trainLimit,
        };
        command.SetAction(parse =>
        {
            var names = parse.GetValue(presets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (names.Length == 0)
                throw new ArgumentException("--presets needs at least one preset");
            foreach (var name in names)
                if (!Presets.PaperNll.ContainsKey(name))
                    throw new ArgumentException($"--presets: unknown preset {name}; the presets are {string.Join(", ", Presets.Names)}");
            if (parse.GetValue(k) < 1)
                throw new ArgumentException($"--k must be at least 1 (got {parse.GetValue(k)})");
            var chosenSchedule = parse.GetValue(schedule);
            if (chosenSchedule == LearningRateScheduleKind.Constant)
                throw new ArgumentException("--lr-schedule for table1 is iwae-short or iwae (the presets' own rates)");
            TrainOptions OptionsFor(string preset) => Presets.Apply(preset, defaults) with
            {
                LearningRateSchedule = chosenSchedule,
                Epochs = LearningRateSchedule.Epochs(chosenSchedule),
                Data = parse.GetValue(data)!,
                Accelerator = Compute.ParseChoice(parse.GetValue(accelerator)),
                TrainLimit = parse.GetValue(trainLimit),
            };
            string folder = ranks.Broadcast(parse.GetValue(outDirectory) ?? Path.Combine("runs", $"table1-{DateTime.Now:yyyyMMdd-HHmmss}")); // one folder, named by rank 0's clock
            return Table1.Run(names, OptionsFor, parse.GetValue(k), parse.GetValue(examples), folder, output, interrupt, ranks);
        });
        return command;
    }
}
