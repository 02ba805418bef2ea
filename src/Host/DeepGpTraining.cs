using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsvHelper;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Models.DeepGp;

namespace IlgpuVae.Host;

/// <summary>What `dgp` was asked to do: the model's settings, the data and split, and the schedule.</summary>
public sealed record DeepGpOptions
{
    public DeepGpSettings Settings { get; init; } = new();

    /// <summary>boston, diabetes, toy, or a regression CSV (features then target, a header row).</summary>
    public string Data { get; init; } = "boston";

    /// <summary>auto (Gaussian for a table, softmax for images), softmax or robust-max (images only), gaussian
    /// (tables only).</summary>
    public string Likelihood { get; init; } = "auto";

    public int Split { get; init; }
    public double TestFraction { get; init; } = 0.1;
    public ulong SplitSeed { get; init; } = 1;
    public int Steps { get; init; } = 20000;
    public int EvalEvery { get; init; } = 1000;

    /// <summary>Passes through the layers whose predictions are averaged (the test log-likelihood by log-mean-exp).</summary>
    public int Samples { get; init; } = 100;

    public string? Out { get; init; }
    public string? Resume { get; init; }
    public AcceleratorChoice Accelerator { get; init; }
    public int ProfileSteps { get; init; }

    /// <summary>Print nothing but the progress line, under <see cref="ProgressLabel"/>, and the final line (for the
    /// split tables, which run many of these).</summary>
    public bool Quiet { get; init; }

    /// <summary>What the progress line is headed ("deep GP" unless given).</summary>
    public string? ProgressLabel { get; init; }

    /// <summary>With <see cref="Resume"/>: score the run's checkpoint into eval.json (and its picture) and train
    /// nothing, writing no checkpoint and no metrics row (`eval RUN_DIR`).</summary>
    public bool EvaluateOnly { get; init; }
}

/// <summary>A deep GP's scores on the test rows: the log-likelihood per point and, for regression, the RMSE in the
/// target's own units (NaN for classification), for classification the error rate (NaN for regression).</summary>
public sealed record DeepGpScore(long Step, double Loss, double TestLogLikelihood, double TestRmse, double TestError, double NoiseVariance, int TestRows, int Samples);

