namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// <see cref="DeepExponential"/> in double, written for clarity: the same draws (Marsaglia and Tsang from the
/// kernels' uniforms, in log space), log densities, Markov-blanket signals and products.
/// </summary>
public static class DeepExponentialReference
{
    public static double Shape(double rho) => StableMath.Softplus(rho) + DeepExponential.ShapeFloor;
    public static double Mean(double rho) => StableMath.Softplus(rho) + DeepExponential.MeanFloor;

    /// <summary>One layer's draws from q: z (floored as the kernel floors it), log z, log q and the score
    /// [∂/∂ρ_a | ∂/∂ρ_m] per row, from statistics [batch, 2T].</summary>
    public static (double[] Z, double[] LogZ, double[] LogQ, double[] Score) Sample(double[] statistics, GammaLayerShape shape, int rows, DrawKey key)
    {
        int units = shape.Units, total = shape.TotalUnits;
        var (z, logZ, logQ, score) = (new double[rows * units], new double[rows * units], new double[rows * units], new double[rows * 2 * units]);
        for (int row = 0; row < rows; row++)
            for (int j = 0; j < units; j++)
            {
                int column = row / shape.Samples * 2 * total + shape.Offset + j;
                double rhoShape = statistics[column], rhoMean = statistics[column + total];
                double a = Shape(rhoShape), m = Mean(rhoMean), rate = a / m;
                long counter = key.Counter((long)row * total + shape.Offset + j, (long)shape.Samples * total);
                double logDraw = DistributionReference.SampleLogGamma(a, key, counter) - Math.Log(rate);
                double draw = Math.Exp(logDraw);
                int index = row * units + j;
                z[index] = Math.Max(draw, DeepExponential.SmallestDraw);
                logZ[index] = logDraw;
                logQ[index] = a * Math.Log(rate) - DistributionReference.LogGamma(a) + (a - 1) * logDraw - rate * draw;
                score[row * 2 * units + j] = (Math.Log(rate) + 1 - DistributionReference.Digamma(a) + logDraw - draw / m) * StableMath.Sigmoid(rhoShape);
                score[row * 2 * units + units + j] = a * (draw - m) / (m * m) * StableMath.Sigmoid(rhoMean);
            }
        return (z, logZ, logQ, score);
    }

    /// <summary>One Poisson or Bernoulli layer's draws from q, as <see cref="Sample"/> returns them: z, log z (0),
    /// log q and the score [0 | ∂ log q/∂ρ_m] per row; q reads only each unit's mean column ρ_m.</summary>
    public static (double[] Z, double[] LogZ, double[] LogQ, double[] Score) SampleDiscrete(DefUnitKind kind, double[] statistics, GammaLayerShape shape,
        int rows, DrawKey key)
    {
        int units = shape.Units, total = shape.TotalUnits;
        var (z, logQ, score) = (new double[rows * units], new double[rows * units], new double[rows * 2 * units]);
        for (int row = 0; row < rows; row++)
            for (int j = 0; j < units; j++)
            {
                double rho = statistics[row / shape.Samples * 2 * total + total + shape.Offset + j];
                long counter = key.Counter((long)row * total + shape.Offset + j, (long)shape.Samples * total);
                int index = row * units + j;
                if (kind == DefUnitKind.Poisson)
                {
                    double rate = Mean(rho);
                    z[index] = DistributionReference.SamplePoisson(rate, key, counter);
                    logQ[index] = DistributionReference.PoissonLogDensity(z[index], rate);
                    score[row * 2 * units + units + j] = DistributionReference.PoissonScore(z[index], rate) * StableMath.Sigmoid(rho);
                }
                else
                {
                    Distributions.AttemptUniforms(key, counter, 0, out float u, out _, out _, out _);
                    z[index] = u < StableMath.Sigmoid(rho) ? 1 : 0;
                    logQ[index] = DistributionReference.BernoulliLogDensity(z[index], rho);
                    score[row * 2 * units + units + j] = DistributionReference.BernoulliScore(z[index], rho);
                }
            }
        return (z, new double[rows * units], logQ, score);
    }

