namespace IlgpuVae.GpuKernels.Reference;

/// <summary>Batch normalisation and its backward pass in double precision, written per column from the
/// definitions (the backward pass differentiates through the batch mean and variance term by term).</summary>
public static class BatchNormReference
{
    /// <summary>The statistics a forward pass normalised with, and the running averages after it.</summary>
    public sealed record Statistics(double[] Mean, double[] Variance, double[] RunningMean, double[] RunningVariance);

    /// <summary>y = act(γ·(a − mean)/√(var + ε) + β); norm = [γ | β | running mean | running variance].</summary>
    public static (double[] Output, Statistics Statistics) Forward(ActivationKind activation, double[] preActivation, double[] norm,
        int rows, int columns, bool training, double momentum = BatchNormShape.DefaultMomentum, double epsilon = BatchNormShape.DefaultEpsilon)
    {
        var output = new double[rows * columns];
        var mean = new double[columns];
        var variance = new double[columns];
        var runningMean = norm[(2 * columns)..(3 * columns)];
        var runningVariance = norm[(3 * columns)..(4 * columns)];
        for (int c = 0; c < columns; c++)
        {
            var column = Enumerable.Range(0, rows).Select(r => preActivation[r * columns + c]).ToArray();
            if (training)
            {
                mean[c] = column.Average();
                variance[c] = column.Select(a => (a - mean[c]) * (a - mean[c])).Average();
                double unbiased = rows > 1 ? variance[c] * rows / (rows - 1) : variance[c];
                runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean[c];
                runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * unbiased;
            }
            else
            {
                mean[c] = runningMean[c];
                variance[c] = runningVariance[c];
            }
            for (int r = 0; r < rows; r++)
            {
                double normalised = (column[r] - mean[c]) / Math.Sqrt(variance[c] + epsilon);
                output[r * columns + c] = ActivationReference.Forward(activation, norm[c] * normalised + norm[columns + c]);
            }
        }
        return (output, new Statistics(mean, variance, runningMean, runningVariance));
    }

    /// <summary>d pre-activation and [dγ | dβ] from dy.</summary>
    public static (double[] DPreActivation, double[] DNorm) Backward(ActivationKind activation, double[] preActivation, double[] norm,
        Statistics statistics, double[] dOutput, int rows, int columns, bool training, double epsilon = BatchNormShape.DefaultEpsilon)
    {
        var dPre = new double[rows * columns];
        var dNorm = new double[2 * columns];
        for (int c = 0; c < columns; c++)
        {
            double gamma = norm[c], mean = statistics.Mean[c], variance = statistics.Variance[c];
            double deviation = Math.Sqrt(variance + epsilon);
            var normalised = new double[rows];
            var dNormalised = new double[rows];
            for (int r = 0; r < rows; r++)
            {
                normalised[r] = (preActivation[r * columns + c] - mean) / deviation;
                double s = dOutput[r * columns + c] * ActivationReference.Derivative(activation, gamma * normalised[r] + norm[columns + c]);
                dNorm[c] += s * normalised[r];
                dNorm[columns + c] += s;
                dNormalised[r] = s * gamma;
            }
            for (int r = 0; r < rows; r++)
            {
                // x̂_r = (a_r − mean)/σ; in training mean and σ² = mean((a − mean)²) depend on every a_j.
                double d = dNormalised[r] / deviation;
                if (training)
                {
                    double dVariance = 0, dMean = 0;
                    for (int j = 0; j < rows; j++)
                    {
                        dVariance += dNormalised[j] * (preActivation[j * columns + c] - mean) * -0.5 * Math.Pow(variance + epsilon, -1.5);
                        dMean += -dNormalised[j] / deviation;
                    }
                    d += dVariance * 2 * (preActivation[r * columns + c] - mean) / rows + dMean / rows;
                }
                dPre[r * columns + c] = d;
            }
        }
        return (dPre, dNorm);
    }
}
