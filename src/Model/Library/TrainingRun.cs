using IlgpuVae.Model.Data;

namespace IlgpuVae.Model.Library;

/// <summary>
/// The epochs of a training run, as <c>ilgpu-vae train</c> and <see cref="VaeModel.Train"/> both run them: each
/// epoch's order (a Philox permutation keyed by the seed and the epoch), its learning rate (the schedule), KL
/// warm-up by steps, the queued steps (or, in double precision, the reference pipeline's), and the test pass.
/// What happens around them (progress, checkpoints, stopping) is the caller's, through callbacks.
/// </summary>
public sealed class TrainingRun
{
    private readonly Vae vae;
    private readonly ImageDataset train;
    private readonly DeviceDataset trainData;
    private readonly DeviceDataset? testData;
    private readonly TrainingSettings settings;

    /// <param name="doublePrecision">Run the steps through <see cref="ReferenceTrainer"/> in double on the host,
    /// from the model's state; the model gets the weights back (rounded) after each epoch and on
    /// <see cref="Synchronize"/>.</param>
    public TrainingRun(Vae vae, ImageDataset train, DeviceDataset trainData, DeviceDataset? testData, TrainingSettings settings,
        bool doublePrecision = false)
    {
        settings.Validate();
        this.vae = vae;
        this.train = train;
        this.trainData = trainData;
        this.testData = testData;
        this.settings = settings;
        StepsPerEpoch = Epoch.StepsFor(train.Count, settings.BatchSize);
        vae.KlWarmupSteps = (long)settings.WarmupEpochs * StepsPerEpoch;
        Reference = doublePrecision ? ReferenceTrainer.From(vae) : null;
    }

    public int StepsPerEpoch { get; }

    /// <summary>The double-precision trainer when the run is in double, else null.</summary>
    public ReferenceTrainer? Reference { get; }

    /// <summary>Optimiser steps taken so far.</summary>
    public long StepsTaken => Reference?.Step ?? vae.Step;

    /// <summary>Gives the model the double-precision trainer's state (rounded), before a checkpoint or a test pass
    /// mid-epoch; nothing in single precision.</summary>
    public void Synchronize() => Reference?.CopyTo(vae);

    /// <summary>
    /// Trains epoch <paramref name="epoch"/> from step <paramref name="firstStep"/> (a resumed epoch). Every
    /// <paramref name="tickInterval"/> steps the running sums go to <paramref name="onTick"/>, which stops the epoch
    /// by returning false (a loss gone non-finite); after each step <paramref name="afterStep"/> (steps done) may
    /// stop it by returning false. Returns the epoch's training sums, or null when stopped (the running sums stay
    /// with the model for a checkpoint).
    /// </summary>
    public LossSums? TrainEpoch(int epoch, int firstStep, int tickInterval, Func<int, LossSums, bool>? onTick = null,
        Func<int, bool>? afterStep = null)
    {
        var order = Shuffle.Permutation(train.Count, settings.Seed, epoch);
        trainData.SetOrder(order);
        vae.LearningRate = LearningRateSchedule.Rate(settings.LearningRateSchedule, settings.LearningRate, epoch);
        if (Reference is not null)
            Reference.LearningRate = vae.LearningRate;
        bool stopped = false;
        void Tick(int steps, LossSums sums) => stopped |= onTick is not null && !onTick(steps, sums);
        bool AfterStep(int stepsDone) => !stopped && (afterStep?.Invoke(stepsDone) ?? true);
        var finished = Reference is null
            ? Epoch.Train(vae, trainData, settings.BatchSize, settings.DynamicBinarization, tickInterval, Tick, firstStep, AfterStep)
            : Reference.TrainEpoch(train, order, settings.BatchSize, settings.DynamicBinarization, tickInterval, Tick, firstStep, AfterStep);
        Synchronize();
        return finished;
    }

    /// <summary>The test pass after epoch <paramref name="epoch"/> (one z per example, draws keyed by the epoch),
    /// or null without a test set.</summary>
    public LossSums? Test(int epoch) => testData is null ? null : Epoch.Evaluate(vae, testData, settings.BatchSize, epoch);
}
