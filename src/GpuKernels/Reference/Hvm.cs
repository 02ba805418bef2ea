namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// The hierarchical variational model's terms in double (see <see cref="Hvm"/>), written from the densities with
/// their 2π terms: log q(z|λ) = log N(z; λ, τ²), log r(λ|z) = log N(λ; a, b²) or, as an inverse flow,
/// log N(g(λ); a, b²) + log|det ∂g/∂λ|, log p(z) = log N(z; 0, I), and the flow's log q(λ|x) − log N(λ; 0, I) given;
/// their gradients by the chain rule through z = λ + τε₂ and r's steps.
/// </summary>
public static class HvmReference
{
    private static double LogNormal(double value, double mean, double logVariance) =>
        -0.5 * (Math.Log(2 * Math.PI) + logVariance + (value - mean) * (value - mean) / Math.Exp(logVariance));

    /// <summary>z = λ + exp(½ log τ²)·ε₂ per element.</summary>
    public static double[] Sample(double[] lambda, double[] logTau, double[] epsilon, int latent) =>
        lambda.Select((value, element) => value + Math.Exp(0.5 * logTau[element % latent]) * epsilon[element]).ToArray();

    /// <summary>Per row: flowKl + log N(λ; 0, I) − log p(z) + log q(z|λ) − log r(λ|z), i.e. log q(λ|x) + log q(z|λ) −
    /// log r(λ|z) − log p(z), with the Gaussian r of [a | log b²] rows.</summary>
    public static double[] Kl(double[] flowKl, double[] lambda, double[] z, double[] logTau, double[] rStats, int rows, int latent) =>
        KlGivenAuxiliary(flowKl, lambda, z, logTau, AuxiliaryLogDensity(lambda, rStats, rows, new FlowShape(latent, 0, 1)), rows, latent);

    /// <summary>The same with log r(λ|z) given per row.</summary>
    public static double[] KlGivenAuxiliary(double[] flowKl, double[] lambda, double[] z, double[] logTau, double[] logR, int rows, int latent) =>
        Enumerable.Range(0, rows).Select(row => flowKl[row] - logR[row] + Enumerable.Range(0, latent).Sum(k =>
        {
            int at = row * latent + k;
            return LogNormal(lambda[at], 0, 0) - LogNormal(z[at], 0, 0) + LogNormal(z[at], lambda[at], logTau[k]);
        })).ToArray();

    /// <summary>log r(λ|z) per row from r's stats rows ([a | log b² | (u, w, b) per step], <paramref name="shape"/>'s):
    /// log N(y; a, b²) + Σ_j log|det_j| with y = g_J ∘ … ∘ g_1(λ) (y = λ without steps: the Gaussian r).</summary>
    public static double[] AuxiliaryLogDensity(double[] lambda, double[] rStats, int rows, FlowShape shape)
    {
        int latent = shape.Latent;
        var logR = new double[rows];
        for (int row = 0; row < rows; row++)
        {
            int at = row * shape.StatsWidth;
            var (y, _, logDeterminant) = PlanarFlowReference.Flow(rStats, at, shape, lambda[(row * latent)..((row + 1) * latent)]);
            logR[row] = logDeterminant + Enumerable.Range(0, latent).Sum(k => LogNormal(y[k], rStats[at + k], rStats[at + latent + k]));
        }
        return logR;
    }

    /// <summary>The gradients of −weight·Σ_rows log r(λ|z) with respect to λ and to r's stats rows.</summary>
    public static (double[] DLambda, double[] DRStats) AuxiliaryBackward(double[] lambda, double[] rStats, int rows, FlowShape shape, double weight)
    {
        int latent = shape.Latent;
        var dLambda = new double[rows * latent];
        var dRStats = new double[rows * shape.StatsWidth];
        for (int row = 0; row < rows; row++)
        {
            int at = row * shape.StatsWidth;
            var (y, inputs, _) = PlanarFlowReference.Flow(rStats, at, shape, lambda[(row * latent)..((row + 1) * latent)]);
            // −log N(y; a, b²) = ½(log 2π + log b² + (y − a)²/b²).
            var g = new double[latent];
            for (int k = 0; k < latent; k++)
            {
                double variance = Math.Exp(rStats[at + latent + k]), gap = y[k] - rStats[at + k];
                g[k] = weight * gap / variance;
                dRStats[at + k] = -weight * gap / variance;
                dRStats[at + latent + k] = 0.5 * weight * (1 - gap * gap / variance);
            }
            PlanarFlowReference.FlowBackward(rStats, at, shape, inputs, g, dRStats, weight).CopyTo(dLambda, row * latent);
        }
        return (dLambda, dRStats);
    }

