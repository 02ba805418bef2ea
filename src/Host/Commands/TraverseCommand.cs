using System.CommandLine;
using IlgpuVae.GpuKernels;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`traverse`: each latent layer of a VLAE varied with the others held (see <see cref="Pictures.Traverse"/>).</summary>
internal static class TraverseCommand
{
    public static Command Create(TextWriter output)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train --model vlae" };
        var steps = new Option<int>("--steps") { Description = "Values per varied dimension, over [-2, 2]", DefaultValueFactory = _ => 7 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the prior draw the other layers keep", DefaultValueFactory = _ => 1 };
        var outPath = new Option<string?>("--out") { Description = "PNG file to write (default RUN_DIR/layers.png)" };
        var accelerator = AcceleratorOption();
        var command = new Command("traverse", "For a model of several latent layers (vlae): one panel per layer, varying it with the others held, as a PNG")
        {
            run, steps, seed, outPath, accelerator,
        };
        command.SetAction(parse =>
        {
            Pictures.Traverse(parse.GetValue(run)!, parse.GetValue(steps), parse.GetValue(seed), parse.GetValue(outPath),
                Compute.ParseChoice(parse.GetValue(accelerator)), output);
            return 0;
        });
        return command;
    }
}
