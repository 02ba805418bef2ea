using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models;
using IlgpuVae.Model.Distributed;

namespace IlgpuVae.Model;

/// <summary>
/// A model of any family (see <see cref="ModelCatalog"/>) with its optimiser: a training step is a sequence of
/// kernel launches on one accelerator stream, gather → the family's forward pass → its objective and backward
/// pass → Adam. Nothing in a step waits on the host; loss sums stay on the device until
/// <see cref="ReadTrainingSums"/>. With k samples, the encoder runs once per example and the decoder once per
/// sample: z rows are example-major (b·k + i).
/// </summary>
public sealed partial class Vae : IDisposable
{
    private readonly KernelSet kernels;
    private readonly Workspace workspace;
    private readonly DenseStack stack;
    private readonly FamilyModel family;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> parameters, gradients, firstMoment, secondMoment, gradientScale;
    private readonly MemoryBuffer1D<double, Stride1D.Dense> trainingTotals, evaluationTotals;

    /// <summary>
    /// A model of <paramref name="config"/> holding batches of up to <paramref name="maxBatch"/> examples. With
    /// <paramref name="ranks"/> of more than one process (an MPI job), every rank holds the same model and each
    /// training step and test pass is shared out over the ranks (see <see cref="TrainStep"/>).
    /// </summary>
    public Vae(KernelSet kernels, VaeConfig config, int maxBatch, ulong seed, AdamSettings? adam = null, Communicator? ranks = null)
    {
        config.Validate();
        Ranks = ranks ?? SingleProcess.Instance;
        if (Ranks.Size > 1 && DataParallelRefusal(config) is { } refusal)
            throw new SettingException(refusal);
        if (maxBatch < 1)
            throw new ArgumentException($"batch size must be at least 1 (got {maxBatch})");
        this.kernels = kernels;
        Config = config;
        Layout = new ParameterLayout(config);
        MaxBatch = maxBatch;
        Seed = seed;
        Adam = adam ?? new AdamSettings();
        Adam.Validate();
        LearningRate = Adam.LearningRate;

        // Every buffer starts zeroed: the padding between layers (see ParameterLayout) that no kernel writes, Adam's
        // moments, and the autoencoder's KL rows, which add zeros to the sums.
        workspace = new Workspace(kernels.Accelerator, Plan(config, maxBatch, Adam));
        parameters = workspace.Floats(ModelBuffers.Parameters);
        parameters.View.CopyFromCPU(Layout.Initialise(seed));
        gradients = workspace.Floats(ModelBuffers.Gradients);
        firstMoment = workspace.Floats(ModelBuffers.FirstMoment);
        secondMoment = workspace.Floats(ModelBuffers.SecondMoment);
        // [scale Adam applies, norm before clipping]; stays [1, 0] when clipping is off.
        gradientScale = workspace.Floats(ModelBuffers.GradientScale);
        gradientScale.View.CopyFromCPU(new[] { 1f, 0f });
        trainingTotals = workspace.Doubles(ModelBuffers.TrainingTotals);
        evaluationTotals = workspace.Doubles(ModelBuffers.EvaluationTotals);
        stack = new DenseStack(kernels, Layout, workspace);
        family = ModelCatalog.FamilyOf(config).Create(new ModelParts(kernels, config, Layout, workspace, stack));
        if (Ranks.Size > 1)
            UseGradientExchange(buffers => new HostGradientExchange(buffers));
        KlWeight = config.Beta;
        kernels.Accelerator.Synchronize();
    }

    public VaeConfig Config { get; }

    /// <summary>The processes that train this model together (one, unless started by mpirun or srun).</summary>
    public Communicator Ranks { get; }

    /// <summary>Why this model has no likelihood bound of x (no L_k, no importance weights), or null.</summary>
    public string? NoLikelihoodBound => family.NoLikelihoodBound;

    /// <summary>Why this model's decoder draws no images, or null.</summary>
    public string? NoImages => family.NoImages;
    public ParameterLayout Layout { get; }
    public AdamSettings Adam { get; }

    /// <summary>The β of the KL term in the next steps: the config's β, or less during KL warm-up.</summary>
    public double KlWeight { get; set; }

    /// <summary>KL warm-up: over the first this many steps β rises linearly from 0 to the config's β (step t of
    /// training uses β·min(1, t / steps)); 0 is no warm-up. Derived from the step counter, so a resumed run
    /// continues the ramp where it stopped.</summary>
    public long KlWarmupSteps { get; set; }

