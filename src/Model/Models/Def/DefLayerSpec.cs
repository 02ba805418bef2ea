using System.Globalization;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Models.Def;

/// <summary>
/// The deep exponential family's --def-layers: comma-separated layers, bottom (nearest the data) first, each
/// TYPE:WIDTH, as "gamma:100,gamma:40,gamma:15" (the DEF paper's sparse gamma sizes). Gamma layers are built; the
/// paper's Poisson and sigmoid-belief-net layers are named so that asking for one says so.
/// </summary>
public static class DefLayerSpec
{
    public const string Default = "gamma:100,gamma:40,gamma:15";

    /// <summary>The most layers a DEF may have.</summary>
    public const int MaxLayers = 8;

    /// <summary>The layer types the paper defines that are not built yet.</summary>
    private static readonly string[] NotBuilt = ["poisson", "sbn", "bernoulli"];

    /// <summary>The widths, bottom first, or a <see cref="SettingException"/> naming the part that does not parse.</summary>
    public static int[] Widths(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length > MaxLayers)
            throw new SettingException($"@DefLayers takes 1 to {MaxLayers} layers (got {parts.Length} in '{text}')");
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            var fields = parts[i].Split(':', StringSplitOptions.TrimEntries);
            if (fields.Length != 2 || fields[0].Length == 0)
                throw new SettingException($"@DefLayers: layer {i + 1} is '{parts[i]}'; write each layer as TYPE:WIDTH, bottom first, e.g. {Default}");
            string type = fields[0].ToLowerInvariant();
            if (NotBuilt.Contains(type))
                throw new SettingException($"@DefLayers: {type} layers (layer {i + 1}) are not built yet; gamma layers are, e.g. {Default}");
            if (type != "gamma")
                throw new SettingException($"@DefLayers: layer {i + 1} has type '{fields[0]}'; the type is gamma, e.g. {Default}");
            if (!int.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out widths[i]) || widths[i] < 1)
                throw new SettingException($"@DefLayers: layer {i + 1}'s width must be a whole number ≥ 1 (got '{fields[1]}')");
        }
        return widths;
    }

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
