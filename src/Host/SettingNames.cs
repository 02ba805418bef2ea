using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

/// <summary>
/// The command line's names for the configuration properties that messages from the model and kernel layers name
/// (see <see cref="SettingException"/>): those layers say <c>Latent</c>, the user typed <c>--latent</c>.
/// </summary>
internal static class SettingNames
{
    private static readonly Dictionary<string, string> Flags = new()
    {
        ["Model"] = "--model",
        ["Latent"] = "--latent",
        ["Hidden"] = "--hidden",
        ["Samples"] = "--k",
        ["StochasticLayers"] = "--stochastic-layers",
        ["Hidden2"] = "--hidden2",
        ["Latent2"] = "--latent2",
        ["Beta"] = "--beta",
        ["BatchNorm"] = "--batch-norm",
        ["GaussianVariance"] = "--gaussian-c",
        ["Likelihood"] = "--likelihood",
        ["LearningRate"] = "--lr",
        ["MaxGradientNorm"] = "--clip-grad-norm",
        ["AdamEpsilon"] = "--adam-eps",
        ["Epochs"] = "--epochs",
        ["BatchSize"] = "--batch-size",
        ["WarmupEpochs"] = "--warmup-epochs",
        ["DenseKernels"] = "--dense",
        ["InputSize"] = "the input size (pixels per image)",
        ["TrainLimit"] = "--train-limit",
        ["Accelerator"] = "--accelerator",
        ["GradientExchange"] = "--gradient-exchange",
        ["ColumnLayers"] = "--column-layers",
        ["HeldOut"] = "--held-out",
        ["Layers"] = "--dgp-layers",
        ["Inducing"] = "--inducing",
        ["InnerWidth"] = "--inner-width",
        ["Jitter"] = "--jitter",
        ["InitialNoise"] = "--initial-noise",
        ["InnerScale"] = "--inner-scale",
        ["InitialLengthscale"] = "--initial-lengthscale",
        ["InitialSignalVariance"] = "--initial-signal-variance",
    };

    /// <summary>The option that sets <paramref name="property"/>, or the property's own name when none does.</summary>
    public static string Flag(string property) =>
        Flags.TryGetValue(property, out var flag) ? flag
        : ModelCatalog.All.SelectMany(spec => spec.Options).FirstOrDefault(option => option.Property == property) is { } declared ? "--" + declared.Name
        : property;

    /// <summary>An error's message as the command line's user should read it.</summary>
    public static string Describe(Exception exception) =>
        exception is ISettingMessage setting ? setting.Render(Flag) : exception.Message;
}
