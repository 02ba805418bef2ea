using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Model.Models.DoubleDef;

/// <summary>
/// <see cref="DoubleDefModel"/>'s loss and gradient estimate in double, written for clarity from the DEF's
/// references: each side's draws from the same Philox keys, its layers' prior terms top down, the Poisson terms of
/// every training cell, then the score-function estimate for each side's q table and the exact gradient of its
/// weights.
/// </summary>
public static class DoubleDefReference
{
    private sealed record Layer(double[] Z, double[] LogZ, double[] LogQ, double[] Score, double[] LogPrior, double[] DMeans, double[] RowLogPrior);

    private sealed record Side(DoubleDefSide Geometry, Layer[] Layers, double[] Kl);

    private static double[] Slice(double[] parameters, long offset, long length) => parameters.AsSpan((int)offset, (int)length).ToArray();

    private static Side Forward(DoubleDefSide side, DoubleDefSettings settings, double[] parameters, DrawKey key)
    {
        int k = settings.Samples, rows = side.Entities * k;
        var table = Slice(parameters, side.TableOffset, side.TableLength);
        var draws = Enumerable.Range(0, side.Layers).Select(l => DeepExponentialReference.Sample(table, side.Shape(l, k), rows, key)).ToArray();
        var layers = new Layer[side.Layers];
        var kl = new double[rows];
        for (int l = side.Layers - 1; l >= 0; l--)
        {
            var (z, logZ, logQ, score) = draws[l];
            var means = l == side.Layers - 1 ? null
                : DeepExponentialReference.Means(Slice(parameters, side.ThetaOffsets[l + 1], side.ThetaLength(l + 1)), draws[l + 1].Z, rows, side.Widths[l + 1],
                    side.Widths[l]);
            var (logPrior, dMeans, rowLogPrior, layerKl) = DeepExponentialReference.LayerTerms(z, logZ, logQ, means, side.Widths[l], settings.Alpha);
            layers[l] = new Layer(z, logZ, logQ, score, logPrior, dMeans, rowLogPrior);
            for (int row = 0; row < rows; row++)
                kl[row] += layerKl[row];
        }
        return new Side(side, layers, kl);
    }

    private static void Backward(Side side, double[] loss, double scale, int samples, double[] parameters, double[] gradient)
    {
        var geometry = side.Geometry;
        int rows = geometry.Entities * samples;
        var dTable = new double[geometry.TableLength];
        for (int l = 0; l < geometry.Layers; l++)
            DeepExponentialReference.ScoreGradient(side.Layers[l].Score, side.Layers[l].LogPrior, side.Layers[l].LogQ, l == 0 ? loss : side.Layers[l - 1].RowLogPrior,
                loss, side.Kl, dTable, geometry.Shape(l, samples), raoBlackwell: true, leaveOneOut: true, 1, l == 0 ? -1 : 1, scale);
        dTable.CopyTo(gradient, geometry.TableOffset);
        for (int l = 1; l < geometry.Layers; l++)
        {
            var dMeans = side.Layers[l - 1].DMeans.Select(value => -scale * value).ToArray();
            DeepExponentialReference.ThetaGradient(Slice(parameters, geometry.ThetaOffsets[l], geometry.ThetaLength(l)), side.Layers[l].Z, dMeans, rows,
                geometry.Widths[l], geometry.Widths[l - 1]).CopyTo(gradient, geometry.ThetaOffsets[l]);
        }
    }

    /// <summary>The loss (−ELBO per training cell, averaged over the k draws) and its gradient estimate for the draws
    /// of (stream, step), as <see cref="DoubleDefModel.LossAndGradient"/> computes them.</summary>
    public static (DoubleDefLoss Loss, double[] Gradient) LossAndGradient(DoubleDefSettings settings, CountMatrix data, bool[] observed, double[] parameters,
        uint stream, long step)
    {
        var layout = new DoubleDefLayout(settings, data.Rows, data.Columns);
        int k = settings.Samples;
        var rowKey = new DrawKey(settings.Seed, stream, step);
        var rows = Forward(layout.Rows, settings, parameters, rowKey);
        var columns = Forward(layout.Columns, settings, parameters, rowKey.Offset(Philox.Streams.DoubleDefColumnOffset));
        var shape = new MatrixShape(data.Rows, data.Columns, layout.Rows.Widths[0], k);
        var (rowLoss, columnLoss) = PoissonMatrixReference.NegativeLogLikelihood(rows.Layers[0].Z, columns.Layers[0].Z, data.Counts.Select(c => (double)c).ToArray(),
            observed, shape);
        double cells = observed.Count(cell => cell) * (double)k;
        var gradient = new double[layout.Count];
        Backward(rows, rowLoss, 1 / cells, k, parameters, gradient);
        Backward(columns, columnLoss, 1 / cells, k, parameters, gradient);
        return (new DoubleDefLoss(rowLoss.Sum() / cells, rows.Kl.Sum() / cells, columns.Kl.Sum() / cells), gradient);
    }
}
