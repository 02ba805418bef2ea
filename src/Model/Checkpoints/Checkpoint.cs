using System.Text.Json;
using System.Text.Json.Serialization;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Model.Checkpoints;

/// <summary>What a checkpoint records besides the tensors: enough to continue training exactly.</summary>
public sealed record CheckpointState
{
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;
    /// <summary>Epochs completed.</summary>
    public int Epoch { get; init; }
    /// <summary>Steps done in the epoch after <see cref="Epoch"/> when the checkpoint was taken mid-epoch (0 at
    /// an epoch's end); resuming continues that epoch from here.</summary>
    public int StepInEpoch { get; init; }
    /// <summary>That epoch's running training sums [Σ rec, Σ KL, examples], so its train loss stays exact.</summary>
    public double[] TrainingSums { get; init; } = [0, 0, 0];
    /// <summary>Optimiser steps taken; with the seed it keys every later random draw (Philox is counter-based,
    /// so no generator state needs saving).</summary>
    public long Step { get; init; }
    public ulong Seed { get; init; }
    public VaeConfig Model { get; init; } = new();
    public AdamSettings Adam { get; init; } = new();

    /// <summary>Where training stood, as the commands that read a checkpoint print it: "after epoch 2 (step 6000)"
    /// or "after epoch 2 and 750 steps of epoch 3 (step 6750)".</summary>
    public string Position() =>
        $"after epoch {Epoch}" + (StepInEpoch > 0 ? $" and {StepInEpoch} steps of epoch {Epoch + 1}" : "") + $" (step {Step})";
}

/// <summary>A checkpoint read back: state, the flat parameters and Adam's moments in the model's layout.</summary>
public sealed record LoadedCheckpoint(CheckpointState State, float[] Parameters, float[] FirstMoment, float[] SecondMoment)
{
    /// <summary>Puts the weights, Adam's moments and the step count into <paramref name="vae"/>, which must have
    /// the checkpoint's configuration.</summary>
    public void RestoreInto(Vae vae) => vae.RestoreState(Parameters, FirstMoment, SecondMoment, State.Step);
}