    /// <summary>log p(z | parent) of a Poisson (parent μ) or Bernoulli (parent η, the logit) unit, and its derivative
    /// in the parent; the top layer's parent is 1 (Poisson) or 0 (Bernoulli).</summary>
    public static (double LogPrior, double DParent) DiscreteLogPrior(DefUnitKind kind, double z, double parent) => kind == DefUnitKind.Poisson
        ? (DistributionReference.PoissonLogDensity(z, parent), DistributionReference.PoissonScore(z, parent))
        : (DistributionReference.BernoulliLogDensity(z, parent), DistributionReference.BernoulliScore(z, parent));

    /// <summary>One Poisson or Bernoulli layer's terms, as <see cref="LayerTerms"/>: parents null for the top.</summary>
    public static (double[] LogPrior, double[] DParents, double[] RowLogPrior, double[] Kl) DiscreteLayerTerms(DefUnitKind kind, double[] z, double[] logQ,
        double[]? parents, int units)
    {
        int rows = z.Length / units;
        var (logPrior, dParents, rowLogPrior, kl) = (new double[z.Length], parents is null ? [] : new double[z.Length], new double[rows], new double[rows]);
        double top = kind == DefUnitKind.Poisson ? 1 : 0;
        for (int i = 0; i < z.Length; i++)
        {
            var (logP, dParent) = DiscreteLogPrior(kind, z[i], parents?[i] ?? top);
            logPrior[i] = logP;
            if (parents is not null)
                dParents[i] = dParent;
            rowLogPrior[i / units] += logP;
            kl[i / units] += logQ[i] - logP;
        }
        return (logPrior, dParents, rowLogPrior, kl);
    }

    /// <summary>log Gamma(z; α, α/μ) from log z, and its derivative in μ.</summary>
    public static double LogPrior(double z, double logZ, double mean, double alpha) =>
        alpha * Math.Log(alpha) - DistributionReference.LogGamma(alpha) - alpha * Math.Log(mean) + (alpha - 1) * logZ - alpha * z / mean;

    public static double LogPriorMeanDerivative(double z, double mean, double alpha) => alpha * (z - mean) / (mean * mean);

    /// <summary>One layer's log p per element, ∂ log p/∂μ (empty for the top, whose μ is 1), log p per row and
    /// Σ (log q − log p) per row.</summary>
    public static (double[] LogPrior, double[] DMeans, double[] RowLogPrior, double[] Kl) LayerTerms(double[] z, double[] logZ, double[] logQ,
        double[]? means, int units, double alpha)
    {
        int rows = z.Length / units;
        var (logPrior, dMeans, rowLogPrior, kl) = (new double[z.Length], means is null ? [] : new double[z.Length], new double[rows], new double[rows]);
        for (int i = 0; i < z.Length; i++)
        {
            double mean = means?[i] ?? 1;
            logPrior[i] = LogPrior(z[i], logZ[i], mean, alpha);
            if (means is not null)
                dMeans[i] = LogPriorMeanDerivative(z[i], mean, alpha);
            rowLogPrior[i / units] += logPrior[i];
            kl[i / units] += logQ[i] - logPrior[i];
        }
        return (logPrior, dMeans, rowLogPrior, kl);
    }

    /// <summary>log(e^r − 1).</summary>
    public static double Logit(double rate) => rate > 30 ? rate + Math.Log(-double.ExpM1(-rate)) : Math.Log(double.ExpM1(rate));

    /// <summary>The Bernoulli–Poisson term: logits, −log p(x | r) per row, and scale·∂/∂r.</summary>
    public static (double[] Logits, double[] Reconstruction, double[] DRates) BernoulliRateLoss(double[] target, double[] rates, int features,
        int samples, double scale)
    {
        int rows = rates.Length / features;
        var (logits, reconstruction, dRates) = (new double[rates.Length], new double[rows], new double[rates.Length]);
        for (int row = 0; row < rows; row++)
            for (int i = 0; i < features; i++)
            {
                int index = row * features + i;
                double rate = rates[index], x = target[row / samples * features + i];
                logits[index] = Logit(rate);
                // −x·log(1 − e^−r) − (1 − x)·log e^−r.
                reconstruction[row] += -x * Math.Log(-double.ExpM1(-rate)) + (1 - x) * rate;
                dRates[index] = scale * (1 - x / -double.ExpM1(-rate));
            }
        return (logits, reconstruction, dRates);
    }

