using System.Globalization;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Models.Def;

/// <summary>One layer of a DEF: its unit type and width.</summary>
public readonly record struct DefLayer(DefUnitKind Kind, int Width);

/// <summary>
/// The deep exponential family's --def-layers: comma-separated layers, bottom (nearest the data) first, each
/// TYPE:WIDTH, as "gamma:100,gamma:40,gamma:15" (the DEF paper's sparse gamma sizes); the types are gamma, poisson
/// and sbn (sigmoid belief net; "bernoulli" is the same), and a model may mix them.
/// </summary>
public static class DefLayerSpec
{
    public const string Default = "gamma:100,gamma:40,gamma:15";

    /// <summary>The most layers a DEF may have.</summary>
    public const int MaxLayers = 8;

    /// <summary>The layers, bottom first, or a <see cref="SettingException"/> naming the part that does not parse.</summary>
    public static DefLayer[] Parse(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length > MaxLayers)
            throw new SettingException($"@DefLayers takes 1 to {MaxLayers} layers (got {parts.Length} in '{text}')");
        var layers = new DefLayer[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            var fields = parts[i].Split(':', StringSplitOptions.TrimEntries);
            if (fields.Length != 2 || fields[0].Length == 0)
                throw new SettingException($"@DefLayers: layer {i + 1} is '{parts[i]}'; write each layer as TYPE:WIDTH, bottom first, e.g. {Default}");
            var kind = fields[0].ToLowerInvariant() switch
            {
                "gamma" => DefUnitKind.Gamma,
                "poisson" => DefUnitKind.Poisson,
                "sbn" or "bernoulli" => DefUnitKind.Bernoulli,
                _ => throw new SettingException($"@DefLayers: layer {i + 1} has type '{fields[0]}'; the types are gamma, poisson and sbn, e.g. {Default}"),
            };
            if (!int.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int width) || width < 1)
                throw new SettingException($"@DefLayers: layer {i + 1}'s width must be a whole number ≥ 1 (got '{fields[1]}')");
            layers[i] = new DefLayer(kind, width);
        }
        return layers;
    }

    /// <summary>The widths, bottom first (see <see cref="Parse"/>).</summary>
    public static int[] Widths(string text) => Parse(text).Select(layer => layer.Width).ToArray();

    /// <summary>The layers as the run's settings line names them: "sparse gamma layers 100-40-15" when every layer is
    /// gamma, else each with its type, "layers sbn:200-poisson:50"; then α where a gamma layer reads it.</summary>
    public static string Describe(VaeConfig config)
    {
        var layers = Parse(config.DefLayers);
        string alpha = layers.Any(layer => layer.Kind == DefUnitKind.Gamma) ? $" with α = {config.DefShape.ToString(CultureInfo.InvariantCulture)}" : "";
        return (layers.All(layer => layer.Kind == DefUnitKind.Gamma)
            ? "sparse gamma layers " + string.Join("-", layers.Select(layer => layer.Width))
            : "layers " + string.Join("-", layers.Select(layer => $"{Name(layer.Kind)}:{layer.Width}"))) + alpha;
    }

    /// <summary>A unit type as --def-layers writes it.</summary>
    public static string Name(DefUnitKind kind) => kind switch
    {
        DefUnitKind.Poisson => "poisson",
        DefUnitKind.Bernoulli => "sbn",
        _ => "gamma",
    };

    /// <summary>The checks of the DEF's settings: its layers parse, the first is <see cref="VaeConfig.Latent"/>
    /// wide, and α is positive.</summary>
    public static void Validate(VaeConfig config)
    {
        var widths = Widths(config.DefLayers);
        if (!(config.DefShape > 0) || double.IsInfinity(config.DefShape))
            throw new SettingException($"@DefShape, the gamma layers' shape α, must be a finite number > 0 (got {config.DefShape.ToString(CultureInfo.InvariantCulture)})");
        if (config.Latent != widths[0])
            throw new SettingException($"@Latent is the DEF's bottom layer, {widths[0]} units in @DefLayers {config.DefLayers}: set the widths with @DefLayers alone (got @Latent {config.Latent})");
        if (config.StochasticLayers != 1)
            throw new SettingException("the DEF's layers are set by @DefLayers: leave @StochasticLayers at 1");
    }
}
