using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsvHelper;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Models.DoubleDef;

namespace IlgpuVae.Host;

/// <summary>What `double-def` was asked to do: the model's settings, the data, and the schedule.</summary>
public sealed record DoubleDefOptions
{
    public DoubleDefSettings Settings { get; init; } = new();
    public string Data { get; init; } = "digits";
    public int Steps { get; init; } = 3000;
    public int EvalEvery { get; init; } = 250;
    public int EvalDraws { get; init; } = 25;
    public string? Out { get; init; }
    public string? Resume { get; init; }
    public AcceleratorChoice Accelerator { get; init; }

    /// <summary>Time each launch of the first this many steps and print a line per kernel (0: none).</summary>
    public int ProfileSteps { get; init; }
}

/// <summary>
/// The double DEF's run: trains on the whole matrix step by step, scores the held-out cells every
/// <see cref="DoubleDefOptions.EvalEvery"/> steps into metrics.csv, and writes the run folder: settings.json (what
/// --resume reads back), schedule.json (--eval-every and --eval-draws, kept by a resumed run unless given),
/// model.safetensors (the parameters, Adam's moments and the step, after every evaluation and
/// on Ctrl+C or SIGTERM) and eval.json (the last evaluation).
/// </summary>
public static class DoubleDefTraining
{
    public const string SettingsFile = "settings.json", CheckpointFile = "model.safetensors", MetricsFile = "metrics.csv", EvalFile = "eval.json",
        ComponentsFile = "components.png";

