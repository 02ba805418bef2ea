using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

// The dense layers' launchers: three families of product kernels (simple, CPU-shaped, GPU-tiled), each with the
// epilogues a layer needs, chosen per launch by DenseKernels and by the shape.
public sealed partial class KernelSet
{
    /// <summary>Enqueues one product C = epilogue(A·B); <c>extra</c> is the epilogue's view (the bias, the layer
    /// below's output, or the row sums) and the grid follows from the shape.</summary>
    private delegate void GemmLauncher(AcceleratorStream stream, ArrayView<float> a, ArrayView<float> b, ArrayView<float> extra,
        ArrayView<float> c, GemmShape shape);

    /// <summary>The epilogues a dense layer needs (see <see cref="IGemmEpilogue"/>).</summary>
    private enum Epilogue
    {
        /// <summary>act(value + bias): the forward pass.</summary>
        BiasActivation,
        /// <summary>value·act'(y): the input gradient, as the layer below's dPre.</summary>
        ActivationDerivative,
        /// <summary>value, plus A's row sums: the weight gradient with the bias gradient.</summary>
        RowSums,
    }

    private readonly Dictionary<(Epilogue, ActivationKind), GemmLauncher> simpleGemm = new(), tiledGemm = new(), stridedGemm = new();

    /// <summary>Enqueues a layer's two backward products in one launch (see <see cref="DenseBackward"/>).</summary>
    private delegate void BackwardLauncher(AcceleratorStream stream, ArrayView<float> dPre, ArrayView<float> x, ArrayView<float> weights,
        ArrayView<float> dWeights, ArrayView<float> dBias, ArrayView<float> dInput, int batch, int inputs, int outputs);

    /// <summary>One launch per layer backward, by the activation of the layer below: simple, CPU-shaped, and the
    /// CPU's fat-thread form of the simple one (for widths that are not multiples of 4).</summary>
    private readonly Dictionary<ActivationKind, BackwardLauncher> simpleBackward = new(), cpuBackward = new(), stridedBackward = new();
    private readonly Dictionary<ActivationKind, Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, Chunking>> activationGradient = new();
    private readonly Dictionary<ActivationKind, Action<AcceleratorStream, Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape>> cpuForward = new();

    /// <summary>Builds every dense launcher; the kernels behind them load on first use.</summary>
    private void InitializeDense()
    {
        LoadDenseKernels<IdentityActivation>(ActivationKind.Identity);
        LoadDenseKernels<ReluActivation>(ActivationKind.Relu);
        LoadDenseKernels<TanhActivation>(ActivationKind.Tanh);
        LoadDenseKernels<SigmoidActivation>(ActivationKind.Sigmoid);
    }

    /// <summary>
    /// The dense-layer kernels of one activation: the simple and tiled products with each epilogue that activation
    /// needs (an identity derivative is no epilogue at all, so it reuses the plain one), the one-launch backward
    /// kernels with this activation below, and the stand-alone activation gradient.
    /// </summary>
    private void LoadDenseKernels<TActivation>(ActivationKind kind)
        where TActivation : struct, IActivation
    {
        var none = None;
        simpleGemm[(Epilogue.BiasActivation, kind)] = LoadGemm(bias => new BiasActivation<TActivation>(bias), tiled: false);
        stridedGemm[(Epilogue.BiasActivation, kind)] = LoadStridedGemm(bias => new BiasActivation<TActivation>(bias));
        tiledGemm[(Epilogue.BiasActivation, kind)] = LoadGemm(bias => new BiasActivation<TActivation>(bias), tiled: true);
        Action<Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape> forward = DenseCpu.ForwardKernel<TActivation>;
        cpuForward[kind] = (stream, rows, x, weights, bias, y, shape) =>
            Loaded(forward, () => Accelerator.LoadAutoGroupedKernel(forward))(stream, rows, x, weights, bias, y, shape);
        // The simple and CPU-shaped variants run the input-gradient product inside the one-launch backward
        // kernels; the tiled variant runs it alone.
        if (kind == ActivationKind.Identity)
        {
            LoadBackward(_ => new BiasActivation<IdentityActivation>(none), kind);
            // The identity's derivative is 1: the plain tiled product, without a bias.
            var plainTiled = tiledGemm[(Epilogue.BiasActivation, kind)];
            tiledGemm[(Epilogue.ActivationDerivative, kind)] = (stream, a, b, _, c, shape) => plainTiled(stream, a, b, none, c, shape);
            simpleGemm[(Epilogue.RowSums, kind)] = LoadGemm(sums => new RowSums(sums), tiled: false);
            stridedGemm[(Epilogue.RowSums, kind)] = LoadStridedGemm(sums => new RowSums(sums));
            tiledGemm[(Epilogue.RowSums, kind)] = LoadGemm(sums => new RowSums(sums), tiled: true);
            return;
        }
        LoadBackward(below => new ActivationDerivative<TActivation>(below), kind);
        tiledGemm[(Epilogue.ActivationDerivative, kind)] = LoadGemm(below => new ActivationDerivative<TActivation>(below), tiled: true);
        Action<Index1D, ArrayView<float>, ArrayView<float>, Chunking> gradient = Dense.ActivationGradientKernel<TActivation>;
        activationGradient[kind] = (stream, threads, y, dY, chunking) =>
            Loaded(gradient, () => Accelerator.LoadAutoGroupedKernel(gradient))(stream, threads, y, dY, chunking);
    }

