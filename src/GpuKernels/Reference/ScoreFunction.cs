namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The score-function kernels of <see cref="ScoreFunction"/> in double.</summary>
public static class ScoreFunctionReference
{
    public static double[] Center(double[] signal, double[]? baseline, double runningMean, double runningVariance,
        bool subtractBaseline, bool subtractRunningMean, bool normalise)
    {
        var centred = new double[signal.Length];
        for (int b = 0; b < signal.Length; b++)
        {
            double value = signal[b];
            if (subtractBaseline)
                value -= baseline![b];
            if (subtractRunningMean)
                value -= runningMean;
            if (normalise)
                value /= Math.Max(1, Math.Sqrt(runningVariance));
            centred[b] = value;
        }
        return centred;
    }

    /// <summary>The running [mean, variance] after one batch (population variance of the batch).</summary>
    public static (double Mean, double Variance) UpdateMoments(double[] signal, double[]? baseline, double runningMean, double runningVariance, double decay)
    {
        var left = signal.Select((value, b) => value - (baseline?[b] ?? 0)).ToArray();
        double mean = left.Average();
        double variance = left.Sum(value => (value - mean) * (value - mean)) / left.Length;
        return (decay * runningMean + (1 - decay) * mean, decay * runningVariance + (1 - decay) * variance);
    }

    public static double[] BernoulliScoreGradient(double[] h, double[] logits, double[] centred, int units, double scale)
    {
        var gradient = new double[h.Length];
        for (int i = 0; i < h.Length; i++)
            gradient[i] = -scale * centred[i / units] * (h[i] - 1 / (1 + Math.Exp(-logits[i])));
        return gradient;
    }
}
