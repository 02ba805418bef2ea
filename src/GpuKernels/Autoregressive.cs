using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Autoregressive binary units, DARN's building block (Gregor et al. 2014; issue 24): K units per row, unit j a
/// logistic unit of a context c_j (the input's contribution and the bias, computed by an ordinary dense layer) and
/// the units before it, a_j = c_j + Σ_{k&lt;j} W_jk·h_k, with W [K, K] row-major of which only the strictly lower
/// triangle is read. Given h, all logits are one masked product (<see cref="AutoregressiveLogits"/>); drawing h takes
/// K sequential steps (<see cref="AutoregressiveSample"/>, one thread per row). The backward pass gives W's gradient
/// (zero on and above the diagonal) from the logits' gradient; the context's gradient is the logits' own.
/// Double references: <see cref="Reference.AutoregressiveReference"/>.
/// </summary>
public static class Autoregressive
{
    /// <summary>logits[b, j] = context[b, j] + Σ_{k&lt;j} W[j, k]·h[b / k, k], one thread per element: with
    /// <paramref name="samples"/> k &gt; 1 the units are observed once per example and read by its k rows (DARN's
    /// autoregressive decoder reads the pixels so).</summary>
    public static void AutoregressiveLogits(this KernelSet kernels, ArrayView<float> context, ArrayView<float> weights, ArrayView<float> h,
        ArrayView<float> logits, int units, int samples = 1) =>
        kernels.Launch(LogitsKernel, (int)context.Length, context, weights, h, logits, units, samples);

    /// <summary>
    /// Draws each row's units in order: a_j as above from the units already drawn, then h_j = 1 when
    /// u·(1 + e^−a_j) &lt; 1 (u &lt; σ(a_j)), u from Philox at element r·K + j (keyed as the other samplers, k·K per
    /// example); writes h and the logits a. With <paramref name="samples"/> k rows per example, row r reads its
    /// example's context row r / k (h and the logits have the rows).
    /// </summary>
    public static void AutoregressiveSample(this KernelSet kernels, ArrayView<float> context, ArrayView<float> weights, ArrayView<float> h,
        ArrayView<float> logits, int units, DrawKey key, int samples = 1) =>
        kernels.Launch(SampleKernel, (int)(context.Length / units) * samples, context, weights, h, logits, units, key, samples);

    /// <summary>dWeights[j, k] = Σ_b dLogits[b, j]·h[b / k, k] for k &lt; j, 0 elsewhere (one thread per entry of W,
    /// the rows in order; h once per example as in <see cref="AutoregressiveLogits"/>).</summary>
    public static void AutoregressiveWeightGradient(this KernelSet kernels, ArrayView<float> dLogits, ArrayView<float> h, ArrayView<float> dWeights,
        int rows, int units, int samples = 1) =>
        kernels.Launch(WeightGradientKernel, units * units, dLogits, h, dWeights, rows, units, samples);

    [Kernel]
    public static void LogitsKernel(Index1D element, ArrayView<float> context, ArrayView<float> weights, ArrayView<float> h, ArrayView<float> logits,
        int units, int samples)
    {
        int row = element / units;
        logits[element] = Logit(context, weights, h, row * units, row / samples * units, element - row * units, units);
    }

    /// <summary>a_j: the context at <paramref name="contextStart"/> plus the lower triangle's products with the units
    /// before it in the row of h starting at <paramref name="start"/>.</summary>
    private static float Logit(ArrayView<float> context, ArrayView<float> weights, ArrayView<float> h, int contextStart, int start, int unit, int units)
    {
        float sum = context[contextStart + unit];
        for (int k = 0; k < unit; k++)
            sum += weights[unit * units + k] * h[start + k];
        return sum;
    }

    [Kernel]
    public static void SampleKernel(Index1D row, ArrayView<float> context, ArrayView<float> weights, ArrayView<float> h, ArrayView<float> logits,
        int units, DrawKey key, int samples)
    {
        int start = row * units, contextStart = row / samples * units;
        for (int unit = 0; unit < units; unit++)
        {
            float sum = Logit(context, weights, h, contextStart, start, unit, units);
            logits[start + unit] = sum;
            float u = Philox.Uniform(key.Seed, key.Stream, key.Step, key.Counter(start + unit, (long)samples * units));
            h[start + unit] = u * (1f + MathF.Exp(-sum)) < 1f ? 1f : 0f;
        }
    }

    [Kernel]
    public static void WeightGradientKernel(Index1D entry, ArrayView<float> dLogits, ArrayView<float> h, ArrayView<float> dWeights, int rows, int units,
        int samples)
    {
        int unit = entry / units, k = entry - unit * units;
        float sum = 0f;
        if (k < unit)
            for (int row = 0; row < rows; row++)
                sum += dLogits[row * units + unit] * h[row / samples * units + k];
        dWeights[entry] = sum;
    }
}
