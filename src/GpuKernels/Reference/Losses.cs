namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The sampler, KL and reconstruction terms in double precision.</summary>
public static class LossReference
{
    /// <summary>z = μ + exp(v/2)·ε and kl[b] = ½ Σ_k (exp v + μ² − 1 − v), with stats [batch, 2K] = [μ | v].</summary>
    public static (double[] z, double[] klPerRow) ReparameterizeForward(double[] stats, double[] epsilon, int batch, int latent)
    {
        var z = new double[batch * latent];
        var kl = new double[batch];
        for (int b = 0; b < batch; b++)
            for (int k = 0; k < latent; k++)
            {
                double mu = stats[b * 2 * latent + k];
                double logVariance = stats[b * 2 * latent + latent + k];
                z[b * latent + k] = mu + Math.Exp(0.5 * logVariance) * epsilon[b * latent + k];
                kl[b] += 0.5 * (Math.Exp(logVariance) + mu * mu - 1 - logVariance);
            }
        return (z, kl);
    }

    /// <summary>Gradient of Σ dZ ⊙ z + klWeight·Σ_b kl[b] with respect to stats.</summary>
    public static double[] ReparameterizeBackward(double[] stats, double[] epsilon, double[] dZ, int batch, int latent, double klWeight)
    {
        var dStats = new double[stats.Length];
        for (int b = 0; b < batch; b++)
            for (int k = 0; k < latent; k++)
            {
                int muIndex = b * 2 * latent + k;
                int logVarianceIndex = muIndex + latent;
                double mu = stats[muIndex];
                double logVariance = stats[logVarianceIndex];
                double dz = dZ[b * latent + k];
                dStats[muIndex] = dz + klWeight * mu;
                dStats[logVarianceIndex] = dz * 0.5 * Math.Exp(0.5 * logVariance) * epsilon[b * latent + k]
                    + klWeight * 0.5 * (Math.Exp(logVariance) - 1);
            }
        return dStats;
    }

    public static double NegativeLogLikelihood(LikelihoodKind kind, double target, double output, double variance) => kind switch
    {
        LikelihoodKind.Bernoulli => StableMath.Softplus(output) - target * output,
        LikelihoodKind.Gaussian => (target - output) * (target - output) / (2 * variance) + 0.5 * Math.Log(2 * Math.PI * variance),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static double Gradient(LikelihoodKind kind, double target, double output, double variance) => kind switch
    {
        LikelihoodKind.Bernoulli => StableMath.Sigmoid(output) - target,
        LikelihoodKind.Gaussian => (output - target) / variance,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>rec[b] = Σ_j −log p(x[b,j] | out[b,j]) and dOutput = gradientScale·∂rec/∂out.</summary>
    public static (double[] reconstructionPerRow, double[] dOutput) Reconstruction(LikelihoodKind kind,
        double[] target, double[] output, int batch, int features, double variance, double gradientScale)
    {
        var rec = new double[batch];
        var dOutput = new double[output.Length];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < features; j++)
            {
                int index = b * features + j;
                rec[b] += NegativeLogLikelihood(kind, target[index], output[index], variance);
                dOutput[index] = gradientScale * Gradient(kind, target[index], output[index], variance);
            }
        return (rec, dOutput);
    }

    /// <summary>log w per row: −rec − ½Σ z² + ½Σ(ε² + v), the cancelled form of
    /// log p(x|z) + log p(z) − log q(z|x).</summary>
    public static double[] LogWeights(double[] stats, double[] z, double[] epsilon, double[] reconstructionPerRow, int batch, int latent)
    {
        var logWeights = new double[batch];
        for (int b = 0; b < batch; b++)
        {
            double logPrior = 0, logPosterior = 0;
            for (int k = 0; k < latent; k++)
            {
                double code = z[b * latent + k], eps = epsilon[b * latent + k];
                logPrior += -0.5 * (code * code + Math.Log(2 * Math.PI));
                logPosterior += -0.5 * (eps * eps + stats[b * 2 * latent + latent + k] + Math.Log(2 * Math.PI));
            }
            logWeights[b] = -reconstructionPerRow[b] + logPrior - logPosterior;
        }
        return logWeights;
    }

    /// <summary>log((1/k) Σ exp(logWeights)), computed stably: the k-sample bound L_k of one data point.</summary>
    public static double LogMeanExp(IReadOnlyList<double> logWeights)
    {
        double max = logWeights.Max();
        double sum = logWeights.Sum(value => Math.Exp(value - max));
        return max + Math.Log(sum / logWeights.Count);
    }
}
