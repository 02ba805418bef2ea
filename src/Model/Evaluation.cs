using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Model;

/// <summary>What eval reports for one data set (nats per example).</summary>
public sealed record EvaluationReport
{
    public int Examples { get; init; }
    /// <summary>The test loss as train reports it: distortion + β·rate from one sample (VAE), −L_k with the
    /// training k (IWAE), the reconstruction (autoencoder).</summary>
    public double Loss { get; init; }
    /// <summary>Distortion D: the mean reconstruction term −E_q log p(x|z).</summary>
    public double Distortion { get; init; }
    /// <summary>Rate R: the mean KL(q(z|x) ‖ p(z)).</summary>
    public double Rate { get; init; }
    public int K { get; init; }
    /// <summary>The mean k-sample bound L_k; with k = 5000 its negative is the reported test NLL. Null for the
    /// autoencoder, which has no posterior to sample.</summary>
    public double? LowerBound { get; init; }
    public double? NegativeLogLikelihood => -LowerBound;
    /// <summary>Latent units with Var_x(E_q[z_u]) above 0.01 (Burda et al.'s criterion).</summary>
    public int ActiveUnits { get; init; }
    public int LatentUnits { get; init; }
    /// <summary>For a model of several stochastic layers (two-layer, Ladder, stacked CorEx), each layer's active
    /// units, bottom first (z1 first), by the same criterion on its posterior mean. Null for the others.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int[]? LayerActiveUnits { get; init; }
    /// <summary>The Deep VIB's test classification error (one z per image).</summary>
    public double? TestError { get; init; }
    /// <summary>What this model calls its loss, distortion and rate, where they are not the ELBO's (null for the
    /// VAE: −ELBO, reconstruction, KL).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Models.ObjectiveTerms? Terms { get; init; }
    /// <summary>ELBO surgery (eval --surgery), of the top stochastic layer.</summary>
    public SurgeryReport? Surgery { get; init; }
    /// <summary>For a model of several latent layers (the VLAE), each layer's mean KL(q(z_l|x) ‖ N(0, I)) in nats,
    /// top first: the information each layer carries. Null for the others.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, double>? LayerKl { get; init; }
    /// <summary>For the rank-one covariance, how correlated q(z|x)'s dimensions are. Null for the others.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public PosteriorCorrelation? PosteriorCorrelation { get; init; }
    /// <summary>For a model with a learned factorized marginal (CorEx), each dimension's mean KL(q(z_j|x) ‖ r(z_j))
    /// in nats: the information each dimension carries. Null for the others.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public double[]? DimensionKl { get; init; }
    /// <summary>For the mutual autoencoder, Î(x; z) = H(z) + E log r(z|x) in nats on pairs drawn from the model, a
    /// lower bound on I_p(x; z) (its target M is in the config). Null for the others.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public double? MutualInformation { get; init; }
}

/// <summary>The off-diagonal correlations C_ij/√(C_ii·C_jj) of q(z|x): their mean absolute value over the pairs of
/// dimensions and the examples, and the largest absolute one met.</summary>
public sealed record PosteriorCorrelation(double MeanAbsolute, double Largest);

/// <summary>Evaluation of a trained model: the ELBO terms, the k-sample bound and active units.</summary>
public static class Evaluation
{
    /// <summary>
    /// For a rank-one posterior (C = D⁻¹ − η aaᵀ with a = D⁻¹u, η = 1/(1 + uᵀa)), the correlations of its
    /// dimensions over the first <paramref name="examples"/> examples, in double; null for a diagonal one. The
    /// posterior is the one the encoder's output gives (<see cref="Vae.EncoderOutput"/>): q(z|x), every code's
    /// together for the gathered models, and q(z1|x) for two stochastic layers.
    /// </summary>
    public static PosteriorCorrelation? RankOneCorrelation(Vae vae, DeviceDataset data, int examples)
    {
        if (vae.Config.Covariance != CovarianceKind.RankOne)
            return null;
        double sum = 0, largest = 0;
        long pairs = 0;
        data.SetOrder(Enumerable.Range(0, data.Count).ToArray());
        for (int first = 0; first < examples; first += vae.MaxBatch)
        {
            int batch = Math.Min(vae.MaxBatch, examples - first);
            var stats = vae.EncoderOutput(data, first, batch);
            // Rows of [μ | log d | u] (a flow's base: the columns before its steps).
            if (vae.Config.FlowLength > 0)
                stats = Core.FamilyModel.Columns(stats, batch, vae.Config.PosteriorFlow(1).StatsWidth, 0, 3 * vae.Config.Latent);
            int latent = stats.Length / (3 * batch);
            for (int b = 0; b < batch; b++)
                foreach (double correlation in RankOneCorrelations(stats, b, latent))
                {
                    sum += Math.Abs(correlation);
                    largest = Math.Max(largest, Math.Abs(correlation));
                    pairs++;
                }
        }
        return new PosteriorCorrelation(pairs == 0 ? 0 : sum / pairs, largest);
    }