/// <summary>
/// What a deep GP run learns from and is scored on: the training data (standardised for regression), the test inputs,
/// and how the test predictions are scored; for a one-dimensional regression, how its predictive picture is drawn.
/// </summary>
internal sealed record DeepGpProblem(string Name, string Description, DeepGpData Train, double[] TestInputs, int TestRows,
    Func<DeepGpModel, int, Action<int>?, (double LogLikelihood, double Rmse, double Error)> Score, Action<DeepGpModel, string, int>? Picture)
{
    /// <summary>Images (mnist, fashion-mnist, or a folder of them): pixels scaled to [0, 1], the softmax over the
    /// classes, scored by the test error and the log of the S-pass mean probability of the true class.</summary>
    public static DeepGpProblem Images(Model.Data.MnistFormatData data)
    {
        var (train, test) = (data.Train, data.Test);
        static double[] Pixels(Model.Data.ImageDataset images) => images.Images.Select(pixel => pixel / 255.0).ToArray();
        int classes = train.Labels.Concat(test.Labels).Max() + 1;
        var trainData = DeepGpData.Classification(Pixels(train), train.Labels.Select(label => (int)label).ToArray(), train.Count, train.Features, classes);
        var (testLabels, testPixels) = (test.Labels, Pixels(test));
        return new DeepGpProblem(train.Name, $"{train.Name}, {train.Count} training and {test.Count} test images of {train.Features} pixels, {classes} classes", trainData,
            testPixels, test.Count, (model, samples, rowsDone) =>
            {
                if (model.Settings.Likelihood == DeepGpLikelihood.RobustMax)
                    return ScoreRobustMax(model, testPixels, testLabels.Select(label => (int)label).ToArray(), classes, samples, rowsDone);
                var (logits, _) = model.Predict(testPixels, test.Count, samples, rowsDone: rowsDone);
                double logLikelihood = 0;
                int errors = 0;
                var probabilities = new double[classes];
                for (int n = 0; n < test.Count; n++)
                {
                    Array.Clear(probabilities);
                    for (int s = 0; s < samples; s++)
                    {
                        var row = logits[s].AsSpan(n * classes, classes);
                        double largest = double.NegativeInfinity, sum = 0;
                        foreach (double value in row)
                            largest = Math.Max(largest, value);
                        foreach (double value in row)
                            sum += Math.Exp(value - largest);
                        for (int c = 0; c < classes; c++)
                            probabilities[c] += Math.Exp(row[c] - largest) / sum / samples;
                    }
                    logLikelihood += Math.Log(probabilities[testLabels[n]]);
                    if (Array.IndexOf(probabilities, probabilities.Max()) != testLabels[n])
                        errors++;
                }
                return (logLikelihood / test.Count, double.NaN, errors / (double)test.Count);
            }, null);
    }

    /// <summary>
    /// The robust-max likelihood's scores: per pass the class probabilities p_c = (1 − ε)P_c + ε(1 − P_c)/(C − 1), P_c =
    /// P(f_c is the largest) under the last layer's marginals (the same Gauss–Hermite rule as training); the
    /// log-likelihood is the log of the passes' mean p_y, the error that of the argmax of the mean p. Points in parallel.
    /// </summary>
    private static (double LogLikelihood, double Rmse, double Error) ScoreRobustMax(DeepGpModel model, double[] pixels, int[] labels, int classes, int samples,
        Action<int>? rowsDone)
    {
        var (means, variances) = model.Predict(pixels, labels.Length, samples, rowsDone: rowsDone);
        var rule = GaussHermite.Rule(model.Settings.QuadraturePoints);
        double epsilon = model.Settings.RobustMaxEpsilon;
        var logLikelihoods = new double[labels.Length];
        var wrong = new bool[labels.Length];
        Parallel.For(0, labels.Length, n =>
        {
            var probabilities = new double[classes];
            for (int s = 0; s < samples; s++)
                for (int c = 0; c < classes; c++)
                {
                    double largest = GpuKernels.Reference.DeepGpLayerReference.ProbabilityIsLargest(means[s], variances![s], n, c, classes, rule);
                    probabilities[c] += ((1 - epsilon) * largest + epsilon * (1 - largest) / (classes - 1)) / samples;
                }
            logLikelihoods[n] = Math.Log(probabilities[labels[n]]);
            wrong[n] = Array.IndexOf(probabilities, probabilities.Max()) != labels[n];
        });
        return (logLikelihoods.Average(), double.NaN, wrong.Count(value => value) / (double)labels.Length);
    }

    /// <summary>Split <paramref name="index"/> of a regression table, standardised by its training rows; scored in the
    /// target's units (RMSE of the S-pass mean; log (1/S) Σ_s N(y; μ_y + σ_y μ_s, σ_y²(σ²_s + s²)) per point).</summary>
    public static DeepGpProblem Table(Model.Data.RegressionTable table, int index, double testFraction, ulong seed)
    {
        var split = table.Split(index, testFraction, seed);
        var (trainX, trainY) = split.Standardised(split.TrainRows);
        var (testX, _) = split.Standardised(split.TestRows);
        var testY = split.TestRows.Select(row => table.Targets[row]).ToArray();
        return new DeepGpProblem(table.Name,
            $"{table.Name}, {table.Rows} rows × {table.Features} features; split {index} (seed {seed}): {split.TrainRows.Length} to train, {split.TestRows.Length} to test",
            DeepGpData.Regression(trainX, trainY, split.TrainRows.Length, table.Features), testX, testY.Length,
            (model, samples, _) => DeepGpTraining.ScoreRegression(model, split, testX, testY, samples),
            table.Features == 1 ? (model, path, samples) => DeepGpTraining.WritePredictive(model, split, trainX, path, samples) : null);
    }
}

/// <summary>
/// The deep GP's run on one train/test split of a regression table (Gaussian likelihood) or on an image set's training
/// and test images (softmax): trains by Adam, scores the test rows every <see cref="DeepGpOptions.EvalEvery"/> steps
/// into metrics.csv (the test log-likelihood per point from S passes, log-mean-exp, and the RMSE or the error rate),
/// and writes the run folder: settings.json (what --resume reads back), schedule.json (the evaluations' --eval-every
/// and --samples, which a resumed run keeps unless given), model.safetensors
/// (every layer's Z, hyperparameters, q(u) and fixed mean weights, the log noise, Adam's moments and the step, F64;
/// after every evaluation and on Ctrl+C or SIGTERM), eval.json, and for one-dimensional inputs predictive.png (the
/// predictive mean and two-standard-deviation bands over the training points).
/// </summary>
public static class DeepGpTraining
{
    public const string SettingsFile = "settings.json", CheckpointFile = "model.safetensors", MetricsFile = "metrics.csv", EvalFile = "eval.json",
        PredictiveFile = "predictive.png";