    /// <summary>
    /// For f = Σ dZ·z + w·Σ_rows (Kl − flowKl) with z = λ + τε₂ and the Gaussian r's stats as free inputs: d f/d λ,
    /// d f/d log τ² and d f/d r's stats (see the overload for the parts).
    /// </summary>
    public static (double[] DLambda, double[] DLogTau, double[] DRStats) Backward(double[] lambda, double[] z, double[] epsilon, double[] logTau,
        double[] rStats, double[] dZ, int rows, int latent, double weight)
    {
        var (dLambdaFromR, dRStats) = AuxiliaryBackward(lambda, rStats, rows, new FlowShape(latent, 0, 1), weight);
        var (dLambda, dLogTau) = BackwardGivenAuxiliary(lambda, z, epsilon, logTau, dZ, dLambdaFromR, rows, latent, weight);
        return (dLambda, dLogTau, dRStats);
    }

    /// <summary>
    /// The same with r's share of d f/dλ given (<see cref="AuxiliaryBackward"/>). ∂/∂z of −log p(z) is z; of log q(z|λ)
    /// at fixed ε₂ nothing through z, −½ through log τ²; log N(λ; 0, I) gives −λ.
    /// </summary>
    public static (double[] DLambda, double[] DLogTau) BackwardGivenAuxiliary(double[] lambda, double[] z, double[] epsilon, double[] logTau,
        double[] dZ, double[] dLambdaFromR, int rows, int latent, double weight)
    {
        var dLambda = new double[rows * latent];
        var dLogTau = new double[latent];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                int at = row * latent + k;
                double g = dZ[at] + weight * z[at];
                dLambda[at] = g + dLambdaFromR[at] - weight * lambda[at];
                dLogTau[k] += g * 0.5 * Math.Exp(0.5 * logTau[k]) * epsilon[at] - 0.5 * weight;
            }
        return (dLambda, dLogTau);
    }

    /// <summary>With Bernoulli factors q(z_k|λ_k) = Bernoulli(σ(λ_k)) and a factorised prior of logits c, per row:
    /// the KL term log q(λ|x) + log q(z|λ) − log p(z) − log r(λ|z), with log q(λ|x) = flowKl + log N(λ; 0, I), and its
    /// shared part log q(λ|x) − log r(λ|z), what every unit's signal holds (each adds its own log q(z_k|λ_k) − log p(z_k)).</summary>
    public static (double[] Kl, double[] Shared) BernoulliKl(double[] flowKl, double[] lambda, double[] z, double[] priorLogits, double[] logR, int rows,
        int latent)
    {
        var shared = Enumerable.Range(0, rows).Select(row => flowKl[row] - logR[row] + Enumerable.Range(row * latent, latent).Sum(at => LogNormal(lambda[at], 0, 0)))
            .ToArray();
        var kl = shared.Select((value, row) => value + Enumerable.Range(row * latent, latent).Sum(at =>
            DistributionReference.BernoulliLogDensity(z[at], lambda[at]) - DistributionReference.BernoulliLogDensity(z[at], priorLogits[at % latent]))).ToArray();
        return (kl, shared);
    }

    /// <summary>
    /// The gradient of λ with Bernoulli factors: weight·∂/∂λ of (the row's term − flowKl) at the drawn z, i.e.
    /// weight·(z − σ(λ) − λ), plus r's share <paramref name="dLambdaFromR"/>, less scale·s_k·∂ log q(z_k|λ_k)/∂λ_k with
    /// the Rao-Blackwellized signal s_k = centred[row] − β·(log q(z_k|λ_k) − log p(z_k)) (the score-function part
    /// through z's draw; see <see cref="Hvm.HvmBernoulliLambdaGradient"/>).
    /// </summary>
    public static double[] BernoulliLambdaGradient(double[] lambda, double[] z, double[] priorLogits, double[] dLambdaFromR, double[] centred, int latent,
        double beta, double weight, double scale) =>
        lambda.Select((value, at) =>
        {
            double score = z[at] - BinaryLatentReference.Sigmoid(value);
            double signal = centred[at / latent] - beta * (DistributionReference.BernoulliLogDensity(z[at], value)
                - DistributionReference.BernoulliLogDensity(z[at], priorLogits[at % latent]));
            return weight * (score - value) + dLambdaFromR[at] - scale * signal * score;
        }).ToArray();
}