    /// <summary>Adam's learning rate for the next steps (a schedule changes it between epochs).</summary>
    public double LearningRate { get; set; }

    public int MaxBatch { get; }
    public ulong Seed { get; }

    /// <summary>Optimiser steps taken; also the counter that keys this step's random draws.</summary>
    public long Step { get; private set; }

    /// <summary>Kernel launches enqueued so far (for launches-per-step reports).</summary>
    public long LaunchCount => kernels.LaunchCount;

    /// <summary>Host waits on the device so far (for synchronisations-per-epoch reports).</summary>
    public long SynchronizationCount => kernels.SynchronizationCount;

    /// <summary>
    /// One optimiser step on examples order[first .. first+batch) of <paramref name="data"/>. Enqueues only; the
    /// host does not wait.
    /// </summary>
    public void TrainStep(DeviceDataset data, int first, int batch, bool binarize = false)
    {
        Step++;
        if (KlWarmupSteps > 0)
            KlWeight = Config.Beta * Math.Min(1.0, (double)Step / KlWarmupSteps);
        // Data parallel: this rank's slice of the global minibatch, drawn as the one-process run draws those
        // examples; the ranks' mean gradients, weighted by their shares, make the global batch's mean gradient.
        var slice = BatchSlice.Of(batch, Ranks.Rank, Ranks.Size);
        if (Exchange is { } exchange)
        {
            exchange.BeginStep(slice.Count, batch);
            stack.GradientReady = exchange.LayerGradientReady;
        }
        try
        {
            GradientPass(data, first + slice.Offset, slice.Count, Step, binarize, accumulateLoss: true, slice.Offset, Exchange);
        }
        finally
        {
            stack.GradientReady = null;
        }
        var adam = new AdamParameters((float)LearningRate, (float)Adam.Beta1, (float)Adam.Beta2, (float)Adam.Epsilon, Step);
        if (Adam.MaxGradientNorm is { } maxNorm)
            kernels.ClipGradients(gradients.View, workspace.Floats(ModelBuffers.ClipPartials).View, gradientScale.View, (float)maxNorm);
        kernels.AdamStep(parameters.View, gradients.View, firstMoment.View, secondMoment.View, adam, gradientScale.View);
        // A streamed data set copies the next minibatch while this step runs.
        data.Prefetch(first + batch + slice.Offset, slice.Count);
    }

    /// <summary>The gradient's L2 norm before clipping at the last step (0 when clipping is off); waits.</summary>
    public float ReadGradientNorm()
    {
        kernels.Synchronize();
        return gradientScale.GetAsArray1D()[1];
    }

    /// <summary>
    /// Adds the loss of examples order[first .. first+batch) to the evaluation sums, sampling z from stream
    /// <see cref="Philox.Streams.EvalReparameterize"/> keyed by <paramref name="drawIndex"/>; changes no parameter.
    /// A k-sample bound is scored with its own k; the others by a one-sample estimate (unbiased for any k).
    /// </summary>
    public void EvaluateBatch(DeviceDataset data, int first, int batch, long drawIndex, bool binarize = false)
    {
        // Data parallel: each rank scores its slice; ReadEvaluationSums adds the ranks' sums.
        var slice = BatchSlice.Of(batch, Ranks.Rank, Ranks.Size);
        if (slice.Count == 0)
            return;
        int samples = family.EvaluationSamples;
        var key = GatherAndForward(data, first + slice.Offset, slice.Count, binarize, drawIndex, Philox.Streams.EvalBinarize,
            Philox.Streams.EvalReparameterize, samples, slice.Offset);
        family.Evaluate(new Pass(data, first + slice.Offset, slice.Count, samples, key, Config.Beta, evaluationTotals.View, Accumulate: true));
    }

