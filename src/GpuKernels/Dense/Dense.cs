using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Layout of a general matrix product C = A·B with A of shape [M, K] and B of shape [K, N], each read through a
/// (row stride, column stride) pair so that transposed operands need no copy. C is dense row-major, [M, N].
/// </summary>
public readonly struct GemmShape
{
    public readonly int M, N, K;
    public readonly int ARowStride, AColumnStride;
    public readonly int BRowStride, BColumnStride;

    public GemmShape(int m, int n, int k, int aRowStride, int aColumnStride, int bRowStride, int bColumnStride)
    {
        M = m; N = n; K = k;
        ARowStride = aRowStride; AColumnStride = aColumnStride;
        BRowStride = bRowStride; BColumnStride = bColumnStride;
    }

    /// <summary>Forward pass: y[b, o] = Σ_i x[b, i]·W[o, i], with W stored [out, in].</summary>
    public static GemmShape Forward(int batch, int inputs, int outputs) =>
        new(batch, outputs, inputs, aRowStride: inputs, aColumnStride: 1, bRowStride: 1, bColumnStride: inputs);

    /// <summary>dInput[b, i] = Σ_o dPre[b, o]·W[o, i].</summary>
    public static GemmShape BackwardInput(int batch, int inputs, int outputs) =>
        new(batch, inputs, outputs, aRowStride: outputs, aColumnStride: 1, bRowStride: inputs, bColumnStride: 1);

    /// <summary>dWeights[o, i] = Σ_b dPre[b, o]·x[b, i].</summary>
    public static GemmShape BackwardWeights(int batch, int inputs, int outputs) =>
        new(outputs, inputs, batch, aRowStride: 1, aColumnStride: outputs, bRowStride: inputs, bColumnStride: 1);

    /// <summary>The launch grid: one thread per 4×4 tile of C (X over columns, Y over rows).</summary>
    public Index2D TileGrid => new((N + Dense.Tile - 1) / Dense.Tile, (M + Dense.Tile - 1) / Dense.Tile);
}

/// <summary>
/// What a product kernel does with each value of C before storing it, and whether it also writes the row sums of
/// A (Σ_k A(m, k) for each row m). A generic struct parameter, so ILGPU specialises each kernel for one epilogue
/// with no branch in the inner loop; the structs carry the views they read or write.
/// </summary>
public interface IGemmEpilogue
{
    /// <summary>The value stored at C[row, column] for the product <paramref name="value"/>.</summary>
    float Finish(int row, int column, int columns, float value);

    /// <summary>True when the kernel must also compute the row sums of A and pass them to <see cref="StoreRowSum"/>.</summary>
    bool SumsRows { get; }

    void StoreRowSum(int row, float sum);
}

/// <summary>The forward epilogue: act(value + bias[column]), the bias skipped when its view is empty.</summary>
public struct BiasActivation<TActivation> : IGemmEpilogue
    where TActivation : struct, IActivation
{
    public ArrayView<float> Bias;

    public BiasActivation(ArrayView<float> bias) => Bias = bias;

    public readonly float Finish(int row, int column, int columns, float value) =>
        default(TActivation).Forward(Bias.Length > 0 ? value + Bias[column] : value);

    public readonly bool SumsRows => false;

    public readonly void StoreRowSum(int row, float sum) { }
}

/// <summary>
/// The input-gradient epilogue: value·act'(y[row, column]), where y (the layer's input, [rows, columns] like C)
/// is the output of the layer below. It turns dInput = dPre·W into the gradient at the layer below's
/// pre-activation, so that layer's backward pass needs no separate activation launch.
/// </summary>
public struct ActivationDerivative<TActivation> : IGemmEpilogue
    where TActivation : struct, IActivation
{
    public ArrayView<float> Output;

    public ActivationDerivative(ArrayView<float> output) => Output = output;

    public readonly float Finish(int row, int column, int columns, float value) =>
        value * default(TActivation).DerivativeFromOutput(Output[row * columns + column]);

    public readonly bool SumsRows => false;

    public readonly void StoreRowSum(int row, float sum) { }
}

/// <summary>
/// The weight-gradient epilogue: C stored as is, and the row sums of A written to <see cref="Sums"/>. With
/// A = dPreᵀ those sums are Σ_b dPre[b, o] = dBias[o], so the bias gradient comes with the weight gradient.
/// </summary>
public struct RowSums : IGemmEpilogue
{
    public ArrayView<float> Sums;

    public RowSums(ArrayView<float> sums) => Sums = sums;

    public readonly float Finish(int row, int column, int columns, float value) => value;

    public readonly bool SumsRows => Sums.Length > 0;

    public readonly void StoreRowSum(int row, float sum) => Sums[row] = sum;
}

