using System.CommandLine;
using IlgpuVae.GpuKernels;
using IlgpuVae.Host.Commands;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Distributed;

namespace IlgpuVae.Host;

public static class Program
{
    private static volatile bool aborting;

    /// <summary>The commands that share their work over an MPI job's ranks (see docs/SCALE.md).</summary>
    private static readonly string[] DistributedCommands = ["train", "eval", "rate-distortion", "mutual-information", "table1", "bench"];

    public static int Main(string[] args)
    {
        using var interrupt = new CancellationTokenSource();
        Communicator ranks;
        try
        {
            ranks = Communicator.FromEnvironment();
        }
        catch (InvalidOperationException exception)
        {
            Console.Error.WriteLine($"error: {exception.Message}");
            return 2;
        }
        if (ranks is not MpiCommunicator mpi)
        {
            // Ctrl+C asks the running command to stop at the next step and checkpoint; a second Ctrl+C kills.
            Console.CancelKeyPress += (_, press) =>
            {
                if (interrupt.IsCancellationRequested)
                    return;
                press.Cancel = true;
                Console.Error.WriteLine("\nstopping after this step and writing a checkpoint (Ctrl+C again to kill)");
                interrupt.Cancel();
            };
            // SIGTERM (kill, a batch scheduler's time limit, a container stopping) stops the same way, so the work
            // since the last checkpoint is kept; SIGKILL still kills at once.
            using var stop = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, signal =>
            {
                signal.Cancel = true;
                if (interrupt.IsCancellationRequested)
                    return;
                Console.Error.WriteLine("\nSIGTERM: stopping after this step and writing a checkpoint (SIGKILL to kill)");
                interrupt.Cancel();
            });
            return Run(args, Console.Out, Console.Error, interrupt.Token, ranks);
        }

        // Under mpirun, Ctrl+C reaches the ranks as SIGTERM: it stops them as Ctrl+C stops one process (the ranks
        // agree to stop after the same step; rank 0 writes the checkpoint).
        // mpirun also sends it to the others when a rank dies; then this rank may be waiting for the dead one and
        // is killed a moment later, so the line is printed now, and the checkpoint on disk is the last complete one.
        using var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, signal =>
        {
            signal.Cancel = true;
            if (ranks.IsRoot && !interrupt.IsCancellationRequested && !aborting)
                Console.Error.WriteLine("stopping: the launcher ended the job (Ctrl+C, or a rank ended; mpirun names it); " +
                                        $"the run folder keeps its last complete checkpoint: continue with train --resume {Training.ActiveRunFolder ?? "RUN_DIR"}");
            interrupt.Cancel();
        });
        // Rank 0 prints; the others report only what happened to them alone, with their rank.
        var output = ranks.IsRoot ? Console.Out : TextWriter.Null;
        var error = ranks.IsRoot ? Console.Error : new RankErrors(Console.Error, ranks.Rank);
        int exitCode = Run(args, output, error, interrupt.Token, ranks);
        if (exitCode is 0 or 3 or Training.Interrupted)
        {
            // Every rank reaches these ends together (the loss and the stop are agreed), so all finalise.
            mpi.Dispose();
            return exitCode;
        }
        // A failure: other ranks may be waiting for this one in a collective call, where they would wait for
        // ever. MPI_Abort has mpirun end them all, with this exit code.
        Console.Out.Flush();
        error.Flush();
        aborting = true; // the SIGTERM that follows is this abort's, not news for the user
        mpi.Abort(exitCode);
        return exitCode;
    }

    /// <summary>A rank's error lines, prefixed with its rank; errors every rank meets alike (a bad option, a
    /// missing file) are left to rank 0.</summary>
    private sealed class RankErrors(TextWriter inner, int rank) : TextWriter
    {
        public override System.Text.Encoding Encoding => inner.Encoding;
        public override void Write(char value) => inner.Write(value);
        public override void WriteLine(string? value) => inner.WriteLine($"rank {rank}: {value}");
        public override void Flush() => inner.Flush();
    }

    /// <summary>
    /// Exit codes: 0 success; 2 bad input (a data file, an option, an absent accelerator); 3 training diverged;
    /// 1 anything else.
    /// Errors are one line; --verbose adds the stack trace.
    /// </summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken interrupt = default, Communicator? ranks = null)
    {
        ranks ??= SingleProcess.Instance;
        var verbose = new Option<bool>("--verbose") { Description = "Print stack traces with errors", Recursive = true };
        var root = new RootCommand("IlgpuVae: variational autoencoders on GPUs (and the CPU) through ILGPU") { verbose };
        root.Subcommands.Add(TrainCommand.Create(output, interrupt, ranks));
        root.Subcommands.Add(BenchCommand.Create(output, ranks));
        root.Subcommands.Add(RateDistortionCommand.Create(output, interrupt, ranks));
        root.Subcommands.Add(MutualInformationCommand.Create(output, interrupt, ranks));
        root.Subcommands.Add(Table1Command.Create(output, interrupt, ranks));
        root.Subcommands.Add(CheckCommand.Create(output));
        root.Subcommands.Add(DoubleDefCommand.Create(output, interrupt));
        root.Subcommands.Add(DeepGpCommand.Create(output, interrupt));
        root.Subcommands.Add(DeepGpCommand.CreateSplits(output, interrupt));
        root.Subcommands.Add(EvalCommand.Create(output, ranks));
        root.Subcommands.Add(InterpolateCommand.Create(output));
        root.Subcommands.Add(EncodeCommand.Create(output));
        root.Subcommands.Add(LatentMapCommand.Create(output));
        root.Subcommands.Add(TraverseCommand.Create(output));
        root.Subcommands.Add(PictureCommands.Create("sample", "Decode samples from the prior of a trained run into a PNG grid (default RUN_DIR/samples.png)",
            (run, count, seed, path, accelerator) => Pictures.Sample(run, count, seed, path, accelerator, output)));
        root.Subcommands.Add(PictureCommands.Create("reconstruct", "Test images beside their reconstructions from a trained run, as a PNG (default RUN_DIR/reconstructions.png)",
            (run, count, _, path, accelerator) => Pictures.Reconstruct(run, count, path, accelerator, output)));
        root.Subcommands.Add(PictureCommands.Create("components", "Each layer's units of a trained DEF as images, the rates each adds to the pixels (default RUN_DIR/components.png)",
            (run, _, _, path, accelerator) => Pictures.Components(run, path, accelerator, output), takesCount: false));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            if (ranks.IsRoot)
            {
                foreach (var parseError in parse.Errors)
                    error.WriteLine($"error: {parseError.Message}");
                error.WriteLine("see ilgpu-vae --help");
            }
            return 2;
        }
        // The commands that share their work over an MPI job's ranks; the others would only repeat it N times.
        string command = parse.CommandResult.Command.Name;
        if (ranks.Size > 1 && !DistributedCommands.Contains(command) && parse.CommandResult.Command != root)
        {
            if (ranks.IsRoot)
                error.WriteLine($"error: {command} runs as one process; under mpirun or srun run train, eval, {string.Join(", ", DistributedCommands.Skip(2))} (or start {command} without the launcher)");
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception exception) when (exception is DataFormatException or ArgumentException or AcceleratorUnavailableException)
        {
            // Every rank reads the same options and files: rank 0 says it once.
            if (ranks.IsRoot)
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