    /// <summary>The one-launch backward kernels (simple and CPU-shaped) with the input-gradient epilogue built
    /// from the layer input (the output of the layer below).</summary>
    private void LoadBackward<TEpilogue>(Func<ArrayView<float>, TEpilogue> inputEpilogue, ActivationKind below)
        where TEpilogue : struct, IGemmEpilogue
    {
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            GemmShape, GemmShape, TEpilogue> simpleEntry = Dense.BackwardKernel;
        simpleBackward[below] = (stream, dPre, x, weights, dWeights, dBias, dInput, batch, inputs, outputs) =>
        {
            var weightsShape = GemmShape.BackwardWeights(batch, inputs, outputs);
            var inputShape = GemmShape.BackwardInput(batch, inputs, outputs);
            int tiles = weightsShape.TileGrid.Size + inputShape.TileGrid.Size;
            Loaded(simpleEntry, () => Accelerator.LoadAutoGroupedKernel(simpleEntry))(stream, tiles, dPre, x, weights, dWeights, dBias, dInput, weightsShape, inputShape, inputEpilogue(x));
        };
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            GemmShape, GemmShape, TEpilogue, int> stridedEntry = DenseCpu.StridedBackwardKernel;
        stridedBackward[below] = (stream, dPre, x, weights, dWeights, dBias, dInput, batch, inputs, outputs) =>
        {
            var weightsShape = GemmShape.BackwardWeights(batch, inputs, outputs);
            var inputShape = GemmShape.BackwardInput(batch, inputs, outputs);
            var (threads, tilesPerThread) = StridedSplit(weightsShape.TileGrid.Size + inputShape.TileGrid.Size);
            Loaded(stridedEntry, () => Accelerator.LoadAutoGroupedKernel(stridedEntry))(stream, threads, dPre, x, weights, dWeights, dBias, dInput, weightsShape, inputShape, inputEpilogue(x), tilesPerThread);
        };
        Action<Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            CpuGemmShape, CpuGemmShape, TEpilogue> cpuEntry = DenseCpu.BackwardKernel;
        cpuBackward[below] = (stream, dPre, x, weights, dWeights, dBias, dInput, batch, inputs, outputs) =>
            Loaded(cpuEntry, () => Accelerator.LoadAutoGroupedKernel(cpuEntry))(stream, RowTiles(outputs) + RowTiles(batch), dPre.Cast<Float4>(), x.Cast<Float4>(), weights.Cast<Float4>(),
                dWeights, dBias, dInput, new CpuGemmShape(outputs, inputs, batch), new CpuGemmShape(batch, inputs, outputs), inputEpilogue(x));
    }

    private GemmLauncher LoadStridedGemm<TEpilogue>(Func<ArrayView<float>, TEpilogue> epilogue)
        where TEpilogue : struct, IGemmEpilogue
    {
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, TEpilogue, int> entry = DenseCpu.StridedGemmKernel;
        return (stream, a, b, extra, c, shape) =>
        {
            var (threads, tilesPerThread) = StridedSplit(shape.TileGrid.Size);
            Loaded(entry, () => Accelerator.LoadAutoGroupedKernel(entry))(stream, threads, a, b, c, shape, epilogue(extra), tilesPerThread);
        };
    }

    /// <summary>Threads and tiles per thread for the fat-thread simple kernels: 64 threads per simulated group
    /// thread at most, so that each runs many tiles.</summary>
    private (int Threads, int TilesPerThread) StridedSplit(int tiles)
    {
        int tilesPerThread = Math.Max(1, (tiles + 64 * Accelerator.MaxNumThreadsPerGroup - 1) / (64 * Accelerator.MaxNumThreadsPerGroup));
        return ((tiles + tilesPerThread - 1) / tilesPerThread, tilesPerThread);
    }