/// <summary>
/// Dense (fully connected) layers. Weight layout, used everywhere in this project: W is row-major [out, in], as
/// in PyTorch's nn.Linear, so a checkpoint maps onto torch tensors with no transpose. Activations are row-major
/// [batch, features].
///
/// Forward:  y = act(x·Wᵀ + b), one fused launch (<see cref="BiasActivation{TActivation}"/>).
/// Backward, from dPre (the gradient at the pre-activation, which whoever wrote it has already multiplied by
/// act'): dWeights = dPreᵀ·x with dBias = Σ_b dPre (<see cref="RowSums"/>), and
/// dInput = (dPre·W) ⊙ act_below'(x) (<see cref="ActivationDerivative{TActivation}"/>), which is the next layer
/// down's dPre; both products in one launch (<see cref="BackwardKernel{TInputEpilogue}"/>). Only a gradient that
/// is complete after a sum (two branches meeting) needs <see cref="ActivationGradientKernel{TActivation}"/> on
/// its own.
/// </summary>
public static class Dense
{
    /// <summary>Each thread computes a Tile×Tile block of C in registers, which gives the CPU accelerator enough
    /// work per thread and reuses each loaded operand four times.</summary>
    public const int Tile = 4;

    /// <summary>
    /// C = epilogue(A·B), one thread per Tile×Tile block of C (X over columns, Y over rows).
    /// </summary>
    [Kernel(
        typeof(BiasActivation<IdentityActivation>),
        typeof(BiasActivation<ReluActivation>),
        typeof(BiasActivation<TanhActivation>),
        typeof(BiasActivation<SigmoidActivation>),
        typeof(RowSums))]
    public static void GemmKernel<TEpilogue>(
        Index2D tile,
        ArrayView<float> a,
        ArrayView<float> b,
        ArrayView<float> c,
        GemmShape shape,
        TEpilogue epilogue)
        where TEpilogue : struct, IGemmEpilogue =>
        GemmTile(tile.X, tile.Y, a, b, c, shape, epilogue);

    /// <summary>
    /// A layer's whole backward pass in one launch when it has an input gradient: the first tiles compute
    /// dWeights = dPreᵀ·x with dBias (<see cref="RowSums"/>), the rest dInput = epilogue(dPre·W). One thread per
    /// tile, consecutive threads on consecutive column tiles as in <see cref="GemmKernel{TEpilogue}"/>.
    /// </summary>
    [Kernel(
        typeof(BiasActivation<IdentityActivation>),
        typeof(ActivationDerivative<ReluActivation>),
        typeof(ActivationDerivative<TanhActivation>),
        typeof(ActivationDerivative<SigmoidActivation>))]
    public static void BackwardKernel<TInputEpilogue>(
        Index1D tile,
        ArrayView<float> dPre,
        ArrayView<float> x,
        ArrayView<float> weights,
        ArrayView<float> dWeights,
        ArrayView<float> dBias,
        ArrayView<float> dInput,
        GemmShape weightsShape,
        GemmShape inputShape,
        TInputEpilogue inputEpilogue)
        where TInputEpilogue : struct, IGemmEpilogue =>
        BackwardTile(tile, dPre, x, weights, dWeights, dBias, dInput, weightsShape, inputShape, inputEpilogue);

    /// <summary>Tile <paramref name="tile"/> of <see cref="BackwardKernel{TInputEpilogue}"/>: the dWeights tiles
    /// first, then the dInput tiles.</summary>
    internal static void BackwardTile<TInputEpilogue>(
        int tile,
        ArrayView<float> dPre,
        ArrayView<float> x,
        ArrayView<float> weights,
        ArrayView<float> dWeights,
        ArrayView<float> dBias,
        ArrayView<float> dInput,
        GemmShape weightsShape,
        GemmShape inputShape,
        TInputEpilogue inputEpilogue)
        where TInputEpilogue : struct, IGemmEpilogue
    {
        int weightColumnTiles = weightsShape.TileGrid.X;
        int weightTiles = weightColumnTiles * weightsShape.TileGrid.Y;
        if (tile < weightTiles)
        {
            GemmTile(tile % weightColumnTiles, tile / weightColumnTiles, dPre, x, dWeights, weightsShape, new RowSums(dBias));
            return;
        }
        int inputTile = tile - weightTiles, inputColumnTiles = inputShape.TileGrid.X;
        GemmTile(inputTile % inputColumnTiles, inputTile / inputColumnTiles, dPre, weights, dInput, inputShape, inputEpilogue);
    }