    public static int Run(DeepGpOptions options, TextWriter output, CancellationToken interrupt) => Train(options, output, interrupt).ExitCode;

    /// <summary>The run; its exit code and its last score (null when stopped or diverged before one).</summary>
    public static (int ExitCode, DeepGpScore? Score) Train(DeepGpOptions options, TextWriter output, CancellationToken interrupt)
    {
        StepLoop.CheckSchedule(options.Steps, options.EvalEvery, options.ProfileSteps);
        if (options.Samples < 1)
            throw new ArgumentException($"--samples must be ≥ 1 (got {options.Samples})");
        string directory;
        DeepGpOptions run = options;
        if (options.Resume is { } resume)
        {
            directory = resume;
            run = ReadSettings(resume) with { Steps = options.Steps, EvalEvery = options.EvalEvery, Samples = options.Samples, Accelerator = options.Accelerator,
                ProfileSteps = options.ProfileSteps, Quiet = options.Quiet, ProgressLabel = options.ProgressLabel, Resume = resume, EvaluateOnly = options.EvaluateOnly };
        }
        else
        {
            directory = options.Out ?? Path.Combine("runs", "dgp-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            options.Settings.Validate();
            if (File.Exists(Path.Combine(directory, CheckpointFile)))
                throw new ArgumentException($"{directory} already holds a run; continue it with --resume {directory} or pass another --out");
        }
        bool images = DataSets.Names.Contains(run.Data) || Directory.Exists(run.Data);
        var problem = images ? DeepGpProblem.Images(DataSets.Load(run.Data, output))
            : DeepGpProblem.Table(DataSets.LoadRegressionTable(run.Data, output), run.Split, run.TestFraction, run.SplitSeed);
        // Images are classified (softmax unless asked for robust-max), tables regressed (Gaussian).
        var settings = run.Settings with { Likelihood = ChooseLikelihood(run.Likelihood, images) };
        var data = problem.Train;
        Directory.CreateDirectory(directory);

        using var context = Compute.CreateContext();
        using var accelerator = Compute.CreateAccelerator(context, run.Accelerator);
        using var kernels = new KernelSet(accelerator);
        var checkpoint = options.Resume is null ? null : ReadCheckpoint(Path.Combine(directory, CheckpointFile), new DeepGpLayout(settings, data.Features, data.Outputs));
        using var model = new DeepGpModel(kernels, settings, data, checkpoint?.Parameters, checkpoint?.MeanWeights);
        var log = run.Quiet ? TextWriter.Null : output;
        log.WriteLine($"accelerator: {Compute.Describe(accelerator)}");
        log.WriteLine($"data: {problem.Description}");
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model: deep GP, {settings.Layers} layer{(settings.Layers == 1 ? "" : "s")} ({string.Join(" → ", model.Layout.Layers.Select(layer => layer.InputWidth).Append(data.Outputs))}), {LikelihoodName(settings.Likelihood)} likelihood, {settings.Inducing} inducing points each, {(settings.Whitened ? "whitened" : "non-whitened")} q(u), {model.Layout.Count} parameters; Adam {settings.LearningRate}, batch {Math.Min(settings.BatchSize, data.Rows)}, seed {settings.Seed}"));
        if (checkpoint is not null)
        {
            model.Restore(checkpoint.Parameters, checkpoint.FirstMoment, checkpoint.SecondMoment, checkpoint.Step);
            log.WriteLine($"resumed at step {model.Step} of {directory}" +
                          (run.EvaluateOnly ? "" : $"; evaluations every {run.EvalEvery} steps with {run.Samples} samples"));
        }
        else
            AtomicFile.WriteText(Path.Combine(directory, SettingsFile), SettingsJson(run));

        if (run.EvaluateOnly)
        {
            var score = Evaluate(model, problem, run.Samples, directory, log, appendMetrics: false);
            problem.Picture?.Invoke(model, Path.Combine(directory, PredictiveFile), run.Samples);
            return (0, score);
        }
        RunSchedule.Write(directory, ("eval_every", run.EvalEvery), ("samples", run.Samples));
        DeepGpScore? last = null;
        int exitCode = new StepLoop
        {
            Name = run.ProgressLabel ?? "deep GP",
            Kernels = kernels,
            Output = output,
            Log = log,
            ProgressOutput = output,
            Steps = run.Steps,
            EvalEvery = run.EvalEvery,
            ProfileSteps = run.ProfileSteps,
            Step = () => model.Step,
            TrainStep = () => model.TrainStep(),
            Loss = model.LastLoss,
            LossName = "−ELBO/point",
            Evaluate = () => last = Evaluate(model, problem, run.Samples, directory, log),
            Save = () => Save(model, Path.Combine(directory, CheckpointFile), problem.Name),
            ContinueWith = $"dgp --resume {directory}",
        }.Run(interrupt);
        if (exitCode != 0)
            return (exitCode, last);
        problem.Picture?.Invoke(model, Path.Combine(directory, PredictiveFile), run.Samples);
        log.WriteLine($"run folder: {directory}");
        return (0, last);
    }

    /// <summary>
    /// The test rows' scores in the target's units: predictions y = μ_y + σ_y·f from S passes; RMSE of the mean of the
    /// passes' means; log-likelihood per point log (1/S) Σ_s N(y; μ_y + σ_y μ_s, σ_y²(σ²_s + s²)).
    /// </summary>
    internal static (double LogLikelihood, double Rmse, double Error) ScoreRegression(DeepGpModel model, RegressionSplit split, double[] testX, double[] testY, int samples)
    {
        var (means, variances) = model.Predict(testX, testY.Length, samples);
        double noise = model.NoiseVariance(), scale = split.TargetScale, squared = 0, logLikelihood = 0;
        var terms = new double[samples];
        for (int n = 0; n < testY.Length; n++)
        {
            double average = 0;
            for (int s = 0; s < samples; s++)
            {
                double mean = split.TargetMean + scale * means[s][n], variance = scale * scale * (variances![s][n] + noise);
                average += mean / samples;
                terms[s] = -0.5 * (Math.Log(2 * Math.PI * variance) + (testY[n] - mean) * (testY[n] - mean) / variance);
            }
            double largest = terms.Max();
            logLikelihood += largest + Math.Log(terms.Sum(term => Math.Exp(term - largest)) / samples);
            squared += (testY[n] - average) * (testY[n] - average);
        }
        return (logLikelihood / testY.Length, Math.Sqrt(squared / testY.Length), double.NaN);
    }

    /// <summary>The model's scores on the problem's test rows, and its loss at the parameters scored with the batch and
    /// draws the next step would take (so a resumed run reports what one run reports).</summary>
    internal static DeepGpScore Score(DeepGpModel model, DeepGpProblem problem, int samples, Action<int>? rowsDone = null)
    {
        var (logLikelihood, rmse, error) = problem.Score(model, samples, rowsDone);
        return new DeepGpScore(model.Step, model.Loss(model.Step + 1), logLikelihood, rmse, error, model.NoiseVariance(), problem.TestRows, samples);
    }

    private static DeepGpScore Evaluate(DeepGpModel model, DeepGpProblem problem, int samples, string directory, TextWriter output, bool appendMetrics = true)
    {
        // Progress over the test rows, shown from the first chunk of the batch size that leaves rows to go (a table's test
        // split is one chunk and shows none; MNIST's 10 000 images with 100 samples take minutes on a CPU); once per
        // quarter when the output is redirected.
        var progress = new Progress(output, problem.TestRows, "test rows");
        progress.Start("scoring");
        int reported = 0;
        void RowsDone(int rows)
        {
            if (rows < problem.TestRows && rows / progress.Interval > reported / progress.Interval)
            {
                progress.Report(rows, $"{samples} samples");
                reported = rows;
            }
        }
        var score = Score(model, problem, samples, RowsDone);
        progress.End();
        static double? Finite(double value) => double.IsFinite(value) ? value : null;
        if (appendMetrics)
            AppendMetrics(Path.Combine(directory, MetricsFile), score);
        var eval = new JsonObject
        {
            ["step"] = score.Step,
            ["negative_elbo_per_training_point"] = score.Loss,
            ["test_log_likelihood"] = score.TestLogLikelihood,
            ["test_rmse"] = Finite(score.TestRmse),
            ["test_error"] = Finite(score.TestError),
            ["noise_variance_standardised"] = Finite(score.NoiseVariance),
            ["test_rows"] = score.TestRows,
            ["samples"] = score.Samples,
            ["layer_kl"] = new JsonArray(model.LayerKl().Select(kl => (JsonNode)kl).ToArray()),
        };
        AtomicFile.WriteText(Path.Combine(directory, EvalFile), eval.ToJsonString(RunSettingsFile.Indented));
        output.WriteLine(double.IsFinite(score.TestError)
            ? string.Create(CultureInfo.InvariantCulture,
                $"step {score.Step}: −ELBO per training point {score.Loss:F4}; test log-likelihood {score.TestLogLikelihood:F4}, error {100 * score.TestError:F2}% ({score.TestRows} rows, {score.Samples} samples)")
            : string.Create(CultureInfo.InvariantCulture,
                $"step {score.Step}: −ELBO per training point {score.Loss:F4}; test log-likelihood {score.TestLogLikelihood:F4}, RMSE {score.TestRmse:F4} ({score.TestRows} rows, {score.Samples} samples; noise variance {score.NoiseVariance:G4} standardised)"));
        return score;
    }

    /// <summary>One row of metrics.csv (the header first when the file is new).</summary>
    private static void AppendMetrics(string path, DeepGpScore score)
    {
        bool header = !File.Exists(path);
        using var writer = new StreamWriter(path, append: true);
        using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
        if (header)
        {
            foreach (var name in new[] { "step", "negative_elbo_per_point", "test_log_likelihood", "test_rmse", "test_error", "noise_variance" })
                csv.WriteField(name);
            csv.NextRecord();
        }
        csv.WriteField(score.Step);
        foreach (var value in new[] { score.Loss, score.TestLogLikelihood, score.TestRmse, score.TestError, score.NoiseVariance })
            csv.WriteField(double.IsFinite(value) ? value.ToString("R", CultureInfo.InvariantCulture) : "");
        csv.NextRecord();
    }

    /// <summary>One-dimensional inputs: the predictive mean and ±2 standard deviations of the S-pass mixture (noise
    /// included) on a grid over the training range and a margin, in the data's own units, with the training points.</summary>
    internal static void WritePredictive(DeepGpModel model, RegressionSplit split, double[] trainX, string path, int samples)
    {
        const int points = 300;
        double low = trainX.Min(), high = trainX.Max(), margin = 0.25 * (high - low);
        var grid = Enumerable.Range(0, points).Select(i => low - margin + (high - low + 2 * margin) * i / (points - 1)).ToArray();
        var (means, variances) = model.Predict(grid, points, samples);
        double noise = model.NoiseVariance();
        var mean = new double[points];
        var deviation = new double[points];
        for (int i = 0; i < points; i++)
        {
            double first = 0, second = 0;
            for (int s = 0; s < samples; s++)
            {
                first += means[s][i] / samples;
                second += (variances![s][i] + noise + means[s][i] * means[s][i]) / samples;
            }
            mean[i] = split.TargetMean + split.TargetScale * first;
            deviation[i] = split.TargetScale * Math.Sqrt(Math.Max(second - first * first, 0));
        }
        double Unscale(double x) => split.FeatureMeans[0] + split.FeatureScales[0] * x;
        Plots.WritePredictive(path, grid.Select(Unscale).ToArray(), mean, deviation, split.TrainRows.Select(row => split.Table.Inputs[row]).ToArray(),
            split.TrainRows.Select(row => split.Table.Targets[row]).ToArray(), $"deep GP, {model.Settings.Layers} layer(s), step {model.Step}");
    }

    /// <summary>The names --likelihood takes.</summary>
    public static readonly string[] LikelihoodNames = ["auto", "gaussian", "softmax", "robust-max"];

    /// <summary>The likelihood <paramref name="name"/> (one of <see cref="LikelihoodNames"/>) stands for on images or a table.</summary>
    public static DeepGpLikelihood ChooseLikelihood(string name, bool images) => (name, images) switch
    {
        ("auto", true) or ("softmax", true) => DeepGpLikelihood.Softmax,
        ("robust-max", true) => DeepGpLikelihood.RobustMax,
        ("auto", false) or ("gaussian", false) => DeepGpLikelihood.Gaussian,
        ("gaussian", true) => throw new ArgumentException("--likelihood gaussian regresses a table; images are classified: --likelihood softmax or robust-max"),
        ("softmax" or "robust-max", false) => throw new ArgumentException($"--likelihood {name} classifies images; a regression table takes the Gaussian likelihood (--likelihood auto)"),
        _ => throw UnknownLikelihood(name),
    };

    /// <summary>The error for a --likelihood that is none of <see cref="LikelihoodNames"/>.</summary>
    public static ArgumentException UnknownLikelihood(string name) => new($"--likelihood: unknown '{name}'; use {string.Join(", ", LikelihoodNames)}");

    private static string LikelihoodName(DeepGpLikelihood likelihood) => likelihood switch
    {
        DeepGpLikelihood.Gaussian => "Gaussian",
        DeepGpLikelihood.Softmax => "softmax",
        _ => "robust-max",
    };

    private static string SettingsJson(DeepGpOptions options) => SettingsObject(options).ToJsonString(RunSettingsFile.Indented);

    /// <summary>What settings.json records of a run: everything that decides its numbers but the accelerator.</summary>
    internal static JsonObject SettingsObject(DeepGpOptions options)
    {
        var settings = options.Settings;
        return new JsonObject
        {
            ["data"] = File.Exists(options.Data) ? Path.GetFullPath(options.Data) : options.Data,
            ["split"] = options.Split,
            ["likelihood"] = options.Likelihood,
            ["test_fraction"] = options.TestFraction,
            ["split_seed"] = options.SplitSeed,
            ["layers"] = settings.Layers,
            ["inducing"] = settings.Inducing,
            ["inner_width"] = settings.InnerWidth,
            ["batch_size"] = settings.BatchSize,
            ["lr"] = settings.LearningRate,
            ["jitter"] = settings.Jitter,
            ["initial_noise"] = settings.InitialNoise,
            ["inner_scale"] = settings.InnerScale,
            ["initial_lengthscale"] = settings.InitialLengthscale,
            ["initial_signal_variance"] = settings.InitialSignalVariance,
            ["whitened"] = settings.Whitened,
            ["seed"] = settings.Seed,
        };
    }

    /// <summary>Whether <paramref name="directory"/> holds a dgp run (its settings.json names the inducing points).</summary>
    public static bool IsRun(string directory)
    {
        string path = Path.Combine(directory, SettingsFile);
        return File.Exists(path) && File.ReadAllText(path).Contains("\"inducing\"", StringComparison.Ordinal);
    }

    private static DeepGpOptions ReadSettings(string directory) => RunSettingsFile.Read(directory, SettingsFile, "dgp", file => new DeepGpOptions
    {
        Data = file.Get<string>("data"),
        Split = file.Get<int>("split"),
        // Runs from before --likelihood took the one their data implied.
        Likelihood = file.GetOr("likelihood", "auto"),
        TestFraction = file.Get<double>("test_fraction"),
        SplitSeed = file.Get<ulong>("split_seed"),
        Settings = new DeepGpSettings
        {
            Layers = file.Get<int>("layers"),
            Inducing = file.Get<int>("inducing"),
            InnerWidth = file.Get<int>("inner_width"),
            BatchSize = file.Get<int>("batch_size"),
            LearningRate = file.Get<double>("lr"),
            Jitter = file.Get<double>("jitter"),
            InitialNoise = file.Get<double>("initial_noise"),
            InnerScale = file.Get<double>("inner_scale"),
            InitialLengthscale = file.GetOr("initial_lengthscale", 0.0),
            InitialSignalVariance = file.GetOr("initial_signal_variance", 1.0),
            Whitened = file.Get<bool>("whitened"),
            Seed = file.Get<ulong>("seed"),
        },
    });

    /// <summary>
    /// The checkpoint, all F64: per layer l (from 1) "layer{l}.z" [M, D_in], "layer{l}.hyper" [D_in + 1] (log
    /// lengthscales, then log σ_f²), "layer{l}.q_mu" [O, M] and "layer{l}.q_sqrt" [O, M, M] (lower triangular; whitened
    /// or not as the metadata says), "layer{l}.mean_weights" [D_in, O] for inner layers; "likelihood.log_noise" [1];
    /// Adam's moments as flat tensors; the step in the metadata.
    /// </summary>
    /// <returns>False, writing nothing, when a parameter is not finite.</returns>
    private static bool Save(DeepGpModel model, string path, string data)
    {
        var parameters = model.ParameterValues;
        if (!parameters.All(double.IsFinite))
            return false;
        var tensors = new List<DoubleTensor>();
        foreach (var (name, shape, offset) in TensorPlaces(model.Layout))
            tensors.Add(new DoubleTensor(name, shape, parameters.AsSpan((int)offset, shape.Aggregate(1, (a, b) => a * b)).ToArray()));
        foreach (var layer in model.Layout.Layers.Where(layer => layer.Inner))
            tensors.Add(new DoubleTensor($"layer{layer.Index + 1}.mean_weights", [layer.InputWidth, layer.OutputWidth], model.MeanWeights[layer.Index]));
        tensors.Add(new DoubleTensor("adam.first_moment", [(int)model.Layout.Count], model.FirstMomentValues));
        tensors.Add(new DoubleTensor("adam.second_moment", [(int)model.Layout.Count], model.SecondMomentValues));
        SafeTensors.Write(path, [], tensors, new Dictionary<string, string>
        {
            ["format"] = "ilgpu-vae dgp",
            ["step"] = model.Step.ToString(CultureInfo.InvariantCulture),
            ["data"] = data,
            ["whitened"] = model.Settings.Whitened ? "true" : "false",
        });
        return true;
    }

    private static IEnumerable<(string Name, int[] Shape, long Offset)> TensorPlaces(DeepGpLayout layout)
    {
        foreach (var layer in layout.Layers)
        {
            string prefix = $"layer{layer.Index + 1}.";
            int m = layer.Inducing;
            yield return (prefix + "z", [m, layer.InputWidth], layer.InducingInputs);
            yield return (prefix + "hyper", [layer.InputWidth + 1], layer.Hyper);
            yield return (prefix + "q_mu", [layer.OutputWidth, m], layer.Means);
            yield return (prefix + "q_sqrt", [layer.OutputWidth, m, m], layer.Factors);
        }
        if (layout.Settings.Likelihood == DeepGpLikelihood.Gaussian)
            yield return ("likelihood.log_noise", [1], layout.LogNoise);
    }

    private sealed record Checkpoint(double[] Parameters, double[][] MeanWeights, double[] FirstMoment, double[] SecondMoment, long Step);

    private static Checkpoint ReadCheckpoint(string path, DeepGpLayout layout)
    {
        if (!File.Exists(path))
            throw new DataFormatException(path, "no checkpoint here to resume from");
        var (_, tensors, metadata) = SafeTensors.ReadAll(path);
        DoubleTensor Find(string name, long length)
        {
            if (!tensors.TryGetValue(name, out var tensor))
                throw new DataFormatException(path, $"tensor '{name}' is missing; this checkpoint is not of this run's deep GP");
            if (tensor.Data.LongLength != length)
                throw new DataFormatException(path, $"tensor '{name}' holds {tensor.Data.LongLength} values, but this run's deep GP needs {length} (settings.json and the data must be those it was trained with)");
            return tensor;
        }
        var parameters = new double[layout.Count];
        foreach (var (name, shape, offset) in TensorPlaces(layout))
            Find(name, shape.Aggregate(1L, (a, b) => a * b)).Data.CopyTo(parameters, offset);
        var meanWeights = layout.Layers.Where(layer => layer.Inner)
            .Select(layer => Find($"layer{layer.Index + 1}.mean_weights", (long)layer.InputWidth * layer.OutputWidth).Data).ToArray();
        if (!metadata.TryGetValue("step", out var stepText) || !long.TryParse(stepText, NumberStyles.Integer, CultureInfo.InvariantCulture, out long step))
            throw new DataFormatException(path, "the metadata has no step");
        return new Checkpoint(parameters, meanWeights, Find("adam.first_moment", layout.Count).Data, Find("adam.second_moment", layout.Count).Data, step);
    }
}
