using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model;

/// <summary>
/// Running sums of the loss terms since the last reset. With k samples per example, Examples counts z rows, so
/// the means are averages over samples too. Objectives that are not rec + β·KL per row (the IWAE's −L_k, the
/// InfoVAE's rec + β·KL + λ·MMD²) also sum their value per example in Objective over ObjectiveExamples.
/// </summary>
public readonly record struct LossSums(double Reconstruction, double Kl, double Examples, double Beta,
    double Objective = 0, double ObjectiveExamples = 0, double Correct = 0)
{
    public double MeanReconstruction => Examples > 0 ? Reconstruction / Examples : double.NaN;
    public double MeanKl => Examples > 0 ? Kl / Examples : double.NaN;
    /// <summary>Mean loss per example: the objective where one is summed (IWAE, InfoVAE), else reconstruction +
    /// β·KL (the negative ELBO when β = 1).</summary>
    public double MeanLoss => ObjectiveExamples > 0 ? Objective / ObjectiveExamples : MeanReconstruction + Beta * MeanKl;

    /// <summary>As stored on the device and in checkpoints.</summary>
    /// <summary>The Deep VIB's classification error over the rows seen.</summary>
    public double ErrorRate => Examples > 0 ? 1 - Correct / Examples : double.NaN;

    public double[] ToArray() => [Reconstruction, Kl, Examples, Objective, ObjectiveExamples, Correct];

    public static LossSums FromArray(double[] values, double beta) =>
        new(values[0], values[1], values[2], beta, values.Length > 3 ? values[3] : 0, values.Length > 4 ? values[4] : 0,
            values.Length > 5 ? values[5] : 0);
}