    private GemmLauncher LoadGemm<TEpilogue>(Func<ArrayView<float>, TEpilogue> epilogue, bool tiled)
        where TEpilogue : struct, IGemmEpilogue
    {
        if (tiled)
        {
            Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, TEpilogue> tiledEntry = DenseGpu.GemmKernel;
            return (stream, a, b, extra, c, shape) => Loaded(tiledEntry, () => Accelerator.LoadKernel(tiledEntry))(stream, DenseGpu.LaunchConfig(shape), a, b, c, shape, epilogue(extra));
        }
        Action<Index2D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, TEpilogue> simpleEntry = Dense.GemmKernel;
        return (stream, a, b, extra, c, shape) => Loaded(simpleEntry, () => Accelerator.LoadAutoGroupedKernel(simpleEntry))(stream, shape.TileGrid, a, b, c, shape, epilogue(extra));
    }

    /// <summary>
    /// Which product kernels dense layers use: <see cref="DenseVariant.CpuShaped"/> by default on the CPU
    /// accelerator (where the shape allows; otherwise the simple kernel), <see cref="DenseVariant.Simple"/>
    /// elsewhere until the tiled kernel has been measured on a GPU. Tests and benchmarks switch it.
    /// </summary>
    public DenseVariant DenseKernels { get; set; }

    /// <summary>Switches to <paramref name="variant"/> (null keeps the accelerator's default), or says why this
    /// accelerator cannot run it.</summary>
    public void UseDenseKernels(DenseVariant? variant)
    {
        if (variant is not { } chosen)
            return;
        if (chosen == DenseVariant.GpuTiled && !SupportsTiled)
            throw new SettingException($"@DenseKernels tiled needs groups of {DenseGpu.ThreadsPerSide * DenseGpu.ThreadsPerSide} threads; this accelerator allows {Accelerator.MaxNumThreadsPerGroup}");
        DenseKernels = chosen;
    }

    /// <summary>Whether this accelerator can run <see cref="DenseVariant.GpuTiled"/> (groups of 256 threads).</summary>
    public bool SupportsTiled => Accelerator.MaxNumThreadsPerGroup >= DenseGpu.ThreadsPerSide * DenseGpu.ThreadsPerSide;

    /// <summary>y = act(x·Wᵀ + b) for x [batch, inputs], W [outputs, inputs], y [batch, outputs].</summary>
    public void DenseForward(ActivationKind activation, ArrayView<float> x, ArrayView<float> weights,
        ArrayView<float> bias, ArrayView<float> y, int batch, int inputs, int outputs)
    {
        ProfileAs(nameof(DenseForward), batch, inputs, outputs);
        try
        {
            if (DenseKernels == DenseVariant.CpuShaped && inputs % 4 == 0 && StartsOnFloat4(x) && StartsOnFloat4(weights))
            {
                var cpuShape = new CpuGemmShape(batch, outputs, inputs);
                Launch(() => cpuForward[activation](Stream, RowTiles(batch), x.Cast<Float4>(), weights.Cast<Float4>(), bias, y, cpuShape));
                return;
            }
            Gemm(activation, x, weights, bias, y, GemmShape.Forward(batch, inputs, outputs));
        }
        finally
        {
            profileLabel = null;
        }
    }

    /// <summary>
    /// Backward through y = act(x·Wᵀ + b) from dPre, the gradient at x·Wᵀ + b (act' already applied by whoever
    /// wrote it): dWeights = dPreᵀ·x and dBias = Σ_b dPre; unless dInput is <see cref="None"/> (the first layer),
    /// dInput = (dPre·W) ⊙ inputActivation'(x), which is the dPre of the layer whose output x is (pass
    /// <see cref="ActivationKind.Identity"/> for the plain input gradient). One launch with the simple and
    /// CPU-shaped kernels, two with the tiled ones. dWeights, dBias and dInput are written, not accumulated.
    /// </summary>
    public void DenseBackward(ArrayView<float> x, ArrayView<float> weights, ArrayView<float> dPre,
        ArrayView<float> dInput, ActivationKind inputActivation, ArrayView<float> dWeights,
        ArrayView<float> dBias, int batch, int inputs, int outputs)
    {
        ProfileAs(nameof(DenseBackward), batch, inputs, outputs);
        try
        {
            DenseBackwardLaunches(x, weights, dPre, dInput, inputActivation, dWeights, dBias, batch, inputs, outputs);
        }
        finally
        {
            profileLabel = null;
        }
    }

