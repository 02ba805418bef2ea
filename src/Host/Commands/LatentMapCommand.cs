using System.CommandLine;
using IlgpuVae.GpuKernels;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`latent-map`: the test set's codes in two dimensions.</summary>
internal static class LatentMapCommand
{
    public static Command Create(TextWriter output)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A run folder written by train with --latent 2" };
        var grid = new Option<int>("--grid") { Description = "Decoded images per side of the manifold", DefaultValueFactory = _ => 20 };
        var accelerator = AcceleratorOption();
        var command = new Command("latent-map", "For 2-D latents: the decoded manifold and the test codes coloured by label, as PNGs") { run, grid, accelerator };
        command.SetAction(parse =>
        {
            Pictures.LatentMap(parse.GetValue(run)!, parse.GetValue(grid), Compute.ParseChoice(parse.GetValue(accelerator)), output);
            return 0;
        });
        return command;
    }
}
