using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

/// <summary>
/// Named settings that reproduce a published result, applied before the options given on the command line (which
/// win). The IWAE paper's Table 1 (Burda, Grosse and Salakhutdinov 2016): one stochastic layer 784-200-200-50,
/// two stochastic layers 784-200-200-100(z1)-100-100-50(z2), tanh, mirrored decoders, Bernoulli, dynamic
/// binarization, batch 20, Adam ε 1e-4, and the paper's 3280-epoch learning-rate schedule (--lr-schedule
/// iwae-short runs the same eight rates an epoch each).
/// </summary>
public static class Presets
{
    /// <summary>The paper's test NLL (−L_5000) for each preset, in nats.</summary>
    public static readonly IReadOnlyDictionary<string, double> PaperNll = new Dictionary<string, double>
    {
        ["vae-1layer-k1"] = 86.76,
        ["vae-1layer-k5"] = 86.47,
        ["vae-1layer-k50"] = 86.35,
        ["iwae-1layer-k5"] = 85.54,
        ["iwae-1layer-k50"] = 84.78,
        ["vae-2layer-k1"] = 85.33,
        ["vae-2layer-k5"] = 85.01,
        ["vae-2layer-k50"] = 84.78,
        ["iwae-2layer-k5"] = 83.89,
        ["iwae-2layer-k50"] = 82.90,
    };

    public static IEnumerable<string> Names => PaperNll.Keys;

    public static TrainOptions Apply(string name, TrainOptions options)
    {
        if (!PaperNll.ContainsKey(name))
            throw new ArgumentException($"unknown --preset {name}; the presets are {string.Join(", ", Names)}");
        var parts = name.Split('-');
        bool twoLayers = parts[1] == "2layer";
        return options with
        {
            Preset = name,
            Config = options.Config with
            {
                Model = ModelCatalog.Find(parts[0])!.Kind,
                Samples = int.Parse(parts[2][1..], System.Globalization.CultureInfo.InvariantCulture),
                Hidden = [200, 200],
                Latent = twoLayers ? 100 : 50,
                StochasticLayers = twoLayers ? 2 : 1,
                Hidden2 = [100, 100],
                Latent2 = 50,
                Activation = ActivationKind.Tanh,
                Likelihood = LikelihoodKind.Bernoulli,
            },
            Binarize = BinarizeMode.Dynamic,
            BatchSize = 20,
            LearningRate = 1e-3,
            AdamEpsilon = 1e-4,
            LearningRateSchedule = LearningRateScheduleKind.Iwae,
            Epochs = LearningRateSchedule.Epochs(LearningRateScheduleKind.Iwae),
        };
    }
}
