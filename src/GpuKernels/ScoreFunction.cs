using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>Which variance-reduction devices a score-function estimator applies to its learning signal (NVIL,
/// Mnih and Gregor 2014): subtract an input-dependent baseline b(x) (given per example), subtract the running
/// mean of what is left, and divide by the running standard deviation when it exceeds 1.</summary>
public readonly struct SignalCentring
{
    public readonly int SubtractBaseline, SubtractRunningMean, Normalise;

    public SignalCentring(bool subtractBaseline, bool subtractRunningMean, bool normalise)
    {
        SubtractBaseline = subtractBaseline ? 1 : 0;
        SubtractRunningMean = subtractRunningMean ? 1 : 0;
        Normalise = normalise ? 1 : 0;
    }
}

/// <summary>
/// Score-function (REINFORCE, black-box VI) gradients for discrete latents (issue 24). For an objective
/// E_q[f(h)] with f = log p(x, h) − log q(h|x), ∇_φ E_q[f] = E_q[(f − c)·∇_φ log q(h|x)] for any c that does not
/// depend on the draw h (E_q[∇ log q] = 0, which also removes the ∇f term). The per-example learning signal f is
/// centred by the devices of <see cref="SignalCentring"/>, using the running moments from before this batch
/// (so c does not depend on its draws), then multiplies the score of each factorised Bernoulli unit,
/// ∂ log q/∂a = h − σ(a) for its logit a. Double references: <see cref="Reference.ScoreFunctionReference"/>.
/// </summary>
public static class ScoreFunction
{
    /// <summary>centred[b] = (signal[b] − baseline[b] − mean) / max(1, √variance), each part as
    /// <paramref name="centring"/> asks; moments = [running mean, running variance] of signal − baseline.</summary>
    public static void CenterLearningSignal(this KernelSet kernels, ArrayView<float> signal, ArrayView<float> baseline, ArrayView<float> moments,
        ArrayView<float> centred, SignalCentring centring) =>
        kernels.Launch(CenterLearningSignalKernel, (int)signal.Length, signal, baseline, moments, centred, centring);

    /// <summary>moments ← decay·moments + (1 − decay)·[mean, variance] of signal − baseline over the batch (one
    /// thread, the examples in order): NVIL's running estimates, updated after the batch has used them.</summary>
    public static void UpdateSignalMoments(this KernelSet kernels, ArrayView<float> signal, ArrayView<float> baseline, ArrayView<float> moments,
        float decay, int subtractBaseline) =>
        kernels.Launch(UpdateSignalMomentsKernel, 1, signal, baseline, moments, (int)signal.Length, decay, subtractBaseline);

    /// <summary>dLogits[b, j] = −scale·centred[b]·(h[b, j] − σ(a[b, j])): the gradient, for a loss to minimise
    /// (−ELBO; scale 1/B for a batch mean), that the score-function estimator sends to the logits of q.</summary>
    public static void BernoulliScoreGradient(this KernelSet kernels, ArrayView<float> h, ArrayView<float> logits, ArrayView<float> centred,
        ArrayView<float> dLogits, int units, float scale) =>
        kernels.Launch(BernoulliScoreGradientKernel, (int)h.Length, h, logits, centred, dLogits, units, scale);

    /// <summary>
    /// The control variates of black-box VI (Ranganath, Gerrish, Blei 2014) for factorised Bernoulli units: with
    /// g = h_j − σ(a_j) (the score) and u = f·g over <paramref name="rows"/> draws, a_j = Cov(u, g)/Var(g) is the
    /// multiple of the score that, subtracted, leaves the least variance. f is one signal per row, or one per row
    /// and unit when <paramref name="perUnitSignals"/> (Rao-Blackwellized: each unit's Markov-blanket terms). One
    /// thread per unit, the rows in order. Estimate a from other draws than those it centres, or the estimate of
    /// the gradient picks up a bias of order 1/rows.
    /// </summary>
    public static void ControlVariateCoefficients(this KernelSet kernels, ArrayView<float> h, ArrayView<float> logits, ArrayView<float> signals,
        ArrayView<float> coefficients, int rows, int units, bool perUnitSignals) =>
        kernels.Launch(ControlVariateCoefficientsKernel, units, h, logits, signals, coefficients, rows, units, perUnitSignals ? 1 : 0);

    /// <summary>centred[r, j] = signal (of row r, or of row r and unit j) − coefficients[j]: per-unit learning
    /// signals for <see cref="BernoulliScoreGradient"/> with one signal per element (units = 1).</summary>
    public static void SubtractPerUnit(this KernelSet kernels, ArrayView<float> signals, ArrayView<float> coefficients, ArrayView<float> centred,
        int units, bool perUnitSignals) =>
        kernels.Launch(SubtractPerUnitKernel, (int)centred.Length, signals, coefficients, centred, units, perUnitSignals ? 1 : 0);

    [Kernel]
    public static void ControlVariateCoefficientsKernel(Index1D unit, ArrayView<float> h, ArrayView<float> logits, ArrayView<float> signals,
        ArrayView<float> coefficients, int rows, int units, int perUnitSignals)
    {
        // Two passes: the means, then the centred cross and square sums (one pass loses digits when f is large).
        float sumU = 0f, sumG = 0f;
        for (int row = 0; row < rows; row++)
        {
            int element = row * units + unit;
            float score = h[element] - 1f / (1f + MathF.Exp(-logits[element]));
            sumU += signals[perUnitSignals != 0 ? element : row] * score;
            sumG += score;
        }
        float meanU = sumU / rows, meanG = sumG / rows, covariance = 0f, variance = 0f;
        for (int row = 0; row < rows; row++)
        {
            int element = row * units + unit;
            float score = h[element] - 1f / (1f + MathF.Exp(-logits[element]));
            float deviation = score - meanG;
            covariance += (signals[perUnitSignals != 0 ? element : row] * score - meanU) * deviation;
            variance += deviation * deviation;
        }
        coefficients[unit] = variance > 0f ? covariance / variance : 0f;
    }

    [Kernel]
    public static void SubtractPerUnitKernel(Index1D element, ArrayView<float> signals, ArrayView<float> coefficients, ArrayView<float> centred,
        int units, int perUnitSignals) =>
        centred[element] = signals[perUnitSignals != 0 ? element : element / units] - coefficients[element % units];

    [Kernel]
    public static void CenterLearningSignalKernel(Index1D example, ArrayView<float> signal, ArrayView<float> baseline, ArrayView<float> moments,
        ArrayView<float> centred, SignalCentring centring)
    {
        float value = signal[example];
        if (centring.SubtractBaseline != 0)
            value -= baseline[example];
        if (centring.SubtractRunningMean != 0)
            value -= moments[0];
        if (centring.Normalise != 0)
            value /= MathF.Max(1f, MathF.Sqrt(moments[1]));
        centred[example] = value;
    }

    [Kernel]
    public static void UpdateSignalMomentsKernel(Index1D thread, ArrayView<float> signal, ArrayView<float> baseline, ArrayView<float> moments,
        int count, float decay, int subtractBaseline)
    {
        float sum = 0f;
        for (int b = 0; b < count; b++)
            sum += signal[b] - (subtractBaseline != 0 ? baseline[b] : 0f);
        float mean = sum / count, squares = 0f;
        for (int b = 0; b < count; b++)
        {
            float deviation = signal[b] - (subtractBaseline != 0 ? baseline[b] : 0f) - mean;
            squares += deviation * deviation;
        }
        moments[0] = decay * moments[0] + (1f - decay) * mean;
        moments[1] = decay * moments[1] + (1f - decay) * (squares / count);
    }

    [Kernel]
    public static void BernoulliScoreGradientKernel(Index1D element, ArrayView<float> h, ArrayView<float> logits, ArrayView<float> centred,
        ArrayView<float> dLogits, int units, float scale)
    {
        float probability = 1f / (1f + MathF.Exp(-logits[element]));
        dLogits[element] = -scale * centred[element / units] * (h[element] - probability);
    }
}
