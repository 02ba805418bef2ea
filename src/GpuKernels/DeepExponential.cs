using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.GpuKernels;

/// <summary>Where one gamma layer's units sit: <see cref="Units"/> of them from column <see cref="Offset"/> among all
/// <see cref="TotalUnits"/> units of the model (q's statistics row is [shape parameters of every unit | mean
/// parameters of every unit]), with <see cref="Samples"/> rows per example.</summary>
public readonly struct GammaLayerShape
{
    public readonly int Units, Offset, TotalUnits, Samples;

    public GammaLayerShape(int units, int offset, int totalUnits, int samples)
    {
        Units = units;
        Offset = offset;
        TotalUnits = totalUnits;
        Samples = samples;
    }
}

/// <summary>Which variance-reduction devices the deep exponential family's score-function gradient applies
/// (Ranganath et al. 2014, 2015): Rao-Blackwellization (each unit's signal keeps only its Markov blanket's terms) and
/// a leave-one-out baseline (each sample's signal less the mean of the other samples' of the same example, which is
/// independent of its own draw, so the estimate stays unbiased; needs k ≥ 2).</summary>
public readonly struct GammaEstimator
{
    public readonly int RaoBlackwell, LeaveOneOut;

    public GammaEstimator(bool raoBlackwell, bool leaveOneOut)
    {
        RaoBlackwell = raoBlackwell ? 1 : 0;
        LeaveOneOut = leaveOneOut ? 1 : 0;
    }

    /// <summary>Both devices, what training uses.</summary>
    public static GammaEstimator Full => new(true, true);
}

/// <summary>One pixel's observation term at its rate: what the decoder's output holds for a picture, −log p(x | r)
/// and its derivative in r.</summary>
public readonly struct RateTerm
{
    public readonly float Output, NegativeLogLikelihood, Gradient;

    public RateTerm(float output, float negativeLogLikelihood, float gradient)
    {
        Output = output;
        NegativeLogLikelihood = negativeLogLikelihood;
        Gradient = gradient;
    }
}

/// <summary>How pixels are read from their rates r > 0, a generic struct parameter (as <see cref="ILikelihood"/>).</summary>
public interface IRateObservation
{
    RateTerm Term(float target, float rate);
}

/// <summary>Binary pixels through the Bernoulli–Poisson link, p(x = 1) = 1 − e^−r: the output is logit = log(e^r − 1)
/// (softplus(logit) = r), −log p = r − x·logit, and its derivative 1 − x(1 + e^−logit) is written 1 − x − x·e^−logit
/// so that x = 1 does not cancel 1 against 1 + e^−logit.</summary>
public readonly struct BernoulliRates : IRateObservation
{
    public RateTerm Term(float target, float rate)
    {
        float logit = DeepExponential.Logit(rate);
        return new RateTerm(logit, rate - target * logit, 1f - target - target * MathF.Exp(-logit));
    }
}

/// <summary>Counts c = round(255·g) of grey levels g, c ~ Poisson(r): the output is the grey level expected, r/255;
/// −log p = r − c·log r + log Γ(c + 1); its derivative 1 − c/r.</summary>
public readonly struct PoissonCounts : IRateObservation
{
    public RateTerm Term(float target, float rate)
    {
        float count = MathF.Round(DeepExponential.CountScale * target);
        return new RateTerm(rate / DeepExponential.CountScale, rate - count * MathF.Log(rate) + Distributions.LogGamma(count + 1f), 1f - count / rate);
    }
}

