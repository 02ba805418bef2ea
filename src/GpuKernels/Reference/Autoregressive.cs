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

    /// <summary>∂/∂h of Σ_j log Bernoulli(h_j; σ(a_j)) per row, a = context + W·h (h taken as continuous): a_i plus
    /// Σ_{j&gt;i} W_ji·(h_j − σ(a_j)).</summary>
    public static double[] LogDensityCodeGradient(double[] logits, double[] weights, double[] h, int rows, int units)
    {
        var gradient = new double[rows * units];
        for (int b = 0; b < rows; b++)
            for (int i = 0; i < units; i++)
            {
                double sum = logits[b * units + i];
                for (int j = i + 1; j < units; j++)
                    sum += weights[j * units + i] * (h[b * units + j] - 1 / (1 + Math.Exp(-logits[b * units + j])));
                gradient[b * units + i] = sum;
            }
        return gradient;
    }

    /// <summary>DARN's Taylor-baseline gradient of q's logits (see <see cref="Autoregressive.AutoregressiveTaylorGradient"/>):
    /// ½·(1 − q(h_i))·(dCodes_i + klScale·(∂ log q/∂h_i − ∂ log p/∂h_i)).</summary>
    public static double[] TaylorGradient(double[] dCodes, double[] h, double[] qLogits, double[] priorLogits, double[] qWeights, double[] priorWeights,
        int rows, int units, double klScale)
    {
        var dLogQ = LogDensityCodeGradient(qLogits, qWeights, h, rows, units);
        var dLogP = LogDensityCodeGradient(priorLogits, priorWeights, h, rows, units);
        return h.Select((value, i) =>
        {
            double on = 1 / (1 + Math.Exp(-qLogits[i]));
            return 0.5 * (value > 0.5 ? 1 - on : on) * (dCodes[i] + klScale * (dLogQ[i] - dLogP[i]));
        }).ToArray();
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