/// <summary>
/// A checkpoint folder: model.safetensors (the weights as named, shaped tensors: encoder.{i}.weight [out, in],
/// encoder.mu / encoder.logvar (the two halves of the stats layer), decoder.{i}, decoder.out, each with .weight
/// and .bias; two stochastic layers add encoder2.* and prior.* likewise, and a Ladder VAE of L layers encoder3 … encoderL
/// and prior2 … prior{L−1} (p(z_l|z_{l+1}) is prior{l}), with *.softplus_var in place of *.logvar where its variances are
/// softplus), optimizer.safetensors (Adam's flat moment buffers), and state.json. A save writes a complete new
/// folder beside the old one and then swaps the two by renames, so a process killed at any moment leaves one
/// whole checkpoint (<see cref="Load"/> also looks for the previous folder, in case the kill fell between the
/// two renames). A folder without optimizer.safetensors (a model shared for evaluation only) loads with
/// <c>optimizerRequired: false</c>, its moments zero; resuming training needs the file.
/// </summary>
public static class Checkpoint
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string StateFile = "state.json";

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    /// <summary>
    /// Saves the model after <paramref name="epoch"/> completed epochs and <paramref name="stepInEpoch"/> steps of
    /// the next, with that epoch's running training sums (waits for the device).
    /// </summary>
    public static void Save(string directory, Vae vae, int epoch, int stepInEpoch = 0, LossSums partialSums = default)
    {
        string fresh = directory + ".partial", previous = directory + ".previous";
        if (Directory.Exists(fresh))
            Directory.Delete(fresh, recursive: true);
        Directory.CreateDirectory(fresh);
        var (parameters, firstMoment, secondMoment) = vae.ExportState();
        var metadata = new Dictionary<string, string> { ["format"] = "ilgpu-vae", ["epoch"] = epoch.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        SafeTensors.Write(Path.Combine(fresh, ModelFile), ModelTensors(vae.Layout, vae.Config, parameters), metadata);
        SafeTensors.Write(Path.Combine(fresh, OptimizerFile),
            [new Tensor("adam.first_moment", [firstMoment.Length], firstMoment), new Tensor("adam.second_moment", [secondMoment.Length], secondMoment)]);
        var state = new CheckpointState
        {
            Epoch = epoch,
            StepInEpoch = stepInEpoch,
            TrainingSums = partialSums.ToArray(),
            Step = vae.Step,
            Seed = vae.Seed,
            Model = vae.Config,
            Adam = vae.Adam,
        };
        AtomicFile.WriteText(Path.Combine(fresh, StateFile), JsonSerializer.Serialize(state, JsonOptions));

        if (Directory.Exists(previous))
            Directory.Delete(previous, recursive: true);
        if (Directory.Exists(directory))
            Directory.Move(directory, previous);
        Directory.Move(fresh, directory);
        if (Directory.Exists(previous))
            Directory.Delete(previous, recursive: true);
    }

    public static LoadedCheckpoint Load(string directory, bool optimizerRequired = true)
    {
        // A save killed between its two renames leaves only the previous folder: it is a whole checkpoint.
        if (!Directory.Exists(directory) && Directory.Exists(directory + ".previous"))
            directory += ".previous";
        string statePath = Path.Combine(directory, StateFile);
        if (!File.Exists(statePath))
            throw new DataFormatException(statePath, "file not found: this folder holds no checkpoint (train writes one after every epoch)");
        CheckpointState state;
        try
        {
            state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(statePath), JsonOptions)
                    ?? throw new JsonException("empty document");
        }
        catch (JsonException exception)
        {
            throw new DataFormatException(statePath, $"not a valid checkpoint state ({exception.Message})", inner: exception);
        }
        if (state.TrainingSums.Length is not (3 or 5 or 6) || state.StepInEpoch < 0 || state.Epoch < 0)
            throw new DataFormatException(statePath, "epoch, step in epoch or training sums are out of range");
        if (state.Format != CheckpointState.CurrentFormat)
            throw new DataFormatException(statePath, $"checkpoint format {state.Format} is not supported (this build reads format {CheckpointState.CurrentFormat})");
        try
        {
            state.Model.Validate();
        }
        catch (ArgumentException exception)
        {
            throw new DataFormatException(statePath, $"model settings are invalid: {exception.Message}", inner: exception);
        }

        var layout = new ParameterLayout(state.Model);
        string modelPath = Path.Combine(directory, ModelFile);
        var parameters = new float[layout.Count];
        var (tensors, _) = SafeTensors.Read(modelPath);
        foreach (var (name, shape, offset) in TensorSlices(layout, state.Model))
        {
            if (!tensors.TryGetValue(name, out var tensor))
                throw new DataFormatException(modelPath, $"tensor {name} is missing");
            if (!tensor.Shape.SequenceEqual(shape))
                throw new DataFormatException(modelPath, $"tensor {name} has shape [{string.Join(",", tensor.Shape)}], the model needs [{string.Join(",", shape)}]");
            if (tensor.Data.Any(value => !float.IsFinite(value)))
                throw new DataFormatException(modelPath, $"tensor {name} holds NaN or infinite values");
            tensor.Data.CopyTo(parameters, offset);
        }

        string optimizerPath = Path.Combine(directory, OptimizerFile);
        if (!File.Exists(optimizerPath))
        {
            if (optimizerRequired)
                throw new DataFormatException(optimizerPath, "file not found: this checkpoint holds the model without Adam's state, so it can be evaluated, sampled and encoded but not trained further");
            // Adam's moments matter only to the next training step, which these callers never take.
            return new LoadedCheckpoint(state, parameters, new float[layout.Count], new float[layout.Count]);
        }
        var (moments, _) = SafeTensors.Read(optimizerPath);
        float[] Moment(string name) =>
            moments.TryGetValue(name, out var tensor) && tensor.Data.Length == layout.Count
                ? tensor.Data
                : throw new DataFormatException(optimizerPath, $"tensor {name} is missing or does not hold {layout.Count} values");
        return new LoadedCheckpoint(state, parameters, Moment("adam.first_moment"), Moment("adam.second_moment"));
    }

    /// <summary>The named tensors of a flat parameter buffer (copies), in layout order.</summary>
    public static List<Tensor> ModelTensors(ParameterLayout layout, VaeConfig config, float[] parameters) =>
        TensorSlices(layout, config)
            .Select(slice => new Tensor(slice.Name, slice.Shape,
                parameters.AsSpan(slice.Offset, slice.Shape.Aggregate(1, (product, size) => product * size)).ToArray()))
            .ToList();

    /// <summary>
    /// Where each saved tensor lives in the flat buffer: the one mapping that saving and loading both use. The
    /// stats layer is saved as two pairs of tensors, as PyTorch's VAE example keeps μ and log σ² as two layers (fc21,
    /// fc22): its first <c>latent</c> rows and biases are μ, the rest log σ².
    /// </summary>
    private static IEnumerable<(string Name, int[] Shape, int Offset)> TensorSlices(ParameterLayout layout, VaeConfig config)
    {
        foreach (var layer in layout.Layers)
        {
            if (layer.State)
            {
                yield return (layer.Name, [layer.Outputs], layer.BiasOffset);
                continue;
            }
            if (layer.Name.EndsWith(".stats", StringComparison.Ordinal))
            {
                string stage = layer.Name[..^".stats".Length];
                bool rankOne = config.Covariance == CovarianceKind.RankOne && layer.Posterior;
                if ((config.FlowLength > 0 && layer.Posterior) || (config.AuxiliaryFlowLength > 0 && stage == "hvm.r"))
                {
                    // μ and log σ² of the flow's base (μ, log d and u of a rank-one base), then every step's (u, w, b)
                    // rows as one tensor (the posterior's flow, or the HVM's inverse flow in r).
                    int latent = config.Latent;
                    string[] parts = rankOne ? ["mu", "logd", "u"] : ["mu", "logvar"];
                    foreach (var (part, index) in parts.Select((part, index) => (part, index)))
                    {
                        yield return ($"{stage}.{part}.weight", [latent, layer.Inputs], layer.WeightOffset + index * latent * layer.Inputs);
                        yield return ($"{stage}.{part}.bias", [latent], layer.BiasOffset + index * latent);
                    }
                    int baseRows = parts.Length * latent, flowRows = layer.Outputs - baseRows;
                    yield return ($"{stage}.flow.weight", [flowRows, layer.Inputs], layer.WeightOffset + baseRows * layer.Inputs);
                    yield return ($"{stage}.flow.bias", [flowRows], layer.BiasOffset + baseRows);
                    continue;
                }
                // (The Gaussians that are not posteriors stay [m | u]: prior networks, learned marginals, r's.)
                if (rankOne)
                {
                    // The rank-one posterior's [μ | log d | u] (every head's share of it, for models of several
                    // heads), one pair of tensors each.
                    int width = layer.Outputs / 3;
                    foreach (var (part, index) in new[] { "mu", "logd", "u" }.Select((part, index) => (part, index)))
                    {
                        yield return ($"{stage}.{part}.weight", [width, layer.Inputs], layer.WeightOffset + index * width * layer.Inputs);
                        yield return ($"{stage}.{part}.bias", [width], layer.BiasOffset + index * width);
                    }
                    continue;
                }
                int half = config.Spec.GaussianStatistics ? layer.Outputs / 2 : layer.Outputs;
                yield return ($"{stage}.mu.weight", [half, layer.Inputs], layer.WeightOffset);
                yield return ($"{stage}.mu.bias", [half], layer.BiasOffset);
                if (!config.Spec.GaussianStatistics)
                    continue; // the autoencoder's code is its only output
                // A Ladder VAE with softplus variances writes ρ, σ² = softplus(ρ), where the others write log σ².
                string variance = config.LadderVariance == VarianceForm.Softplus ? "softplus_var" : "logvar";
                yield return ($"{stage}.{variance}.weight", [half, layer.Inputs], layer.WeightOffset + half * layer.Inputs);
                yield return ($"{stage}.{variance}.bias", [half], layer.BiasOffset + half);
                continue;
            }
            yield return (layer.Name + ".weight", [layer.Outputs, layer.Inputs], layer.WeightOffset);
            yield return (layer.Name + ".bias", [layer.Outputs], layer.BiasOffset);
            if (!layer.BatchNorm)
                continue;
            // As PyTorch's BatchNorm1d names them.
            yield return (layer.Name + ".norm.weight", [layer.Outputs], layer.NormOffset);
            yield return (layer.Name + ".norm.bias", [layer.Outputs], layer.NormOffset + layer.Outputs);
            yield return (layer.Name + ".norm.running_mean", [layer.Outputs], layer.NormOffset + 2 * layer.Outputs);
            yield return (layer.Name + ".norm.running_var", [layer.Outputs], layer.NormOffset + 3 * layer.Outputs);
        }
    }
}