    /// <summary>
    /// The Tile×Tile block (tileX, tileY) of C = epilogue(A·B). Rows and columns past the edge are clamped on load
    /// (they read valid memory) and skipped on store, so any M, N, K works. When the epilogue sums rows, the
    /// threads of the first column of tiles also sum their four rows of A.
    /// </summary>
    internal static void GemmTile<TEpilogue>(
        int tileX,
        int tileY,
        ArrayView<float> a,
        ArrayView<float> b,
        ArrayView<float> c,
        GemmShape shape,
        TEpilogue epilogue)
        where TEpilogue : struct, IGemmEpilogue
    {
        int row0 = tileY * Tile;
        int column0 = tileX * Tile;
        int lastRow = shape.M - 1, lastColumn = shape.N - 1;
        // ILGPU does not unroll loops, so the 4×4 register tile is written out by hand.
        int aRow0 = Math.Min(row0, lastRow) * shape.ARowStride;
        int aRow1 = Math.Min(row0 + 1, lastRow) * shape.ARowStride;
        int aRow2 = Math.Min(row0 + 2, lastRow) * shape.ARowStride;
        int aRow3 = Math.Min(row0 + 3, lastRow) * shape.ARowStride;
        int bColumn0 = Math.Min(column0, lastColumn) * shape.BColumnStride;
        int bColumn1 = Math.Min(column0 + 1, lastColumn) * shape.BColumnStride;
        int bColumn2 = Math.Min(column0 + 2, lastColumn) * shape.BColumnStride;
        int bColumn3 = Math.Min(column0 + 3, lastColumn) * shape.BColumnStride;

        float c00 = 0, c01 = 0, c02 = 0, c03 = 0;
        float c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0;
        float c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        int aOffset = 0, bOffset = 0;
        for (int k = 0; k < shape.K; k++)
        {
            float a0 = a[aRow0 + aOffset], a1 = a[aRow1 + aOffset], a2 = a[aRow2 + aOffset], a3 = a[aRow3 + aOffset];
            float b0 = b[bOffset + bColumn0], b1 = b[bOffset + bColumn1];
            float b2 = b[bOffset + bColumn2], b3 = b[bOffset + bColumn3];
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            aOffset += shape.AColumnStride;
            bOffset += shape.BRowStride;
        }

        StoreRow(c, epilogue, shape.M, shape.N, row0, column0, c00, c01, c02, c03);
        StoreRow(c, epilogue, shape.M, shape.N, row0 + 1, column0, c10, c11, c12, c13);
        StoreRow(c, epilogue, shape.M, shape.N, row0 + 2, column0, c20, c21, c22, c23);
        StoreRow(c, epilogue, shape.M, shape.N, row0 + 3, column0, c30, c31, c32, c33);
        if (epilogue.SumsRows && tileX == 0)
        {
            for (int row = row0; row < row0 + Tile && row < shape.M; row++)
                epilogue.StoreRowSum(row, SumRow(a, shape, row));
        }
    }

    /// <summary>Σ_k A(row, k), in order of k, so every variant sums the same way.</summary>
    internal static float SumRow(ArrayView<float> a, GemmShape shape, int row)
    {
        float sum = 0f;
        int offset = row * shape.ARowStride;
        for (int k = 0; k < shape.K; k++, offset += shape.AColumnStride)
            sum += a[offset];
        return sum;
    }

    /// <summary>The epilogue shared by the product kernels: stores the four values of one tile row that fall
    /// inside C [rows, columns], each through the epilogue.</summary>
    internal static void StoreRow<TEpilogue>(
        ArrayView<float> c, TEpilogue epilogue, int rows, int columns, int row, int column0,
        float v0, float v1, float v2, float v3)
        where TEpilogue : struct, IGemmEpilogue
    {
        if (row >= rows)
            return;
        Store(c, epilogue, columns, row, column0, v0);
        Store(c, epilogue, columns, row, column0 + 1, v1);
        Store(c, epilogue, columns, row, column0 + 2, v2);
        Store(c, epilogue, columns, row, column0 + 3, v3);
    }

    internal static void Store<TEpilogue>(ArrayView<float> c, TEpilogue epilogue, int columns, int row, int column, float value)
        where TEpilogue : struct, IGemmEpilogue
    {
        if (column >= columns)
            return;
        c[row * columns + column] = epilogue.Finish(row, column, columns, value);
    }

    /// <summary>
    /// dY ← dY ⊙ act'(y), element by element, for a gradient that is complete only after two branches' parts were
    /// added (the Ladder VAE's top hidden layer, or a layer whose gradient came from outside its stack).
    /// </summary>
    [Kernel(typeof(ReluActivation), typeof(TanhActivation), typeof(SigmoidActivation))]
    public static void ActivationGradientKernel<TActivation>(
        Index1D thread,
        ArrayView<float> y,
        ArrayView<float> dY,
        Chunking chunking)
        where TActivation : struct, IActivation
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
            dY[element] *= default(TActivation).DerivativeFromOutput(y[element]);
    }
}