/// <summary>
/// The sparse gamma deep exponential family (Ranganath, Tang, Charlin and Blei 2015) on the device. Layers of
/// gamma units z_l with p(z_{l,k} | z_{l+1}) = Gamma(α, α/μ_{l,k}), μ_l = W_l·z_{l+1} + ε (so E[z_{l,k}] = μ_{l,k};
/// the top layer's μ is 1), W_l ≥ 0, and binary pixels with p(x_i = 1) = 1 − exp(−r_i), r = W_0·z_1 + ε (the
/// Bernoulli–Poisson link: x_i = 1 when a Poisson(r_i) count is positive). q is mean-field gamma, each unit's
/// shape a = softplus(ρ_a) + <see cref="ShapeFloor"/> and mean m = softplus(ρ_m) + <see cref="MeanFloor"/> from
/// the encoder's statistics; its gradient is the score-function (black-box VI) estimate. Draws are kept in log
/// space too (see <see cref="Distributions.SampleLogGamma"/>). Double references:
/// <see cref="Reference.DeepExponentialReference"/>.
/// </summary>
public static class DeepExponential
{
    /// <summary>q's shape never goes below this (the DEF authors' code floors it at 5e-3): smaller shapes put most
    /// draws below any float and their log density on a knife edge.</summary>
    public const float ShapeFloor = 5e-3f;

    /// <summary>q's mean never goes below this, so its rate a/m stays finite.</summary>
    public const float MeanFloor = 1e-6f;

    /// <summary>The smallest z a product reads (float's smallest normal): a draw below it is used as it in W·z,
    /// where it adds nothing a float can hold, and keeps its exact log everywhere else.</summary>
    public const float SmallestDraw = 1.17549435E-38f;

    /// <summary>ε of every mean and rate: μ = W·z + ε keeps log μ and z/μ finite when every parent is near 0.</summary>
    public const float RateFloor = 1e-6f;

    /// <summary>
    /// z ~ q for one layer's units, k rows per example: element (r, j) draws counter
    /// <see cref="DrawKey.Counter"/>(r·T + offset + j, k·T). Writes z (at least <see cref="SmallestDraw"/>), log z,
    /// log q(z) and the score [∂ log q/∂ρ_a | ∂ log q/∂ρ_m] per row ([rows, 2K]). One thread per element.
    /// </summary>
    public static void GammaPosteriorSample(this KernelSet kernels, ArrayView<float> statistics, ArrayView<float> z, ArrayView<float> logZ,
        ArrayView<float> logQ, ArrayView<float> score, GammaLayerShape shape, DrawKey key) =>
        kernels.Launch(PosteriorSampleKernel, (int)z.Length, statistics, z, logZ, logQ, score, shape, key);

    /// <summary>
    /// One layer's prior terms per row: logPrior[r, j] = log Gamma(z; α, α/μ) with μ from <paramref name="means"/>
    /// [rows, K] (or 1 for the top layer: pass <see cref="KernelSet.None"/>), dMeans[r, j] = ∂ log p/∂μ = α(z − μ)/μ²
    /// (not for the top), rowLogPrior[r] = Σ_j logPrior, and kl[r] gains Σ_j (log q − log p) (set when
    /// <paramref name="first"/>). One thread per row, units in order.
    /// </summary>
    public static void GammaLayerTerms(this KernelSet kernels, ArrayView<float> z, ArrayView<float> logZ, ArrayView<float> logQ, ArrayView<float> means,
        ArrayView<float> logPrior, ArrayView<float> dMeans, ArrayView<float> rowLogPrior, ArrayView<float> kl, int units, float alpha, bool first) =>
        kernels.Launch(LayerTermsKernel, (int)rowLogPrior.Length, z, logZ, logQ, means, logPrior, dMeans, rowLogPrior, kl, units, alpha, first ? 1 : 0,
            means.Length > 0 ? 1 : 0);

    /// <summary>
    /// The Bernoulli–Poisson observation term: for rates r [rows, D] and binary targets x [rows / k, D],
    /// logits[r, i] = log(e^r − 1) (what a Bernoulli kernel or a picture reads), rec[r] = −Σ_i log p(x_i | r_i) =
    /// Σ_i (r_i − x_i·logit_i), and dRates = scale·∂rec/∂r = scale·(1 − x − x·e^−logit). One thread per row.
    /// </summary>
    public static void BernoulliRateLoss(this KernelSet kernels, ArrayView<float> target, ArrayView<float> rates, ArrayView<float> logits,
        ArrayView<float> reconstructionPerRow, ArrayView<float> dRates, int features, int samples, float scale) =>
        kernels.Launch(RateLossKernel<BernoulliRates>, (int)reconstructionPerRow.Length, target, rates, logits, reconstructionPerRow, dRates, features, samples, scale);

