using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>Four consecutive floats, read and written as one 16-byte element through ArrayView.Cast.</summary>
public struct Float4
{
    public float X, Y, Z, W;

    public static Float4 MultiplyAdd(Float4 accumulator, float scale, Float4 value)
    {
        accumulator.X += scale * value.X;
        accumulator.Y += scale * value.Y;
        accumulator.Z += scale * value.Z;
        accumulator.W += scale * value.W;
        return accumulator;
    }

    public static float Dot(Float4 a, Float4 b) => a.X * b.X + a.Y * b.Y + a.Z * b.Z + a.W * b.W;
}

/// <summary>
/// Dense-layer products shaped for ILGPU's CPU accelerator, which runs each simulated GPU thread as ordinary .NET
/// code with a bounds check on every view access and a cost for every launched thread. These kernels load four
/// floats per access (a quarter of the checks) and give each thread a whole strip of 4 rows × all columns, so a
/// launch has a few dozen fat threads. Measured on 2 cores at 128×784→400: about 10 GFLOP/s against about 4 for
/// <see cref="Dense.GemmKernel{TEpilogue}"/>, which stays the reference variant (and the GPU's).
///
/// Each needs its contiguous dimensions to be multiples of 4 and its views to start on 4-float boundaries;
/// <see cref="KernelSet"/> checks that and falls back to the simple kernel otherwise. Rows past M are clamped
/// on load and skipped on store, so any M works.
/// </summary>
public static class DenseCpu
{
    /// <summary>
    /// The forward product C = act(A·Bᵀ + bias) for A [M, K] and B [N, K], both row-major (x and W), with
    /// K % 4 == 0. Thread t computes rows 4t..4t+3 for every column, four columns at a time.
    /// </summary>
    [Kernel(typeof(IdentityActivation), typeof(ReluActivation), typeof(TanhActivation), typeof(SigmoidActivation))]
    public static void ForwardKernel<TActivation>(
        Index1D rowTile,
        ArrayView<Float4> a,
        ArrayView<Float4> b,
        ArrayView<float> bias,
        ArrayView<float> c,
        CpuGemmShape shape)
        where TActivation : struct, IActivation
    {
        int row0 = rowTile * Dense.Tile;
        int k4 = shape.K / 4;
        int last = shape.M - 1;
        int aRow0 = Math.Min(row0, last) * k4, aRow1 = Math.Min(row0 + 1, last) * k4;
        int aRow2 = Math.Min(row0 + 2, last) * k4, aRow3 = Math.Min(row0 + 3, last) * k4;
        for (int column0 = 0; column0 < shape.N; column0 += Dense.Tile)
        {
            int lastColumn = shape.N - 1;
            int bRow0 = Math.Min(column0, lastColumn) * k4, bRow1 = Math.Min(column0 + 1, lastColumn) * k4;
            int bRow2 = Math.Min(column0 + 2, lastColumn) * k4, bRow3 = Math.Min(column0 + 3, lastColumn) * k4;
            float c00 = 0, c01 = 0, c02 = 0, c03 = 0;
            float c10 = 0, c11 = 0, c12 = 0, c13 = 0;
            float c20 = 0, c21 = 0, c22 = 0, c23 = 0;
            float c30 = 0, c31 = 0, c32 = 0, c33 = 0;
            for (int k = 0; k < k4; k++)
            {
                Float4 a0 = a[aRow0 + k], a1 = a[aRow1 + k], a2 = a[aRow2 + k], a3 = a[aRow3 + k];
                Float4 b0 = b[bRow0 + k], b1 = b[bRow1 + k], b2 = b[bRow2 + k], b3 = b[bRow3 + k];
                c00 += Float4.Dot(a0, b0); c01 += Float4.Dot(a0, b1); c02 += Float4.Dot(a0, b2); c03 += Float4.Dot(a0, b3);
                c10 += Float4.Dot(a1, b0); c11 += Float4.Dot(a1, b1); c12 += Float4.Dot(a1, b2); c13 += Float4.Dot(a1, b3);
                c20 += Float4.Dot(a2, b0); c21 += Float4.Dot(a2, b1); c22 += Float4.Dot(a2, b2); c23 += Float4.Dot(a2, b3);
                c30 += Float4.Dot(a3, b0); c31 += Float4.Dot(a3, b1); c32 += Float4.Dot(a3, b2); c33 += Float4.Dot(a3, b3);
            }
            var epilogue = new BiasActivation<TActivation>(bias);
            Dense.StoreRow(c, epilogue, shape.M, shape.N, row0, column0, c00, c01, c02, c03);
            Dense.StoreRow(c, epilogue, shape.M, shape.N, row0 + 1, column0, c10, c11, c12, c13);
            Dense.StoreRow(c, epilogue, shape.M, shape.N, row0 + 2, column0, c20, c21, c22, c23);
            Dense.StoreRow(c, epilogue, shape.M, shape.N, row0 + 3, column0, c30, c31, c32, c33);
        }
    }