    /// <summary>The correlations C_ij/√(C_ii·C_jj), i &lt; j, of stats row <paramref name="row"/> = [μ | log d | u]:
    /// C_ij = −η·a_i·a_j off the diagonal and C_ii = 1/d_i − η·a_i².</summary>
    public static IEnumerable<double> RankOneCorrelations(float[] stats, int row, int latent)
    {
        var (a, eta, variance) = Latents.RankOneLatent.Covariance(stats, row, latent);
        for (int i = 0; i < latent; i++)
            for (int j = i + 1; j < latent; j++)
                yield return -eta * a[i] * a[j] / Math.Sqrt(variance[i] * variance[j]);
    }

    /// <summary>
    /// The mean over examples of KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − log σ² − 1) of each latent dimension, in
    /// double, from q(z|x) of <paramref name="examples"/> examples ([examples, latent] each); against a learned
    /// factorized marginal [m | log s²] (CorEx's r(z)) where one is given.
    /// </summary>
    public static double[] KlPerDimension(float[] mu, float[] logVariance, int examples, int latent, float[]? marginal = null)
    {
        var kl = new double[latent];
        for (int n = 0; n < examples; n++)
            for (int d = 0; d < latent; d++)
            {
                double mean = mu[n * latent + d], logVar = logVariance[n * latent + d];
                kl[d] += (marginal is null
                    ? 0.5 * (mean * mean + Math.Exp(logVar) - logVar - 1)
                    : GpuKernels.Reference.FactorizedPriorReference.Kl(mean, logVar, marginal[d], marginal[latent + d])) / examples;
            }
        return kl;
    }

    /// <summary>
    /// L_k = E_x[log (1/k) Σ_i w_i] over the first <paramref name="examples"/> examples: for each, the device
    /// encodes the example once and draws its k samples in chunks of at most MaxBatch rows; the host takes the
    /// log-mean-exp in double. Draws are keyed by (example, chunk), so the estimate is reproducible.
    /// Leaves the data set's order changed. <paramref name="progress"/> gets the examples done and the running sum
    /// of their L_k.
    /// </summary>
    /// <param name="ranks">Processes sharing the work (default: the model's): each takes a block of the examples
    /// (see <see cref="Distributed.BatchSlice"/>), and the per-example bounds are gathered and added in example
    /// order, so the result is the one-process result bit for bit. <paramref name="progress"/> then counts this
    /// rank's examples.</param>
    public static double LowerBound(Vae vae, DeviceDataset data, int k, int examples, Action<int, double>? progress = null,
        Distributed.Communicator? ranks = null)
    {
        if (k < 1)
            throw new ArgumentException($"k must be at least 1 (got {k})");
        ranks ??= vae.Ranks;
        var mine = Distributed.BatchSlice.Of(examples, ranks.Rank, ranks.Size);
        // Equal lengths for the gather: the first blocks are one longer than the last ones.
        var bounds = new double[(examples + ranks.Size - 1) / ranks.Size];
        double total = 0;
        int chunk = Math.Min(k, vae.MaxBatch);
        int chunksPerExample = (k + chunk - 1) / chunk;
        if ((long)examples * chunksPerExample > uint.MaxValue)
            throw new ArgumentException($"{examples} examples × {chunksPerExample} chunks of samples exceed the 2^32 draw keys; use fewer examples or a larger batch");
        var weights = new double[k];
        for (int example = mine.Offset; example < mine.Offset + mine.Count; example++)
        {
            data.SetOrder([example]);
            for (int start = 0; start < k; start += chunk)
            {
                int rows = Math.Min(chunk, k - start);
                long drawIndex = (long)example * chunksPerExample + start / chunk;
                var chunkWeights = vae.LogImportanceWeights(data, 0, 1, drawIndex, samples: rows);
                for (int i = 0; i < rows; i++)
                    weights[start + i] = chunkWeights[i];
            }
            bounds[example - mine.Offset] = LossReference.LogMeanExp(weights);
            total += bounds[example - mine.Offset];
            progress?.Invoke(example - mine.Offset + 1, total);
        }
        if (ranks.Size == 1)
            return total / examples;
        var all = new double[bounds.Length * ranks.Size];
        ranks.AllGather(bounds, all);
        total = 0;
        for (int rank = 0; rank < ranks.Size; rank++)
        {
            var block = Distributed.BatchSlice.Of(examples, rank, ranks.Size);
            for (int i = 0; i < block.Count; i++)
                total += all[rank * bounds.Length + i];
        }
        return total / examples;
    }

