using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Model;

/// <summary>
/// Training in double precision on the host through <see cref="ReferenceVae"/>, with exactly the draws a
/// <see cref="Vae"/> makes: the same initial parameters, minibatches in the same order, the same binarization
/// thresholds and ε (keyed by the step counter), the same KL warm-up, Adam with the same settings, clipping and
/// batch norm's running averages. What it trains is what the float kernels would train without rounding, so a
/// run's result can be told apart from float rounding (train --precision double). Slow: every product is a plain
/// loop in double.
/// </summary>
public sealed class ReferenceTrainer
{
    private readonly VaeConfig config;
    private readonly AdamSettings adam;
    private readonly ulong seed;
    private readonly double[] parameters, firstMoment, secondMoment;
    private LossSums sums;

    /// <summary>Starts where <paramref name="state"/> is: a fresh model's initial parameters and zero moments, or a
    /// checkpoint's (widened from float). <paramref name="step"/> is the optimiser steps taken so far.</summary>
    public ReferenceTrainer(VaeConfig config, AdamSettings adam, ulong seed,
        (float[] Parameters, float[] FirstMoment, float[] SecondMoment) state, long step, LossSums runningSums)
    {
        config.Validate();
        adam.Validate();
        int count = new ParameterLayout(config).Count;
        if (state.Parameters.Length != count || state.FirstMoment.Length != count || state.SecondMoment.Length != count)
            throw new ArgumentException($"the model has {count} parameters; the state holds {state.Parameters.Length}");
        this.config = config;
        this.adam = adam;
        this.seed = seed;
        parameters = Widen(state.Parameters);
        firstMoment = Widen(state.FirstMoment);
        secondMoment = Widen(state.SecondMoment);
        Step = step;
        LearningRate = adam.LearningRate;
        KlWeight = config.Beta;
        sums = runningSums;
    }

    /// <summary>A trainer in the state <paramref name="vae"/> is in (waits for its device), with its running sums.</summary>
    public static ReferenceTrainer From(Vae vae) =>
        new(vae.Config, vae.Adam, vae.Seed, vae.ExportState(), vae.Step, vae.ReadTrainingSums(reset: false))
        {
            LearningRate = vae.LearningRate,
            KlWarmupSteps = vae.KlWarmupSteps,
        };

    public long Step { get; private set; }
    public double LearningRate { get; set; }
    public long KlWarmupSteps { get; set; }
    public double KlWeight { get; private set; }
    public IReadOnlyList<double> Parameters => parameters;

    /// <summary>The running loss sums since the last reset, as <see cref="Vae.ReadTrainingSums"/> gives them.</summary>
    public LossSums ReadTrainingSums(bool reset)
    {
        var current = sums with { Beta = KlWeight };
        if (reset)
            sums = default;
        return current;
    }

    /// <summary>
    /// Rounds the parameters and moments to float and puts them, the step counter and the running sums into
    /// <paramref name="vae"/>, so its kernels can evaluate, checkpoint or draw what this trainer trained.
    /// </summary>
    public void CopyTo(Vae vae)
    {
        vae.RestoreState(Narrow(parameters), Narrow(firstMoment), Narrow(secondMoment), Step);
        vae.RestoreTrainingSums(sums);
        vae.LearningRate = LearningRate;
    }

    /// <summary>
    /// One optimiser step on examples order[first .. first+batch) of <paramref name="data"/>, as
    /// <see cref="Vae.TrainStep"/> takes it.
    /// </summary>
    public void TrainStep(ImageDataset data, int[] order, int first, int batch, bool binarize)
    {
        if (batch < 1 || first < 0 || first + batch > order.Length)
            throw new ArgumentOutOfRangeException(nameof(batch), $"entries {first}..{first + batch} are outside the order of {order.Length} examples");
        if (data.Features != config.InputSize)
            throw new ArgumentException($"data has {data.Features} features per example but the model expects {config.InputSize}");
        Step++;
        if (KlWarmupSteps > 0)
            KlWeight = config.Beta * Math.Min(1.0, (double)Step / KlWarmupSteps);
        var x = MinibatchReference.Gather(data.Images, order, first, batch, config.InputSize, binarize,
            new DrawKey(seed, Philox.Streams.Binarize, Step));
        int[]? labels = config.Spec.Has(Models.ModelCapabilities.Labels)
            ? Enumerable.Range(first, batch).Select(index => (int)data.Labels[order[index]]).ToArray()
            : null;
        var result = ReferenceVae.LossAndGradient(config, parameters, x, ReferenceVae.Epsilon(config, seed, Step, batch), batch,
            KlWeight, labels);
        Accumulate(result, batch);
        ReferenceVae.ApplyRunningAverages(parameters, result);
        var gradient = adam.MaxGradientNorm is { } maxNorm ? ClippingReference.Clip(result.Gradient, maxNorm).Clipped : result.Gradient;
        AdamReference.Step(parameters, gradient, firstMoment, secondMoment, LearningRate, adam.Beta1, adam.Beta2, adam.Epsilon, Step);
    }

    /// <summary>
    /// An epoch of steps over <paramref name="data"/> in <paramref name="order"/>, with the callbacks of
    /// <see cref="Epoch.Train"/>: a tick every <paramref name="tickInterval"/> steps, and <paramref name="afterStep"/>
    /// may stop the epoch (then null, with the running sums kept). Otherwise the epoch's sums, then reset.
    /// </summary>
    public LossSums? TrainEpoch(ImageDataset data, int[] order, int batchSize, bool binarize, int tickInterval,
        Action<int, LossSums>? onTick = null, int firstStep = 0, Func<int, bool>? afterStep = null)
    {
        int steps = Epoch.StepsFor(order.Length, batchSize);
        for (int step = firstStep; step < steps; step++)
        {
            int first = step * batchSize;
            TrainStep(data, order, first, Math.Min(batchSize, order.Length - first), binarize);
            if (tickInterval > 0 && (step + 1) % tickInterval == 0 && step + 1 < steps)
                onTick?.Invoke(step + 1, ReadTrainingSums(reset: false));
            if (afterStep is not null && !afterStep(step + 1))
                return null;
        }
        return ReadTrainingSums(reset: true);
    }

    /// <summary>Adds a step's terms as the kernels sum them: reconstruction and KL over z rows, and the objective
    /// over examples for the models whose loss is not rec + β·KL per row.</summary>
    private void Accumulate(ReferenceVae.Result result, int batch)
    {
        int rows = batch * config.Samples;
        bool objective = config.Spec.SeparateObjective(config);
        sums = sums with
        {
            Reconstruction = sums.Reconstruction + result.Reconstruction * rows,
            Kl = sums.Kl + result.Kl * rows,
            Examples = sums.Examples + rows,
            Objective = sums.Objective + (objective ? result.Loss * batch : 0),
            ObjectiveExamples = sums.ObjectiveExamples + (objective ? batch : 0),
        };
    }

    private static double[] Widen(float[] values) => Array.ConvertAll(values, value => (double)value);

    private static float[] Narrow(double[] values) => Array.ConvertAll(values, value => (float)value);
}