    public static int Run(DoubleDefOptions options, TextWriter output, CancellationToken interrupt)
    {
        StepLoop.CheckSchedule(options.Steps, options.EvalEvery, options.ProfileSteps);
        if (options.EvalDraws < 1)
            throw new ArgumentException($"--eval-draws must be ≥ 1 (got {options.EvalDraws})");
        string directory;
        DoubleDefSettings settings;
        string data;
        if (options.Resume is { } resume)
        {
            directory = resume;
            (settings, data) = ReadSettings(resume);
        }
        else
        {
            directory = options.Out ?? Path.Combine("runs", "double-def-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            (settings, data) = (options.Settings, options.Data);
            settings.Validate();
            if (File.Exists(Path.Combine(directory, CheckpointFile)))
                throw new ArgumentException($"{directory} already holds a run; continue it with --resume {directory} or pass another --out");
        }
        var matrix = DataSets.LoadCountMatrix(data, output);
        Directory.CreateDirectory(directory);

        using var context = Compute.CreateContext();
        using var accelerator = Compute.CreateAccelerator(context, options.Accelerator);
        using var kernels = new KernelSet(accelerator);
        using var model = new DoubleDefModel(kernels, matrix, settings);
        output.WriteLine($"accelerator: {Compute.Describe(accelerator)}");
        output.WriteLine($"data: {matrix.Name}, {matrix.Rows} × {matrix.Columns} counts, {model.TrainingCells} cells to train on and {model.HeldOutCells} held out ({settings.HeldOut.ToString(CultureInfo.InvariantCulture)} of them, split seed {settings.SplitSeed})");
        output.WriteLine($"model: {settings.Describe()}, {model.Layout.Count} parameters; Adam {settings.LearningRate.ToString(CultureInfo.InvariantCulture)}, seed {settings.Seed}");
        if (options.Resume is not null)
        {
            Restore(model, Path.Combine(directory, CheckpointFile));
            output.WriteLine($"resumed at step {model.Step} of {directory}; evaluations every {options.EvalEvery} steps with {options.EvalDraws} draws");
        }
        else
        {
            AtomicFile.WriteText(Path.Combine(directory, SettingsFile), SettingsJson(settings, data));
        }

        RunSchedule.Write(directory, ("eval_every", options.EvalEvery), ("eval_draws", options.EvalDraws));
        // The loss is read (a wait for the device) only to report it.
        int exitCode = new StepLoop
        {
            Name = "double DEF",
            Kernels = kernels,
            Output = output,
            Log = output,
            Steps = options.Steps,
            EvalEvery = options.EvalEvery,
            ProfileSteps = options.ProfileSteps,
            Step = () => model.Step,
            TrainStep = model.TrainStep,
            Loss = () => model.Loss().NegativeElbo,
            LossName = "−ELBO/cell",
            Evaluate = () => Evaluate(model, options.EvalDraws, directory, output),
            Save = () => Save(model, Path.Combine(directory, CheckpointFile), data),
            ContinueWith = $"double-def --resume {directory}",
        }.Run(interrupt);
        if (exitCode == 0)
            output.WriteLine($"run folder: {directory}");
        return exitCode;
    }

    /// <summary>Scores the model, appends the row to metrics.csv, writes eval.json and prints the figures.</summary>
    private static DoubleDefScore Evaluate(DoubleDefModel model, int draws, string directory, TextWriter output)
    {
        var score = model.Evaluate(draws);
        var baselines = model.Baselines();
        static double? Finite(double value) => double.IsFinite(value) ? value : null;
        string metrics = Path.Combine(directory, MetricsFile);
        bool header = !File.Exists(metrics);
        using (var writer = new StreamWriter(metrics, append: true))
        using (var csv = new CsvWriter(writer, CultureInfo.InvariantCulture))
        {
            if (header)
            {
                foreach (var name in new[] { "step", "negative_elbo_per_cell", "poisson_per_cell", "row_kl_per_cell", "column_kl_per_cell", "held_out_log_likelihood_per_cell" })
                    csv.WriteField(name);
                csv.NextRecord();
            }
            csv.WriteField(model.Step);
            foreach (var value in new[] { score.Training.NegativeElbo, score.Training.Reconstruction, score.Training.RowKl, score.Training.ColumnKl, score.HeldOutLogLikelihood })
                csv.WriteField(value.ToString("R", CultureInfo.InvariantCulture));
            csv.NextRecord();
        }
        var eval = new JsonObject
        {
            ["step"] = model.Step,
            ["negative_elbo_per_training_cell"] = score.Training.NegativeElbo,
            ["poisson_per_training_cell"] = score.Training.Reconstruction,
            ["row_kl_per_training_cell"] = score.Training.RowKl,
            ["column_kl_per_training_cell"] = score.Training.ColumnKl,
            ["held_out_log_likelihood_per_cell"] = double.IsFinite(score.HeldOutLogLikelihood) ? score.HeldOutLogLikelihood : null,
            ["column_means_baseline_per_cell"] = Finite(baselines.ColumnMeans),
            ["independence_baseline_per_cell"] = Finite(baselines.Independence),
            ["held_out_cells"] = model.HeldOutCells,
            ["training_cells"] = model.TrainingCells,
            ["samples_of_q"] = score.Samples,
        };
        AtomicFile.WriteText(Path.Combine(directory, EvalFile), eval.ToJsonString(RunSettingsFile.Indented));
        WriteComponents(model, Path.Combine(directory, ComponentsFile));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step {model.Step}: −ELBO per training cell {score.Training.NegativeElbo:F4} (Poisson {score.Training.Reconstruction:F4} + KL rows {score.Training.RowKl:F4} + columns {score.Training.ColumnKl:F4}); held-out log-likelihood per cell {score.HeldOutLogLikelihood:F4} ({score.Samples} samples of q; column means {baselines.ColumnMeans:F4}, independence model {baselines.Independence:F4})"));
        return score;
    }

    /// <summary>How many times larger than a cell each cell of components.png is drawn (8×8 digits → 32×32).</summary>
    private const int ComponentZoom = 4;

    /// <summary>
    /// When the columns are the cells of a square image (the digits' 8×8), components.png draws every unit of the column
    /// DEF as an image over the columns, E_q[w_{i,j}] at column i, scaled to its own largest value: the bottom layer
    /// first, in order of the counts it carries (Σ_u E z_{u,j} · Σ_i E w_{i,j}), then each layer above on new rows, in
    /// order of Σ_i E w_{i,j}. Other matrices get no picture.
    /// </summary>
    private static void WriteComponents(DoubleDefModel model, string path)
    {
        int columns = model.Data.Columns, side = (int)Math.Round(Math.Sqrt(columns));
        if (side * side != columns || side < 2)
            return;
        var parameters = model.Parameters;
        var rowMeans = model.PosteriorMeans(model.Layout.Rows, parameters)[0];
        var columnMeans = model.PosteriorMeans(model.Layout.Columns, parameters);
        int units = model.Layout.Columns.Widths[0], rows = model.Data.Rows, perRow = Math.Max(units, 10);
        var tiles = new List<float[]>();
        for (int l = 0; l < columnMeans.Length; l++)
        {
            int width = model.Layout.Columns.Widths[l];
            double Mass(int j) => Enumerable.Range(0, columns).Sum(i => columnMeans[l][i * width + j])
                                  * (l == 0 ? Enumerable.Range(0, rows).Sum(u => rowMeans[u * units + j]) : 1);
            foreach (int j in Enumerable.Range(0, width).OrderByDescending(Mass))
            {
                var image = Enumerable.Range(0, columns).Select(i => columnMeans[l][i * width + j]).ToArray();
                double largest = image.Max();
                var tile = new float[columns * ComponentZoom * ComponentZoom];
                for (int y = 0; y < side * ComponentZoom; y++)
                    for (int x = 0; x < side * ComponentZoom; x++)
                        tile[y * side * ComponentZoom + x] = (float)(image[y / ComponentZoom * side + x / ComponentZoom] / largest);
                tiles.Add(tile);
            }
            while (tiles.Count % perRow != 0)
                tiles.Add(new float[columns * ComponentZoom * ComponentZoom]);
        }
        Images.WriteGrid(path, tiles, side * ComponentZoom, side * ComponentZoom, perRow);
    }

    private static string SettingsJson(DoubleDefSettings settings, string data) => new JsonObject
    {
        ["data"] = Path.GetFullPath(data) is var full && File.Exists(data) ? full : data,
        ["row_layers"] = settings.RowLayers,
        ["column_layers"] = settings.ColumnLayers,
        ["alpha"] = settings.Alpha,
        ["k"] = settings.Samples,
        ["lr"] = settings.LearningRate,
        ["seed"] = settings.Seed,
        ["held_out"] = settings.HeldOut,
        ["split_seed"] = settings.SplitSeed,
    }.ToJsonString(RunSettingsFile.Indented);

    private static (DoubleDefSettings Settings, string Data) ReadSettings(string directory) =>
        RunSettingsFile.Read(directory, SettingsFile, "double-def", file => (new DoubleDefSettings
        {
            RowLayers = file.Get<string>("row_layers"),
            ColumnLayers = file.Get<string>("column_layers"),
            Alpha = file.Get<double>("alpha"),
            Samples = file.Get<int>("k"),
            LearningRate = file.Get<double>("lr"),
            Seed = file.Get<ulong>("seed"),
            HeldOut = file.Get<double>("held_out"),
            SplitSeed = file.Get<ulong>("split_seed"),
        }, file.Get<string>("data")));

    /// <summary>
    /// The checkpoint: per side its q table as "{side}.q" [entities, 2T] (ρ_a of each unit, then ρ_m; a = softplus(ρ_a)
    /// + 0.005, E_q[z] = softplus(ρ_m) + 1e-6) and θ_l as "{side}.theta{l}" [K_{l−1}, K_l] (V_l = softplus(θ_l)), Adam's
    /// moments as flat tensors, and the step in the metadata.
    /// </summary>
    /// <returns>False, writing nothing, when a parameter is not finite.</returns>
    private static bool Save(DoubleDefModel model, string path, string data)
    {
        var parameters = model.Parameters;
        if (!parameters.All(float.IsFinite))
            return false;
        var tensors = new List<Tensor>();
        foreach (var side in model.Layout.Sides)
        {
            tensors.Add(new Tensor($"{side.Name}.q", [side.Entities, 2 * side.TotalUnits], parameters.AsSpan((int)side.TableOffset, (int)side.TableLength).ToArray()));
            for (int l = 1; l < side.Layers; l++)
                tensors.Add(new Tensor($"{side.Name}.theta{l}", [side.Widths[l - 1], side.Widths[l]],
                    parameters.AsSpan((int)side.ThetaOffsets[l], side.ThetaLength(l)).ToArray()));
        }
        tensors.Add(new Tensor("adam.first_moment", [(int)model.Layout.Count], model.FirstMoment));
        tensors.Add(new Tensor("adam.second_moment", [(int)model.Layout.Count], model.SecondMoment));
        SafeTensors.Write(path, tensors, new Dictionary<string, string>
        {
            ["format"] = "ilgpu-vae double-def",
            ["step"] = model.Step.ToString(CultureInfo.InvariantCulture),
            ["data"] = model.Data.Name,
        });
        return true;
    }

    private static void Restore(DoubleDefModel model, string path)
    {
        if (!File.Exists(path))
            throw new DataFormatException(path, "no checkpoint here to resume from");
        var (tensors, metadata) = SafeTensors.Read(path);
        var parameters = new float[model.Layout.Count];
        Tensor Find(string name) => tensors.TryGetValue(name, out var tensor) ? tensor
            : throw new DataFormatException(path, $"tensor '{name}' is missing; this checkpoint is not of this run's double DEF");
        void Place(string name, long offset, long length)
        {
            var tensor = Find(name);
            if (tensor.Data.LongLength != length)
                throw new DataFormatException(path, $"tensor '{name}' holds {tensor.Data.LongLength} values, but this run's double DEF needs {length} (settings.json and the data must be those it was trained with)");
            tensor.Data.CopyTo(parameters, offset);
        }
        foreach (var side in model.Layout.Sides)
        {
            Place($"{side.Name}.q", side.TableOffset, side.TableLength);
            for (int l = 1; l < side.Layers; l++)
                Place($"{side.Name}.theta{l}", side.ThetaOffsets[l], side.ThetaLength(l));
        }
        if (!metadata.TryGetValue("step", out var stepText) || !long.TryParse(stepText, NumberStyles.Integer, CultureInfo.InvariantCulture, out long step))
            throw new DataFormatException(path, "the metadata has no step");
        model.Restore(parameters, Find("adam.first_moment").Data, Find("adam.second_moment").Data, step);
    }
}
