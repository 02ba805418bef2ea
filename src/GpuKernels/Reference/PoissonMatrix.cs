namespace IlgpuVae.GpuKernels.Reference;

/// <summary><see cref="PoissonMatrix"/> in double, written for clarity: every cell's rate and Poisson term, then the
/// sums a row, a column or a held-out cell needs.</summary>
public static class PoissonMatrixReference
{
    /// <summary>r = Σ_j z[zRow, j]·w[wRow, j] + ε.</summary>
    public static double Rate(double[] rowDraws, double[] columnDraws, int zRow, int wRow, int units)
    {
        double rate = DeepExponential.RateFloor;
        for (int j = 0; j < units; j++)
            rate += rowDraws[zRow * units + j] * columnDraws[wRow * units + j];
        return rate;
    }

    /// <summary>−log p of cell (u, i) under sample s.</summary>
    public static double CellLoss(double[] rowDraws, double[] columnDraws, double[] counts, MatrixShape shape, int row, int column, int sample) =>
        -DistributionReference.PoissonLogDensity(counts[row * shape.Columns + column],
            Rate(rowDraws, columnDraws, row * shape.Samples + sample, column * shape.Samples + sample, shape.Units));

    /// <summary>(rowLoss [N·k], columnLoss [D·k]): −log p summed over each row's and each column's training cells.</summary>
    public static (double[] RowLoss, double[] ColumnLoss) NegativeLogLikelihood(double[] rowDraws, double[] columnDraws, double[] counts,
        bool[] observed, MatrixShape shape)
    {
        int k = shape.Samples;
        var rowLoss = new double[shape.Rows * k];
        var columnLoss = new double[shape.Columns * k];
        for (int u = 0; u < shape.Rows; u++)
            for (int i = 0; i < shape.Columns; i++)
            {
                if (!observed[u * shape.Columns + i])
                    continue;
                for (int s = 0; s < k; s++)
                {
                    double loss = CellLoss(rowDraws, columnDraws, counts, shape, u, i, s);
                    rowLoss[u * k + s] += loss;
                    columnLoss[i * k + s] += loss;
                }
            }
        return (rowLoss, columnLoss);
    }

    /// <summary>log Σ_s p(y_ui | r_uis) for every held-out cell (NaN for a training cell, which the kernel leaves alone).</summary>
    public static double[] HeldOutLogSum(double[] rowDraws, double[] columnDraws, double[] counts, bool[] observed, MatrixShape shape)
    {
        var logSum = new double[shape.Rows * shape.Columns];
        for (int u = 0; u < shape.Rows; u++)
            for (int i = 0; i < shape.Columns; i++)
            {
                int cell = u * shape.Columns + i;
                if (observed[cell])
                {
                    logSum[cell] = double.NaN;
                    continue;
                }
                var logP = Enumerable.Range(0, shape.Samples).Select(s => -CellLoss(rowDraws, columnDraws, counts, shape, u, i, s)).ToArray();
                double largest = logP.Max();
                logSum[cell] = largest + Math.Log(logP.Sum(value => Math.Exp(value - largest)));
            }
        return logSum;
    }
}