    /// <summary>
    /// log w = log p(x|z) + log p(z) − log q(z|x) for <paramref name="samples"/> fresh z of each example
    /// order[first..first+batch), [batch, samples] row-major, drawn from the importance-sampling streams keyed by
    /// <paramref name="drawIndex"/> (below 2³²; waits for the device). The encoder runs once per example, and z row
    /// r draws the same numbers as row r of a batch that holds the example <paramref name="samples"/> times, so
    /// both ways give the same weights; the first is cheaper by the encoder's share of the work.
    /// </summary>
    public float[] LogImportanceWeights(DeviceDataset data, int first, int batch, long drawIndex, int samples = 1, bool binarize = false)
    {
        if ((ulong)drawIndex > uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(drawIndex), "draw indices must stay below 2^32");
        if (samples < 1 || (long)batch * samples > (long)MaxBatch * Config.Samples)
            throw new ArgumentOutOfRangeException(nameof(samples), $"{batch} examples × {samples} samples exceed the {MaxBatch * Config.Samples} rows of z this model holds");
        if (family.NoLikelihoodBound is { } reason)
            throw new InvalidOperationException(reason);
        GatherAndForward(data, first, batch, binarize, drawIndex, Philox.Streams.ImportanceBinarize, Philox.Streams.ImportanceReparameterize, samples);
        family.ImportanceRows(batch, samples);
        return family.DownloadLogWeights(batch * samples);
    }

    /// <summary>Puts back the running training sums of an interrupted epoch (from a checkpoint).</summary>
    public void RestoreTrainingSums(LossSums sums)
    {
        kernels.Synchronize();
        // The sums are read as the ranks' total, so one rank holds what was saved.
        var values = sums.ToArray();
        if (!Ranks.IsRoot)
            Array.Clear(values);
        trainingTotals.View.CopyFromCPU(values);
    }

    /// <summary>Reads the training sums (this synchronises with the device) and optionally resets them; with
    /// several ranks, every rank must call it (the sums are the ranks' total).</summary>
    public LossSums ReadTrainingSums(bool reset) => ReadSums(trainingTotals, reset, KlWeight);

    public LossSums ReadEvaluationSums(bool reset) => ReadSums(evaluationTotals, reset, Config.Beta);

    public float[] GetParameters()
    {
        kernels.Synchronize();
        return parameters.GetAsArray1D();
    }

    /// <summary>Parameters and Adam's moments, for a checkpoint (waits for the device).</summary>
    public (float[] Parameters, float[] FirstMoment, float[] SecondMoment) ExportState()
    {
        kernels.Synchronize();
        return (parameters.GetAsArray1D(), firstMoment.GetAsArray1D(), secondMoment.GetAsArray1D());
    }

    /// <summary>Continues from a checkpoint: parameters, moments and the step counter that keys the next draws.</summary>
    public void RestoreState(float[] values, float[] first, float[] second, long step)
    {
        if (values.Length != Layout.Count || first.Length != Layout.Count || second.Length != Layout.Count)
            throw new ArgumentException($"a checkpoint for this model holds {Layout.Count} values per buffer");
        if (step < 0)
            throw new ArgumentException($"step must be ≥ 0 (got {step})");
        kernels.Synchronize();
        parameters.View.CopyFromCPU(values);
        firstMoment.View.CopyFromCPU(first);
        secondMoment.View.CopyFromCPU(second);
        Step = step;
    }

    /// <summary>The gradient of the last training step (for tests and diagnostics).</summary>
    public float[] GetGradients()
    {
        kernels.Synchronize();
        return gradients.GetAsArray1D();
    }

    /// <summary>
    /// Forward pass and gradient of the objective for examples order[first..first+batch) without an optimiser
    /// update, keyed like training step <paramref name="drawStep"/>; for gradient checks.
    /// </summary>
    /// <param name="firstExample">Where these examples start in the global minibatch they belong to: their draws
    /// are those of positions firstExample.. of that batch (a data-parallel rank's slice).</param>
    public void ComputeGradient(DeviceDataset data, int first, int batch, long drawStep, bool binarize = false, int firstExample = 0) =>
        GradientPass(data, first, batch, drawStep, binarize, accumulateLoss: false, firstExample);

    /// <param name="exchange">A data-parallel step's: it makes the rank's gradient the global batch's before the
    /// weight prior's term, which is the same on every rank, is added. A rank may have no examples (batch 0).</param>
    private void GradientPass(DeviceDataset data, int first, int batch, long drawStep, bool binarize, bool accumulateLoss, int firstExample = 0,
        GradientExchange? exchange = null)
    {
        // Batch-normalised layers use the batch's statistics in a training pass, the running averages otherwise.
        stack.TrainingPass = true;
        try
        {
            if (batch > 0)
            {
                var key = GatherAndForward(data, first, batch, binarize, drawStep, Philox.Streams.Binarize, Philox.Streams.Reparameterize, Config.Samples, firstExample);
                family.Train(new Pass(data, first, batch, Config.Samples, key, KlWeight, trainingTotals.View, accumulateLoss));
            }
            exchange?.Complete();
            if (Config.WeightPrior is { } kappa)
                foreach (var layer in Layout.Layers.Take(Layout.DecoderEnd).Skip(Layout.DecoderStart))
                    kernels.AddWeightPriorGradient(parameters.View.SubView(layer.WeightOffset, layer.WeightCount),
                        gradients.View.SubView(layer.WeightOffset, layer.WeightCount), (float)(1 / kappa));
        }
        finally
        {
            stack.TrainingPass = false;
        }
    }

