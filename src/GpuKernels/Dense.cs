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
/// Dense (fully connected) layers. Weight layout, used everywhere in this project: W is row-major [out, in], as
/// in PyTorch's nn.Linear, so a checkpoint maps onto torch tensors with no transpose. Activations are row-major
/// [batch, features].
///
/// Forward:  y = act(x·Wᵀ + b), one fused launch.
/// Backward: dPre = dY ⊙ act'(y) fused with dBias = Σ_b dPre (one launch), then dInput = dPre·W and
///           dWeights = dPreᵀ·x (one launch each, the same tiled product kernel with other strides).
/// </summary>
public static class Dense
{
    /// <summary>Each thread computes a Tile×Tile block of C in registers, which gives the CPU accelerator enough
    /// work per thread and reuses each loaded operand four times.</summary>
    public const int Tile = 4;

    /// <summary>
    /// C = act(A·B + bias), bias broadcast over rows (skipped when the bias view is empty). Rows and columns past
    /// the edge are clamped on load (they read valid memory) and skipped on store, so any M, N, K works.
    /// </summary>
    public static void GemmBiasActivationKernel<TActivation>(
        Index2D tile,
        ArrayView<float> a,
        ArrayView<float> b,
        ArrayView<float> bias,
        ArrayView<float> c,
        GemmShape shape)
        where TActivation : struct, IActivation
    {
        int row0 = tile.Y * Tile;
        int column0 = tile.X * Tile;
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

        StoreRow<TActivation>(c, bias, shape.M, shape.N, row0, column0, c00, c01, c02, c03);
        StoreRow<TActivation>(c, bias, shape.M, shape.N, row0 + 1, column0, c10, c11, c12, c13);
        StoreRow<TActivation>(c, bias, shape.M, shape.N, row0 + 2, column0, c20, c21, c22, c23);
        StoreRow<TActivation>(c, bias, shape.M, shape.N, row0 + 3, column0, c30, c31, c32, c33);
    }

    /// <summary>The epilogue shared by the product kernels: adds the bias (when the view is not empty), applies
    /// the activation, and stores the four values of one tile row that fall inside C [rows, columns].</summary>
    internal static void StoreRow<TActivation>(
        ArrayView<float> c, ArrayView<float> bias, int rows, int columns, int row, int column0,
        float v0, float v1, float v2, float v3)
        where TActivation : struct, IActivation
    {
        if (row >= rows)
            return;
        Store<TActivation>(c, bias, columns, row, column0, v0);
        Store<TActivation>(c, bias, columns, row, column0 + 1, v1);
        Store<TActivation>(c, bias, columns, row, column0 + 2, v2);
        Store<TActivation>(c, bias, columns, row, column0 + 3, v3);
    }

    internal static void Store<TActivation>(
        ArrayView<float> c, ArrayView<float> bias, int columns, int row, int column, float value)
        where TActivation : struct, IActivation
    {
        if (column >= columns)
            return;
        if (bias.Length > 0)
            value += bias[column];
        c[row * columns + column] = default(TActivation).Forward(value);
    }

    /// <summary>
    /// The first half of a dense backward pass, one thread per output feature o:
    /// dPre[b, o] = dOutput[b, o]·act'(y[b, o]) and dBias[o] = Σ_b dPre[b, o], summed in a fixed order so the
    /// result is deterministic. dPre may alias dOutput.
    /// </summary>
    public static void ActivationBackwardBiasKernel<TActivation>(
        Index1D output,
        ArrayView<float> y,
        ArrayView<float> dOutput,
        ArrayView<float> dPre,
        ArrayView<float> dBias,
        int batch,
        int outputs)
        where TActivation : struct, IActivation
    {
        float sum = 0f;
        for (int row = 0; row < batch; row++)
        {
            int index = row * outputs + output;
            float d = dOutput[index] * default(TActivation).DerivativeFromOutput(y[index]);
            dPre[index] = d;
            sum += d;
        }
        dBias[output] = sum;
    }
}
