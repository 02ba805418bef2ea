using System.CommandLine;
using IlgpuVae.GpuKernels;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`encode`: every image's code to CSV (see <see cref="Encode"/>).</summary>
internal static class EncodeCommand
{
    public static Command Create(TextWriter output)
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
}