    /// <summary>Units whose posterior mean varies across the data: Var_x(μ_u(x)) > 0.01.</summary>
    public static int ActiveUnits(Vae vae, DeviceDataset data, int examples)
    {
        var unit = new UnitVariance(vae.Config.TopLatent);
        data.SetOrder(Enumerable.Range(0, data.Count).ToArray());
        for (int first = 0; first < examples; first += vae.MaxBatch)
            unit.Add(vae.Encode(data, first, Math.Min(vae.MaxBatch, examples - first)).Mu);
        return unit.Active(examples);
    }

    /// <summary>For a model of several stochastic layers, the active units of each and its width, bottom first, by
    /// the same criterion on each layer's posterior mean (<see cref="Vae.LayerMeans"/>), and each unit's mean of it
    /// over the examples (how much the unit is used); null for the others.</summary>
    public static (int[] Active, int[] Units, double[][] Means)? LayerActivity(Vae vae, DeviceDataset data, int examples)
    {
        data.SetOrder(Enumerable.Range(0, data.Count).ToArray());
        UnitVariance[]? layers = null;
        for (int first = 0; first < examples; first += vae.MaxBatch)
        {
            int batch = Math.Min(vae.MaxBatch, examples - first);
            if (vae.LayerMeans(data, first, batch) is not { } means)
                return null;
            layers ??= means.Select(mean => new UnitVariance(mean.Length / batch)).ToArray();
            for (int layer = 0; layer < means.Count; layer++)
                layers[layer].Add(means[layer]);
        }
        return layers is null ? null
            : (layers.Select(layer => layer.Active(examples)).ToArray(), layers.Select(layer => layer.Units).ToArray(), layers.Select(layer => layer.Means(examples)).ToArray());
    }

    /// <summary>Σ μ_u and Σ μ_u² of each unit over the rows added, in double.</summary>
    private sealed class UnitVariance(int units)
    {
        public int Units => units;

        private readonly double[] sum = new double[units], sumSquares = new double[units];

        public void Add(float[] mu)
        {
            for (int i = 0; i < mu.Length; i++)
            {
                sum[i % units] += mu[i];
                sumSquares[i % units] += (double)mu[i] * mu[i];
            }
        }

        /// <summary>Each unit's mean over <paramref name="examples"/> rows.</summary>
        public double[] Means(int examples) => sum.Select(total => total / examples).ToArray();

        /// <summary>Units whose variance over <paramref name="examples"/> rows exceeds 0.01.</summary>
        public int Active(int examples) =>
            Enumerable.Range(0, units).Count(u => sumSquares[u] / examples - (sum[u] / examples) * (sum[u] / examples) > 0.01);
    }
}
