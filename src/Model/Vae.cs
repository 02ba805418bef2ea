using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>Running sums of the loss terms over the examples seen since the last reset.</summary>
public readonly record struct LossSums(double Reconstruction, double Kl, double Examples, double Beta)
{
    public double MeanReconstruction => Examples > 0 ? Reconstruction / Examples : double.NaN;
    public double MeanKl => Examples > 0 ? Kl / Examples : double.NaN;
    /// <summary>Mean loss per example: reconstruction + β·KL (the negative ELBO when β = 1).</summary>
    public double MeanLoss => MeanReconstruction + Beta * MeanKl;
}

/// <summary>
/// A Gaussian-encoder VAE whose training step is a sequence of kernel launches on one accelerator stream:
/// gather → encoder → reparameterize+KL → decoder → loss+gradient → backward → Adam. Nothing in a step waits on
/// the host; loss sums stay on the device until <see cref="ReadTrainingSums"/>.
/// The objective is the batch mean of rec + β·KL.
/// </summary>
public sealed class Vae : IDisposable
{
    private readonly KernelSet kernels;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> parameters, gradients, firstMoment, secondMoment;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> x, z, epsilon, dZ, klPerRow, reconstructionPerRow, logWeights;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] layerOutputs, layerGradients;
    private readonly MemoryBuffer1D<double, Stride1D.Dense> trainingTotals, evaluationTotals;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> gradientScale, clipPartials;

    public Vae(KernelSet kernels, VaeConfig config, int maxBatch, ulong seed, AdamSettings? adam = null)
    {
        config.Validate();
        if (maxBatch < 1)
            throw new ArgumentException($"batch size must be at least 1 (got {maxBatch})");
        this.kernels = kernels;
        Config = config;
        Layout = new ParameterLayout(config);
        MaxBatch = maxBatch;
        Seed = seed;
        Adam = adam ?? new AdamSettings();
        Adam.Validate();

        var accelerator = kernels.Accelerator;
        parameters = accelerator.Allocate1D(Layout.Initialise(seed));
        gradients = accelerator.Allocate1D<float>(Layout.Count);
        firstMoment = accelerator.Allocate1D<float>(Layout.Count);
        secondMoment = accelerator.Allocate1D<float>(Layout.Count);
        // The padding between layers (see ParameterLayout) is never written by a kernel, so zero it once here.
        gradients.MemSetToZero();
        firstMoment.MemSetToZero();
        secondMoment.MemSetToZero();
        x = accelerator.Allocate1D<float>(maxBatch * config.InputSize);
        z = accelerator.Allocate1D<float>(maxBatch * config.Latent);
        epsilon = accelerator.Allocate1D<float>(maxBatch * config.Latent);
        dZ = accelerator.Allocate1D<float>(maxBatch * config.Latent);
        klPerRow = accelerator.Allocate1D<float>(maxBatch);
        reconstructionPerRow = accelerator.Allocate1D<float>(maxBatch);
        logWeights = accelerator.Allocate1D<float>(maxBatch);
        layerOutputs = Layout.Layers.Select(layer => accelerator.Allocate1D<float>(maxBatch * layer.Outputs)).ToArray();
        layerGradients = Layout.Layers.Select(layer => accelerator.Allocate1D<float>(maxBatch * layer.Outputs)).ToArray();
        // [scale Adam applies, norm before clipping]; stays [1, 0] when clipping is off.
        gradientScale = accelerator.Allocate1D(new[] { 1f, 0f });
        clipPartials = accelerator.Allocate1D<float>(GradientClipping.Slots);
        trainingTotals = accelerator.Allocate1D<double>(3);
        evaluationTotals = accelerator.Allocate1D<double>(3);
        trainingTotals.MemSetToZero();
        evaluationTotals.MemSetToZero();
        accelerator.Synchronize();
    }

    public VaeConfig Config { get; }
    public ParameterLayout Layout { get; }
    public AdamSettings Adam { get; }
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
        GradientPass(data, first, batch, Step, binarize, accumulateLoss: true);
        var adam = new AdamParameters((float)Adam.LearningRate, (float)Adam.Beta1, (float)Adam.Beta2, (float)Adam.Epsilon, Step);
        if (Adam.MaxGradientNorm is { } maxNorm)
            kernels.ClipGradients(gradients.View, clipPartials.View, gradientScale.View, (float)maxNorm);
        kernels.AdamStep(parameters.View, gradients.View, firstMoment.View, secondMoment.View, adam, gradientScale.View);
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
    /// </summary>
    public void EvaluateBatch(DeviceDataset data, int first, int batch, long drawIndex, bool binarize = false)
    {
        GatherAndForward(data, first, batch, binarize, drawIndex, Philox.Streams.EvalBinarize, Philox.Streams.EvalReparameterize);
        ReconstructionLossRows(batch);
        kernels.AccumulateLoss(reconstructionPerRow.View.SubView(0, batch), klPerRow.View.SubView(0, batch), evaluationTotals.View, batch);
    }

    /// <summary>
    /// log w = log p(x|z) + log p(z) − log q(z|x) for each row order[first..first+batch), one fresh z each, drawn
    /// from the importance-sampling streams keyed by <paramref name="drawIndex"/> (below 2³²; waits for the
    /// device). With the order holding one example k times, these are the k importance weights of the IWAE bound.
    /// </summary>
    public float[] LogImportanceWeights(DeviceDataset data, int first, int batch, long drawIndex, bool binarize = false)
    {
        if ((ulong)drawIndex > uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(drawIndex), "draw indices must stay below 2^32");
        GatherAndForward(data, first, batch, binarize, drawIndex, Philox.Streams.ImportanceBinarize, Philox.Streams.ImportanceReparameterize);
        ReconstructionLossRows(batch);
        kernels.LogWeights(Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, 2 * Config.Latent),
            Rows(z, batch, Config.Latent), Rows(epsilon, batch, Config.Latent),
            reconstructionPerRow.View.SubView(0, batch), logWeights.View.SubView(0, batch), batch, Config.Latent);
        kernels.Synchronize();
        return Download(logWeights.View.SubView(0, batch));
    }

    /// <summary>Puts back the running training sums of an interrupted epoch (from a checkpoint).</summary>
    public void RestoreTrainingSums(LossSums sums)
    {
        kernels.Synchronize();
        trainingTotals.View.CopyFromCPU(new[] { sums.Reconstruction, sums.Kl, sums.Examples });
    }

    /// <summary>The reconstruction term of each row after a forward pass, without a gradient.</summary>
    private void ReconstructionLossRows(int batch)
    {
        int last = Layout.Layers.Count - 1;
        var reconstruction = ReconstructionParameters.For(Config.Likelihood, Config.InputSize, Config.GaussianVariance, 1.0);
        kernels.ReconstructionLoss(Config.Likelihood, Rows(x, batch, Config.InputSize),
            Rows(layerOutputs[last], batch, Layout.Layers[last].Outputs),
            reconstructionPerRow.View.SubView(0, batch), batch, Config.InputSize, reconstruction);
    }

    /// <summary>Reads the training sums (this synchronises with the device) and optionally resets them.</summary>
    public LossSums ReadTrainingSums(bool reset) => ReadSums(trainingTotals, reset);

    public LossSums ReadEvaluationSums(bool reset) => ReadSums(evaluationTotals, reset);

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
    public void ComputeGradient(DeviceDataset data, int first, int batch, long drawStep, bool binarize = false) =>
        GradientPass(data, first, batch, drawStep, binarize, accumulateLoss: false);

    private void GradientPass(DeviceDataset data, int first, int batch, long drawStep, bool binarize, bool accumulateLoss)
    {
        GatherAndForward(data, first, batch, binarize, drawStep, Philox.Streams.Binarize, Philox.Streams.Reparameterize);
        int last = Layout.Layers.Count - 1;
        var reconstruction = ReconstructionParameters.For(Config.Likelihood, Config.InputSize, Config.GaussianVariance, 1.0 / batch);
        kernels.ReconstructionLossGradient(Config.Likelihood, Rows(x, batch, Config.InputSize),
            Rows(layerOutputs[last], batch, Layout.Layers[last].Outputs),
            Rows(layerGradients[last], batch, Layout.Layers[last].Outputs),
            reconstructionPerRow.View.SubView(0, batch), batch, Config.InputSize, reconstruction);
        if (accumulateLoss)
            kernels.AccumulateLoss(reconstructionPerRow.View.SubView(0, batch), klPerRow.View.SubView(0, batch), trainingTotals.View, batch);
        Backward(batch);
    }

    /// <summary>Builds the minibatch on the device and runs the forward pass, with the draws of one pair of
    /// random streams (training or evaluation) keyed by <paramref name="drawIndex"/>.</summary>
    private void GatherAndForward(DeviceDataset data, int first, int batch, bool binarize, long drawIndex,
        uint binarizeStream, uint reparameterizeStream)
    {
        CheckBatch(data, first, batch);
        kernels.Gather(data.Images, data.Order, x.View, first, batch, Config.InputSize, binarize,
            new DrawKey(Seed, binarizeStream, drawIndex));
        Forward(batch, new DrawKey(Seed, reparameterizeStream, drawIndex));
    }

    private void Forward(int batch, DrawKey reparameterizeKey)
    {
        DenseLayers(0, Layout.EncoderLayerCount, Rows(x, batch, Config.InputSize), batch);
        kernels.ReparameterizeForward(Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, 2 * Config.Latent),
            Rows(z, batch, Config.Latent), Rows(epsilon, batch, Config.Latent), klPerRow.View.SubView(0, batch),
            batch, Config.Latent, reparameterizeKey);
        DenseLayers(Layout.EncoderLayerCount, Layout.Layers.Count, Rows(z, batch, Config.Latent), batch);
    }

    /// <summary>Runs layers [from, to) forward from <paramref name="input"/>, each into its output buffer.</summary>
    private void DenseLayers(int from, int to, ArrayView<float> input, int batch)
    {
        for (int i = from; i < to; i++)
        {
            var layer = Layout.Layers[i];
            var output = Rows(layerOutputs[i], batch, layer.Outputs);
            kernels.DenseForward(layer.Activation, input, Weights(parameters, layer), Bias(parameters, layer),
                output, batch, layer.Inputs, layer.Outputs);
            input = output;
        }
    }

    /// <summary>
    /// The encoder's q(z|x) for examples order[first..first+batch): μ and log σ², each [batch, latent] row-major
    /// (waits for the device; for commands, not training).
    /// </summary>
    public (float[] Mu, float[] LogVariance) Encode(DeviceDataset data, int first, int batch, bool binarize = false, long drawIndex = 0)
    {
        CheckBatch(data, first, batch);
        kernels.Gather(data.Images, data.Order, x.View, first, batch, Config.InputSize, binarize,
            new DrawKey(Seed, Philox.Streams.EvalBinarize, drawIndex));
        DenseLayers(0, Layout.EncoderLayerCount, Rows(x, batch, Config.InputSize), batch);
        kernels.Synchronize();
        var stats = Download(Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, 2 * Config.Latent));
        var mu = new float[batch * Config.Latent];
        var logVariance = new float[batch * Config.Latent];
        for (int b = 0; b < batch; b++)
        {
            Array.Copy(stats, b * 2 * Config.Latent, mu, b * Config.Latent, Config.Latent);
            Array.Copy(stats, b * 2 * Config.Latent + Config.Latent, logVariance, b * Config.Latent, Config.Latent);
        }
        return (mu, logVariance);
    }

    /// <summary>
    /// The decoder's mean for each row of <paramref name="codes"/> ([n, latent], n ≤ MaxBatch): pixel
    /// probabilities (the sigmoid of the logits) for Bernoulli, the means for Gaussian; [n, input] row-major.
    /// </summary>
    public float[] Decode(float[] codes)
    {
        int batch = codes.Length / Config.Latent;
        if (batch < 1 || batch > MaxBatch || codes.Length != batch * Config.Latent)
            throw new ArgumentException($"decode takes 1..{MaxBatch} codes of {Config.Latent} values (got {codes.Length} values)");
        kernels.Synchronize();
        z.View.SubView(0, codes.Length).CopyFromCPU(codes);
        DenseLayers(Layout.EncoderLayerCount, Layout.Layers.Count, Rows(z, batch, Config.Latent), batch);
        kernels.Synchronize();
        var output = Download(Rows(layerOutputs[^1], batch, Config.InputSize));
        if (Config.Likelihood == LikelihoodKind.Bernoulli)
            for (int i = 0; i < output.Length; i++)
                output[i] = StableMath.Sigmoid(output[i]);
        return output;
    }

    /// <summary>Backward from the gradient already in the last layer's gradient buffer.</summary>
    private void Backward(int batch)
    {
        for (int i = Layout.Layers.Count - 1; i >= 0; i--)
        {
            var layer = Layout.Layers[i];
            ArrayView<float> input, dInput;
            if (i == 0)
            {
                input = Rows(x, batch, Config.InputSize);
                dInput = kernels.None;
            }
            else if (i == Layout.EncoderLayerCount)
            {
                input = Rows(z, batch, Config.Latent);
                dInput = Rows(dZ, batch, Config.Latent);
            }
            else
            {
                input = Rows(layerOutputs[i - 1], batch, layer.Inputs);
                dInput = Rows(layerGradients[i - 1], batch, layer.Inputs);
            }
            kernels.DenseBackward(layer.Activation, input, Weights(parameters, layer),
                Rows(layerOutputs[i], batch, layer.Outputs), Rows(layerGradients[i], batch, layer.Outputs),
                dInput, Weights(gradients, layer), Bias(gradients, layer), batch, layer.Inputs, layer.Outputs);

            if (i == Layout.EncoderLayerCount)
            {
                int stats = Layout.EncoderLayerCount - 1;
                kernels.ReparameterizeBackward(Rows(layerOutputs[stats], batch, 2 * Config.Latent),
                    Rows(epsilon, batch, Config.Latent), Rows(dZ, batch, Config.Latent),
                    Rows(layerGradients[stats], batch, 2 * Config.Latent), batch, Config.Latent,
                    (float)(Config.Beta / batch));
            }
        }
    }

    private LossSums ReadSums(MemoryBuffer1D<double, Stride1D.Dense> totals, bool reset)
    {
        kernels.Synchronize();
        var values = totals.GetAsArray1D();
        // Enqueued on the stream, so later steps see zeros without another wait here.
        if (reset)
            totals.View.MemSetToZero(kernels.Stream);
        return new LossSums(values[0], values[1], values[2], Config.Beta);
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

    private static float[] Download(ArrayView<float> view) => ArrayViewExtensions.GetAsArray1D<float>(view);

    private static ArrayView<float> Rows(MemoryBuffer1D<float, Stride1D.Dense> buffer, int batch, int width) =>
        buffer.View.SubView(0, (long)batch * width);

    private static ArrayView<float> Weights(MemoryBuffer1D<float, Stride1D.Dense> buffer, DenseSlice layer) =>
        buffer.View.SubView(layer.WeightOffset, layer.WeightCount);

    private static ArrayView<float> Bias(MemoryBuffer1D<float, Stride1D.Dense> buffer, DenseSlice layer) =>
        buffer.View.SubView(layer.BiasOffset, layer.Outputs);

    public void Dispose()
    {
        foreach (var buffer in new[] { parameters, gradients, firstMoment, secondMoment, gradientScale, clipPartials, x, z, epsilon, dZ, klPerRow, reconstructionPerRow, logWeights }
                     .Concat(layerOutputs).Concat(layerGradients))
            buffer.Dispose();
        trainingTotals.Dispose();
        evaluationTotals.Dispose();
    }
}