    /// <summary>
    /// A layer's whole backward pass in one launch when it has an input gradient: threads below
    /// ⌈outputs/4⌉ compute strips of dWeights with dBias (as <see cref="BackwardWeightsKernel"/> does), the rest
    /// strips of dInput = epilogue(dPre·W), the epilogue applying the layer below's activation derivative.
    /// </summary>
    [Kernel(
        typeof(BiasActivation<IdentityActivation>),
        typeof(ActivationDerivative<ReluActivation>),
        typeof(ActivationDerivative<TanhActivation>),
        typeof(ActivationDerivative<SigmoidActivation>))]
    public static void BackwardKernel<TEpilogue>(
        Index1D thread,
        ArrayView<Float4> dPre,
        ArrayView<Float4> x,
        ArrayView<Float4> weights,
        ArrayView<float> dWeights,
        ArrayView<float> dBias,
        ArrayView<float> dInput,
        CpuGemmShape weightsShape,
        CpuGemmShape inputShape,
        TEpilogue epilogue)
        where TEpilogue : struct, IGemmEpilogue
    {
        int weightStrips = (weightsShape.M + Dense.Tile - 1) / Dense.Tile;
        if (thread < weightStrips)
            WeightsStrip(thread, dPre, x, dWeights, dBias, weightsShape);
        else
            InputStrip(thread - weightStrips, dPre, weights, dInput, inputShape, epilogue);
    }

    /// <summary>
    /// Rows 4t..4t+3 of dInput = epilogue(dPre·W): C = A·B for A [M, K] and B [K, N], both row-major, with
    /// K % 4 == 0 and N % 4 == 0. Each step reads four k of a row of A as one element and four rows of B, four
    /// columns each.
    /// </summary>
    private static void InputStrip<TEpilogue>(
        int rowTile,
        ArrayView<Float4> a,
        ArrayView<Float4> b,
        ArrayView<float> c,
        CpuGemmShape shape,
        TEpilogue epilogue)
        where TEpilogue : struct, IGemmEpilogue
    {
        int row0 = rowTile * Dense.Tile;
        int k4 = shape.K / 4, n4 = shape.N / 4;
        int last = shape.M - 1;
        int aRow0 = Math.Min(row0, last) * k4, aRow1 = Math.Min(row0 + 1, last) * k4;
        int aRow2 = Math.Min(row0 + 2, last) * k4, aRow3 = Math.Min(row0 + 3, last) * k4;
        for (int column4 = 0; column4 < n4; column4++)
        {
            Float4 c0 = default, c1 = default, c2 = default, c3 = default;
            int bIndex = column4;
            for (int k = 0; k < k4; k++)
            {
                Float4 b0 = b[bIndex], b1 = b[bIndex + n4], b2 = b[bIndex + 2 * n4], b3 = b[bIndex + 3 * n4];
                bIndex += 4 * n4;
                Float4 a0 = a[aRow0 + k], a1 = a[aRow1 + k], a2 = a[aRow2 + k], a3 = a[aRow3 + k];
                c0 = Float4.MultiplyAdd(Float4.MultiplyAdd(Float4.MultiplyAdd(Float4.MultiplyAdd(c0, a0.X, b0), a0.Y, b1), a0.Z, b2), a0.W, b3);
                c1 = Float4.MultiplyAdd(Float4.MultiplyAdd(Float4.MultiplyAdd(Float4.MultiplyAdd(c1, a1.X, b0), a1.Y, b1), a1.Z, b2), a1.W, b3);
                c2 = Float4.MultiplyAdd(Float4.MultiplyAdd(Float4.MultiplyAdd(Float4.MultiplyAdd(c2, a2.X, b0), a2.Y, b1), a2.Z, b2), a2.W, b3);
                c3 = Float4.MultiplyAdd(Float4.MultiplyAdd(Float4.MultiplyAdd(Float4.MultiplyAdd(c3, a3.X, b0), a3.Y, b1), a3.Z, b2), a3.W, b3);
            }
            StoreRow(c, epilogue, shape, row0, column4, c0);
            StoreRow(c, epilogue, shape, row0 + 1, column4, c1);
            StoreRow(c, epilogue, shape, row0 + 2, column4, c2);
            StoreRow(c, epilogue, shape, row0 + 3, column4, c3);
        }
    }

