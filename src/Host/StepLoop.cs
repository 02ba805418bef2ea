using System.Globalization;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Host;

/// <summary>
/// The training loop of the models trained by steps rather than epochs (the double DEF, the deep GP): steps up to a
/// total, the loss reported at the progress interval (the only host wait it adds), an evaluation and a checkpoint
/// every so many steps and at the end, the first steps optionally profiled, and Ctrl+C or SIGTERM answered with a
/// checkpoint. A checkpoint is never written with a parameter that is not finite: a divergence ends the run with exit
/// code 3 and the last good checkpoint kept.
/// </summary>
internal sealed class StepLoop
{
    public required string Name { get; init; }
    public required KernelSet Kernels { get; init; }
    public required TextWriter Output { get; init; }

    /// <summary>Where profiles go (Output, or nothing for a quiet run).</summary>
    public required TextWriter Log { get; init; }

    /// <summary>Where the progress line goes: <see cref="Log"/> unless given (a quiet run that still shows how far it
    /// is, as each run of dgp-splits does under <see cref="Name"/>).</summary>
    public TextWriter? ProgressOutput { get; init; }

    public required int Steps { get; init; }
    public required int EvalEvery { get; init; }
    public int ProfileSteps { get; init; }

    /// <summary>Steps taken so far.</summary>
    public required Func<long> Step { get; init; }

    public required Action TrainStep { get; init; }

    /// <summary>The loss to report, and how it is named ("−ELBO/cell").</summary>
    public required Func<double> Loss { get; init; }

    public required string LossName { get; init; }

    /// <summary>Scores the model and writes what the evaluation writes.</summary>
    public required Action Evaluate { get; init; }

    /// <summary>Writes the checkpoint; false, writing nothing, when a parameter is not finite.</summary>
    public required Func<bool> Save { get; init; }

    /// <summary>The command that continues the run, for the line printed when it is stopped.</summary>
    public required string ContinueWith { get; init; }

    /// <summary>Refuses a schedule the loop cannot run: steps below 0, evaluations less often than every step,
    /// a negative number of profiled steps.</summary>
    public static void CheckSchedule(int steps, int evalEvery, int profileSteps)
    {
        if (steps < 0)
            throw new ArgumentException($"--steps must be ≥ 0 (got {steps})");
        if (evalEvery < 1)
            throw new ArgumentException($"--eval-every must be ≥ 1 step (got {evalEvery})");
        if (profileSteps < 0)
            throw new ArgumentException($"--profile must be ≥ 0 steps (got {profileSteps})");
    }

    /// <summary>Runs to <see cref="Steps"/>: 0, 3 (diverged) or <see cref="Training.Interrupted"/>.</summary>
    public int Run(CancellationToken interrupt)
    {
        var progress = new Progress(ProgressOutput ?? Log, Math.Max(1, Steps), "steps");
        progress.Start(Name, (int)Math.Min(Step(), Steps));
        bool evaluated = false;
        long profileEnd = Step() + ProfileSteps;
        if (ProfileSteps > 0)
            Kernels.Profile = new KernelProfile();
        while (Step() < Steps)
        {
            if (interrupt.IsCancellationRequested)
            {
                progress.End();
                if (!Save())
                    return Diverged(progress, "a parameter is not finite");
                Output.WriteLine($"stopped at step {Step()}; checkpoint written: continue with {ContinueWith} --steps {Steps}");
                return Training.Interrupted;
            }
            TrainStep();
            long step = Step();
            if (Kernels.Profile is { } profile && step == profileEnd)
            {
                Kernels.Profile = null;
                progress.End();
                Benchmark.WriteProfile(Log, profile, ProfileSteps);
            }
            if (step % progress.Interval == 0)
            {
                double loss = Loss();
                if (!double.IsFinite(loss))
                    return Diverged(progress, $"{LossName} {loss}");
                progress.Report((int)step, string.Create(CultureInfo.InvariantCulture, $"{LossName} {loss:F4}"));
            }
            if (step % EvalEvery == 0 || step == Steps)
            {
                progress.End();
                Evaluate();
                evaluated = true;
                if (!Save())
                    return Diverged(progress, "a parameter is not finite");
            }
        }
        progress.End();
        if (!evaluated)
            Evaluate();
        return Save() ? 0 : Diverged(progress, "a parameter is not finite");
    }

