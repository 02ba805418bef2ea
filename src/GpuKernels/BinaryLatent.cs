using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// A layer of K binary stochastic units, the sigmoid belief network's (Neal 1992; trained with NVIL, Mnih and Gregor
/// 2014): q(h|x) = Π_j Bernoulli(h_j; σ(a_j)) from the encoder's logits a, a factorised prior p(h) = Π_j
/// Bernoulli(h_j; σ(c_j)) with learned logits c, and the score-function gradient of the encoder from a per-row
/// learning signal l = log p(x, h) − β·log q(h|x)/p(h) centred by NVIL's devices. Rows are example-major (row r
/// = b·k + s belongs to example b), as elsewhere. Double references: <see cref="Reference.BinaryLatentReference"/>.
/// </summary>
public static class BinaryLatent
{
    /// <summary>h ~ q(h|x) for k rows per example, and each row's log q(h|x). Element (r, j) draws counter
    /// <see cref="DrawKey.Counter"/>(r·K + j, k·K), as the Gaussian samplers do, so a data-parallel slice draws what
    /// the whole batch draws for its examples. One thread per row, units in order.</summary>
    public static void BinaryLatentSample(this KernelSet kernels, ArrayView<float> logits, ArrayView<float> h, ArrayView<float> logQ, int units,
        int samples, DrawKey key) =>
        kernels.Launch(SampleKernel, (int)logQ.Length, logits, h, logQ, units, samples, key);

    /// <summary>kl[r] = logQ[r] − log p(h_r) for drawn h: the sampled KL term against a factorised prior whose logits
    /// are one row shared by every row (<paramref name="priorPerRow"/> false: p(h)) or a row each (p(h1|h2)).
    /// One thread per row, units in order.</summary>
    public static void BinaryKl(this KernelSet kernels, ArrayView<float> h, ArrayView<float> logQ, ArrayView<float> priorLogits, ArrayView<float> kl,
        int units, bool priorPerRow) =>
        kernels.Launch(KlKernel, (int)kl.Length, h, logQ, priorLogits, kl, units, priorPerRow ? 1 : 0);

    /// <summary>
    /// NVIL's centred signal per row and the baseline network's gradient per example. With l_r = −(rec_r + β·KL_r),
    /// residual_r = l_r − b(x) − m (each part as <paramref name="centring"/> asks; m the running mean from before
    /// this batch), centred_r = residual_r / max(1, √v). The baseline is trained on mean_r residual_r² (scaled by
    /// <paramref name="baselineScale"/>, 1/rows for a batch mean): dBaseline[b] = −2·scale·Σ_s residual. Also
    /// writes l_r − b(x) per row, what the running moments are then updated from.
    /// </summary>
    public static void NvilSignal(this KernelSet kernels, ArrayView<float> reconstructionPerRow, ArrayView<float> klPerRow, ArrayView<float> baseline,
        ArrayView<float> moments, ArrayView<float> centred, ArrayView<float> signalMinusBaseline, ArrayView<float> dBaseline, int samples, float beta,
        SignalCentring centring, float baselineScale) =>
        kernels.Launch(NvilSignalKernel, (int)baseline.Length, reconstructionPerRow, klPerRow, baseline, moments, centred, signalMinusBaseline, dBaseline,
            samples, beta, centring, baselineScale);

    /// <summary>dLogits[b, j] = −scale·Σ_s centred[r]·(h[r, j] − σ(a[b, j])) over the k rows r of example b: the
    /// score-function gradient of the encoder's logits for a loss to minimise (scale 1/rows for a batch mean).</summary>
    public static void BinaryPosteriorGradient(this KernelSet kernels, ArrayView<float> logits, ArrayView<float> h, ArrayView<float> centred,
        ArrayView<float> dLogits, int units, int samples, float scale) =>
        kernels.Launch(PosteriorGradientKernel, (int)logits.Length, logits, h, centred, dLogits, units, samples, scale);

    /// <summary>dPrior[j] = scale·Σ_r (σ(c_j) − h[r, j]): the exact gradient of scale·Σ_r −log p(h_r) for the
    /// given draws (scale β/rows). One thread per unit, rows in order.</summary>
    public static void BinaryPriorGradient(this KernelSet kernels, ArrayView<float> priorLogits, ArrayView<float> h, ArrayView<float> dPrior, int rows,
        float scale) =>
        kernels.Launch(PriorGradientKernel, (int)priorLogits.Length, priorLogits, h, dPrior, rows, (int)priorLogits.Length, scale);

    /// <summary>dPrior[r, j] = scale·(σ(c_rj) − h_rj): the exact gradient of scale·Σ_r −log p(h_r|·) for a prior
    /// with a row of logits per row (p(h1|h2) from the prior network).</summary>
    public static void BinaryPriorRowGradient(this KernelSet kernels, ArrayView<float> priorLogits, ArrayView<float> h, ArrayView<float> dPrior,
        float scale) =>
        kernels.Launch(PriorRowGradientKernel, (int)priorLogits.Length, priorLogits, h, dPrior, scale);

