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

/// <summary>The k-sample bound of the IWAE, example by example, in double precision.</summary>
public static class ImportanceReference
{
    /// <summary>
    /// For log-weights [examples·samples] (example-major): the loss −L_k of each example and the normalised weights
    /// w̃ = softmax of each example's log-weights.
    /// </summary>
    public static (double[] NegativeBound, double[] NormalizedWeights) Bound(double[] logWeights, int examples, int samples)
    {
        var negativeBound = new double[examples];
        var weights = new double[logWeights.Length];
        for (int b = 0; b < examples; b++)
        {
            var mine = logWeights.AsSpan(b * samples, samples).ToArray();
            double logMeanExp = LossReference.LogMeanExp(mine);
            negativeBound[b] = -logMeanExp;
            double logSumExp = logMeanExp + Math.Log(samples);
            for (int i = 0; i < samples; i++)
                weights[b * samples + i] = Math.Exp(mine[i] - logSumExp);
        }
        return (negativeBound, weights);
    }

    /// <summary>
    /// Gradient of the IWAE loss −(1/B)Σ_b L_k(b) with respect to the repeated stats [rows, 2K] (one row per
    /// sample), given dZ = the decoder's share (w̃_r/B · ∂rec_r/∂z_r). log w also holds −½Σz² through z and +½Σv
    /// directly (ε fixed), and d loss / d log w_r = −w̃_r · scale with scale = 1/B.
    /// </summary>
    public static double[] SamplerBackward(double[] repeatedStats, double[] z, double[] epsilon, double[] dZ,
        double[] normalizedWeights, int rows, int latent, double scale)
    {
        // The N(0, I) prior's pull through z, then the sampler with its direct log q term.
        var dZTotal = (double[])dZ.Clone();
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < latent; k++)
                dZTotal[r * latent + k] += scale * normalizedWeights[r] * z[r * latent + k];
        return TwoLayerReference.SamplerBackward(repeatedStats, epsilon, dZTotal,
            normalizedWeights.Select(weight => scale * weight).ToArray(), rows, latent);
    }

    /// <summary>Each of <paramref name="rows"/> rows of <paramref name="width"/> values repeated
    /// <paramref name="times"/> times in place (row b becomes rows b·times .. b·times + times − 1).</summary>
    public static double[] RepeatRows(double[] values, int rows, int width, int times)
    {
        var repeated = new double[rows * times * width];
        for (int b = 0; b < rows; b++)
            for (int i = 0; i < times; i++)
                Array.Copy(values, b * width, repeated, (b * times + i) * width, width);
        return repeated;
    }

    /// <summary>The sum of each group of <paramref name="times"/> consecutive rows: the adjoint of
    /// <see cref="RepeatRows"/>, which backward passes use to gather the samples' gradients per example.</summary>
    public static double[] SumRepeatedRows(double[] values, int rows, int width, int times)
    {
        var sums = new double[rows * width];
        for (int b = 0; b < rows; b++)
            for (int i = 0; i < times; i++)
                for (int j = 0; j < width; j++)
                    sums[b * width + j] += values[(b * times + i) * width + j];
        return sums;
    }
}

/// <summary>Softmax cross-entropy in double precision (the Deep VIB decoder).</summary>
public static class ClassificationReference
{
    /// <summary>−log softmax(logits)[label] per row, d/dlogits = softmax − onehot, and whether the argmax is the
    /// label.</summary>
    public static (double[] Loss, double[] Gradient, bool[] Correct) CrossEntropy(double[] logits, int[] labels, int rows, int classes)
    {
        var loss = new double[rows];
        var gradient = new double[logits.Length];
        var correct = new bool[rows];
        for (int r = 0; r < rows; r++)
        {
            var mine = logits.AsSpan(r * classes, classes).ToArray();
            double logSum = LossReference.LogMeanExp(mine) + Math.Log(classes);
            loss[r] = logSum - mine[labels[r]];
            for (int c = 0; c < classes; c++)
                gradient[r * classes + c] = Math.Exp(mine[c] - logSum) - (c == labels[r] ? 1 : 0);
            correct[r] = Array.IndexOf(mine, mine.Max()) == labels[r];
        }
        return (loss, gradient, correct);
    }
}