    /// <summary>The Poisson term: the expected grey levels, −log Poisson(c; r) per row with c = round(255·g), and
    /// scale·∂/∂r.</summary>
    public static (double[] Means, double[] Reconstruction, double[] DRates) PoissonRateLoss(double[] target, double[] rates, int features, int samples,
        double scale)
    {
        int rows = rates.Length / features;
        var (means, reconstruction, dRates) = (new double[rates.Length], new double[rows], new double[rates.Length]);
        for (int row = 0; row < rows; row++)
            for (int i = 0; i < features; i++)
            {
                int index = row * features + i;
                double rate = rates[index], count = Math.Round(DeepExponential.CountScale * target[row / samples * features + i]);
                means[index] = rate / DeepExponential.CountScale;
                reconstruction[row] -= DistributionReference.PoissonLogDensity(count, rate);
                dRates[index] = scale * (1 - count / rate);
            }
        return (means, reconstruction, dRates);
    }

    /// <summary>The score-function gradient of one layer's statistics, written into dStatistics [batch, 2T].</summary>
    public static void ScoreGradient(double[] score, double[] logPrior, double[] logQ, double[] child, double[] reconstruction, double[] kl,
        double[] dStatistics, GammaLayerShape shape, bool raoBlackwell, bool leaveOneOut, double beta, double childWeight, double scale)
    {
        int units = shape.Units, samples = shape.Samples, batch = logQ.Length / units / samples;
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < units; j++)
            {
                var signals = Enumerable.Range(b * samples, samples).Select(row => raoBlackwell
                    ? beta * (logPrior[row * units + j] - logQ[row * units + j]) + childWeight * child[row]
                    : -reconstruction[row] - beta * kl[row]).ToArray();
                double total = signals.Sum(), dShape = 0, dMean = 0;
                bool centre = leaveOneOut && samples > 1;
                // With the baseline the centred signals sum to 0, so the first sample's score may be taken from each.
                int first = b * samples;
                double firstShapeScore = centre ? score[first * 2 * units + j] : 0, firstMeanScore = centre ? score[first * 2 * units + units + j] : 0;
                for (int s = 0; s < samples; s++)
                {
                    int row = b * samples + s;
                    double centred = centre ? signals[s] - (total - signals[s]) / (samples - 1) : signals[s];
                    dShape += (score[row * 2 * units + j] - firstShapeScore) * centred;
                    dMean += (score[row * 2 * units + units + j] - firstMeanScore) * centred;
                }
                int column = b * 2 * shape.TotalUnits + shape.Offset + j;
                dStatistics[column] = -scale * dShape;
                dStatistics[column + shape.TotalUnits] = -scale * dMean;
            }
    }

    /// <summary>μ = W·z + ε for W [outputs, inputs] given as θ (W = softplus(θ)) and z [rows, inputs].</summary>
    public static double[] Means(double[] theta, double[] z, int rows, int inputs, int outputs)
    {
        var means = new double[rows * outputs];
        for (int row = 0; row < rows; row++)
            for (int o = 0; o < outputs; o++)
            {
                double sum = DeepExponential.RateFloor;
                for (int i = 0; i < inputs; i++)
                    sum += StableMath.Softplus(theta[o * inputs + i]) * z[row * inputs + i];
                means[row * outputs + o] = sum;
            }
        return means;
    }

    /// <summary>dθ [outputs, inputs] = σ(θ)·Σ_rows dMeans[r, o]·z[r, i]: the gradient through <see cref="Means"/>.</summary>
    public static double[] ThetaGradient(double[] theta, double[] z, double[] dMeans, int rows, int inputs, int outputs)
    {
        var dTheta = new double[outputs * inputs];
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < inputs; i++)
            {
                double sum = 0;
                for (int row = 0; row < rows; row++)
                    sum += dMeans[row * outputs + o] * z[row * inputs + i];
                dTheta[o * inputs + i] = sum * StableMath.Sigmoid(theta[o * inputs + i]);
            }
        return dTheta;
    }
}
