using System.CommandLine;
using IlgpuVae.GpuKernels;
using IlgpuVae.Host.Commands;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Host;

public static class Program
{
    public static int Main(string[] args)
    {
        // Ctrl+C asks the running command to stop at the next step and checkpoint; a second Ctrl+C kills.
        using var interrupt = new CancellationTokenSource();
        Console.CancelKeyPress += (_, press) =>
        {
            if (interrupt.IsCancellationRequested)
                return;
            press.Cancel = true;
            Console.Error.WriteLine("\nstopping after this step and writing a checkpoint (Ctrl+C again to kill)");
            interrupt.Cancel();
        };
        return Run(args, Console.Out, Console.Error, interrupt.Token);
    }

    /// <summary>
    /// Exit codes: 0 success; 2 bad input (a data file, an option, an absent accelerator); 3 training diverged;
    /// 1 anything else.
    /// Errors are one line; --verbose adds the stack trace.
    /// </summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken interrupt = default)
    {
        var verbose = new Option<bool>("--verbose") { Description = "Print stack traces with errors", Recursive = true };
        var root = new RootCommand("IlgpuVae: variational autoencoders on GPUs (and the CPU) through ILGPU") { verbose };
        root.Subcommands.Add(TrainCommand.Create(output, interrupt));
        root.Subcommands.Add(BenchCommand.Create(output));
        root.Subcommands.Add(RateDistortionCommand.Create(output, interrupt));
        root.Subcommands.Add(MutualInformationCommand.Create(output, interrupt));
        root.Subcommands.Add(CheckCommand.Create(output));
        root.Subcommands.Add(EvalCommand.Create(output));
        root.Subcommands.Add(InterpolateCommand.Create(output));
        root.Subcommands.Add(EncodeCommand.Create(output));
        root.Subcommands.Add(LatentMapCommand.Create(output));
        root.Subcommands.Add(TraverseCommand.Create(output));
        root.Subcommands.Add(PictureCommands.Create("sample", "Decode samples from the prior of a trained run into a PNG grid (default RUN_DIR/samples.png)",
            (run, count, seed, path, accelerator) => Pictures.Sample(run, count, seed, path, accelerator, output)));
        root.Subcommands.Add(PictureCommands.Create("reconstruct", "Test images beside their reconstructions from a trained run, as a PNG (default RUN_DIR/reconstructions.png)",
            (run, count, _, path, accelerator) => Pictures.Reconstruct(run, count, path, accelerator, output)));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var parseError in parse.Errors)
                error.WriteLine($"error: {parseError.Message}");
            error.WriteLine("see ilgpu-vae --help");
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception exception) when (exception is DataFormatException or ArgumentException or AcceleratorUnavailableException)
        {
            error.WriteLine($"error: {SettingNames.Describe(exception)}");
            if (parse.GetValue(verbose))
                error.WriteLine(exception);
            return 2;
        }
        catch (Exception exception)
        {
            error.WriteLine($"error: {exception.GetType().Name}: {exception.Message}");
            if (parse.GetValue(verbose))
                error.WriteLine(exception);
            return 1;
        }
    }
}