    /// <summary>The grey level that is one count: a pixel of grey level g (its byte / 255) is the count 255·g.</summary>
    public const float CountScale = 255f;

    /// <summary>
    /// The Poisson observation term: for rates r [rows, D] and grey levels g [rows / k, D], each pixel the count
    /// c = round(255·g), means[r, i] = r/255 (the grey level it expects), rec[r] = −Σ_i log Poisson(c_i; r_i) =
    /// Σ_i (r_i − c_i·log r_i + log Γ(c_i + 1)), and dRates = scale·(1 − c/r). One thread per row.
    /// </summary>
    public static void PoissonRateLoss(this KernelSet kernels, ArrayView<float> target, ArrayView<float> rates, ArrayView<float> means,
        ArrayView<float> reconstructionPerRow, ArrayView<float> dRates, int features, int samples, float scale) =>
        kernels.Launch(RateLossKernel<PoissonCounts>, (int)reconstructionPerRow.Length, target, rates, means, reconstructionPerRow, dRates, features, samples, scale);

    /// <summary>means = r/255 per element: the grey level a Poisson pixel of rate r expects.</summary>
    public static void RateMeans(this KernelSet kernels, ArrayView<float> rates, ArrayView<float> means) =>
        kernels.Launch(RateMeansKernel, (int)rates.Length, rates, means);

    /// <summary>logits = log(e^r − 1) per element, the Bernoulli logit of p = 1 − e^−r.</summary>
    public static void RateLogits(this KernelSet kernels, ArrayView<float> rates, ArrayView<float> logits) =>
        kernels.Launch(RateLogitsKernel, (int)rates.Length, rates, logits);

    /// <summary>
    /// The score-function gradient of one layer's q statistics for a loss to minimise (−ELBO; scale 1/rows): for
    /// each example b and unit j, dρ = −scale·Σ_s score_s·(f_s − c_s). With Rao-Blackwellization f_s is the unit's
    /// Markov blanket, β·(log p(z_j | parents) − log q(z_j)) + childWeight·child[r] (the bottom layer: child = rec
    /// of each row, weight −1; above it: the row's log p of the layer below, weight β); without it,
    /// f_s = −rec[r] − β·kl[r], the whole row. c_s is the leave-one-out mean of the other samples' f (or 0). Writes
    /// the layer's columns of dStatistics [batch, 2T]. One thread per (example, unit).
    /// </summary>
    public static void GammaScoreGradient(this KernelSet kernels, ArrayView<float> score, ArrayView<float> logPrior, ArrayView<float> logQ,
        ArrayView<float> child, ArrayView<float> reconstructionPerRow, ArrayView<float> kl, ArrayView<float> dStatistics, GammaLayerShape shape,
        GammaEstimator estimator, float beta, float childWeight, float scale) =>
        kernels.Launch(ScoreGradientKernel, (int)(logQ.Length / shape.Samples), score, logPrior, logQ, child, reconstructionPerRow, kl, dStatistics,
            shape, estimator, beta, childWeight, scale);

    /// <summary>W = softplus(θ) per element: the weights every product reads, kept positive.</summary>
    public static void SoftplusWeights(this KernelSet kernels, ArrayView<float> theta, ArrayView<float> weights) =>
        kernels.Launch(SoftplusWeightsKernel, (int)theta.Length, theta, weights);

    /// <summary>dθ = scale·dW·σ(θ) per element, the chain rule through <see cref="SoftplusWeights"/>.</summary>
    public static void SoftplusWeightGradient(this KernelSet kernels, ArrayView<float> theta, ArrayView<float> dWeights, ArrayView<float> dTheta,
        float scale) =>
        kernels.Launch(SoftplusWeightGradientKernel, (int)theta.Length, theta, dWeights, dTheta, scale);

    /// <summary>q's shape and mean from their parameters.</summary>
    public static float Shape(float rho) => StableMath.PreciseSoftplus(rho) + ShapeFloor;
    public static float Mean(float rho) => StableMath.PreciseSoftplus(rho) + MeanFloor;

