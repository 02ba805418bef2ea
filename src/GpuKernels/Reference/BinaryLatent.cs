namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The binary stochastic layer of <see cref="BinaryLatent"/> in double, written for clarity (one loop
/// per formula; samples' rows repeat their example's logits where the kernels index row / k).</summary>
public static class BinaryLatentReference
{
    /// <summary>The uniforms the sampler compares with σ(a): element (r, j) of [rows, K], rows = batch·k, drawn as
    /// the kernel draws them for one process.</summary>
    public static double[] Uniforms(DrawKey key, int rows, int units, int samples) =>
        Enumerable.Range(0, rows * units).Select(element => (double)Philox.Uniform(key.Seed, key.Stream, key.Step, key.Counter(element, (long)samples * units))).ToArray();

    /// <summary>h_rj = [u_rj &lt; σ(a_bj)] and log q(h_r|x) per row, from the given uniforms.</summary>
    public static (double[] H, double[] LogQ) Sample(double[] logits, double[] uniforms, int rows, int units, int samples)
    {
        var h = new double[rows * units];
        var logQ = new double[rows];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < units; j++)
            {
                double a = logits[r / samples * units + j];
                double bit = uniforms[r * units + j] < Sigmoid(a) ? 1 : 0;
                h[r * units + j] = bit;
                logQ[r] += DistributionReference.BernoulliLogDensity(bit, a);
            }
        return (h, logQ);
    }

    /// <summary>KL_r = log q(h_r|·) − Σ_j log p(h_rj), the prior's logits one shared row or one row per row.</summary>
    public static double[] Kl(double[] h, double[] logQ, double[] priorLogits, int units, bool priorPerRow) =>
        Enumerable.Range(0, logQ.Length).Select(r => logQ[r]
            - Enumerable.Range(0, units).Sum(j => DistributionReference.BernoulliLogDensity(h[r * units + j], priorLogits[(priorPerRow ? r * units : 0) + j]))).ToArray();

    /// <summary>Both: h and the KL term against one shared row of prior logits.</summary>
    public static (double[] H, double[] Kl) Sample(double[] logits, double[] priorLogits, double[] uniforms, int rows, int units, int samples)
    {
        var (h, logQ) = Sample(logits, uniforms, rows, units, samples);
        return (h, Kl(h, logQ, priorLogits, units, priorPerRow: false));
    }

    /// <summary>NVIL's centred signal per row, l − b per row, and the baseline's gradient per example (see
    /// <see cref="BinaryLatent.NvilSignal"/>).</summary>
    public static (double[] Centred, double[] SignalMinusBaseline, double[] DBaseline) NvilSignal(double[] reconstruction, double[] kl, double[] baseline,
        double runningMean, double runningVariance, int samples, double beta, bool subtractBaseline, bool subtractRunningMean, bool normalise,
        double baselineScale)
    {
        int rows = reconstruction.Length;
        var left = new double[rows];
        var centred = new double[rows];
        var dBaseline = new double[rows / samples];
        for (int r = 0; r < rows; r++)
        {
            double signal = -(reconstruction[r] + beta * kl[r]);
            left[r] = subtractBaseline ? signal - baseline[r / samples] : signal;
            double residual = subtractRunningMean ? left[r] - runningMean : left[r];
            centred[r] = normalise ? residual / Math.Max(1, Math.Sqrt(runningVariance)) : residual;
            dBaseline[r / samples] += -2 * baselineScale * residual;
        }
        return (centred, left, dBaseline);
    }

    /// <summary>dLogits[b, j] = −scale·Σ_s centred_r·(h_rj − σ(a_bj)).</summary>
    public static double[] PosteriorGradient(double[] logits, double[] h, double[] centred, int units, int samples, double scale)
    {
        var gradient = new double[logits.Length];
        for (int r = 0; r < centred.Length; r++)
            for (int j = 0; j < units; j++)
            {
                int element = r / samples * units + j;
                gradient[element] -= scale * centred[r] * (h[r * units + j] - Sigmoid(logits[element]));
            }
        return gradient;
    }

    /// <summary>dPrior[j] = scale·Σ_r (σ(c_j) − h_rj).</summary>
    public static double[] PriorGradient(double[] priorLogits, double[] h, int rows, double scale)
    {
        int units = priorLogits.Length;
        var gradient = new double[units];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < units; j++)
                gradient[j] += scale * (Sigmoid(priorLogits[j]) - h[r * units + j]);
        return gradient;
    }

    /// <summary>dPrior[r, j] = scale·(σ(c_rj) − h_rj).</summary>
    public static double[] PriorRowGradient(double[] priorLogits, double[] h, double scale) =>
        priorLogits.Select((c, element) => scale * (Sigmoid(c) - h[element])).ToArray();

    /// <summary>Σ_j log Bernoulli(h_rj; σ(a_rj)) per row.</summary>
    public static double[] RowLogDensity(double[] h, double[] logits, int units) =>
        Enumerable.Range(0, h.Length / units)
            .Select(r => Enumerable.Range(0, units).Sum(j => DistributionReference.BernoulliLogDensity(h[r * units + j], logits[r * units + j]))).ToArray();

    /// <summary>Σ_s perRow[b·k + s, j] per example.</summary>
    public static double[] SumSamples(double[] perRow, int units, int samples) =>
        Enumerable.Range(0, perRow.Length / samples)
            .Select(element => Enumerable.Range(0, samples).Sum(s => perRow[(element / units * samples + s) * units + element % units])).ToArray();

    public static double Sigmoid(double a) => 1 / (1 + Math.Exp(-a));
}
