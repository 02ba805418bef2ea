using System.CommandLine;
using IlgpuVae.GpuKernels;
using static IlgpuVae.Host.Commands.CommandOptions;

namespace IlgpuVae.Host.Commands;

/// <summary>`check`: every kernel against its reference on this machine's accelerator (see <see cref="Check"/>).</summary>
internal static class CheckCommand
{
    public static Command Create(TextWriter output)
    {
        var accelerator = AcceleratorOption();
        var command = new Command("check", "List the accelerators and check every kernel against its reference on one of them (exit 1 if any check fails)")
        {
            accelerator,
        };
        command.SetAction(parse => Check.Run(Compute.ParseChoice(parse.GetValue(accelerator)), output));
        return command;
    }
}