    /// <summary>log(e^r − 1) for r > 0, without the cancellation of e^r − 1 near 0 or its overflow far above.</summary>
    public static float Logit(float rate)
    {
        if (rate > 15f)
            return rate + StableMath.LogOnePlus(-MathF.Exp(-rate));
        if (rate < 1e-2f)
            // e^r − 1 = r(1 + r/2 + r²/6 + …).
            return MathF.Log(rate) + StableMath.LogOnePlus(rate * (0.5f + rate / 6f));
        return MathF.Log(MathF.Exp(rate) - 1f);
    }

    [Kernel]
    public static void PosteriorSampleKernel(Index1D element, ArrayView<float> statistics, ArrayView<float> z, ArrayView<float> logZ,
        ArrayView<float> logQ, ArrayView<float> score, GammaLayerShape shape, DrawKey key)
    {
        int units = shape.Units, total = shape.TotalUnits;
        int row = element / units, unit = element - row * units;
        int statisticsRow = row / shape.Samples * 2 * total + shape.Offset + unit;
        float rhoShape = statistics[statisticsRow], rhoMean = statistics[statisticsRow + total];
        float a = Shape(rhoShape), m = Mean(rhoMean);
        float logRate = MathF.Log(a / m);
        long counter = key.Counter((long)row * total + shape.Offset + unit, (long)shape.Samples * total);
        float logDraw = Distributions.SampleLogGamma(a, key, counter) - logRate;
        float draw = MathF.Exp(logDraw);
        z[element] = draw > SmallestDraw ? draw : SmallestDraw;
        logZ[element] = logDraw;
        logQ[element] = a * logRate - Distributions.LogGamma(a) + (a - 1f) * logDraw - a / m * draw;
        // ∂ log q/∂a = log(a/m) + 1 − ψ(a) + log z − z/m and ∂ log q/∂m = a(z − m)/m², through the softplus.
        int scoreRow = row * 2 * units + unit;
        score[scoreRow] = (logRate + 1f - Distributions.Digamma(a) + logDraw - draw / m) * StableMath.Sigmoid(rhoShape);
        score[scoreRow + units] = a * (draw - m) / (m * m) * StableMath.Sigmoid(rhoMean);
    }

    [Kernel]
    public static void LayerTermsKernel(Index1D row, ArrayView<float> z, ArrayView<float> logZ, ArrayView<float> logQ, ArrayView<float> means,
        ArrayView<float> logPrior, ArrayView<float> dMeans, ArrayView<float> rowLogPrior, ArrayView<float> kl, int units, float alpha, int first,
        int hasMeans)
    {
        float constant = alpha * MathF.Log(alpha) - Distributions.LogGamma(alpha);
        float priorSum = 0f, klSum = 0f;
        for (int j = 0; j < units; j++)
        {
            int index = row * units + j;
            float mean = hasMeans != 0 ? means[index] : 1f;
            float draw = z[index];
            float logP = constant - alpha * MathF.Log(mean) + (alpha - 1f) * logZ[index] - alpha * draw / mean;
            logPrior[index] = logP;
            if (hasMeans != 0)
                dMeans[index] = alpha * (draw - mean) / (mean * mean);
            priorSum += logP;
            klSum += logQ[index] - logP;
        }
        rowLogPrior[row] = priorSum;
        kl[row] = first != 0 ? klSum : kl[row] + klSum;
    }

    /// <summary>One thread per row: rec[r] = Σ_i the observation's −log p(x_i | r_i), its ∂/∂r (times scale, under
    /// <see cref="StableMath.NegligibleGradient"/> written as 0) and what the decoder's output holds for the pixel.</summary>
    [Kernel(typeof(BernoulliRates), typeof(PoissonCounts))]
    public static void RateLossKernel<TObservation>(Index1D row, ArrayView<float> target, ArrayView<float> rates, ArrayView<float> output,
        ArrayView<float> reconstructionPerRow, ArrayView<float> dRates, int features, int samples, float scale)
        where TObservation : struct, IRateObservation
    {
        int rowStart = row * features, targetStart = row / samples * features;
        float sum = 0f;
        for (int i = 0; i < features; i++)
        {
            var term = default(TObservation).Term(target[targetStart + i], rates[rowStart + i]);
            output[rowStart + i] = term.Output;
            sum += term.NegativeLogLikelihood;
            dRates[rowStart + i] = StableMath.FlushNegligible(scale * term.Gradient);
        }
        reconstructionPerRow[row] = sum;
    }

