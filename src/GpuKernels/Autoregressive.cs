using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>How DARN's encoder is trained: NVIL's score-function estimator (unbiased), or the paper's minimum-description-
/// length gradient with its Taylor-expansion baseline (<see cref="Autoregressive.AutoregressiveTaylorGradient"/>, biased).</summary>
public enum DarnEstimatorKind
{
    Nvil,
    Taylor,
}

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

    /// <summary>
    /// DARN's minimum-description-length gradient with the paper's Taylor-expansion baseline (Gregor et al. 2014), for
    /// q's logits a per row: the loss f(h) = rec(h) + β·(log q(h|x) − log p(h)), expanded to first order in h_i about
    /// ½, makes the score-function term of unit i (h_i − σ(a_i))·(f(h) − f(h with h_i = ½)) ≈ ½·(1 − q(h_i))·∂f/∂h_i,
    /// whose mean over h_i is σ'(a_i)·∂f/∂h_i: a biased, low-variance estimate. ∂f/∂h_i is
    /// <paramref name="dCodes"/> (the decoder's backward pass of the scaled reconstruction term) plus
    /// <paramref name="klScale"/>·(∂ log q/∂h_i − ∂ log p/∂h_i), each ∂ log/∂h_i = a_i + Σ_{j&gt;i} M_ji·(h_j − σ(a_j))
    /// for the autoregressive logits a = context + M·h (M = U for q, W for p). One thread per element.
    /// </summary>
    public static void AutoregressiveTaylorGradient(this KernelSet kernels, ArrayView<float> dCodes, ArrayView<float> h, ArrayView<float> qLogits,
        ArrayView<float> priorLogits, ArrayView<float> qWeights, ArrayView<float> priorWeights, ArrayView<float> dQLogits, int units, float klScale) =>
        kernels.Launch(TaylorGradientKernel, (int)h.Length, dCodes, h, qLogits, priorLogits, qWeights, priorWeights, dQLogits, units, klScale);

    /// <summary>∂/∂h_i of Σ_j log Bernoulli(h_j; σ(a_j)) with a = context + M·h, M strictly lower triangular: a_i
    /// (the unit's own term) plus Σ_{j&gt;i} M_ji·(h_j − σ(a_j)) (the later units' logits it moves).</summary>
    private static float LogDensityCodeGradient(ArrayView<float> logits, ArrayView<float> weights, ArrayView<float> h, int start, int unit, int units)
    {
        float sum = logits[start + unit];
        for (int j = unit + 1; j < units; j++)
            sum += weights[j * units + unit] * (h[start + j] - StableMath.Sigmoid(logits[start + j]));
        return sum;
    }

    [Kernel]
    public static void TaylorGradientKernel(Index1D element, ArrayView<float> dCodes, ArrayView<float> h, ArrayView<float> qLogits, ArrayView<float> priorLogits,
        ArrayView<float> qWeights, ArrayView<float> priorWeights, ArrayView<float> dQLogits, int units, float klScale)
    {
        int row = element / units, unit = element - row * units, start = row * units;
        float dLoss = dCodes[element] + klScale * (LogDensityCodeGradient(qLogits, qWeights, h, start, unit, units)
            - LogDensityCodeGradient(priorLogits, priorWeights, h, start, unit, units));
        float on = StableMath.Sigmoid(qLogits[element]);
        // 1 − q(h_i): the probability of the value not drawn.
        float other = h[element] > 0.5f ? 1f - on : on;
        dQLogits[element] = 0.5f * other * dLoss;
    }

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
