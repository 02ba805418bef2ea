using System.Globalization;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Models.Def;

namespace IlgpuVae.Model.Models.DoubleDef;

/// <summary>
/// What a double DEF is and how it trains. Layers are written as --def-layers writes them (gamma units only: the
/// paper's double DEF is sparse gamma on both sides), bottom first; the two sides' bottom layers must be as wide, since
/// each count reads z_uᵀw_i. The held-out cells are a fraction of the matrix drawn from <see cref="SplitSeed"/> alone,
/// so runs with other seeds or models are scored on the same cells.
/// </summary>
public sealed record DoubleDefSettings
{
    public const string DefaultLayers = "gamma:20,gamma:10";

    /// <summary>The row DEF (users, documents, images).</summary>
    public string RowLayers { get; init; } = DefaultLayers;

    /// <summary>The column DEF (items, terms, cells); the row layers unless given.</summary>
    public string ColumnLayers { get; init; } = DefaultLayers;

    /// <summary>α of every gamma layer's prior Gamma(α, α/μ).</summary>
    public double Alpha { get; init; } = 0.1;

    /// <summary>Draws per step (the leave-one-out baseline needs k ≥ 2).</summary>
    public int Samples { get; init; } = 4;

    public double LearningRate { get; init; } = 0.02;

    public ulong Seed { get; init; } = 1;

    /// <summary>The fraction of cells held out, and the seed that picks them.</summary>
    public double HeldOut { get; init; } = 0.1;
    public ulong SplitSeed { get; init; } = 1;

    public int[] RowWidths => Widths(RowLayers, "@DefLayers");
    public int[] ColumnWidths => Widths(ColumnLayers, "@ColumnLayers");

    /// <summary>The checks, each a one-line <see cref="SettingException"/>.</summary>
    public void Validate()
    {
        var rows = RowWidths;
        var columns = ColumnWidths;
        if (rows[0] != columns[0])
            throw new SettingException($"the rows' and columns' bottom layers must be as wide (each count reads z_uᵀw_i): @DefLayers starts with {rows[0]} units, @ColumnLayers with {columns[0]}");
        if (!(Alpha > 0) || double.IsInfinity(Alpha))
            throw new SettingException($"@DefShape, the gamma layers' shape α, must be a finite number > 0 (got {Alpha.ToString(CultureInfo.InvariantCulture)})");
        if (Samples is < 2 or > 1024)
            throw new SettingException($"@Samples must be 2 to 1024 for the double DEF (its leave-one-out baseline needs two draws; got {Samples})");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new SettingException($"@LearningRate must be a finite number > 0 (got {LearningRate.ToString(CultureInfo.InvariantCulture)})");
        if (!(HeldOut >= 0 && HeldOut < 1))
            throw new SettingException($"@HeldOut, the fraction of cells held out, must be at least 0 and below 1 (got {HeldOut.ToString(CultureInfo.InvariantCulture)})");
    }

    /// <summary>The widths of a layer spec, gamma layers only, its errors naming <paramref name="setting"/>.</summary>
    private static int[] Widths(string text, string setting)
    {
        DefLayer[] layers;
        try
        {
            layers = DefLayerSpec.Parse(text);
        }
        catch (SettingException error)
        {
            throw new SettingException(error.Template.Replace("@DefLayers", setting));
        }
        foreach (var layer in layers)
            if (layer.Kind != DefUnitKind.Gamma)
                throw new SettingException($"{setting}: the double DEF's layers are gamma (got {DefLayerSpec.Name(layer.Kind)}:{layer.Width} in '{text}')");
        return layers.Select(layer => layer.Width).ToArray();
    }

    /// <summary>As the run's settings line names the model.</summary>
    public string Describe() =>
        $"double DEF, rows {string.Join("-", RowWidths)}, columns {string.Join("-", ColumnWidths)} (sparse gamma, α = {Alpha.ToString(CultureInfo.InvariantCulture)}), k = {Samples}";
}
