namespace IlgpuVae.Model;

/// <summary>One pass over a data set as queued training steps, shared by the train and bench commands.</summary>
public static class Epoch
{
    public static int StepsFor(int examples, int batchSize) => (examples + batchSize - 1) / batchSize;

    /// <summary>
    /// Queues the steps of an epoch in the data set's current order (the last batch may be smaller), from step
    /// <paramref name="firstStep"/> (a resumed epoch) to the end. Every <paramref name="tickInterval"/> steps
    /// (0: never) it reads the running loss sums (one host wait) and passes them to <paramref name="onTick"/>.
    /// After each step <paramref name="afterStep"/> (steps done in this epoch) may stop the epoch by returning
    /// false: then the result is null and the running sums stay on the device for a checkpoint. Otherwise returns
    /// the epoch's sums, read once at the end, and resets them.
    /// </summary>
    public static LossSums? Train(Vae vae, DeviceDataset data, int batchSize, bool binarize, int tickInterval,
        Action<int, LossSums>? onTick = null, int firstStep = 0, Func<int, bool>? afterStep = null)
    {
        int steps = StepsFor(data.Count, batchSize);
        for (int step = firstStep; step < steps; step++)
        {
            int first = step * batchSize;
            vae.TrainStep(data, first, Math.Min(batchSize, data.Count - first), binarize);
            if (tickInterval > 0 && (step + 1) % tickInterval == 0 && step + 1 < steps)
                onTick?.Invoke(step + 1, vae.ReadTrainingSums(reset: false));
            if (afterStep is not null && !afterStep(step + 1))
                return null;
        }
        return vae.ReadTrainingSums(reset: true);
    }

    /// <summary>The test ELBO estimate with one z sample per example, as the PyTorch example reports it; the
    /// draws are keyed by <paramref name="epoch"/>, so each epoch's estimate is reproducible.</summary>
    public static LossSums Evaluate(Vae vae, DeviceDataset data, int batchSize, int epoch)
    {
        int batches = StepsFor(data.Count, batchSize);
        for (int index = 0; index < batches; index++)
        {
            int first = index * batchSize;
            vae.EvaluateBatch(data, first, Math.Min(batchSize, data.Count - first), ((long)epoch << 20) + index);
        }
        return vae.ReadEvaluationSums(reset: true);
    }
}
