using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Models.Def;

namespace IlgpuVae.Model.Models.DoubleDef;

/// <summary>
/// One side of a double DEF (its rows, or its columns): <see cref="Entities"/> of them, each with gamma layers of
/// <see cref="Widths"/> units, bottom first. Its parameters sit in the model's flat buffer from
/// <see cref="TableOffset"/>: q's table [entities, 2T] (each entity's [ρ_a of every unit | ρ_m of every unit], T units
/// in all, the layout <see cref="DeepExponential.GammaPosteriorSample"/> reads as statistics, one row per entity: the
/// paper's local parameters, not amortised), then θ_l [K_{l−1}, K_l] for l = 1 … L−1, with V_l = softplus(θ_l) ≥ 0
/// writing μ_{l−1} = V_l·z_l + ε.
/// </summary>
public sealed class DoubleDefSide
{
    public DoubleDefSide(string name, int entities, int[] widths, long tableOffset)
    {
        Name = name;
        Entities = entities;
        Widths = widths;
        Offsets = DefFamily.Offsets(widths);
        TotalUnits = widths.Sum();
        TableOffset = tableOffset;
        ThetaOffsets = new long[widths.Length];
        long next = tableOffset + TableLength;
        for (int l = 1; l < widths.Length; l++)
        {
            ThetaOffsets[l] = next;
            next += ThetaLength(l);
        }
        End = next;
    }

    /// <summary>"rows" or "columns": the prefix of its checkpoint tensors and buffers.</summary>
    public string Name { get; }
    public int Entities { get; }
    public int[] Widths { get; }
    public int[] Offsets { get; }
    public int TotalUnits { get; }
    public int Layers => Widths.Length;
    public long TableOffset { get; }
    public long TableLength => (long)Entities * 2 * TotalUnits;
    public long[] ThetaOffsets { get; }
    public int ThetaLength(int l) => Widths[l - 1] * Widths[l];

    /// <summary>Where this side's parameters end in the flat buffer.</summary>
    public long End { get; }

    public GammaLayerShape Shape(int l, int samples) => new(Widths[l], Offsets[l], TotalUnits, samples);
}

/// <summary>The flat parameter buffer of a double DEF: the rows' side, then the columns'.</summary>
public sealed class DoubleDefLayout
{
    public DoubleDefLayout(DoubleDefSettings settings, int rows, int columns)
    {
        Rows = new DoubleDefSide("rows", rows, settings.RowWidths, 0);
        Columns = new DoubleDefSide("columns", columns, settings.ColumnWidths, Rows.End);
        Count = Columns.End;
    }

    public DoubleDefSide Rows { get; }
    public DoubleDefSide Columns { get; }
    public long Count { get; }
    public IEnumerable<DoubleDefSide> Sides => [Rows, Columns];

    /// <summary>
    /// The starting parameters: every q with shape a = 1 and a mean drawn uniformly in [½, 3/2] times a scale — for the
    /// bottom layers √(ȳ/K) on both sides, so that the rates z_uᵀw_i start near the mean count ȳ, and 1 above them —
    /// and every V_l as the DEF's positive layers start (softplus(θ) = u/K_l, u uniform in (0, 1)). All from Philox's
    /// initialisation stream, so the CPU and a GPU start alike.
    /// </summary>
    public float[] Initialise(ulong seed, double meanCount)
    {
        var parameters = new float[Count];
        double shapeRho = InverseSoftplus(1 - DeepExponential.ShapeFloor);
        int step = 0;
        foreach (var side in Sides)
        {
            double bottomScale = Math.Sqrt(Math.Max(meanCount, 1e-3) / side.Widths[0]);
            for (int e = 0; e < side.Entities; e++)
                for (int l = 0; l < side.Layers; l++)
                    for (int j = 0; j < side.Widths[l]; j++)
                    {
                        long row = side.TableOffset + (long)e * 2 * side.TotalUnits, unit = side.Offsets[l] + j;
                        double u = Philox.Uniform(seed, Philox.Streams.Initialise, step, row - side.TableOffset + unit);
                        double mean = (l == 0 ? bottomScale : 1.0) * (0.5 + u);
                        parameters[row + unit] = (float)shapeRho;
                        parameters[row + side.TotalUnits + unit] = (float)InverseSoftplus(mean - DeepExponential.MeanFloor);
                    }
            step++;
            for (int l = 1; l < side.Layers; l++, step++)
                for (int i = 0; i < side.ThetaLength(l); i++)
                {
                    double w = Philox.Uniform(seed, Philox.Streams.Initialise, step, i) / (double)side.Widths[l];
                    parameters[side.ThetaOffsets[l] + i] = (float)InverseSoftplus(w);
                }
        }
        return parameters;
    }

    private static double InverseSoftplus(double value) => value > 30 ? value : Math.Log(double.ExpM1(value));

    /// <summary>
    /// Which cells train (true) and which are held out (false): cell c is held out when its Philox uniform under
    /// <paramref name="splitSeed"/> is below <paramref name="heldOut"/>.
    /// </summary>
    public static bool[] Observed(int rows, int columns, double heldOut, ulong splitSeed)
    {
        var observed = new bool[(long)rows * columns];
        for (long cell = 0; cell < observed.Length; cell++)
            observed[cell] = Philox.Uniform(splitSeed, Philox.Streams.HeldOutCells, 0, cell) >= heldOut;
        return observed;
    }

    /// <summary>The mean of the training cells' counts.</summary>
    public static double MeanCount(CountMatrix data, bool[] observed)
    {
        double sum = 0;
        long cells = 0;
        for (long cell = 0; cell < observed.Length; cell++)
            if (observed[cell])
            {
                sum += data.Counts[cell];
                cells++;
            }
        return cells == 0 ? 0 : sum / cells;
    }
}
