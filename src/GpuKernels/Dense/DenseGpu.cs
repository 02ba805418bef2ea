using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The dense-layer product shaped for GPUs: C = epilogue(A·B) with the operands of <see cref="GemmShape"/>
/// (any strides, so the forward pass and both backward products use it) and the epilogues of
/// <see cref="Dense.GemmKernel{TEpilogue}"/>. A group of 16×16 threads computes a
/// 64×64 block of C, staging 64×16 slices of A and B in shared memory so that every value loaded from global
/// memory is used 64 times; each thread keeps a 4×4 block of C in registers, at rows ty + 16r and columns
/// tx + 16c so that a warp's shared-memory reads are broadcasts (A) or consecutive (B).
///
/// Not yet measured on a GPU (no GPU session so far): the first GPU run of scripts/gpu-verify.sh times it
/// against <see cref="Dense.GemmKernel{TEpilogue}"/>, which stays the reference variant.
/// </summary>
public static class DenseGpu
{
    public const int ThreadsPerSide = 16;
    public const int BlockSide = 64;
    public const int SliceDepth = 16;
    private const int SliceSize = BlockSide * SliceDepth;

    public static KernelConfig LaunchConfig(GemmShape shape) => new(
        new Index2D((shape.N + BlockSide - 1) / BlockSide, (shape.M + BlockSide - 1) / BlockSide),
        new Index2D(ThreadsPerSide, ThreadsPerSide));

    [Kernel(
        typeof(BiasActivation<IdentityActivation>),
        typeof(BiasActivation<ReluActivation>),
        typeof(BiasActivation<TanhActivation>),
        typeof(BiasActivation<SigmoidActivation>),
        typeof(ActivationDerivative<ReluActivation>),
        typeof(ActivationDerivative<TanhActivation>),
        typeof(ActivationDerivative<SigmoidActivation>),
        typeof(RowSums))]
    public static void GemmKernel<TEpilogue>(
        ArrayView<float> a,
        ArrayView<float> b,
        ArrayView<float> c,
        GemmShape shape,
        TEpilogue epilogue)
        where TEpilogue : struct, IGemmEpilogue
    {
        var aSlice = SharedMemory.Allocate<float>(SliceSize);
        var bSlice = SharedMemory.Allocate<float>(SliceSize);
        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * ThreadsPerSide + tx;
        int blockRow = Grid.IdxY * BlockSide, blockColumn = Grid.IdxX * BlockSide;

        float c00 = 0, c01 = 0, c02 = 0, c03 = 0;
        float c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0;
        float c30 = 0, c31 = 0, c32 = 0, c33 = 0;

        for (int k0 = 0; k0 < shape.K; k0 += SliceDepth)
        {
            // Each thread stages 4 of the 1024 values of each slice; consecutive threads take consecutive
            // addresses along whichever dimension is contiguous in memory, so the global loads coalesce.
            for (int part = 0; part < SliceSize / (ThreadsPerSide * ThreadsPerSide); part++)
            {
                int element = thread + part * ThreadsPerSide * ThreadsPerSide;
                int along = element % BlockSide, across = element / BlockSide;
                int depthFirst = element % SliceDepth, otherFirst = element / SliceDepth;

                // A(m, k): rows of the block × depth of the slice.
                int aRow = shape.AColumnStride == 1 ? otherFirst : along;
                int aDepth = shape.AColumnStride == 1 ? depthFirst : across;
                int m = blockRow + aRow, k = k0 + aDepth;
                aSlice[aDepth * BlockSide + aRow] = m < shape.M && k < shape.K ? a[m * shape.ARowStride + k * shape.AColumnStride] : 0f;

                // B(k, n): depth of the slice × columns of the block.
                int bColumn = shape.BRowStride == 1 ? otherFirst : along;
                int bDepth = shape.BRowStride == 1 ? depthFirst : across;
                int n = blockColumn + bColumn;
                k = k0 + bDepth;
                bSlice[bDepth * BlockSide + bColumn] = n < shape.N && k < shape.K ? b[k * shape.BRowStride + n * shape.BColumnStride] : 0f;
            }
            Group.Barrier();

            for (int depth = 0; depth < SliceDepth; depth++)
            {
                int aBase = depth * BlockSide + ty, bBase = depth * BlockSide + tx;
                float a0 = aSlice[aBase], a1 = aSlice[aBase + 16], a2 = aSlice[aBase + 32], a3 = aSlice[aBase + 48];
                float b0 = bSlice[bBase], b1 = bSlice[bBase + 16], b2 = bSlice[bBase + 32], b3 = bSlice[bBase + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }

        int row = blockRow + ty, column = blockColumn + tx;
        StoreRow(c, epilogue, shape, row, column, c00, c01, c02, c03);
        StoreRow(c, epilogue, shape, row + 16, column, c10, c11, c12, c13);
        StoreRow(c, epilogue, shape, row + 32, column, c20, c21, c22, c23);
        StoreRow(c, epilogue, shape, row + 48, column, c30, c31, c32, c33);
        // The blocks of the first block column also sum their 64 rows of A, one row per thread (consecutive
        // threads read consecutive rows, which is contiguous when A is a transposed dPre).
        if (epilogue.SumsRows && Grid.IdxX == 0 && thread < BlockSide && blockRow + thread < shape.M)
            epilogue.StoreRowSum(blockRow + thread, Dense.SumRow(a, shape, blockRow + thread));
    }

    /// <summary>Stores a thread's values of one row of C at columns column, +16, +32, +48.</summary>
    private static void StoreRow<TEpilogue>(ArrayView<float> c, TEpilogue epilogue, GemmShape shape,
        int row, int column, float v0, float v1, float v2, float v3)
        where TEpilogue : struct, IGemmEpilogue
    {
        if (row >= shape.M)
            return;
        Dense.Store(c, epilogue, shape.N, row, column, v0);
        Dense.Store(c, epilogue, shape.N, row, column + 16, v1);
        Dense.Store(c, epilogue, shape.N, row, column + 32, v2);
        Dense.Store(c, epilogue, shape.N, row, column + 48, v3);
    }
}