    private int Diverged(Progress progress, string what)
    {
        progress.End();
        Output.WriteLine($"training diverged by step {Step()} ({what}); the last checkpoint is kept (try a smaller --lr)");
        return 3;
    }
}

/// <summary>
/// A step-trained run's settings.json read back for --resume: a missing file, text that is not JSON, a value of the
/// wrong type or a missing name each a <see cref="Model.Data.DataFormatException"/> naming the file.
/// </summary>
internal sealed class RunSettingsFile
{
    private readonly string path;
    private readonly System.Text.Json.Nodes.JsonObject json;

    private RunSettingsFile(string path, System.Text.Json.Nodes.JsonObject json) => (this.path, this.json) = (path, json);

    /// <summary>How a step-trained run writes its JSON files (settings, schedule, eval, a table's protocol): indented, so
    /// that they read and diff line by line.</summary>
    public static readonly System.Text.Json.JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The value named <paramref name="name"/>.</summary>
    public T Get<T>(string name) => json[name] is { } node ? node.GetValue<T>() : throw new Model.Data.DataFormatException(path, $"'{name}' is missing");

    /// <summary>The value, or <paramref name="fallback"/> where a file written before the setting existed lacks it.</summary>
    public T GetOr<T>(string name, T fallback) => json[name] is { } node ? node.GetValue<T>() : fallback;

    /// <summary>Reads <paramref name="directory"/>'s settings file with <paramref name="read"/>; <paramref name="command"/>
    /// names the kind of run folder in the errors.</summary>
    public static TResult Read<TResult>(string directory, string fileName, string command, Func<RunSettingsFile, TResult> read)
    {
        string path = Path.Combine(directory, fileName);
        if (!File.Exists(path))
            throw new Model.Data.DataFormatException(path, $"not found: {directory} is not a {command} run folder (it has no {fileName})");
        try
        {
            return read(new RunSettingsFile(path, System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject()));
        }
        catch (Exception error) when (error is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            throw new Model.Data.DataFormatException(path, $"not a {command} settings file: {error.Message}");
        }
    }
}

/// <summary>
/// A step-trained run's evaluation schedule, schedule.json beside settings.json: how often it is scored and with how many
/// draws. A resumed run keeps the values its command line leaves out (as `train --resume` keeps an epoch run's), and
/// every training call writes what it used, for the next. Kept apart from settings.json, which records only what decides
/// the model's numbers (and which dgp-splits compares across a table's runs).
/// </summary>
internal static class RunSchedule
{
    public const string FileName = "schedule.json";

    public static void Write(string directory, params (string Name, int Value)[] values)
    {
        var json = new System.Text.Json.Nodes.JsonObject();
        foreach (var (name, value) in values)
            json[name] = value;
        Model.Checkpoints.AtomicFile.WriteText(Path.Combine(directory, FileName),
            json.ToJsonString(RunSettingsFile.Indented));
    }

    /// <summary><paramref name="given"/> when the command line gave it or nothing is resumed; otherwise the value
    /// <paramref name="name"/> in the resumed run's schedule.json, or <paramref name="given"/> (the default) where the run
    /// has none (a run from before the file was written). A value below 1 there is refused, naming the file.</summary>
    public static int Keep(string? resumed, bool explicitlyGiven, string name, int given, string command)
    {
        if (resumed is null || explicitlyGiven || !File.Exists(Path.Combine(resumed, FileName)))
            return given;
        int kept = RunSettingsFile.Read(resumed, FileName, command, file => file.GetOr(name, given));
        return kept >= 1 ? kept : throw new Model.Data.DataFormatException(Path.Combine(resumed, FileName), $"'{name}' must be ≥ 1 (got {kept})");
    }
}
