using System.CommandLine;
using IlgpuVae.GpuKernels;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`sample`, `reconstruct` and `components`: pictures from a trained run (see <see cref="Pictures"/>).</summary>
internal static class PictureCommands
{
    public static Command Create(string name, string description,
        Func<string, int, ulong, string?, AcceleratorChoice, string> draw, bool takesCount = true)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train" };
        var count = new Option<int>("--count") { Description = "How many images", DefaultValueFactory = _ => 64 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the prior draws", DefaultValueFactory = _ => 1 };
        var outPath = new Option<string?>("--out") { Description = "PNG file to write" };
        var accelerator = AcceleratorOption();
        var command = new Command(name, description) { run, outPath, accelerator };
        if (takesCount)
            command.Options.Add(count);
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
}
