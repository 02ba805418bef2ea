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

    /// <summary>a_j = Cov(f·g_j, g_j)/Var(g_j) over the rows, g the Bernoulli score; f per row or per row and unit.</summary>
    public static double[] ControlVariateCoefficients(double[] h, double[] logits, double[] signals, int rows, int units, bool perUnitSignals)
    {
        var coefficients = new double[units];
        for (int j = 0; j < units; j++)
        {
            var score = Enumerable.Range(0, rows).Select(r => h[r * units + j] - 1 / (1 + Math.Exp(-logits[r * units + j]))).ToArray();
            var product = Enumerable.Range(0, rows).Select(r => signals[perUnitSignals ? r * units + j : r] * score[r]).ToArray();
            double meanScore = score.Average(), meanProduct = product.Average();
            double covariance = Enumerable.Range(0, rows).Sum(r => (product[r] - meanProduct) * (score[r] - meanScore));
            double variance = score.Sum(value => (value - meanScore) * (value - meanScore));
            coefficients[j] = variance > 0 ? covariance / variance : 0;
        }
        return coefficients;
    }

    public static double[] SubtractPerUnit(double[] signals, double[] coefficients, int rows, int units, bool perUnitSignals) =>
        Enumerable.Range(0, rows * units).Select(e => signals[perUnitSignals ? e : e / units] - coefficients[e % units]).ToArray();

    public static double[] BernoulliScoreGradient(double[] h, double[] logits, double[] centred, int units, double scale)
    {
        var gradient = new double[h.Length];
        for (int i = 0; i < h.Length; i++)
            gradient[i] = -scale * centred[i / units] * (h[i] - 1 / (1 + Math.Exp(-logits[i])));
        return gradient;
    }
}