    /// <summary>logDensity[r] = Σ_j log Bernoulli(h_rj; σ(a_rj)) for logits of a row each (an autoregressive q's).
    /// One thread per row, units in order.</summary>
    public static void BinaryRowLogDensity(this KernelSet kernels, ArrayView<float> h, ArrayView<float> logits, ArrayView<float> logDensity, int units) =>
        kernels.Launch(RowLogDensityKernel, (int)logDensity.Length, h, logits, logDensity, units);

    /// <summary>perExample[b, j] = Σ_s perRow[b·k + s, j]: the gradient of what k rows of an example share.</summary>
    public static void SumSamples(this KernelSet kernels, ArrayView<float> perRow, ArrayView<float> perExample, int units, int samples) =>
        kernels.Launch(SumSamplesKernel, (int)perExample.Length, perRow, perExample, units, samples);

    /// <summary>σ(a) per element, stably: the probabilities q(h_j = 1|x) that encode reports.</summary>
    public static float Probability(float logit) => 1f / (1f + MathF.Exp(-logit));

    [Kernel]
    public static void SampleKernel(Index1D row, ArrayView<float> logits, ArrayView<float> h, ArrayView<float> logQ, int units, int samples, DrawKey key)
    {
        int example = row / samples;
        float sum = 0f;
        for (int j = 0; j < units; j++)
        {
            long element = (long)(int)row * units + j;
            float a = logits[example * units + j];
            float u = Philox.Uniform(key.Seed, key.Stream, key.Step, key.Counter(element, (long)samples * units));
            // u < σ(a), written as u·(1 + e^−a) < 1 so that no division rounds the threshold (as SampleBernoulli).
            float bit = u * (1f + MathF.Exp(-a)) < 1f ? 1f : 0f;
            h[element] = bit;
            sum += Distributions.BernoulliLogDensity(bit, a);
        }
        logQ[row] = sum;
    }

    [Kernel]
    public static void KlKernel(Index1D row, ArrayView<float> h, ArrayView<float> logQ, ArrayView<float> priorLogits, ArrayView<float> kl, int units,
        int priorPerRow)
    {
        float logP = 0f;
        int priorRow = priorPerRow != 0 ? row * units : 0;
        for (int j = 0; j < units; j++)
            logP += Distributions.BernoulliLogDensity(h[row * units + j], priorLogits[priorRow + j]);
        kl[row] = logQ[row] - logP;
    }

    [Kernel]
    public static void RowLogDensityKernel(Index1D row, ArrayView<float> h, ArrayView<float> logits, ArrayView<float> logDensity, int units)
    {
        float sum = 0f;
        for (int j = 0; j < units; j++)
            sum += Distributions.BernoulliLogDensity(h[row * units + j], logits[row * units + j]);
        logDensity[row] = sum;
    }

    [Kernel]
    public static void SumSamplesKernel(Index1D element, ArrayView<float> perRow, ArrayView<float> perExample, int units, int samples)
    {
        int example = element / units, unit = element - example * units;
        float sum = 0f;
        for (int s = 0; s < samples; s++)
            sum += perRow[(example * samples + s) * units + unit];
        perExample[element] = sum;
    }

    [Kernel]
    public static void PriorRowGradientKernel(Index1D element, ArrayView<float> priorLogits, ArrayView<float> h, ArrayView<float> dPrior, float scale) =>
        dPrior[element] = scale * (Probability(priorLogits[element]) - h[element]);

    [Kernel]
    public static void NvilSignalKernel(Index1D example, ArrayView<float> reconstructionPerRow, ArrayView<float> klPerRow, ArrayView<float> baseline,
        ArrayView<float> moments, ArrayView<float> centred, ArrayView<float> signalMinusBaseline, ArrayView<float> dBaseline, int samples, float beta,
        SignalCentring centring, float baselineScale)
    {
        float sumResidual = 0f;
        for (int s = 0; s < samples; s++)
        {
            int row = example * samples + s;
            float left = -(reconstructionPerRow[row] + beta * klPerRow[row]);
            if (centring.SubtractBaseline != 0)
                left -= baseline[example];
            signalMinusBaseline[row] = left;
            float residual = centring.SubtractRunningMean != 0 ? left - moments[0] : left;
            sumResidual += residual;
            centred[row] = centring.Normalise != 0 ? residual / MathF.Max(1f, MathF.Sqrt(moments[1])) : residual;
        }
        dBaseline[example] = -2f * baselineScale * sumResidual;
    }

    [Kernel]
    public static void PosteriorGradientKernel(Index1D element, ArrayView<float> logits, ArrayView<float> h, ArrayView<float> centred,
        ArrayView<float> dLogits, int units, int samples, float scale)
    {
        int example = element / units, unit = element - example * units;
        float probability = Probability(logits[element]), sum = 0f;
        for (int s = 0; s < samples; s++)
        {
            int row = example * samples + s;
            sum += centred[row] * (h[row * units + unit] - probability);
        }
        dLogits[element] = -scale * sum;
    }

    [Kernel]
    public static void PriorGradientKernel(Index1D unit, ArrayView<float> priorLogits, ArrayView<float> h, ArrayView<float> dPrior, int rows, int units,
        float scale)
    {
        float probability = Probability(priorLogits[unit]), sum = 0f;
        for (int row = 0; row < rows; row++)
            sum += probability - h[row * units + unit];
        dPrior[unit] = scale * sum;
    }
}