    /// <summary>
    /// dWeights = dPreᵀ·x: C = Aᵀ·B for A [K, M] and B [K, N], both row-major, with M % 4 == 0 and N % 4 == 0,
    /// and dBias = Σ_k A[k, m] (the column sums of dPre) for the thread's four m. Each k is one outer product of
    /// four values of A's row with four of B's: two loads for sixteen products.
    /// </summary>
    [Kernel]
    public static void BackwardWeightsKernel(
        Index1D rowTile,
        ArrayView<Float4> a,
        ArrayView<Float4> b,
        ArrayView<float> c,
        ArrayView<float> dBias,
        CpuGemmShape shape) =>
        WeightsStrip(rowTile, a, b, c, dBias, shape);

    private static void WeightsStrip(
        int rowTile,
        ArrayView<Float4> a,
        ArrayView<Float4> b,
        ArrayView<float> c,
        ArrayView<float> dBias,
        CpuGemmShape shape)
    {
        int m4 = shape.M / 4, n4 = shape.N / 4;
        if (dBias.Length > 0)
        {
            Float4 sums = default;
            for (int k = 0, aIndex = rowTile; k < shape.K; k++, aIndex += m4)
                sums = Float4.MultiplyAdd(sums, 1f, a[aIndex]);
            int m0 = rowTile * Dense.Tile;
            dBias[m0] = sums.X;
            dBias[m0 + 1] = sums.Y;
            dBias[m0 + 2] = sums.Z;
            dBias[m0 + 3] = sums.W;
        }
        for (int column4 = 0; column4 < n4; column4++)
        {
            Float4 c0 = default, c1 = default, c2 = default, c3 = default;
            int aIndex = rowTile, bIndex = column4;
            for (int k = 0; k < shape.K; k++)
            {
                Float4 column = a[aIndex], row = b[bIndex];
                aIndex += m4;
                bIndex += n4;
                c0 = Float4.MultiplyAdd(c0, column.X, row);
                c1 = Float4.MultiplyAdd(c1, column.Y, row);
                c2 = Float4.MultiplyAdd(c2, column.Z, row);
                c3 = Float4.MultiplyAdd(c3, column.W, row);
            }
            int row0 = rowTile * Dense.Tile;
            var plain = new RowSums();
            StoreRow(c, plain, shape, row0, column4, c0);
            StoreRow(c, plain, shape, row0 + 1, column4, c1);
            StoreRow(c, plain, shape, row0 + 2, column4, c2);
            StoreRow(c, plain, shape, row0 + 3, column4, c3);
        }
    }