    [Kernel]
    public static void RateMeansKernel(Index1D element, ArrayView<float> rates, ArrayView<float> means) => means[element] = rates[element] / CountScale;

    [Kernel]
    public static void RateLogitsKernel(Index1D element, ArrayView<float> rates, ArrayView<float> logits) => logits[element] = Logit(rates[element]);

    [Kernel]
    public static void ScoreGradientKernel(Index1D index, ArrayView<float> score, ArrayView<float> logPrior, ArrayView<float> logQ,
        ArrayView<float> child, ArrayView<float> reconstructionPerRow, ArrayView<float> kl, ArrayView<float> dStatistics, GammaLayerShape shape,
        GammaEstimator estimator, float beta, float childWeight, float scale)
    {
        int units = shape.Units, samples = shape.Samples;
        int example = index / units, unit = index - example * units;
        float total = 0f;
        for (int s = 0; s < samples; s++)
            total += Signal(logPrior, logQ, child, reconstructionPerRow, kl, example * samples + s, unit, units, estimator, beta, childWeight);
        bool leaveOneOut = estimator.LeaveOneOut != 0 && samples > 1;
        // The centred signals sum to 0, so each score may be taken less the first sample's without changing the sum:
        // where every sample drew the same value (a confident binary unit), the gradient is then exactly 0, not
        // float's rounding of a sum that cancels, which Adam would scale up to a step of the learning rate's size.
        int firstRow = example * samples;
        float firstShapeScore = leaveOneOut ? score[firstRow * 2 * units + unit] : 0f;
        float firstMeanScore = leaveOneOut ? score[firstRow * 2 * units + units + unit] : 0f;
        float dShape = 0f, dMean = 0f;
        for (int s = 0; s < samples; s++)
        {
            int row = example * samples + s;
            float signal = Signal(logPrior, logQ, child, reconstructionPerRow, kl, row, unit, units, estimator, beta, childWeight);
            float centred = leaveOneOut ? signal - (total - signal) / (samples - 1) : signal;
            dShape += (score[row * 2 * units + unit] - firstShapeScore) * centred;
            dMean += (score[row * 2 * units + units + unit] - firstMeanScore) * centred;
        }
        int column = example * 2 * shape.TotalUnits + shape.Offset + unit;
        dStatistics[column] = -scale * dShape;
        dStatistics[column + shape.TotalUnits] = -scale * dMean;
    }

    /// <summary>The learning signal of unit <paramref name="unit"/> in row <paramref name="row"/> (see <see cref="GammaScoreGradient"/>).</summary>
    private static float Signal(ArrayView<float> logPrior, ArrayView<float> logQ, ArrayView<float> child, ArrayView<float> reconstructionPerRow,
        ArrayView<float> kl, int row, int unit, int units, GammaEstimator estimator, float beta, float childWeight)
    {
        if (estimator.RaoBlackwell == 0)
            return -reconstructionPerRow[row] - beta * kl[row];
        int index = row * units + unit;
        return beta * (logPrior[index] - logQ[index]) + childWeight * child[row];
    }

    [Kernel]
    public static void SoftplusWeightsKernel(Index1D element, ArrayView<float> theta, ArrayView<float> weights) =>
        weights[element] = StableMath.PreciseSoftplus(theta[element]);

    [Kernel]
    public static void SoftplusWeightGradientKernel(Index1D element, ArrayView<float> theta, ArrayView<float> dWeights, ArrayView<float> dTheta,
        float scale) =>
        dTheta[element] = StableMath.FlushNegligible(scale * dWeights[element] * StableMath.Sigmoid(theta[element]));
}
