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
        kernels.Launch(LossKernel, shape.Rows * shape.Samples, rowDraws, columnDraws, counts, observed, rowLoss, shape, 0);

    /// <summary>columnLoss[i·k + s] = −Σ_{u: observed} log Poisson(y_ui; z_{u,s}ᵀw_{i,s} + ε): the same terms
    /// summed down each column. One thread per (column, sample), rows in order.</summary>
    public static void ColumnNegativeLogLikelihood(this KernelSet kernels, ArrayView<float> rowDraws, ArrayView<float> columnDraws, ArrayView<float> counts,
        ArrayView<float> observed, ArrayView<float> columnLoss, MatrixShape shape) =>
        kernels.Launch(LossKernel, shape.Columns * shape.Samples, rowDraws, columnDraws, counts, observed, columnLoss, shape, 1);

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

    /// <summary>One thread per (entity, sample): a row's sum over the columns (byColumns 0) or a column's over the
    /// rows (1), in order.</summary>
    [Kernel]
    public static void LossKernel(Index1D index, ArrayView<float> rowDraws, ArrayView<float> columnDraws, ArrayView<float> counts,
        ArrayView<float> observed, ArrayView<float> loss, MatrixShape shape, int byColumns)
    {
        int k = shape.Samples, entity = index / k, sample = index - entity * k;
        int others = byColumns != 0 ? shape.Rows : shape.Columns;
        float sum = 0f;
        for (int other = 0; other < others; other++)
        {
            long cell = byColumns != 0 ? (long)other * shape.Columns + entity : (long)entity * shape.Columns + other;
            int otherRow = other * k + sample;
            if (observed[cell] != 0f)
                sum += NegativeLogPoisson(counts[cell], byColumns != 0
                    ? Rate(rowDraws, columnDraws, otherRow, index, shape.Units)
                    : Rate(rowDraws, columnDraws, index, otherRow, shape.Units));
        }
        loss[index] = sum;
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
