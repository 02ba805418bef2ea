namespace IlgpuVae.GpuKernels.Reference;

/// <summary>Autoregressive binary units (see <see cref="Autoregressive"/>) in double, with W's strictly lower triangle
/// taken as a matrix in its own right.</summary>
public static class AutoregressiveReference
{
    /// <summary>The logits of given units, row by row; with <paramref name="samples"/> k the units h are one row per
    /// example, read by its k rows.</summary>
    public static double[] Logits(double[] context, double[] weights, double[] h, int rows, int units, int samples = 1)
    {
        var logits = new double[rows * units];
        for (int b = 0; b < rows; b++)
            for (int j = 0; j < units; j++)
                logits[b * units + j] = Logit(context, weights, h, b, b / samples, j, units);
        return logits;
    }

    /// <summary>a_j of row b: its context plus Σ_{k&lt;j} W_jk·h_k, h from row <paramref name="hRow"/>.</summary>
    private static double Logit(double[] context, double[] weights, double[] h, int b, int hRow, int j, int units)
    {
        double sum = context[b * units + j];
        for (int k = 0; k < j; k++)
            sum += weights[j * units + k] * h[hRow * units + k];
        return sum;
    }

    /// <summary>Units drawn in order from the kernels' uniforms, the threshold u &lt; σ(a) taken in double.</summary>
    public static (double[] H, double[] Logits) Sample(double[] context, double[] weights, int rows, int units, DrawKey key)
    {
        var h = new double[rows * units];
        var logits = new double[rows * units];
        for (int b = 0; b < rows; b++)
            for (int j = 0; j < units; j++)
            {
                double sum = Logit(context, weights, h, b, b, j, units);
                logits[b * units + j] = sum;
                double u = Philox.Uniform(key.Seed, key.Stream, key.Step, key.Counter(b * units + j, units));
                h[b * units + j] = u < 1 / (1 + Math.Exp(-sum)) ? 1 : 0;
            }
        return (h, logits);
    }

    /// <summary>Units drawn in order from given uniforms [rows, K], row r reading its example's context row r / k.</summary>
    public static (double[] H, double[] Logits) Sample(double[] context, double[] weights, double[] uniforms, int rows, int units, int samples)
    {
        var h = new double[rows * units];
        var logits = new double[rows * units];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < units; j++)
            {
                double sum = context[r / samples * units + j];
                for (int k = 0; k < j; k++)
                    sum += weights[j * units + k] * h[r * units + k];
                logits[r * units + j] = sum;
                h[r * units + j] = uniforms[r * units + j] < 1 / (1 + Math.Exp(-sum)) ? 1 : 0;
            }
        return (h, logits);
    }

    /// <summary>Σ_b Σ_j log Bernoulli(h_bj; σ(a_bj)): the log-probability of given units, which W's gradient
    /// differentiates (the tests' finite differences).</summary>
    public static double LogProbability(double[] context, double[] weights, double[] h, int rows, int units)
    {
        var logits = Logits(context, weights, h, rows, units);
        return logits.Select((logit, i) => DistributionReference.BernoulliLogDensity(h[i], logit)).Sum();
    }

    /// <summary>dW[j, k] = Σ_b dLogits[b, j]·h[b / k, k] for k &lt; j (h one row per example, as in <see cref="Logits"/>).</summary>
    public static double[] WeightGradient(double[] dLogits, double[] h, int rows, int units, int samples = 1)
    {
        var gradient = new double[units * units];
        for (int j = 0; j < units; j++)
            for (int k = 0; k < j; k++)
                for (int b = 0; b < rows; b++)
                    gradient[j * units + k] += dLogits[b * units + j] * h[b / samples * units + k];
        return gradient;
    }
}