/// <summary>
/// A Gaussian-encoder VAE whose training step is a sequence of kernel launches on one accelerator stream:
/// gather → encoder → reparameterize+KL → decoder → loss+gradient → backward → Adam. Nothing in a step waits on
/// the host; loss sums stay on the device until <see cref="ReadTrainingSums"/>.
/// The objective is the batch mean of: rec + β·KL averaged over k samples of z (VAE); −L_k, the k-sample
/// importance-weighted bound (IWAE); rec with z = the encoder's code (autoencoder). With k samples, the encoder
/// runs once per example and the decoder once per sample: z rows are example-major (b·k + i). VCCA encodes the
/// left view and decodes both views with two decoders; the Ladder VAE runs its whole bottom-up pass once per
/// example and its top-down pass (z2, p(z1|z2), the merge, z1, the decoder) once per sample.
/// </summary>
public sealed partial class Vae : IDisposable
{
    private readonly KernelSet kernels;
    private readonly Workspace workspace;
    // The buffers every model of this class uses; the others are found by name in the workspace (see Vae.Plan).
    private readonly MemoryBuffer1D<float, Stride1D.Dense> parameters, gradients, firstMoment, secondMoment, gradientScale;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> x, z, epsilon, dZ, klPerRow, reconstructionPerRow;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] layerOutputs, layerGradients;
    private readonly MemoryBuffer1D<double, Stride1D.Dense> trainingTotals, evaluationTotals;
    private const int TotalsLength = 6, CorrectSlot = 5;
    // Whether dense layers normalise with the batch's statistics (a training pass) or the running averages.
    private bool trainingPass;

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
        LearningRate = Adam.LearningRate;

        // Every buffer starts zeroed: the padding between layers (see ParameterLayout) that no kernel writes, Adam's
        // moments, and the autoencoder's KL rows, which add zeros to the sums.
        workspace = new Workspace(kernels.Accelerator, Plan(config, maxBatch, Adam));
        parameters = workspace.Floats(Buffers.Parameters);
        parameters.View.CopyFromCPU(Layout.Initialise(seed));
        gradients = workspace.Floats(Buffers.Gradients);
        firstMoment = workspace.Floats(Buffers.FirstMoment);
        secondMoment = workspace.Floats(Buffers.SecondMoment);
        // [scale Adam applies, norm before clipping]; stays [1, 0] when clipping is off.
        gradientScale = workspace.Floats(Buffers.GradientScale);
        gradientScale.View.CopyFromCPU(new[] { 1f, 0f });
        x = workspace.Floats(Buffers.Input);
        z = workspace.Floats(Buffers.Z);
        epsilon = workspace.Floats(Buffers.Epsilon);
        dZ = workspace.Floats(Buffers.ZGradient);
        klPerRow = workspace.Floats(Buffers.KlPerRow);
        reconstructionPerRow = workspace.Floats(Buffers.ReconstructionPerRow);
        layerOutputs = Enumerable.Range(0, Layout.Layers.Count).Select(i => workspace.Floats(Buffers.LayerOutput(i))).ToArray();
        layerGradients = Enumerable.Range(0, Layout.Layers.Count).Select(i => workspace.Floats(Buffers.LayerGradient(i))).ToArray();
        trainingTotals = workspace.Doubles(Buffers.TrainingTotals);
        evaluationTotals = workspace.Doubles(Buffers.EvaluationTotals);
        // The equal row weights are the two-layer VAE's share of each sample; the target rate's sign(R − σ) is
        // written by the device before its first read, and starts at 1 as a KL weight factor would.
        if (workspace.Has(Buffers.EqualWeights))
            EqualWeights.View.CopyFromCPU(Enumerable.Repeat(1f, (int)EqualWeights.Length).ToArray());
        if (workspace.Has(Buffers.RateSign))
            RateSign.View.CopyFromCPU(new[] { 1f });
        KlWeight = config.Beta;
        kernels.Accelerator.Synchronize();
    }

    /// <summary>Per example, the objectives that are not rec + β·KL per row: −L_k (IWAE), rec + β·KL + λ·B·MMD
    /// share (InfoVAE), rec + |σ − R| (target rate).</summary>
    private MemoryBuffer1D<float, Stride1D.Dense> ObjectivePerExample => workspace.Floats(Buffers.ObjectivePerExample);
    private MemoryBuffer1D<float, Stride1D.Dense> LogWeights => workspace.Floats(Buffers.LogWeights);
    private MemoryBuffer1D<float, Stride1D.Dense> NormalizedWeights => workspace.Floats(Buffers.NormalizedWeights);
    private MemoryBuffer1D<float, Stride1D.Dense> ClipPartials => workspace.Floats(Buffers.ClipPartials);
    // The second stochastic layer's z2, ε2 and dz2, the gradient of z1 that flows back from q(z2|z1), the
    // analytic KL that sampling z2 writes (unused: the two-layer KL is sampled through log w), and equal row
    // weights (the VAE's share of each sample).
    private MemoryBuffer1D<float, Stride1D.Dense> Z2 => workspace.Floats(Buffers.Z2);
    private MemoryBuffer1D<float, Stride1D.Dense> Epsilon2 => workspace.Floats(Buffers.Epsilon2);
    private MemoryBuffer1D<float, Stride1D.Dense> Z2Gradient => workspace.Floats(Buffers.Z2Gradient);
    private MemoryBuffer1D<float, Stride1D.Dense> Z1GradientFromEncoder2 => workspace.Floats(Buffers.Z1GradientFromEncoder2);
    private MemoryBuffer1D<float, Stride1D.Dense> UnusedKl2 => workspace.Floats(Buffers.UnusedKl2);
    private MemoryBuffer1D<float, Stride1D.Dense> EqualWeights => workspace.Floats(Buffers.EqualWeights);
    // InfoVAE: the batch's draws from the prior and each row's share of MMD².
    private MemoryBuffer1D<float, Stride1D.Dense> PriorDraws => workspace.Floats(Buffers.PriorDraws);
    private MemoryBuffer1D<float, Stride1D.Dense> MmdPerRow => workspace.Floats(Buffers.MmdPerRow);
    // Target-rate training: sign(R − σ) of the batch, the KL weight factor the sampler's backward pass reads.
    private MemoryBuffer1D<float, Stride1D.Dense> RateSign => workspace.Floats(Buffers.RateSign);
    // Deep VIB: whether each row's most likely class was its label.
    private MemoryBuffer1D<float, Stride1D.Dense> CorrectPerRow => workspace.Floats(Buffers.CorrectPerRow);
    // VCCA: the batch's two views (the encoder reads view 1), both decoders' outputs joined into whole images and
    // their gradient, and the gradient of z from the second decoder.
    private MemoryBuffer1D<float, Stride1D.Dense> View1 => workspace.Floats(Buffers.View1);
    private MemoryBuffer1D<float, Stride1D.Dense> View2 => workspace.Floats(Buffers.View2);
    private MemoryBuffer1D<float, Stride1D.Dense> JointOutput => workspace.Floats(Buffers.JointOutput);
    private MemoryBuffer1D<float, Stride1D.Dense> JointOutputGradient => workspace.Floats(Buffers.JointOutputGradient);
    private MemoryBuffer1D<float, Stride1D.Dense> ZGradientFromView2 => workspace.Floats(Buffers.ZGradientFromView2);
    // Ladder VAE: q(z1|x, z2) merged per z row and its gradient, and the gradient of the encoder's last hidden
    // layer from the bottom-up layers above it.
    private MemoryBuffer1D<float, Stride1D.Dense> MergedStats => workspace.Floats(Buffers.MergedStats);
    private MemoryBuffer1D<float, Stride1D.Dense> MergedStatsGradient => workspace.Floats(Buffers.MergedStatsGradient);
    private MemoryBuffer1D<float, Stride1D.Dense> HiddenGradientFromAbove => workspace.Floats(Buffers.HiddenGradientFromAbove);
    // Batch-normalised layers: the product before normalisation, and [mean | 1/σ] per column of the last pass.
    private MemoryBuffer1D<float, Stride1D.Dense> PreActivation(int layer) => workspace.Floats(Buffers.PreActivation(layer));
    private MemoryBuffer1D<float, Stride1D.Dense> NormStatistics(int layer) => workspace.Floats(Buffers.NormStatistics(layer));
    // Where a batch-normalised layer's bias gradient goes: nowhere that Adam reads (see ParameterLayout).
    private MemoryBuffer1D<float, Stride1D.Dense> UnusedBiasGradient => workspace.Floats(Buffers.UnusedBiasGradient);

    public VaeConfig Config { get; }
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

    private int Samples => Config.Samples;
    private bool TwoLayers => Config.StochasticLayers == 2;
    private bool TwoViews => Config.Model == ModelKind.Vcca;

    /// <summary>What the encoder reads: the batch, or VCCA's first view of it.</summary>
    private ArrayView<float> EncoderInput(int batch) =>
        TwoViews ? Rows(View1, batch, Config.Views.View1Size) : Rows(x, batch, Config.InputSize);

    /// <summary>The decoder's output rows [rows, outputs] and their gradient: the last layer's buffers, or VCCA's
    /// two views joined into whole images.</summary>
    private ArrayView<float> Output(int rows) =>
        TwoViews ? Rows(JointOutput, rows, Config.InputSize) : Rows(layerOutputs[^1], rows, Config.OutputSize);

    private ArrayView<float> OutputGradient(int rows) =>
        TwoViews ? Rows(JointOutputGradient, rows, Config.InputSize) : Rows(layerGradients[^1], rows, Config.OutputSize);

    /// <summary>Rows layer i sees (see <see cref="RowsOf(ParameterLayout, VaeConfig, int, int, int)"/>).</summary>
    private int RowsOf(int layer, int batch, int samples) => (int)RowsOf(Layout, Config, layer, batch, samples);

    /// <summary>The Ladder VAE's bottom-up pass runs once per example through both encoders.</summary>
    private bool Ladder => Config.Model == ModelKind.Ladder;

    /// <summary>The encoder's last hidden layer, where the Ladder VAE's second bottom-up stage starts.</summary>
    private ArrayView<float> TopHidden(int batch) => Rows(layerOutputs[Layout.EncoderLayerCount - 2], batch, Config.Hidden[^1]);
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
        GradientPass(data, first, batch, Step, binarize, accumulateLoss: true);
        var adam = new AdamParameters((float)LearningRate, (float)Adam.Beta1, (float)Adam.Beta2, (float)Adam.Epsilon, Step);
        if (Adam.MaxGradientNorm is { } maxNorm)
            kernels.ClipGradients(gradients.View, ClipPartials.View, gradientScale.View, (float)maxNorm);
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
        // The IWAE is scored by its own bound with its k; the VAE by a one-sample ELBO (unbiased for any k).
        int samples = Config.Model == ModelKind.Iwae ? Samples : 1;
        GatherAndForward(data, first, batch, binarize, drawIndex, Philox.Streams.EvalBinarize, Philox.Streams.EvalReparameterize, samples);
        int rows = batch * samples;
        if (Config.Model == ModelKind.Vib)
        {
            // The gradient buffer of the last layer serves as scratch: evaluation computes no gradient.
            kernels.ClassificationLossGradient(Output(rows), data.Labels, data.Order,
                OutputGradient(rows), reconstructionPerRow.View.SubView(0, rows),
                CorrectPerRow.View.SubView(0, rows), rows, new ClassificationShape(Config.Classes, samples, first), 1f);
            kernels.AccumulateCount(CorrectPerRow.View.SubView(0, rows), evaluationTotals.View, rows, CorrectSlot);
        }
        else
            ReconstructionLossRows(batch, samples);
        if (Config.Model == ModelKind.Iwae)
        {
            ImportanceBound(batch, samples);
            AccumulateObjective(evaluationTotals, batch);
        }
        else if (TwoLayers)
            LogWeightRows(batch, samples); // the two-layer KL terms are sampled, through log w
        else if (Config.Model == ModelKind.InfoVae)
        {
            MmdObjective(batch, new DrawKey(Seed, Philox.Streams.EvalReparameterize + Philox.Streams.MmdPriorOffset, drawIndex), Config.Beta);
            AccumulateObjective(evaluationTotals, batch);
        }
        else if (Config.TargetRate is { } rate)
        {
            kernels.TargetRateObjective(klPerRow.View.SubView(0, batch), reconstructionPerRow.View.SubView(0, batch),
                ObjectivePerExample.View.SubView(0, batch), RateSign.View, batch, (float)rate);
            AccumulateObjective(evaluationTotals, batch);
        }
        kernels.AccumulateLoss(reconstructionPerRow.View.SubView(0, rows), klPerRow.View.SubView(0, rows), evaluationTotals.View, rows);
    }

    /// <summary>Adds the batch's per-example objective (−L_k, InfoVAE or target rate) to the totals.</summary>
    private void AccumulateObjective(MemoryBuffer1D<double, Stride1D.Dense> totals, int batch) =>
        kernels.AccumulateBound(ObjectivePerExample.View.SubView(0, batch), totals.View, batch);

    private MmdParameters MmdSettings(int batch, double beta) =>
        new(Config.Latent, batch, Config.MmdKernel, (float)Config.MmdLambda, (float)beta);

    /// <summary>InfoVAE: draws the batch's prior samples, then each row's share of MMD² and its objective
    /// rec + β·KL + λ·B·share (into the per-example objective buffer).</summary>
    private void MmdObjective(int batch, DrawKey priorKey, double beta)
    {
        kernels.PriorSample(Rows(PriorDraws, batch, Config.Latent), priorKey);
        kernels.MmdForward(Rows(z, batch, Config.Latent), Rows(PriorDraws, batch, Config.Latent),
            reconstructionPerRow.View.SubView(0, batch), klPerRow.View.SubView(0, batch), MmdPerRow.View.SubView(0, batch),
            ObjectivePerExample.View.SubView(0, batch), MmdSettings(batch, beta));
    }

    /// <summary>log w for each z row after the reconstruction terms (and, with two stochastic layers, the row's
    /// sampled KL terms −log w − rec into klPerRow).</summary>
    private void LogWeightRows(int batch, int samples)
    {
        int rows = batch * samples;
        var stats1 = Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, 2 * Config.Latent);
        if (TwoLayers)
            // The Ladder VAE's q(z1|·) is merged per z row and its q(z2|x) is per example; the other way round in
            // the two-layer model.
            kernels.TwoLayerLogWeights(Ladder ? Rows(MergedStats, rows, 2 * Config.Latent) : stats1, Rows(z, rows, Config.Latent),
                Rows(epsilon, rows, Config.Latent), Rows(layerOutputs[Layout.Encoder2End - 1], RowsOf(Layout.Encoder2End - 1, batch, samples), 2 * Config.Latent2),
                Rows(Z2, rows, Config.Latent2), Rows(Epsilon2, rows, Config.Latent2), Rows(layerOutputs[Layout.DecoderStart - 1], rows, 2 * Config.Latent),
                reconstructionPerRow.View.SubView(0, rows), LogWeights.View.SubView(0, rows), klPerRow.View.SubView(0, rows),
                rows, Ladder ? new LatentWidths(Config.Latent, Config.Latent2, 1, samples) : new LatentWidths(Config.Latent, Config.Latent2, samples));
        else
            kernels.LogWeights(stats1, Rows(z, rows, Config.Latent), Rows(epsilon, rows, Config.Latent),
                reconstructionPerRow.View.SubView(0, rows), LogWeights.View.SubView(0, rows), rows, Config.Latent, samples);
    }

    /// <summary>log w for each z row, then −L_k and the normalised weights per example.</summary>
    private void ImportanceBound(int batch, int samples)
    {
        int rows = batch * samples;
        LogWeightRows(batch, samples);
        kernels.ImportanceBound(LogWeights.View.SubView(0, rows), NormalizedWeights.View.SubView(0, rows),
            ObjectivePerExample.View.SubView(0, batch), batch, samples);
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
        if (samples < 1 || (long)batch * samples > (long)MaxBatch * Samples)
            throw new ArgumentOutOfRangeException(nameof(samples), $"{batch} examples × {samples} samples exceed the {MaxBatch * Samples} rows of z this model holds");
        if (Config.Model == ModelKind.Ae)
            throw new InvalidOperationException("the autoencoder has no q(z|x), so it has no importance weights or likelihood bound");
        if (Config.Model == ModelKind.Vib)
            throw new InvalidOperationException("the Deep VIB models labels, not images: it has no likelihood of x to bound");
        GatherAndForward(data, first, batch, binarize, drawIndex, Philox.Streams.ImportanceBinarize, Philox.Streams.ImportanceReparameterize, samples);
        ReconstructionLossRows(batch, samples);
        LogWeightRows(batch, samples);
        kernels.Synchronize();
        return Download(LogWeights.View.SubView(0, batch * samples));
    }

    /// <summary>Puts back the running training sums of an interrupted epoch (from a checkpoint).</summary>
    public void RestoreTrainingSums(LossSums sums)
    {
        kernels.Synchronize();
        trainingTotals.View.CopyFromCPU(sums.ToArray());
    }

    /// <summary>The reconstruction term of each output row after a forward pass, without a gradient.</summary>
    private void ReconstructionLossRows(int batch, int samples)
    {
        int rows = batch * samples;
        var reconstruction = ReconstructionParameters.For(Config.Likelihood, Config.InputSize, Config.GaussianVariance, 1.0);
        kernels.ReconstructionLoss(Config.Likelihood, Rows(x, batch, Config.InputSize), Output(rows),
            reconstructionPerRow.View.SubView(0, rows), rows, Config.InputSize, reconstruction, samples);
    }

    /// <summary>Reads the training sums (this synchronises with the device) and optionally resets them.</summary>
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
    public void ComputeGradient(DeviceDataset data, int first, int batch, long drawStep, bool binarize = false) =>
        GradientPass(data, first, batch, drawStep, binarize, accumulateLoss: false);

    private void GradientPass(DeviceDataset data, int first, int batch, long drawStep, bool binarize, bool accumulateLoss)
    {
        trainingPass = true;
        try
        {
            TrainingPass(data, first, batch, drawStep, binarize, accumulateLoss);
        }
        finally
        {
            trainingPass = false;
        }
    }

    private void TrainingPass(DeviceDataset data, int first, int batch, long drawStep, bool binarize, bool accumulateLoss)
    {
        GatherAndForward(data, first, batch, binarize, drawStep, Philox.Streams.Binarize, Philox.Streams.Reparameterize, Samples);
        int rows = batch * Samples;
        var target = Rows(x, batch, Config.InputSize);
        var output = Output(rows);
        var dOutput = OutputGradient(rows);
        var rowTerms = reconstructionPerRow.View.SubView(0, rows);
        if (TwoLayers)
        {
            // Every term is sampled through log w: the IWAE weighs each row's gradient by w̃/B, the VAE by 1/(B·k).
            ReconstructionLossRows(batch, Samples);
            bool importance = Config.Model == ModelKind.Iwae;
            if (importance)
                ImportanceBound(batch, Samples);
            else
                LogWeightRows(batch, Samples);
            var weights = (importance ? NormalizedWeights : EqualWeights).View.SubView(0, rows);
            float scale = importance ? 1f / batch : 1f / rows;
            var weighted = ReconstructionParameters.For(Config.Likelihood, Config.InputSize, Config.GaussianVariance, scale);
            kernels.ReconstructionWeightedGradient(Config.Likelihood, target, output, dOutput, weights, rows, Config.InputSize, weighted, Samples);
            if (accumulateLoss)
            {
                if (importance)
                    AccumulateObjective(trainingTotals, batch);
                kernels.AccumulateLoss(rowTerms, klPerRow.View.SubView(0, rows), trainingTotals.View, rows);
            }
            BackwardTwoLayers(batch, weights, scale * (float)(importance ? 1.0 : KlWeight));
            return;
        }
        if (Config.Model == ModelKind.Iwae)
        {
            // The weights need every sample's reconstruction first, so the loss and its gradient are two passes.
            ReconstructionLossRows(batch, Samples);
            ImportanceBound(batch, Samples);
            var weighted = ReconstructionParameters.For(Config.Likelihood, Config.InputSize, Config.GaussianVariance, 1.0 / batch);
            kernels.ReconstructionWeightedGradient(Config.Likelihood, target, output, dOutput,
                NormalizedWeights.View.SubView(0, rows), rows, Config.InputSize, weighted, Samples);
            if (accumulateLoss)
                AccumulateObjective(trainingTotals, batch);
        }
        else
        {
            // The batch mean of the average over k samples: every output row weighs 1/(batch·k).
            if (Config.Model == ModelKind.Vib)
            {
                // −log q(y|z) in place of the reconstruction term.
                kernels.ClassificationLossGradient(output, data.Labels, data.Order, dOutput, rowTerms, CorrectPerRow.View.SubView(0, rows),
                    rows, new ClassificationShape(Config.Classes, Samples, first), 1f / rows);
                if (accumulateLoss)
                    kernels.AccumulateCount(CorrectPerRow.View.SubView(0, rows), trainingTotals.View, rows, CorrectSlot);
            }
            else
            {
                var reconstruction = ReconstructionParameters.For(Config.Likelihood, Config.InputSize, Config.GaussianVariance, 1.0 / rows);
                kernels.ReconstructionLossGradient(Config.Likelihood, target, output, dOutput, rowTerms, rows, Config.InputSize,
                    reconstruction, Samples);
            }
            if (Config.Model == ModelKind.InfoVae)
            {
                MmdObjective(batch, new DrawKey(Seed, Philox.Streams.Reparameterize + Philox.Streams.MmdPriorOffset, drawStep), KlWeight);
                if (accumulateLoss)
                    AccumulateObjective(trainingTotals, batch);
            }
            else if (Config.TargetRate is { } rate)
            {
                kernels.TargetRateObjective(klPerRow.View.SubView(0, batch), rowTerms, ObjectivePerExample.View.SubView(0, batch),
                    RateSign.View, batch, (float)rate);
                if (accumulateLoss)
                    AccumulateObjective(trainingTotals, batch);
            }
        }
        if (accumulateLoss)
            kernels.AccumulateLoss(rowTerms, klPerRow.View.SubView(0, rows), trainingTotals.View, rows);
        Backward(batch);
    }

    /// <summary>Builds the minibatch on the device and runs the forward pass, with the draws of one pair of
    /// random streams (training or evaluation) keyed by <paramref name="drawIndex"/>.</summary>
    private void GatherAndForward(DeviceDataset data, int first, int batch, bool binarize, long drawIndex,
        uint binarizeStream, uint reparameterizeStream, int samples)
    {
        CheckBatch(data, first, batch);
        kernels.Gather(data.Images, data.Order, x.View, first, batch, Config.InputSize, binarize,
            new DrawKey(Seed, binarizeStream, drawIndex));
        if (TwoViews)
            SplitViews(batch);
        Forward(batch, new DrawKey(Seed, reparameterizeStream, drawIndex), samples);
    }

    /// <summary>The encoder on batch rows, then the decoder on batch·samples rows of z (the autoencoder decodes
    /// its code directly, with samples = 1).</summary>
    private void Forward(int batch, DrawKey reparameterizeKey, int samples)
    {
        var encoderOutput = Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, Config.EncoderOutputs);
        DenseLayers(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        if (Config.Model == ModelKind.Ae)
        {
            DenseLayers(Layout.DecoderStart, Layout.Layers.Count, encoderOutput, batch);
            return;
        }
        int rows = batch * samples;
        if (Ladder)
        {
            LadderForward(batch, reparameterizeKey, samples);
            return;
        }
        kernels.ReparameterizeForward(encoderOutput, Rows(z, rows, Config.Latent), Rows(epsilon, rows, Config.Latent),
            klPerRow.View.SubView(0, rows), rows, Config.Latent, reparameterizeKey, samples);
        if (TwoLayers)
        {
            // q(z2|z1) on every z1 row, one z2 each from the layer's own stream, then the prior network p(z1|z2).
            DenseLayers(Layout.EncoderLayerCount, Layout.Encoder2End, Rows(z, rows, Config.Latent), rows);
            var key2 = new DrawKey(reparameterizeKey.Seed, reparameterizeKey.Stream + Philox.Streams.SecondLayerOffset, reparameterizeKey.Step);
            kernels.ReparameterizeForward(Rows(layerOutputs[Layout.Encoder2End - 1], rows, 2 * Config.Latent2),
                Rows(Z2, rows, Config.Latent2), Rows(Epsilon2, rows, Config.Latent2), UnusedKl2.View.SubView(0, rows),
                rows, Config.Latent2, key2);
            DenseLayers(Layout.Encoder2End, Layout.DecoderStart, Rows(Z2, rows, Config.Latent2), rows);
        }
        DecoderForward(rows);
    }

    /// <summary>
    /// The Ladder VAE after its first bottom-up stage (the encoder, already run): the second stage from the top
    /// hidden layer to q(z2|x), z2 sampled k times per example, the top-down prior p(z1|z2), q(z1|x, z2) by
    /// precision-weighted merging, z1 from it, and the decoder. z1 and z2 use the same streams as the two-layer
    /// model's.
    /// </summary>
    private void LadderForward(int batch, DrawKey reparameterizeKey, int samples)
    {
        int rows = batch * samples;
        DenseLayers(Layout.EncoderLayerCount, Layout.Encoder2End, TopHidden(batch), batch);
        var key2 = new DrawKey(reparameterizeKey.Seed, reparameterizeKey.Stream + Philox.Streams.SecondLayerOffset, reparameterizeKey.Step);
        kernels.ReparameterizeForward(Rows(layerOutputs[Layout.Encoder2End - 1], batch, 2 * Config.Latent2),
            Rows(Z2, rows, Config.Latent2), Rows(Epsilon2, rows, Config.Latent2), UnusedKl2.View.SubView(0, rows),
            rows, Config.Latent2, key2, samples);
        DenseLayers(Layout.Encoder2End, Layout.DecoderStart, Rows(Z2, rows, Config.Latent2), rows);
        var merged = Rows(MergedStats, rows, 2 * Config.Latent);
        kernels.LadderMerge(Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, 2 * Config.Latent),
            Rows(layerOutputs[Layout.DecoderStart - 1], rows, 2 * Config.Latent), merged, rows, Config.Latent, samples);
        // The KL this writes is the merged Gaussian's against N(0, I), which the Ladder VAE does not use: its KL
        // terms are sampled through log w.
        kernels.ReparameterizeForward(merged, Rows(z, rows, Config.Latent), Rows(epsilon, rows, Config.Latent),
            klPerRow.View.SubView(0, rows), rows, Config.Latent, reparameterizeKey);
        DecoderForward(rows);
    }

    /// <summary>p(x|z) on the first rows of z; VCCA runs both views' decoders and joins their outputs.</summary>
    private void DecoderForward(int rows)
    {
        var codes = Rows(z, rows, Config.Latent);
        DenseLayers(Layout.DecoderStart, Layout.DecoderEnd, codes, rows);
        if (!TwoViews)
            return;
        DenseLayers(Layout.DecoderEnd, Layout.Layers.Count, codes, rows);
        kernels.JoinViews(Rows(layerOutputs[Layout.DecoderEnd - 1], rows, Config.Views.View1Size),
            Rows(layerOutputs[^1], rows, Config.Views.View2Size), Output(rows), rows, Config.Views);
    }

    /// <summary>From the gradient in <see cref="OutputGradient"/> back through p(x|z) to dz; VCCA splits it into
    /// its views, runs both decoders back and adds their dz.</summary>
    private void DecoderBackward(int rows)
    {
        var codes = Rows(z, rows, Config.Latent);
        if (TwoViews)
            kernels.SplitViews(OutputGradient(rows), Rows(layerGradients[Layout.DecoderEnd - 1], rows, Config.Views.View1Size),
                Rows(layerGradients[^1], rows, Config.Views.View2Size), rows, Config.Views);
        BackwardLayers(Layout.DecoderStart, Layout.DecoderEnd, rows, codes, Rows(dZ, rows, Config.Latent));
        if (!TwoViews)
            return;
        BackwardLayers(Layout.DecoderEnd, Layout.Layers.Count, rows, codes, Rows(ZGradientFromView2, rows, Config.Latent));
        kernels.Add(Rows(dZ, rows, Config.Latent), Rows(ZGradientFromView2, rows, Config.Latent));
    }

    /// <summary>VCCA: the batch's images into their two views.</summary>
    private void SplitViews(int batch) =>
        kernels.SplitViews(Rows(x, batch, Config.InputSize), Rows(View1, batch, Config.Views.View1Size),
            Rows(View2, batch, Config.Views.View2Size), batch, Config.Views);

    /// <summary>Runs layers [from, to) forward from <paramref name="input"/>, each into its output buffer.</summary>
    private void DenseLayers(int from, int to, ArrayView<float> input, int batch)
    {
        for (int i = from; i < to; i++)
        {
            var layer = Layout.Layers[i];
            var output = Rows(layerOutputs[i], batch, layer.Outputs);
            if (layer.BatchNorm)
            {
                var preActivation = Rows(PreActivation(i), batch, layer.Outputs);
                kernels.DenseForward(ActivationKind.Identity, input, Weights(parameters, layer), Bias(parameters, layer),
                    preActivation, batch, layer.Inputs, layer.Outputs);
                kernels.BatchNormForward(layer.Activation, preActivation, Norm(parameters, layer, 4), output,
                    NormStatistics(i).View, new BatchNormShape(batch, layer.Outputs, trainingPass));
            }
            else
                kernels.DenseForward(layer.Activation, input, Weights(parameters, layer), Bias(parameters, layer),
                    output, batch, layer.Inputs, layer.Outputs);
            input = output;
        }
    }

    /// <summary>
    /// The encoder's q(z|x) for examples order[first..first+batch): μ and log σ², each [batch, latent] row-major
    /// (waits for the device; for commands, not training). For the autoencoder, the codes and an empty log σ²; with
    /// two stochastic layers, q(z2|z1) at z1 = μ1, the top latent that Decode takes.
    /// </summary>
    public (float[] Mu, float[] LogVariance) Encode(DeviceDataset data, int first, int batch, bool binarize = false, long drawIndex = 0)
    {
        CheckBatch(data, first, batch);
        kernels.Gather(data.Images, data.Order, x.View, first, batch, Config.InputSize, binarize,
            new DrawKey(Seed, Philox.Streams.EvalBinarize, drawIndex));
        if (TwoViews)
            SplitViews(batch);
        DenseLayers(0, Layout.EncoderLayerCount, EncoderInput(batch), batch);
        kernels.Synchronize();
        var stats = Download(Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, Config.EncoderOutputs));
        if (Config.Model == ModelKind.Ae)
            return (stats, []); // the code itself; an autoencoder has no variance
        if (Ladder)
        {
            // The top layer's q(z2|x) is the bottom-up pass's own.
            DenseLayers(Layout.EncoderLayerCount, Layout.Encoder2End, TopHidden(batch), batch);
            kernels.Synchronize();
            stats = Download(Rows(layerOutputs[Layout.Encoder2End - 1], batch, 2 * Config.Latent2));
        }
        else if (TwoLayers)
        {
            // The top layer's q(z2|μ1): the codes Decode takes, so encode → decode round-trips.
            var means1 = Half(stats, batch, Config.Latent, second: false);
            z.View.SubView(0, means1.Length).CopyFromCPU(means1);
            DenseLayers(Layout.EncoderLayerCount, Layout.Encoder2End, Rows(z, batch, Config.Latent), batch);
            kernels.Synchronize();
            stats = Download(Rows(layerOutputs[Layout.Encoder2End - 1], batch, 2 * Config.Latent2));
        }
        int latent = Config.TopLatent;
        var mu = Half(stats, batch, latent, second: false);
        var logVariance = Half(stats, batch, latent, second: true);
        return (mu, logVariance);
    }

    /// <summary>
    /// The decoder's mean for each row of <paramref name="codes"/> ([n, latent], n ≤ MaxBatch): pixel
    /// probabilities (the sigmoid of the logits) for Bernoulli, the means for Gaussian; [n, input] row-major.
    /// </summary>
    public float[] Decode(float[] codes)
    {
        if (Config.Model == ModelKind.Vib)
            throw new InvalidOperationException("the Deep VIB decodes class probabilities, not images");
        int top = Config.TopLatent;
        int batch = codes.Length / top;
        if (batch < 1 || batch > MaxBatch || codes.Length != batch * top)
            throw new ArgumentException($"decode takes 1..{MaxBatch} codes of {top} values (got {codes.Length} values)");
        kernels.Synchronize();
        if (TwoLayers)
        {
            // Codes are z2; z1 is the mean of p(z1|z2), taken from the prior network's output on the host.
            Z2.View.SubView(0, codes.Length).CopyFromCPU(codes);
            DenseLayers(Layout.Encoder2End, Layout.DecoderStart, Rows(Z2, batch, top), batch);
            kernels.Synchronize();
            var priorStats = Download(Rows(layerOutputs[Layout.DecoderStart - 1], batch, 2 * Config.Latent));
            var means = Half(priorStats, batch, Config.Latent, second: false);
            z.View.SubView(0, means.Length).CopyFromCPU(means);
        }
        else
            z.View.SubView(0, codes.Length).CopyFromCPU(codes);
        DecoderForward(batch);
        kernels.Synchronize();
        var output = Download(Output(batch));
        if (Config.Likelihood == LikelihoodKind.Bernoulli)
            for (int i = 0; i < output.Length; i++)
                output[i] = StableMath.Sigmoid(output[i]);
        return output;
    }

    /// <summary>Backward from the gradient already in the last layer's gradient buffer.</summary>
    private void Backward(int batch)
    {
        var encoderOutput = Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, Config.EncoderOutputs);
        var dEncoderOutput = Rows(layerGradients[Layout.EncoderLayerCount - 1], batch, Config.EncoderOutputs);
        if (Config.Model == ModelKind.Ae)
            BackwardLayers(Layout.DecoderStart, Layout.Layers.Count, batch, encoderOutput, dEncoderOutput);
        else
        {
            int zRows = batch * Samples;
            DecoderBackward(zRows);
            if (Config.Model == ModelKind.Iwae)
                kernels.ImportanceBackward(encoderOutput, Rows(z, zRows, Config.Latent), Rows(epsilon, zRows, Config.Latent),
                    Rows(dZ, zRows, Config.Latent), NormalizedWeights.View.SubView(0, zRows), dEncoderOutput, batch,
                    Config.Latent, Samples, 1f / batch);
            else
            {
                if (Config.Model == ModelKind.InfoVae)
                    kernels.MmdBackward(Rows(z, batch, Config.Latent), Rows(PriorDraws, batch, Config.Latent), Rows(dZ, batch, Config.Latent),
                        MmdSettings(batch, KlWeight), (float)Config.MmdLambda);
                // Target-rate training weighs KL by sign(R − σ), which the device wrote; otherwise by β.
                bool targetRate = Config.TargetRate is not null;
                kernels.ReparameterizeBackward(encoderOutput, Rows(epsilon, zRows, Config.Latent), Rows(dZ, zRows, Config.Latent),
                    dEncoderOutput, batch, Config.Latent, (float)((targetRate ? 1 : KlWeight) / batch), Samples,
                    targetRate ? RateSign.View : null);
            }
        }
        BackwardLayers(0, Layout.EncoderLayerCount, batch, EncoderInput(batch), kernels.None);
    }

    /// <summary>
    /// The two-layer model's backward pass (see <see cref="TwoLayer"/>): p(x|z1) to dz1; the prior network from
    /// the gradient of T; the z2 sampler (with the N(0, I) prior on z2) and q(z2|z1) to a second dz1; then the z1
    /// sampler, which adds both dz1 and T's own, and q(z1|x). Row r weighs scale·weights[r].
    /// </summary>
    private void BackwardTwoLayers(int batch, ArrayView<float> weights, float scale)
    {
        if (Ladder)
        {
            BackwardLadder(batch, weights, scale);
            return;
        }
        int rows = batch * Samples;
        var z1 = Rows(z, rows, Config.Latent);
        var priorStats = Rows(layerOutputs[Layout.DecoderStart - 1], rows, 2 * Config.Latent);
        var stats2 = Rows(layerOutputs[Layout.Encoder2End - 1], rows, 2 * Config.Latent2);
        DecoderBackward(rows);
        kernels.PriorStatsGradient(z1, priorStats, weights, Rows(layerGradients[Layout.DecoderStart - 1], rows, 2 * Config.Latent),
            rows, Config.Latent, scale);
        BackwardLayers(Layout.Encoder2End, Layout.DecoderStart, rows, Rows(Z2, rows, Config.Latent2), Rows(Z2Gradient, rows, Config.Latent2));
        kernels.ImportanceBackward(stats2, Rows(Z2, rows, Config.Latent2), Rows(Epsilon2, rows, Config.Latent2),
            Rows(Z2Gradient, rows, Config.Latent2), weights, Rows(layerGradients[Layout.Encoder2End - 1], rows, 2 * Config.Latent2),
            rows, Config.Latent2, 1, scale);
        BackwardLayers(Layout.EncoderLayerCount, Layout.Encoder2End, rows, z1, Rows(Z1GradientFromEncoder2, rows, Config.Latent));
        var stats1 = Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, 2 * Config.Latent);
        kernels.FirstLayerBackward(stats1, z1, Rows(epsilon, rows, Config.Latent), priorStats, Rows(dZ, rows, Config.Latent),
            Rows(Z1GradientFromEncoder2, rows, Config.Latent), weights, Rows(layerGradients[Layout.EncoderLayerCount - 1], batch, 2 * Config.Latent),
            batch, Config.Latent, Samples, scale);
        BackwardLayers(0, Layout.EncoderLayerCount, batch, EncoderInput(batch), kernels.None);
    }

    /// <summary>
    /// The Ladder VAE's backward pass: p(x|z1) to dz1; T's gradient into the prior's output; the z1 sampler (prior
    /// N(m, e^u), no other reader of z1) to the merged stats; the merge to the bottom-up stats of z1 (per example)
    /// and, added, the prior's output; the prior network to dz2; the z2 sampler (N(0, I) prior, k samples per
    /// example) to the bottom-up stats of z2; both bottom-up stages, their gradients meeting at the encoder's top
    /// hidden layer.
    /// </summary>
    private void BackwardLadder(int batch, ArrayView<float> weights, float scale)
    {
        int rows = batch * Samples, k1 = Config.Latent, k2 = Config.Latent2;
        var z1 = Rows(z, rows, k1);
        var priorStats = Rows(layerOutputs[Layout.DecoderStart - 1], rows, 2 * k1);
        var dPriorStats = Rows(layerGradients[Layout.DecoderStart - 1], rows, 2 * k1);
        var merged = Rows(MergedStats, rows, 2 * k1);
        DecoderBackward(rows);
        kernels.PriorStatsGradient(z1, priorStats, weights, dPriorStats, rows, k1, scale);
        kernels.FirstLayerBackward(merged, z1, Rows(epsilon, rows, k1), priorStats, Rows(dZ, rows, k1), kernels.None, weights,
            Rows(MergedStatsGradient, rows, 2 * k1), rows, k1, 1, scale);
        kernels.LadderMergeBackward(Rows(layerOutputs[Layout.EncoderLayerCount - 1], batch, 2 * k1), priorStats,
            Rows(MergedStatsGradient, rows, 2 * k1), Rows(layerGradients[Layout.EncoderLayerCount - 1], batch, 2 * k1), dPriorStats,
            batch, k1, Samples);
        BackwardLayers(Layout.Encoder2End, Layout.DecoderStart, rows, Rows(Z2, rows, k2), Rows(Z2Gradient, rows, k2));
        kernels.ImportanceBackward(Rows(layerOutputs[Layout.Encoder2End - 1], batch, 2 * k2), Rows(Z2, rows, k2),
            Rows(Epsilon2, rows, k2), Rows(Z2Gradient, rows, k2), weights, Rows(layerGradients[Layout.Encoder2End - 1], batch, 2 * k2),
            batch, k2, Samples, scale);
        var dTopHidden = Rows(layerGradients[Layout.EncoderLayerCount - 2], batch, Config.Hidden[^1]);
        var dTopHiddenFromAbove = Rows(HiddenGradientFromAbove, batch, Config.Hidden[^1]);
        BackwardLayers(Layout.EncoderLayerCount, Layout.Encoder2End, batch, TopHidden(batch), dTopHiddenFromAbove);
        BackwardLayers(Layout.EncoderLayerCount - 1, Layout.EncoderLayerCount, batch, TopHidden(batch), dTopHidden);
        kernels.Add(dTopHidden, dTopHiddenFromAbove);
        BackwardLayers(0, Layout.EncoderLayerCount - 1, batch, EncoderInput(batch), kernels.None);
    }

    /// <summary>
    /// Layers to−1 down to from, on <paramref name="rows"/> rows, from the gradient in layer to−1's gradient buffer
    /// (with respect to its output). Layer <paramref name="from"/> reads <paramref name="input"/> and writes its
    /// plain input gradient to <paramref name="dInput"/> (none for the data); the others use the buffers of the
    /// layer below, into which each input-gradient product already multiplies the layer below's act'.
    /// </summary>
    private void BackwardLayers(int from, int to, int rows, ArrayView<float> input, ArrayView<float> dInput)
    {
        // The stack's own gradient came from outside (a loss, a sampler, or two branches added), so its act' is
        // applied here; batch norm's backward pass applies it itself.
        var top = Layout.Layers[to - 1];
        if (!top.BatchNorm)
            kernels.ActivationGradient(top.Activation, Rows(layerOutputs[to - 1], rows, top.Outputs), Rows(layerGradients[to - 1], rows, top.Outputs));
        for (int i = to - 1; i >= from; i--)
        {
            var layer = Layout.Layers[i];
            var layerInput = i == from ? input : Rows(layerOutputs[i - 1], rows, layer.Inputs);
            var layerDInput = i == from ? dInput : Rows(layerGradients[i - 1], rows, layer.Inputs);
            var dPre = Rows(layerGradients[i], rows, layer.Outputs);
            if (layer.BatchNorm)
            {
                // Through the activation and the normalisation to the product, in place; the rest is a linear layer.
                kernels.BatchNormBackward(layer.Activation, Rows(PreActivation(i), rows, layer.Outputs), Norm(parameters, layer, 4),
                    Rows(layerOutputs[i], rows, layer.Outputs), NormStatistics(i).View, dPre, Norm(gradients, layer, 2),
                    new BatchNormShape(rows, layer.Outputs, trainingPass));
            }
            // The layer below's act', fused into its gradient's product, unless its batch norm applies it.
            var below = i == from || Layout.Layers[i - 1].BatchNorm ? ActivationKind.Identity : Layout.Layers[i - 1].Activation;
            ArrayView<float> dBias = layer.BatchNorm ? UnusedBiasGradient.View.SubView(0, layer.Outputs) : Bias(gradients, layer);
            kernels.DenseBackward(layerInput, Weights(parameters, layer), dPre, layerDInput, below,
                Weights(gradients, layer), dBias, rows, layer.Inputs, layer.Outputs);
        }
    }

    private LossSums ReadSums(MemoryBuffer1D<double, Stride1D.Dense> totals, bool reset, double beta)
    {
        kernels.Synchronize();
        var values = totals.GetAsArray1D();
        // Enqueued on the stream, so later steps see zeros without another wait here.
        if (reset)
            totals.View.MemSetToZero(kernels.Stream);
        return LossSums.FromArray(values, beta);
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

    /// <summary>One half of rows of Gaussian stats [rows, 2·width]: the means (first) or the log-variances.</summary>
    private static float[] Half(float[] stats, int rows, int width, bool second)
    {
        var half = new float[rows * width];
        for (int row = 0; row < rows; row++)
            Array.Copy(stats, row * 2 * width + (second ? width : 0), half, row * width, width);
        return half;
    }

    private static float[] Download(ArrayView<float> view) => ArrayViewExtensions.GetAsArray1D<float>(view);

    private static ArrayView<float> Rows(MemoryBuffer1D<float, Stride1D.Dense> buffer, int batch, int width) =>
        buffer.View.SubView(0, (long)batch * width);

    private static ArrayView<float> Weights(MemoryBuffer1D<float, Stride1D.Dense> buffer, DenseSlice layer) =>
        buffer.View.SubView(layer.WeightOffset, layer.WeightCount);

    private static ArrayView<float> Bias(MemoryBuffer1D<float, Stride1D.Dense> buffer, DenseSlice layer) =>
        buffer.View.SubView(layer.BiasOffset, layer.Outputs);

    /// <summary>The first <paramref name="rows"/> of a batch-normalised layer's [γ | β | running mean | running
    /// variance]: all four in the parameters, [dγ | dβ] in the gradients.</summary>
    private static ArrayView<float> Norm(MemoryBuffer1D<float, Stride1D.Dense> buffer, DenseSlice layer, int rows) =>
        buffer.View.SubView(layer.NormOffset, rows * layer.Outputs);

    public void Dispose() => workspace.Dispose();
}
