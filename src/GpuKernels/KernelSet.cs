using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Every kernel loaded once for one accelerator, with launchers that enqueue on one stream. Launches are
/// asynchronous on GPUs; nothing here synchronises, so a training step is a queue of launches the host never waits
/// on. <see cref="LaunchCount"/> counts launches so the host can report launches per step.
/// </summary>
public sealed class KernelSet : IDisposable
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense> placeholder;

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
    private readonly Dictionary<LikelihoodKind, Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>> reconstructionGradient;
    private readonly Dictionary<LikelihoodKind, Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>> reconstructionLoss;
    private readonly Dictionary<LikelihoodKind, Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>> weightedGradient;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, DrawKey> reparameterizeForward;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float> reparameterizeBackward;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> targetRate;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, SamplerShape, float> weightedSamplerBackward;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> importanceBound;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<double>, int, int, int> accumulateSum;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LatentWidths> twoLayerLogWeight;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> priorStatsGradient;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmdParameters> mmdForward;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmdParameters, float> mmdBackward;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, DrawKey> priorSample;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ClassificationShape, float> classification;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, Chunking, AdamParameters> adamStep;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, Chunking> clipPartialSquares;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, float> clipScale;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<float>, GatherParameters, Chunking, DrawKey> gather;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<double>, int> accumulateLoss;
    private readonly Dictionary<ActivationKind, Action<AcceleratorStream, Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape>> cpuForward;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape> cpuBackwardWeights;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> logWeight;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ViewShape, Chunking> splitViews, joinViews;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, Chunking> add;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> ladderMerge;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> ladderMergeBackward;
    private readonly Dictionary<ActivationKind, Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>> batchNormForward;
    private readonly Dictionary<ActivationKind, Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>> batchNormBackward;

    public KernelSet(Accelerator accelerator, AcceleratorStream? stream = null)
    {
        Accelerator = accelerator;
        Stream = stream ?? accelerator.DefaultStream;
        // Also the gradient scale of an unclipped Adam step, so it holds 1.
        placeholder = accelerator.Allocate1D(new[] { 1f });
        LoadDenseKernels<IdentityActivation>(ActivationKind.Identity);
        LoadDenseKernels<ReluActivation>(ActivationKind.Relu);
        LoadDenseKernels<TanhActivation>(ActivationKind.Tanh);
        LoadDenseKernels<SigmoidActivation>(ActivationKind.Sigmoid);
        cpuBackwardWeights = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape>(DenseCpu.BackwardWeightsKernel);
        reconstructionGradient = new()
        {
            [LikelihoodKind.Bernoulli] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>(Reconstruction.LossGradientKernel<BernoulliLogits>),
            [LikelihoodKind.Gaussian] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>(Reconstruction.LossGradientKernel<GaussianFixedVariance>),
        };
        reconstructionLoss = new()
        {
            [LikelihoodKind.Bernoulli] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>(Reconstruction.LossKernel<BernoulliLogits>),
            [LikelihoodKind.Gaussian] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>(Reconstruction.LossKernel<GaussianFixedVariance>),
        };
        weightedGradient = new()
        {
            [LikelihoodKind.Bernoulli] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>(Reconstruction.WeightedGradientKernel<BernoulliLogits>),
            [LikelihoodKind.Gaussian] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, ReconstructionParameters>(Reconstruction.WeightedGradientKernel<GaussianFixedVariance>),
        };
        reparameterizeForward = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, DrawKey>(Reparameterize.ForwardKernel);
        reparameterizeBackward = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(Reparameterize.BackwardKernel);
        targetRate = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(TargetRate.ObjectiveKernel);
        weightedSamplerBackward = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, SamplerShape, float>(Reparameterize.WeightedBackwardKernel);
        importanceBound = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ImportanceWeights.BoundKernel);
        accumulateSum = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<double>, int, int, int>(LossTotals.AccumulateSumKernel);
        twoLayerLogWeight = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LatentWidths>(TwoLayer.LogWeightKernel);
        priorStatsGradient = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(TwoLayer.PriorStatsGradientKernel);
        mmdForward = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmdParameters>(Mmd.ForwardKernel);
        mmdBackward = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MmdParameters, float>(Mmd.BackwardKernel);
        priorSample = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, DrawKey>(Mmd.PriorSampleKernel);
        classification = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ClassificationShape, float>(Classification.LossGradientKernel);
        adamStep = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, Chunking, AdamParameters>(Adam.StepKernel);
        clipPartialSquares = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, Chunking>(GradientClipping.PartialSquaresKernel);
        clipScale = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, float>(GradientClipping.ScaleKernel);
        gather = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<float>, GatherParameters, Chunking, DrawKey>(Minibatch.GatherKernel);
        accumulateLoss = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<double>, int>(LossTotals.AccumulateKernel);
        cpuForward = new()
        {
            [ActivationKind.Identity] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape>(DenseCpu.ForwardKernel<IdentityActivation>),
            [ActivationKind.Relu] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape>(DenseCpu.ForwardKernel<ReluActivation>),
            [ActivationKind.Tanh] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape>(DenseCpu.ForwardKernel<TanhActivation>),
            [ActivationKind.Sigmoid] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, CpuGemmShape>(DenseCpu.ForwardKernel<SigmoidActivation>),
        };
        logWeight = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(ImportanceWeights.LogWeightKernel);
        splitViews = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ViewShape, Chunking>(Views.SplitKernel);
        joinViews = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ViewShape, Chunking>(Views.JoinKernel);
        add = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, Chunking>(Views.AddKernel);
        ladderMerge = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(Ladder.MergeKernel);
        ladderMergeBackward = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(Ladder.MergeBackwardKernel);
        batchNormForward = new()
        {
            [ActivationKind.Identity] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BatchNorm.ForwardKernel<IdentityActivation>),
            [ActivationKind.Relu] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BatchNorm.ForwardKernel<ReluActivation>),
            [ActivationKind.Tanh] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BatchNorm.ForwardKernel<TanhActivation>),
            [ActivationKind.Sigmoid] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BatchNorm.ForwardKernel<SigmoidActivation>),
        };
        batchNormBackward = new()
        {
            [ActivationKind.Identity] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BatchNorm.BackwardKernel<IdentityActivation>),
            [ActivationKind.Relu] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BatchNorm.BackwardKernel<ReluActivation>),
            [ActivationKind.Tanh] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BatchNorm.BackwardKernel<TanhActivation>),
            [ActivationKind.Sigmoid] = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BatchNorm.BackwardKernel<SigmoidActivation>),
        };

        // Element-wise kernels loop over contiguous chunks. On the CPU accelerator a launched thread is costly
        // (an OS-thread hand-off and bounds checks per call), so a few fat threads per core win; on a GPU one
        // element per thread keeps loads coalesced.
        IsCpu = accelerator.AcceleratorType == AcceleratorType.CPU;
        DenseKernels = IsCpu ? DenseVariant.CpuShaped : DenseVariant.Simple;
        elementThreads = IsCpu ? 4 * accelerator.MaxNumThreadsPerGroup : int.MaxValue;
    }

    private readonly int elementThreads;

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
        activationGradient[kind] = Accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, Chunking>(Dense.ActivationGradientKernel<TActivation>);
    }

    /// <summary>The one-launch backward kernels (simple and CPU-shaped) with the input-gradient epilogue built
    /// from the layer input (the output of the layer below).</summary>
    private void LoadBackward<TEpilogue>(Func<ArrayView<float>, TEpilogue> inputEpilogue, ActivationKind below)
        where TEpilogue : struct, IGemmEpilogue
    {
        var simple = Accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, GemmShape, GemmShape, TEpilogue>(Dense.BackwardKernel);
        simpleBackward[below] = (stream, dPre, x, weights, dWeights, dBias, dInput, batch, inputs, outputs) =>
        {
            var weightsShape = GemmShape.BackwardWeights(batch, inputs, outputs);
            var inputShape = GemmShape.BackwardInput(batch, inputs, outputs);
            int tiles = weightsShape.TileGrid.Size + inputShape.TileGrid.Size;
            simple(stream, tiles, dPre, x, weights, dWeights, dBias, dInput, weightsShape, inputShape, inputEpilogue(x));
        };
        var strided = Accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, GemmShape, GemmShape, TEpilogue, int>(DenseCpu.StridedBackwardKernel);
        stridedBackward[below] = (stream, dPre, x, weights, dWeights, dBias, dInput, batch, inputs, outputs) =>
        {
            var weightsShape = GemmShape.BackwardWeights(batch, inputs, outputs);
            var inputShape = GemmShape.BackwardInput(batch, inputs, outputs);
            var (threads, tilesPerThread) = StridedSplit(weightsShape.TileGrid.Size + inputShape.TileGrid.Size);
            strided(stream, threads, dPre, x, weights, dWeights, dBias, dInput, weightsShape, inputShape, inputEpilogue(x), tilesPerThread);
        };
        var cpu = Accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, CpuGemmShape, CpuGemmShape, TEpilogue>(DenseCpu.BackwardKernel);
        cpuBackward[below] = (stream, dPre, x, weights, dWeights, dBias, dInput, batch, inputs, outputs) =>
            cpu(stream, RowTiles(outputs) + RowTiles(batch), dPre.Cast<Float4>(), x.Cast<Float4>(), weights.Cast<Float4>(),
                dWeights, dBias, dInput, new CpuGemmShape(outputs, inputs, batch), new CpuGemmShape(batch, inputs, outputs), inputEpilogue(x));
    }

    private GemmLauncher LoadStridedGemm<TEpilogue>(Func<ArrayView<float>, TEpilogue> epilogue)
        where TEpilogue : struct, IGemmEpilogue
    {
        var kernel = Accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, TEpilogue, int>(DenseCpu.StridedGemmKernel);
        return (stream, a, b, extra, c, shape) =>
        {
            var (threads, tilesPerThread) = StridedSplit(shape.TileGrid.Size);
            kernel(stream, threads, a, b, c, shape, epilogue(extra), tilesPerThread);
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
            var kernel = Accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, TEpilogue>(DenseGpu.GemmKernel);
            return (stream, a, b, extra, c, shape) => kernel(stream, DenseGpu.LaunchConfig(shape), a, b, c, shape, epilogue(extra));
        }
        var simple = Accelerator.LoadAutoGroupedKernel<Index2D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, TEpilogue>(Dense.GemmKernel);
        return (stream, a, b, extra, c, shape) => simple(stream, shape.TileGrid, a, b, c, shape, epilogue(extra));
    }

    public Accelerator Accelerator { get; }
    public AcceleratorStream Stream { get; }
    public bool IsCpu { get; }
    public long LaunchCount { get; private set; }

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
            throw new ArgumentException($"--dense tiled needs groups of {DenseGpu.ThreadsPerSide * DenseGpu.ThreadsPerSide} threads; this accelerator allows {Accelerator.MaxNumThreadsPerGroup}");
        DenseKernels = chosen;
    }

    /// <summary>Whether this accelerator can run <see cref="DenseVariant.GpuTiled"/> (groups of 256 threads).</summary>
    public bool SupportsTiled => Accelerator.MaxNumThreadsPerGroup >= DenseGpu.ThreadsPerSide * DenseGpu.ThreadsPerSide;

    /// <summary>Times the host has waited for the stream (reported as host synchronisations per epoch).</summary>
    public long SynchronizationCount { get; private set; }

    /// <summary>Waits for everything enqueued so far; the only way the model waits on the device.</summary>
    public void Synchronize()
    {
        Stream.Synchronize();
        SynchronizationCount++;
    }

    /// <summary>
    /// A zero-length view for an absent operand (no bias). It lies inside a real buffer: ILGPU's CUDA launcher
    /// reads the address of every view argument, and <see cref="ArrayView{T}.Empty"/> has no buffer behind it.
    /// </summary>
    public ArrayView<float> None => placeholder.View.SubView(0, 0);

    /// <summary>A device float holding 1: the gradient scale of an Adam step without clipping.</summary>
    public ArrayView<float> Unit => placeholder.View;

    public void Dispose() => placeholder.Dispose();

    public Chunking ChunkingFor(int count) => Chunking.For(count, Math.Min(count, elementThreads));

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
                Launch(() => cpuBackwardWeights(Stream, RowTiles(outputs), dPre.Cast<Float4>(), x.Cast<Float4>(), dWeights, dBias, new CpuGemmShape(outputs, inputs, batch)));
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

    /// <summary>z rows = examples·samples, sample i of example b in row b·samples + i.</summary>
    public void ReparameterizeForward(ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> klPerRow, int rows, int latent, DrawKey key, int samples = 1) =>
        Launch(() => reparameterizeForward(Stream, rows, stats, z, epsilon, klPerRow, latent, samples, key));

    /// <summary>The KL weight is klWeight·klWeightFactor[0] (a device float; 1 when none is given).</summary>
    public void ReparameterizeBackward(ArrayView<float> stats, ArrayView<float> epsilon, ArrayView<float> dZ,
        ArrayView<float> dStats, int examples, int latent, float klWeight, int samples = 1, ArrayView<float>? klWeightFactor = null)
    {
        var factor = klWeightFactor ?? Unit;
        Launch(() => reparameterizeBackward(Stream, examples, stats, epsilon, dZ, dStats, factor, latent, samples, klWeight));
    }

    /// <summary>Target-rate training's objective per row and KL sign (see <see cref="TargetRate"/>).</summary>
    public void TargetRateObjective(ArrayView<float> klPerRow, ArrayView<float> reconstructionPerRow, ArrayView<float> objectivePerRow,
        ArrayView<float> klWeightFactor, int rows, float rate) =>
        Launch(() => targetRate(Stream, 1, klPerRow, reconstructionPerRow, objectivePerRow, klWeightFactor, rows, rate));

    /// <summary>The backward pass through a sampler with an N(0, I) prior and weighted rows: the IWAE's, and the
    /// two-layer model's at z2 (see <see cref="Reparameterize.WeightedBackwardKernel"/>).</summary>
    public void ImportanceBackward(ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon, ArrayView<float> dZ,
        ArrayView<float> normalizedWeights, ArrayView<float> dStats, int examples, int latent, int samples, float scale) =>
        Launch(() => weightedSamplerBackward(Stream, examples, stats, z, epsilon, dZ, None, None, normalizedWeights, dStats,
            new SamplerShape(latent, samples, gaussianPrior: false, otherGradient: false), scale));

    /// <summary>−L_k per example and the normalised weights w̃ from log-weights [examples·samples].</summary>
    public void ImportanceBound(ArrayView<float> logWeights, ArrayView<float> normalizedWeights, ArrayView<float> negativeBound,
        int examples, int samples) =>
        Launch(() => importanceBound(Stream, examples, logWeights, normalizedWeights, negativeBound, samples));

    /// <summary>Output rows = target rows·samples; output row r is scored against target row r / samples.</summary>
    public void ReconstructionLossGradient(LikelihoodKind likelihood, ArrayView<float> target, ArrayView<float> output,
        ArrayView<float> dOutput, ArrayView<float> reconstructionPerRow, int rows, int features,
        ReconstructionParameters parameters, int samples = 1) =>
        Launch(() => reconstructionGradient[likelihood](Stream, rows, target, output, dOutput, reconstructionPerRow, features, samples, parameters));

    public void ReconstructionLoss(LikelihoodKind likelihood, ArrayView<float> target, ArrayView<float> output,
        ArrayView<float> reconstructionPerRow, int rows, int features, ReconstructionParameters parameters, int samples = 1) =>
        Launch(() => reconstructionLoss[likelihood](Stream, rows, target, output, reconstructionPerRow, features, samples, parameters));

    public void ReconstructionWeightedGradient(LikelihoodKind likelihood, ArrayView<float> target, ArrayView<float> output,
        ArrayView<float> dOutput, ArrayView<float> rowWeights, int rows, int features, ReconstructionParameters parameters, int samples) =>
        Launch(() => weightedGradient[likelihood](Stream, rows, target, output, dOutput, rowWeights, features, samples, parameters));

    /// <summary>One Adam step; the gradients are multiplied by gradientScale[0] first (see
    /// <see cref="ClipGradients"/>; a buffer holding 1 leaves them as they are).</summary>
    public void AdamStep(ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> firstMoment,
        ArrayView<float> secondMoment, AdamParameters adam, ArrayView<float>? gradientScale = null)
    {
        var scale = gradientScale ?? Unit;
        var chunking = ChunkingFor((int)parameters.Length);
        Launch(() => adamStep(Stream, chunking.Threads, parameters, gradients, firstMoment, secondMoment, scale, chunking, adam));
    }

    /// <summary>Writes min(1, maxNorm/(‖g‖+1e-6)) to scale[0] and ‖g‖ to scale[1]; partials holds
    /// <see cref="GradientClipping.Slots"/> floats of scratch. Two launches, no wait.</summary>
    public void ClipGradients(ArrayView<float> gradients, ArrayView<float> partials, ArrayView<float> scale, float maxNorm)
    {
        var chunking = Chunking.For((int)gradients.Length, GradientClipping.Slots);
        Launch(() => clipPartialSquares(Stream, chunking.Threads, gradients, partials, chunking));
        Launch(() => clipScale(Stream, 1, partials, scale, chunking.Threads, maxNorm));
    }

    public void Gather(ArrayView<byte> data, ArrayView<int> order, ArrayView<float> x, int first, int batch,
        int features, bool binarize, DrawKey binarizeKey)
    {
        var chunking = ChunkingFor(batch * features);
        var parameters = new GatherParameters(first, features, binarize);
        Launch(() => gather(Stream, chunking.Threads, data, order, x, parameters, chunking, binarizeKey));
    }

    public void LogWeights(ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, int rows, int latent, int samples = 1) =>
        Launch(() => logWeight(Stream, rows, stats, z, epsilon, reconstructionPerRow, logWeights, latent, samples));

    public void AccumulateLoss(ArrayView<float> reconstructionPerRow, ArrayView<float> klPerRow,
        ArrayView<double> totals, int batch) =>
        Launch(() => accumulateLoss(Stream, 1, reconstructionPerRow, klPerRow, totals, batch));

    /// <summary>log w and the sampled KL terms of the two-layer model per z row (see <see cref="TwoLayer"/>).</summary>
    public void TwoLayerLogWeights(ArrayView<float> stats1, ArrayView<float> z1, ArrayView<float> epsilon1,
        ArrayView<float> stats2, ArrayView<float> z2, ArrayView<float> epsilon2, ArrayView<float> priorStats,
        ArrayView<float> reconstructionPerRow, ArrayView<float> logWeights, ArrayView<float> klPerRow, int rows, LatentWidths widths) =>
        Launch(() => twoLayerLogWeight(Stream, rows, stats1, z1, epsilon1, stats2, z2, epsilon2, priorStats, reconstructionPerRow, logWeights, klPerRow, widths));

    public void PriorStatsGradient(ArrayView<float> z1, ArrayView<float> priorStats, ArrayView<float> rowWeights,
        ArrayView<float> dPriorStats, int rows, int latent, float scale) =>
        Launch(() => priorStatsGradient(Stream, rows, z1, priorStats, rowWeights, dPriorStats, latent, scale));

    /// <summary>The two-layer model's z1 sampler: z1 feeds the decoder, q(z2|z1) and p(z1|z2), so its gradient
    /// adds the two networks' and the learned prior's (see <see cref="Reparameterize.WeightedBackwardKernel"/>).
    /// In the Ladder VAE nothing but the decoder reads z1: pass <see cref="None"/> as dZ1FromEncoder2.</summary>
    public void FirstLayerBackward(ArrayView<float> stats1, ArrayView<float> z1, ArrayView<float> epsilon1, ArrayView<float> priorStats,
        ArrayView<float> dZ1FromDecoder, ArrayView<float> dZ1FromEncoder2, ArrayView<float> rowWeights, ArrayView<float> dStats1,
        int examples, int latent, int samples, float scale) =>
        Launch(() => weightedSamplerBackward(Stream, examples, stats1, z1, epsilon1, dZ1FromDecoder, dZ1FromEncoder2, priorStats,
            rowWeights, dStats1, new SamplerShape(latent, samples, gaussianPrior: true, otherGradient: dZ1FromEncoder2.Length > 0), scale));

    /// <summary>Each row's share of MMD² and its InfoVAE objective (see <see cref="Mmd"/>).</summary>
    public void MmdForward(ArrayView<float> z, ArrayView<float> prior, ArrayView<float> reconstructionPerRow, ArrayView<float> klPerRow,
        ArrayView<float> mmdPerRow, ArrayView<float> objectivePerRow, MmdParameters parameters) =>
        Launch(() => mmdForward(Stream, parameters.Rows, z, prior, reconstructionPerRow, klPerRow, mmdPerRow, objectivePerRow, parameters));

    /// <summary>Adds scale·∂MMD²/∂z to dZ.</summary>
    public void MmdBackward(ArrayView<float> z, ArrayView<float> prior, ArrayView<float> dZ, MmdParameters parameters, float scale) =>
        Launch(() => mmdBackward(Stream, parameters.Rows, z, prior, dZ, parameters, scale));

    /// <summary>Softmax cross-entropy per row with its gradient and correctness (see <see cref="Classification"/>).</summary>
    public void ClassificationLossGradient(ArrayView<float> logits, ArrayView<byte> labels, ArrayView<int> order, ArrayView<float> dLogits,
        ArrayView<float> lossPerRow, ArrayView<float> correctPerRow, int rows, ClassificationShape shape, float gradientScale) =>
        Launch(() => classification(Stream, rows, logits, labels, order, dLogits, lossPerRow, correctPerRow, shape, gradientScale));

    /// <summary>N(0, I) draws, element e from Philox (key, e).</summary>
    public void PriorSample(ArrayView<float> prior, DrawKey key) =>
        Launch(() => priorSample(Stream, (int)prior.Length, prior, key));

    /// <summary>totals[slot] += Σ values.</summary>
    public void AccumulateCount(ArrayView<float> values, ArrayView<double> totals, int rows, int slot) =>
        Launch(() => accumulateSum(Stream, 1, values, totals, rows, slot, -1));

    /// <summary>Adds the per-example objective (−L_k, InfoVAE, target rate) and the example count to totals[3] and totals[4].</summary>
    public void AccumulateBound(ArrayView<float> negativeBound, ArrayView<double> totals, int examples) =>
        Launch(() => accumulateSum(Stream, 1, negativeBound, totals, examples, 3, 4));

    /// <summary>VCCA: images [rows, features] into their left and right views (see <see cref="Views"/>).</summary>
    public void SplitViews(ArrayView<float> full, ArrayView<float> view1, ArrayView<float> view2, int rows, ViewShape shape)
    {
        var chunking = ChunkingFor(rows * shape.Features);
        Launch(() => splitViews(Stream, chunking.Threads, full, view1, view2, shape, chunking));
    }

    /// <summary>VCCA: the two views back into whole images [rows, features].</summary>
    public void JoinViews(ArrayView<float> view1, ArrayView<float> view2, ArrayView<float> full, int rows, ViewShape shape)
    {
        var chunking = ChunkingFor(rows * shape.Features);
        Launch(() => joinViews(Stream, chunking.Threads, view1, view2, full, shape, chunking));
    }

    /// <summary>Ladder VAE: merged [rows, 2K] from bottom-up stats [rows / samples, 2K] and top-down [rows, 2K].</summary>
    public void LadderMerge(ArrayView<float> bottomUp, ArrayView<float> topDown, ArrayView<float> merged, int rows, int latent, int samples) =>
        Launch(() => ladderMerge(Stream, rows, bottomUp, topDown, merged, latent, samples));

    /// <summary>Ladder VAE: writes dBottomUp [examples, 2K] and adds to dTopDown [examples·samples, 2K].</summary>
    public void LadderMergeBackward(ArrayView<float> bottomUp, ArrayView<float> topDown, ArrayView<float> dMerged,
        ArrayView<float> dBottomUp, ArrayView<float> dTopDown, int examples, int latent, int samples) =>
        Launch(() => ladderMergeBackward(Stream, examples, bottomUp, topDown, dMerged, dBottomUp, dTopDown, latent, samples));

    /// <summary>y = act(batch norm(pre)); norm = [γ | β | running mean | running variance], saved ← [mean | 1/σ].</summary>
    public void BatchNormForward(ActivationKind activation, ArrayView<float> preActivation, ArrayView<float> norm,
        ArrayView<float> output, ArrayView<float> saved, BatchNormShape shape) =>
        Launch(() => batchNormForward[activation](Stream, shape.Columns, preActivation, norm, output, saved, shape));

    /// <summary>dY is overwritten with d pre-activation; dNorm ← [dγ | dβ].</summary>
    public void BatchNormBackward(ActivationKind activation, ArrayView<float> preActivation, ArrayView<float> norm,
        ArrayView<float> output, ArrayView<float> saved, ArrayView<float> dY, ArrayView<float> dNorm, BatchNormShape shape) =>
        Launch(() => batchNormBackward[activation](Stream, shape.Columns, preActivation, norm, output, saved, dY, dNorm, shape));

    /// <summary>target += addend over addend's length.</summary>
    public void Add(ArrayView<float> target, ArrayView<float> addend)
    {
        var chunking = ChunkingFor((int)addend.Length);
        Launch(() => add(Stream, chunking.Threads, target, addend, chunking));
    }

    private void Launch(Action enqueue, [CallerMemberName] string kernel = "")
    {
        LaunchCount++;
        if (Profile is not { } profile)
        {
            enqueue();
            return;
        }
        // Profiling: from an idle stream to the end of this kernel (not counted as the model's host waits).
        Stream.Synchronize();
        long start = Stopwatch.GetTimestamp();
        enqueue();
        Stream.Synchronize();
        profile.Add(profileLabel ?? kernel, Stopwatch.GetTimestamp() - start);
    }

    /// <summary>When set, every launch waits for the stream before and after and adds its time here (see
    /// <see cref="KernelProfile"/>); null (the default) launches without waiting.</summary>
    public KernelProfile? Profile { get; set; }

    // The name a dense layer's launches are profiled under: the pass and its shape.
    private string? profileLabel;

    private void ProfileAs(string pass, int batch, int inputs, int outputs) =>
        profileLabel = Profile is null ? null : $"{pass} {batch}x{inputs}->{outputs}";

    /// <summary>
    /// Every kernel entry point with its generic instantiations, for compiling each one ahead of time (the PTX
    /// check in CI) without a device.
    /// </summary>
    public static IReadOnlyList<MethodInfo> AllKernelMethods()
    {
        Type[] activations = [typeof(IdentityActivation), typeof(ReluActivation), typeof(TanhActivation), typeof(SigmoidActivation)];
        Type[] likelihoods = [typeof(BernoulliLogits), typeof(GaussianFixedVariance)];
        var methods = new List<MethodInfo>();
        // The product epilogues: forward (bias and activation), weight gradient (row sums), and the input-gradient
        // derivatives, which the simple and CPU-shaped kernels run inside their one-launch backward passes (with
        // the identity's plain epilogue) and the tiled kernel runs alone.
        var forward = activations.Select(activation => typeof(BiasActivation<>).MakeGenericType(activation)).ToList();
        var derivatives = activations.Skip(1).Select(activation => typeof(ActivationDerivative<>).MakeGenericType(activation)).ToList();
        foreach (var epilogue in forward.Append(typeof(RowSums)))
        {
            methods.Add(typeof(Dense).GetMethod(nameof(Dense.GemmKernel))!.MakeGenericMethod(epilogue));
            methods.Add(typeof(DenseCpu).GetMethod(nameof(DenseCpu.StridedGemmKernel))!.MakeGenericMethod(epilogue));
        }
        foreach (var epilogue in forward.Concat(derivatives).Append(typeof(RowSums)))
            methods.Add(typeof(DenseGpu).GetMethod(nameof(DenseGpu.GemmKernel))!.MakeGenericMethod(epilogue));
        foreach (var inputEpilogue in derivatives.Prepend(forward[0]))
        {
            methods.Add(typeof(Dense).GetMethod(nameof(Dense.BackwardKernel))!.MakeGenericMethod(inputEpilogue));
            methods.Add(typeof(DenseCpu).GetMethod(nameof(DenseCpu.BackwardKernel))!.MakeGenericMethod(inputEpilogue));
            methods.Add(typeof(DenseCpu).GetMethod(nameof(DenseCpu.StridedBackwardKernel))!.MakeGenericMethod(inputEpilogue));
        }
        foreach (var activation in activations.Skip(1))
            methods.Add(typeof(Dense).GetMethod(nameof(Dense.ActivationGradientKernel))!.MakeGenericMethod(activation));
        foreach (var likelihood in likelihoods)
        {
            methods.Add(typeof(Reconstruction).GetMethod(nameof(Reconstruction.LossGradientKernel))!.MakeGenericMethod(likelihood));
            methods.Add(typeof(Reconstruction).GetMethod(nameof(Reconstruction.LossKernel))!.MakeGenericMethod(likelihood));
            methods.Add(typeof(Reconstruction).GetMethod(nameof(Reconstruction.WeightedGradientKernel))!.MakeGenericMethod(likelihood));
        }
        methods.Add(typeof(Reparameterize).GetMethod(nameof(Reparameterize.ForwardKernel))!);
        methods.Add(typeof(Reparameterize).GetMethod(nameof(Reparameterize.BackwardKernel))!);
        methods.Add(typeof(TargetRate).GetMethod(nameof(TargetRate.ObjectiveKernel))!);
        methods.Add(typeof(Reparameterize).GetMethod(nameof(Reparameterize.WeightedBackwardKernel))!);
        methods.Add(typeof(ImportanceWeights).GetMethod(nameof(ImportanceWeights.BoundKernel))!);
        methods.Add(typeof(LossTotals).GetMethod(nameof(LossTotals.AccumulateSumKernel))!);
        methods.Add(typeof(TwoLayer).GetMethod(nameof(TwoLayer.LogWeightKernel))!);
        methods.Add(typeof(TwoLayer).GetMethod(nameof(TwoLayer.PriorStatsGradientKernel))!);
        methods.Add(typeof(Mmd).GetMethod(nameof(Mmd.ForwardKernel))!);
        methods.Add(typeof(Mmd).GetMethod(nameof(Mmd.BackwardKernel))!);
        methods.Add(typeof(Mmd).GetMethod(nameof(Mmd.PriorSampleKernel))!);
        methods.Add(typeof(Classification).GetMethod(nameof(Classification.LossGradientKernel))!);
        methods.Add(typeof(Adam).GetMethod(nameof(Adam.StepKernel))!);
        methods.Add(typeof(GradientClipping).GetMethod(nameof(GradientClipping.PartialSquaresKernel))!);
        methods.Add(typeof(GradientClipping).GetMethod(nameof(GradientClipping.ScaleKernel))!);
        methods.Add(typeof(Minibatch).GetMethod(nameof(Minibatch.GatherKernel))!);
        methods.Add(typeof(LossTotals).GetMethod(nameof(LossTotals.AccumulateKernel))!);
        methods.Add(typeof(ImportanceWeights).GetMethod(nameof(ImportanceWeights.LogWeightKernel))!);
        methods.Add(typeof(Views).GetMethod(nameof(Views.SplitKernel))!);
        methods.Add(typeof(Views).GetMethod(nameof(Views.JoinKernel))!);
        methods.Add(typeof(Views).GetMethod(nameof(Views.AddKernel))!);
        methods.Add(typeof(Ladder).GetMethod(nameof(Ladder.MergeKernel))!);
        methods.Add(typeof(Ladder).GetMethod(nameof(Ladder.MergeBackwardKernel))!);
        foreach (var activation in activations)
        {
            methods.Add(typeof(BatchNorm).GetMethod(nameof(BatchNorm.ForwardKernel))!.MakeGenericMethod(activation));
            methods.Add(typeof(BatchNorm).GetMethod(nameof(BatchNorm.BackwardKernel))!.MakeGenericMethod(activation));
        }
        foreach (var activation in activations)
            methods.Add(typeof(DenseCpu).GetMethod(nameof(DenseCpu.ForwardKernel))!.MakeGenericMethod(activation));
        methods.Add(typeof(DenseCpu).GetMethod(nameof(DenseCpu.BackwardWeightsKernel))!);
        return methods;
    }
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