    /// <summary>Builds the minibatch on the device and runs the family's forward pass, with the draws of one pair
    /// of random streams (training or evaluation) keyed by <paramref name="drawIndex"/>; returns the sampler's key.</summary>
    private DrawKey GatherAndForward(DeviceDataset data, int first, int batch, bool binarize, long drawIndex,
        uint binarizeStream, uint reparameterizeStream, int samples, int firstExample = 0)
    {
        GatherBatch(data, first, batch, binarize, new DrawKey(Seed, binarizeStream, drawIndex, firstExample));
        var key = new DrawKey(Seed, reparameterizeStream, drawIndex, firstExample);
        family.Forward(batch, key, samples);
        return key;
    }

    private void GatherBatch(DeviceDataset data, int first, int batch, bool binarize, DrawKey binarizeKey)
    {
        CheckBatch(data, first, batch);
        data.Stage(kernels, first, batch);
        kernels.Gather(data.Images, data.Order, workspace.Floats(ModelBuffers.Input).View, first, batch, Config.InputSize, binarize, binarizeKey);
        family.PrepareInput(batch);
    }

    /// <summary>
    /// The encoder's q(z|x) for examples order[first..first+batch): μ and log σ², each [batch, latent] row-major
    /// (waits for the device; for commands, not training). For the autoencoder, the codes and an empty log σ²; with
    /// two stochastic layers, q(z2|·), the top latent that Decode takes.
    /// </summary>
    /// <summary>The encoder's last layer for examples order[first..first+batch): its raw statistics (the rank-one
    /// posterior's [μ | log d | u]), where <see cref="Encode"/> gives μ and the marginal log-variances.</summary>
    public float[] EncoderOutput(DeviceDataset data, int first, int batch)
    {
        GatherBatch(data, first, batch, false, new DrawKey(Seed, Philox.Streams.EvalBinarize, 0));
        return family.EncoderOutput(batch);
    }

    public (float[] Mu, float[] LogVariance) Encode(DeviceDataset data, int first, int batch, bool binarize = false, long drawIndex = 0)
    {
        GatherBatch(data, first, batch, binarize, new DrawKey(Seed, Philox.Streams.EvalBinarize, drawIndex));
        return family.Encode(batch);
    }

    /// <summary>Each stochastic layer's posterior means [batch, K_l], bottom first, for a model of several (null for
    /// the others); see <see cref="FamilyModel.LayerMeans"/>.</summary>
    public IReadOnlyList<float[]>? LayerMeans(DeviceDataset data, int first, int batch)
    {
        GatherBatch(data, first, batch, false, new DrawKey(Seed, Philox.Streams.EvalBinarize, 0));
        return family.LayerMeans(batch);
    }

    /// <summary>
    /// The decoder's mean for each row of <paramref name="codes"/> ([n, latent], n ≤ MaxBatch): pixel
    /// probabilities (the sigmoid of the logits) for Bernoulli, the means for Gaussian, the expected grey levels
    /// (rate/255) for Poisson counts; [n, input] row-major.
    /// </summary>
    public float[] Decode(float[] codes)
    {
        if (family.NoImages is { } reason)
            throw new InvalidOperationException(reason);
        int top = Config.TopLatent;
        int batch = codes.Length / top;
        if (batch < 1 || batch > MaxBatch || codes.Length != batch * top)
            throw new ArgumentException($"decode takes 1..{MaxBatch} codes of {top} values (got {codes.Length} values)");
        kernels.Synchronize();
        family.Decode(codes, batch);
        kernels.Synchronize();
        var output = ArrayViewExtensions.GetAsArray1D<float>(family.Output(batch));
        if (Config.Likelihood == LikelihoodKind.Bernoulli)
            for (int i = 0; i < output.Length; i++)
                output[i] = StableMath.Sigmoid(output[i]);
        return output;
    }

