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

    /// <param name="whole">Per sample s, the whole −ELBO sample (every cell's −log p and every KL term): without
    /// Rao-Blackwellization every unit's signal is its negative.</param>
    private static void Backward(Side side, double[] loss, double[] whole, GammaEstimator estimator, double scale, int samples, double[] parameters,
        double[] gradient)
    {
        var geometry = side.Geometry;
        int rows = geometry.Entities * samples;
        var dTable = new double[geometry.TableLength];
        var wholeRows = Enumerable.Range(0, rows).Select(row => whole[row % samples]).ToArray();
        for (int l = 0; l < geometry.Layers; l++)
            DeepExponentialReference.ScoreGradient(side.Layers[l].Score, side.Layers[l].LogPrior, side.Layers[l].LogQ, l == 0 ? loss : side.Layers[l - 1].RowLogPrior,
                wholeRows, new double[rows], dTable, geometry.Shape(l, samples), estimator.RaoBlackwell != 0, estimator.LeaveOneOut != 0, 1, l == 0 ? -1 : 1,
                scale);
        dTable.CopyTo(gradient, geometry.TableOffset);
        for (int l = 1; l < geometry.Layers; l++)
        {
            var dMeans = side.Layers[l - 1].DMeans.Select(value => -scale * value).ToArray();
            DeepExponentialReference.ThetaGradient(Slice(parameters, geometry.ThetaOffsets[l], geometry.ThetaLength(l)), side.Layers[l].Z, dMeans, rows,
                geometry.Widths[l], geometry.Widths[l - 1]).CopyTo(gradient, geometry.ThetaOffsets[l]);
        }
    }

    /// <summary>The loss (−ELBO per training cell, averaged over the k draws) and its gradient estimate for the draws
    /// of (stream, step), as <see cref="DoubleDefModel.LossAndGradient"/> computes them (with both of the
    /// estimator's devices; <paramref name="estimator"/> may leave either out, for the variance table).</summary>
    public static (DoubleDefLoss Loss, double[] Gradient) LossAndGradient(DoubleDefSettings settings, CountMatrix data, bool[] observed, double[] parameters,
        uint stream, long step, GammaEstimator? estimator = null)
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
        var whole = Enumerable.Range(0, k).Select(s =>
            Enumerable.Range(0, data.Rows).Sum(u => rowLoss[u * k + s] + rows.Kl[u * k + s]) + Enumerable.Range(0, data.Columns).Sum(i => columns.Kl[i * k + s]))
            .ToArray();
        var devices = estimator ?? GammaEstimator.Full;
        Backward(rows, rowLoss, whole, devices, 1 / cells, k, parameters, gradient);
        Backward(columns, columnLoss, whole, devices, 1 / cells, k, parameters, gradient);
        return (new DoubleDefLoss(rowLoss.Sum() / cells, rows.Kl.Sum() / cells, columns.Kl.Sum() / cells), gradient);
    }
}