    private void DenseBackwardLaunches(ArrayView<float> x, ArrayView<float> weights, ArrayView<float> dPre,
        ArrayView<float> dInput, ActivationKind inputActivation, ArrayView<float> dWeights,
        ArrayView<float> dBias, int batch, int inputs, int outputs)
    {
        bool hasInput = dInput.Length > 0;
        if (DenseKernels == DenseVariant.CpuShaped && inputs % 4 == 0 && outputs % 4 == 0 && StartsOnFloat4(x) && StartsOnFloat4(dPre) && StartsOnFloat4(weights))
        {
            if (hasInput)
                Launch(() => cpuBackward[inputActivation](Stream, dPre, x, weights, dWeights, dBias, dInput, batch, inputs, outputs));
            else
                Launch(DenseCpu.BackwardWeightsKernel, RowTiles(outputs), dPre.Cast<Float4>(), x.Cast<Float4>(), dWeights, dBias, new CpuGemmShape(outputs, inputs, batch));
            return;
        }
        var products = ProductKernels;
        bool tiled = products == tiledGemm;
        if (hasInput && !tiled)
        {
            var backward = DenseKernels == DenseVariant.CpuShaped ? stridedBackward : simpleBackward;
            Launch(() => backward[inputActivation](Stream, dPre, x, weights, dWeights, dBias, dInput, batch, inputs, outputs));
            return;
        }
        // The first layer (no input gradient), and the tiled kernels, whose blocks stage operands in shared memory
        // for one product at a time: a launch per product.
        Launch(() => products[(Epilogue.RowSums, ActivationKind.Identity)](Stream, dPre, x, dBias, dWeights, GemmShape.BackwardWeights(batch, inputs, outputs)));
        if (hasInput)
            Launch(() => products[(Epilogue.ActivationDerivative, inputActivation)](Stream, dPre, weights, x, dInput, GemmShape.BackwardInput(batch, inputs, outputs)));
    }

    private static int RowTiles(int rows) => (rows + Dense.Tile - 1) / Dense.Tile;

    /// <summary>A view can be read as <see cref="Float4"/> elements only from a 4-float boundary of its buffer.</summary>
    private static bool StartsOnFloat4(ArrayView<float> view) => ((IContiguousArrayView)view).IndexInBytes % 16 == 0 && view.Length % 4 == 0;

    /// <summary>The strided products of the variant <see cref="DenseKernels"/> asks for: the shared-memory tiled
    /// kernels where the accelerator can run them, the simple kernels' fat-thread form for the CPU-shaped variant
    /// (the shapes its Float4 kernels cannot take come here), else the simple ones.</summary>
    private Dictionary<(Epilogue, ActivationKind), GemmLauncher> ProductKernels => DenseKernels switch
    {
        DenseVariant.GpuTiled when SupportsTiled => tiledGemm,
        DenseVariant.CpuShaped => stridedGemm,
        _ => simpleGemm,
    };

    /// <summary>The strided product C = act(A·B + bias), with the kernels of <see cref="ProductKernels"/>.</summary>
    public void Gemm(ActivationKind activation, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias,
        ArrayView<float> c, GemmShape shape)
    {
        var products = ProductKernels;
        Launch(() => products[(Epilogue.BiasActivation, activation)](Stream, a, b, bias, c, shape));
    }

    /// <summary>dY ← dY ⊙ act'(y) for a gradient completed by a sum (nothing to do for the identity).</summary>
    public void ActivationGradient(ActivationKind activation, ArrayView<float> y, ArrayView<float> dY)
    {
        if (activation == ActivationKind.Identity)
            return;
        var chunking = ChunkingFor((int)dY.Length);
        Launch(() => activationGradient[activation](Stream, chunking.Threads, y, dY, chunking));
    }

    private void Launch(Action enqueue, [CallerMemberName] string caller = "") => Run(enqueue, caller);

    private void ProfileAs(string pass, int batch, int inputs, int outputs) =>
        profileLabel = Profile is null ? null : $"{pass} {batch}x{inputs}->{outputs}";
}

/// <summary>The families of dense product kernels (see <see cref="KernelSet.DenseKernels"/>).</summary>
public enum DenseVariant
{
    /// <summary><see cref="Dense.GemmKernel{TEpilogue}"/>: one 4×4 tile per thread; the reference.</summary>
    Simple,
    /// <summary><see cref="DenseCpu"/>: 16-byte loads and fat row-strip threads, for the CPU accelerator.</summary>
    CpuShaped,
    /// <summary><see cref="DenseGpu"/>: 64×64 blocks staged in shared memory, for GPUs.</summary>
    GpuTiled,
}
