using System.Text.Json.Serialization;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>What ELBO surgery (Hoffman &amp; Johnson 2016) finds in the average KL term, in nats per example.</summary>
/// <param name="AverageKl">E_x KL(q(z|x) ‖ p(z)), the rate, from the closed form.</param>
/// <param name="MarginalKl">KL(q(z) ‖ p(z)) for the aggregate posterior q(z) = (1/N) Σ_n q(z|x_n).</param>
/// <param name="MutualInformation">The index-code mutual information I(n; z) = AverageKl − MarginalKl, at most log N.</param>
public sealed record SurgeryReport(int Examples, int Samples, double AverageKl, double MarginalKl, double MutualInformation, double LogN)
{
    /// <summary>Whether <see cref="AverageKl"/> is a Monte Carlo estimate on the same draws (a learned prior has no
    /// closed-form KL) rather than the closed form; written to eval.json only when true.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool SampledAverageKl { get; init; }
}

/// <summary>
/// ELBO surgery: E_x KL(q(z|x) ‖ p(z)) = I(n; z) + KL(q(z) ‖ p(z)). The marginal KL is estimated by Monte Carlo
/// over z ~ q(z): sample m comes from example m mod N with ε from Philox (seed, Surgery stream, 0, m·K + k), and
/// log q(z) = log (1/N) Σ_n N(z; μ_n, σ_n²) is summed exactly over all N examples (in double, M·N·K work). The
/// average KL is the closed form against N(0, I) (or against one learned Gaussian, CorEx's factorized marginal).
/// Against a learned mixture prior p(z) = (1/C) Σ_c N(μ_c, σ_c²), C > 1,
/// log p(z) is that mixture's density and the average KL is estimated on the same draws, as the mean of
/// log q(z|x_n) − log p(z) with z ~ q(z|x_n), so the mutual information is the mean of log q(z|x_n) − log q(z) and
/// does not depend on the prior. Written in double for clarity; it is its own reference.
/// </summary>
public static class ElboSurgery
{
    /// <param name="priorComponents">A learned prior's components [C, 2·latent], rows [μ_c | log σ_c²]; null: N(0, I).</param>
    public static SurgeryReport Estimate(float[] mu, float[] logVariance, int examples, int latent, int samples, ulong seed,
        float[]? priorComponents = null)
    {
        if (priorComponents is not null && (priorComponents.Length == 0 || priorComponents.Length % (2 * latent) != 0))
            throw new ArgumentException($"a mixture prior's components are rows of 2·{latent} values (got {priorComponents.Length} values)");
        if (examples < 1 || mu.Length != examples * latent || logVariance.Length != examples * latent)
            throw new ArgumentException($"surgery needs μ and log σ² of {examples} examples × {latent} latents");
        if (samples < 1)
            throw new ArgumentException($"surgery needs at least one sample of z (got {samples})");

        double averageKl = 0;
        for (int i = 0; i < mu.Length; i++)
            averageKl += 0.5 * (Math.Exp(logVariance[i]) + (double)mu[i] * mu[i] - 1 - logVariance[i]);
        averageKl /= examples;

        // Per example: Σ_k log σ_k² and 1/σ_k², so each density below costs K multiply-adds.
        var logNormaliser = new double[examples];
        var precision = new double[mu.Length];
        for (int n = 0; n < examples; n++)
            for (int k = 0; k < latent; k++)
            {
                logNormaliser[n] += -0.5 * (Math.Log(2 * Math.PI) + logVariance[n * latent + k]);
                precision[n * latent + k] = Math.Exp(-logVariance[n * latent + k]);
            }

        var terms = new double[samples];
        var conditionalTerms = new double[samples];
        Parallel.For(0, samples, m =>
        {
            int source = m % examples;
            var z = new double[latent];
            double logPrior = 0;
            for (int k = 0; k < latent; k++)
            {
                double eps = Philox.NormalDouble(seed, Philox.Streams.Surgery, 0, (long)m * latent + k);
                z[k] = mu[source * latent + k] + Math.Exp(0.5 * logVariance[source * latent + k]) * eps;
                logPrior += -0.5 * (Math.Log(2 * Math.PI) + z[k] * z[k]);
            }
            if (priorComponents is not null)
                logPrior = MixtureLogDensity(priorComponents, z);
            // log q(z) = logsumexp_n log q(z|x_n) − log N, with the largest term factored out.
            var logDensities = new double[examples];
            double largest = double.NegativeInfinity;
            for (int n = 0; n < examples; n++)
            {
                double sum = logNormaliser[n];
                for (int k = 0; k < latent; k++)
                {
                    double difference = z[k] - mu[n * latent + k];
                    sum -= 0.5 * difference * difference * precision[n * latent + k];
                }
                logDensities[n] = sum;
                largest = Math.Max(largest, sum);
            }
            double total = 0;
            for (int n = 0; n < examples; n++)
                total += Math.Exp(logDensities[n] - largest);
            terms[m] = largest + Math.Log(total) - Math.Log(examples) - logPrior;
            conditionalTerms[m] = logDensities[source] - logPrior;
        });
        double marginalKl = terms.Average();
        // A single component (CorEx's factorized marginal) has the closed form; a mixture does not.
        bool sampled = priorComponents is not null && priorComponents.Length > 2 * latent;
        if (sampled)
            averageKl = conditionalTerms.Average();
        else if (priorComponents is not null)
        {
            averageKl = 0;
            for (int n = 0; n < examples; n++)
                for (int k = 0; k < latent; k++)
                    averageKl += GpuKernels.Reference.FactorizedPriorReference.Kl(mu[n * latent + k], logVariance[n * latent + k],
                        priorComponents[k], priorComponents[latent + k]) / examples;
        }
        return new SurgeryReport(examples, samples, averageKl, marginalKl, averageKl - marginalKl, Math.Log(examples))
        {
            SampledAverageKl = sampled,
        };
    }

    /// <summary>log (1/C) Σ_c N(z; μ_c, σ_c²) for components [C, 2·K], with the largest term factored out.</summary>
    public static double MixtureLogDensity(float[] components, double[] z)
    {
        int latent = z.Length, count = components.Length / (2 * latent);
        var logDensities = new double[count];
        for (int c = 0; c < count; c++)
            for (int k = 0; k < latent; k++)
            {
                double logVariance = components[c * 2 * latent + latent + k], difference = z[k] - components[c * 2 * latent + k];
                logDensities[c] += -0.5 * (Math.Log(2 * Math.PI) + logVariance + difference * difference / Math.Exp(logVariance));
            }
        double largest = logDensities.Max();
        return largest + Math.Log(logDensities.Sum(value => Math.Exp(value - largest))) - Math.Log(count);
    }
}
