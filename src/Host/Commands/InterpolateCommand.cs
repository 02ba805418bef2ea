using System.CommandLine;
using IlgpuVae.GpuKernels;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`interpolate`: decoded points between two test images' codes.</summary>
internal static class InterpolateCommand
{
    public static Command Create(TextWriter output)
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
}