    /// <summary>
    /// The simple kernel's 4×4 tiles of C = epilogue(A·B) (<see cref="Dense.GemmKernel{TEpilogue}"/>), for the
    /// shapes the Float4 kernels cannot take (a width that is not a multiple of 4, such as a 50-wide latent), with
    /// <paramref name="tilesPerThread"/> consecutive tiles per thread: one thread per tile costs more than a tile
    /// with a short contraction does (1000×50→200 ran at 0.8 GFLOP/s that way).
    /// </summary>
    [Kernel(
        typeof(BiasActivation<IdentityActivation>),
        typeof(BiasActivation<ReluActivation>),
        typeof(BiasActivation<TanhActivation>),
        typeof(BiasActivation<SigmoidActivation>),
        typeof(RowSums))]
    public static void StridedGemmKernel<TEpilogue>(
        Index1D thread,
        ArrayView<float> a,
        ArrayView<float> b,
        ArrayView<float> c,
        GemmShape shape,
        TEpilogue epilogue,
        int tilesPerThread)
        where TEpilogue : struct, IGemmEpilogue
    {
        var grid = shape.TileGrid;
        int end = Math.Min(grid.X * grid.Y, (thread + 1) * tilesPerThread);
        for (int tile = thread * tilesPerThread; tile < end; tile++)
            Dense.GemmTile(tile % grid.X, tile / grid.X, a, b, c, shape, epilogue);
    }

    /// <summary>
    /// <see cref="Dense.BackwardKernel{TInputEpilogue}"/> (dWeights with dBias, then dInput, in one launch) with
    /// <paramref name="tilesPerThread"/> consecutive tiles per thread, for the shapes of <see cref="StridedGemmKernel{TEpilogue}"/>.
    /// </summary>
    [Kernel(
        typeof(BiasActivation<IdentityActivation>),
        typeof(ActivationDerivative<ReluActivation>),
        typeof(ActivationDerivative<TanhActivation>),
        typeof(ActivationDerivative<SigmoidActivation>))]
    public static void StridedBackwardKernel<TInputEpilogue>(
        Index1D thread,
        ArrayView<float> dPre,
        ArrayView<float> x,
        ArrayView<float> weights,
        ArrayView<float> dWeights,
        ArrayView<float> dBias,
        ArrayView<float> dInput,
        GemmShape weightsShape,
        GemmShape inputShape,
        TInputEpilogue inputEpilogue,
        int tilesPerThread)
        where TInputEpilogue : struct, IGemmEpilogue
    {
        int end = Math.Min(weightsShape.TileGrid.Size + inputShape.TileGrid.Size, (thread + 1) * tilesPerThread);
        for (int tile = thread * tilesPerThread; tile < end; tile++)
            Dense.BackwardTile(tile, dPre, x, weights, dWeights, dBias, dInput, weightsShape, inputShape, inputEpilogue);
    }

    private static void StoreRow<TEpilogue>(ArrayView<float> c, TEpilogue epilogue, CpuGemmShape shape, int row, int column4, Float4 values)
        where TEpilogue : struct, IGemmEpilogue
    {
        if (row >= shape.M)
            return;
        int column = column4 * 4, index = row * shape.N + column;
        c[index] = epilogue.Finish(row, column, shape.N, values.X);
        c[index + 1] = epilogue.Finish(row, column + 1, shape.N, values.Y);
        c[index + 2] = epilogue.Finish(row, column + 2, shape.N, values.Z);
        c[index + 3] = epilogue.Finish(row, column + 3, shape.N, values.W);
    }
}

/// <summary>Dimensions of a <see cref="DenseCpu"/> product C [M, N] with contraction length K.</summary>
public readonly struct CpuGemmShape
{
    public readonly int M, N, K;

    public CpuGemmShape(int m, int n, int k)
    {
        M = m;
        N = n;
        K = k;
    }
}