    /// <summary><paramref name="count"/> codes of the top latent drawn from the prior, what <c>sample</c> decodes:
    /// from N(0, I), element i is Philox (seed, <see cref="Philox.Streams.Sample"/>, 0, i); from a learned mixture,
    /// code n takes component ⌊C·u_n⌋ with u_n = Philox.Uniform (seed, Sample, 1, n), and μ_c + σ_c times those
    /// same normal draws; binary units (the sigmoid belief network) are 1 where Philox.Uniform (seed, Sample, 0, i)
    /// falls below σ of their prior logit.</summary>
    public float[] PriorCodes(int count, ulong seed)
    {
        if (count < 1)
            throw new ArgumentOutOfRangeException(nameof(count), $"draw at least one code (got {count})");
        kernels.Synchronize();
        if (family.DrawPriorCodes(count, seed) is { } own)
            return own;
        var codes = new float[count * Config.TopLatent];
        for (int i = 0; i < codes.Length; i++)
            codes[i] = Philox.Normal(seed, Philox.Streams.Sample, 0, i);
        if (PriorComponents() is { } components)
        {
            int latent = Config.TopLatent, mixtures = Config.ModelPriorComponents;
            for (int n = 0; n < count; n++)
            {
                int c = Math.Min(mixtures - 1, (int)(Philox.Uniform(seed, Philox.Streams.Sample, 1, n) * mixtures));
                for (int k = 0; k < latent; k++)
                    codes[n * latent + k] = components[c * 2 * latent + k] + MathF.Exp(0.5f * components[c * 2 * latent + latent + k]) * codes[n * latent + k];
            }
        }
        return codes;
    }

    /// <summary>Each latent layer's units as images, bottom first, for a model whose units add to the pixels' rates
    /// (the DEF's components, see <see cref="FamilyModel.LayerComponents"/>), or null (waits for the device).</summary>
    public IReadOnlyList<float[]>? LayerComponents()
    {
        kernels.Synchronize();
        return family.LayerComponents();
    }

    /// <summary>A learned prior's components [C, 2·latent], rows [μ_c | log σ_c²], or null with N(0, I) (waits for
    /// the device).</summary>
    public float[]? PriorComponents()
    {
        kernels.Synchronize();
        return family.PriorComponents();
    }

    /// <summary>
    /// The mutual autoencoder's Î(x; z) = H(z) + E log r(z|x), the mean over <paramref name="batches"/> draws of
    /// MaxBatch pairs from the model (evaluation streams, keyed by the draw's index), or null for a model without r
    /// (waits for the device).
    /// </summary>
    public double? InformationEstimate(int batches = 10)
    {
        double sum = 0;
        for (int draw = 0; draw < batches; draw++)
        {
            if (family.InformationEstimate(MaxBatch, new DrawKey(Seed, Philox.Streams.EvalReparameterize, draw)) is not { } estimate)
                return null;
            sum += estimate;
        }
        return sum / batches;
    }

    /// <summary>The VampPrior's pseudo-inputs [C, input], or null without one (waits for the device).</summary>
    public float[]? PseudoInputs()
    {
        kernels.Synchronize();
        return family.PseudoInputs();
    }

    private LossSums ReadSums(MemoryBuffer1D<double, Stride1D.Dense> totals, bool reset, double beta)
    {
        kernels.Synchronize();
        var values = totals.GetAsArray1D();
        // Enqueued on the stream, so later steps see zeros without another wait here.
        if (reset)
            totals.View.MemSetToZero(kernels.Stream);
        return LossSums.FromArray(Ranks.SumInRankOrder(values), beta);
    }

    private void CheckBatch(DeviceDataset data, int first, int batch)
    {
        if (batch < 1 || batch > MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(batch), $"batch {batch} is outside 1..{MaxBatch}");
        if (first < 0 || first + batch > data.OrderLength)
            throw new ArgumentOutOfRangeException(nameof(first), $"entries {first}..{first + batch} are outside the order of {data.OrderLength} examples");
        if (data.Features != Config.InputSize)
            throw new ArgumentException($"data has {data.Features} features per example but the model expects {Config.InputSize}");
    }

    public void Dispose()
    {
        Exchange?.Dispose();
        workspace.Dispose();
    }
}
