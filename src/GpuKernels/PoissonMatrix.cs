using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>The shape of a count matrix's factorisation: <see cref="Rows"/> × <see cref="Columns"/> counts, each
/// row and each column with <see cref="Units"/> bottom-layer units, drawn <see cref="Samples"/> times (entity e's
/// sample s is row e·k + s of its draws).</summary>
public readonly struct MatrixShape
{
    public readonly int Rows, Columns, Units, Samples;

    public MatrixShape(int rows, int columns, int units, int samples)
    {
        Rows = rows;
        Columns = columns;
        Units = units;
        Samples = samples;
    }
}

/// <summary>
/// The Poisson observation of the double deep exponential family (Ranganath et al. 2015): a count matrix y
/// [N, D] with y_ui ~ Poisson(r_ui), r_ui = z_uᵀw_i + ε, z_u the bottom-layer draws of row u's DEF and w_i those of
/// column i's. The draws are not reparameterized (their q's get score-function gradients), so these kernels give
/// only the terms the learning signals need: −log p per row and per column over the cells used for training, and
/// the held-out cells' predictive log-likelihood. Counts and the mask are floats (whole numbers, exact up to 2²⁴):
/// observed[u, i] is 1 for a training cell and 0 for a held-out one. Double references:
/// <see cref="Reference.PoissonMatrixReference"/>.
/// </summary>
public static class PoissonMatrix
{
    /// <summary>
    /// rowLoss[u·k + s] = −Σ_{i: observed} log Poisson(y_ui; z_{u,s}ᵀw_{i,s} + ε) for row draws z [N·k, K] and column
    /// draws w [D·k, K]. One thread per (row, sample), columns in order.
    /// </summary>
    public static void RowNegativeLogLikelihood(this KernelSet kernels, ArrayView<float> rowDraws, ArrayView<float> columnDraws, ArrayView<float> counts,
        ArrayView<float> observed, ArrayView<float> rowLoss, MatrixShape shape) =>
        kernels.Launch(RowLossKernel, shape.Rows * shape.Samples, rowDraws, columnDraws, counts, observed, rowLoss, shape);

    /// <summary>columnLoss[i·k + s] = −Σ_{u: observed} log Poisson(y_ui; z_{u,s}ᵀw_{i,s} + ε): the same terms
    /// summed down each column. One thread per (column, sample), rows in order.</summary>
    public static void ColumnNegativeLogLikelihood(this KernelSet kernels, ArrayView<float> rowDraws, ArrayView<float> columnDraws, ArrayView<float> counts,
        ArrayView<float> observed, ArrayView<float> columnLoss, MatrixShape shape) =>
        kernels.Launch(ColumnLossKernel, shape.Columns * shape.Samples, rowDraws, columnDraws, counts, observed, columnLoss, shape);

    /// <summary>
    /// For each held-out cell (observed = 0), logSum[u·D + i] = log Σ_s p(y_ui | r_uis) over this call's k samples,
    /// added (in log space) to what it held unless <paramref name="first"/>; observed cells are left alone. After
    /// S draws of k, logSum − log(S·k) is the cell's Monte Carlo predictive log-likelihood log E_q p(y_ui | z, w).
    /// One thread per cell.
    /// </summary>
    public static void HeldOutLogLikelihood(this KernelSet kernels, ArrayView<float> rowDraws, ArrayView<float> columnDraws, ArrayView<float> counts,
        ArrayView<float> observed, ArrayView<float> logSum, MatrixShape shape, bool first) =>
        kernels.Launch(HeldOutKernel, shape.Rows * shape.Columns, rowDraws, columnDraws, counts, observed, logSum, shape, first ? 1 : 0);

    /// <summary>−log Poisson(y; r) = r − y·log r + log y! (log y! is 0 for y ≤ 1, where it is not computed).</summary>
    public static float NegativeLogPoisson(float count, float rate) =>
        rate - count * MathF.Log(rate) + (count > 1f ? Distributions.LogGamma(count + 1f) : 0f);

    /// <summary>r = Σ_j z[zRow, j]·w[wRow, j] + ε.</summary>
    private static float Rate(ArrayView<float> rowDraws, ArrayView<float> columnDraws, int zRow, int wRow, int units)
    {
        float sum = DeepExponential.RateFloor;
        for (int j = 0; j < units; j++)
            sum += rowDraws[zRow * units + j] * columnDraws[wRow * units + j];
        return sum;
    }

    [Kernel]
    public static void RowLossKernel(Index1D index, ArrayView<float> rowDraws, ArrayView<float> columnDraws, ArrayView<float> counts,
        ArrayView<float> observed, ArrayView<float> rowLoss, MatrixShape shape)
    {
        int k = shape.Samples, row = index / k, sample = index - row * k;
        float sum = 0f;
        for (int column = 0; column < shape.Columns; column++)
        {
            long cell = (long)row * shape.Columns + column;
            if (observed[cell] != 0f)
                sum += NegativeLogPoisson(counts[cell], Rate(rowDraws, columnDraws, index, column * k + sample, shape.Units));
        }
        rowLoss[index] = sum;
    }

    [Kernel]
    public static void ColumnLossKernel(Index1D index, ArrayView<float> rowDraws, ArrayView<float> columnDraws, ArrayView<float> counts,
        ArrayView<float> observed, ArrayView<float> columnLoss, MatrixShape shape)
    {
        int k = shape.Samples, column = index / k, sample = index - column * k;
        float sum = 0f;
        for (int row = 0; row < shape.Rows; row++)
        {
            long cell = (long)row * shape.Columns + column;
            if (observed[cell] != 0f)
                sum += NegativeLogPoisson(counts[cell], Rate(rowDraws, columnDraws, row * k + sample, index, shape.Units));
        }
        columnLoss[index] = sum;
    }

    [Kernel]
    public static void HeldOutKernel(Index1D cell, ArrayView<float> rowDraws, ArrayView<float> columnDraws, ArrayView<float> counts,
        ArrayView<float> observed, ArrayView<float> logSum, MatrixShape shape, int first)
    {
        if (observed[cell] != 0f)
            return;
        int k = shape.Samples, row = cell / shape.Columns, column = cell - row * shape.Columns;
        float count = counts[cell];
        // log Σ_s p_s by the largest term: every p_s may be far below float's range when the model is poor.
        float largest = float.NegativeInfinity;
        for (int s = 0; s < k; s++)
            largest = MathF.Max(largest, -NegativeLogPoisson(count, Rate(rowDraws, columnDraws, row * k + s, column * k + s, shape.Units)));
        float sum = 0f;
        for (int s = 0; s < k; s++)
            sum += MathF.Exp(-NegativeLogPoisson(count, Rate(rowDraws, columnDraws, row * k + s, column * k + s, shape.Units)) - largest);
        float logTotal = largest + MathF.Log(sum);
        if (first == 0)
        {
            float held = logSum[cell], top = MathF.Max(held, logTotal);
            logTotal = top + MathF.Log(MathF.Exp(held - top) + MathF.Exp(logTotal - top));
        }
        logSum[cell] = logTotal;
    }
}
