using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.Ladder;

/// <summary>
/// The Ladder VAE with L layers in double, as the paper writes it: the bottom-up rungs give q̂_l = N(μ̂_l, σ̂_l²);
/// z_L ~ q̂_L; for l = L−1 … 1, p(z_l|z_{l+1}) from the prior network, q(z_l|·) the precision-weighted merge of the
/// two (<see cref="LadderReference.Merge"/>), z_l = μ_q + σ_q·ε_l; then p(x|z1). The loss is the mean over z rows of
/// rec + β·(−log w − rec), every KL term sampled. σ² is e^ρ or softplus(ρ) of the layer's output ρ. ε holds
/// [ε_1 | ε_2 | … | ε_L], each [batch·k, K_l] from its own stream.
/// </summary>
public sealed class LadderModelReference : ReferenceModel
{
    /// <summary>The forward pass: per layer the raw and [μ | log σ²] bottom-up stats (per example), q per z row
    /// (merged below the top, repeated at the top), z, ε, and the prior's raw and [μ | log σ²] output (l &lt; L).</summary>
    private sealed record Pass(ReferenceLayers Layers, LadderRungs Rungs, double[][] UpRaw, double[][] Up, double[][] RowStats,
        double[][] Z, double[][] Epsilon, double[][] PriorRaw, double[][] Prior, double[] ReconstructionPerRow,
        double[] ReconstructionGradient, double[] LogWeights, int Rows);

    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) =>
        Enumerable.Range(1, config.LadderLayers)
            .SelectMany(layer => ReferenceVae.Epsilon(seed, step, batch * config.Samples, LadderRungs.Latent(config, layer), stream + Philox.Streams.LayerOffset(layer)))
            .ToArray();

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch) =>
        Forward(config, parameters, x, epsilon, batch, training: false).LogWeights;

    /// <summary>[μ | ρ] to [μ | log σ²] (a rank-one head's [μ | ρ | u] to [μ | log d | u] where <paramref name="rankOne"/>).</summary>
    private static double[] Statistics(VaeConfig config, double[] raw, int rows, int latent, bool rankOne = false) =>
        config.LadderVariance == VarianceForm.Softplus ? LadderReference.SoftplusVariance(raw, rows, latent, rankOne) : raw;

    /// <summary>d/d[μ | log σ²] to d/d[μ | ρ] (or a rank-one head's).</summary>
    private static double[] RawGradient(VaeConfig config, double[] raw, double[] dStatistics, int rows, int latent, bool rankOne = false) =>
        config.LadderVariance == VarianceForm.Softplus ? LadderReference.SoftplusVarianceBackward(raw, dStatistics, rows, latent, rankOne) : dStatistics;

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var rungs = new LadderRungs(layers.Layout, config);
        int count = config.LadderLayers, samples = config.Samples, rows = batch * samples, blocks = config.PosteriorBlocks;
        bool rankOne = config.Covariance == CovarianceKind.RankOne;
        int Width(int layer) => LadderRungs.Latent(config, layer);
        // Index l − 1 holds layer l.
        var upRaw = new double[count][];
        var up = new double[count][];
        var rowStats = new double[count][];
        var z = new double[count][];
        var epsilons = new double[count][];
        var priorRaw = new double[count][];
        var prior = new double[count][];
        var input = x;
        int offset = 0;
        for (int layer = 1; layer <= count; layer++)
        {
            upRaw[layer - 1] = layers.Run(rungs.InferenceStart(layer), rungs.Head(layer) + 1, input, batch);
            up[layer - 1] = Statistics(config, upRaw[layer - 1], batch, Width(layer), rankOne);
            input = layers.Outputs[rungs.Head(layer) - 1];
            epsilons[layer - 1] = epsilon[offset..(offset + rows * Width(layer))];
            offset += rows * Width(layer);
        }
        rowStats[count - 1] = ImportanceReference.RepeatRows(up[count - 1], batch, blocks * Width(count), samples);
        z[count - 1] = Sample(rowStats[count - 1], epsilons[count - 1], rows, Width(count), rankOne);
        for (int layer = count - 1; layer >= 1; layer--)
        {
            priorRaw[layer - 1] = layers.Run(rungs.PriorStart(layer), rungs.PriorEnd(layer), z[layer], rows);
            prior[layer - 1] = Statistics(config, priorRaw[layer - 1], rows, Width(layer));
            rowStats[layer - 1] = rankOne
                ? LadderReference.RankOneMerge(up[layer - 1], prior[layer - 1], rows, Width(layer), samples)
                : LadderReference.Merge(up[layer - 1], prior[layer - 1], rows, Width(layer), samples);
            z[layer - 1] = Sample(rowStats[layer - 1], epsilons[layer - 1], rows, Width(layer), rankOne);
        }
        var output = layers.Run(layers.Layout.DecoderStart, layers.Layout.Layers.Count, z[0], rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, unitGradient) = LossReference.Reconstruction(config.Likelihood, target, output, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        var logWeights = LadderReference.LogWeights(rowStats, z, prior, reconstruction, rows, rankOne);
        return new Pass(layers, rungs, upRaw, up, rowStats, z, epsilons, priorRaw, prior, reconstruction, unitGradient, logWeights, rows);
    }

    /// <summary>z = μ + σε, or μ + Rε for a rank-one q.</summary>
    private static double[] Sample(double[] stats, double[] epsilon, int rows, int latent, bool rankOne) => rankOne
        ? RankOneReference.Forward(stats, epsilon, rows, latent).Z
        : LossReference.ReparameterizeForward(stats, epsilon, rows, latent).z;

    /// <summary>
    /// Down the decoder to dz1; per layer l &lt; L, bottom first: −log p(z_l|z_{l+1}) to the prior's stats and z_l,
    /// the sampler and log q(z_l|·) (ε fixed) to the merged stats, the merge to q̂_l and the prior, the prior network
    /// to dz_{l+1}; at the top, N(0, I) and log q(z_L|x), the samples summed per example; then the bottom-up rungs
    /// from the top, each rung's top hidden layer adding the gradient from the rung above.
    /// </summary>
    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training);
        var (layers, rungs, rows) = (pass.Layers, pass.Rungs, pass.Rows);
        int count = config.LadderLayers, samples = config.Samples, blocks = config.PosteriorBlocks;
        bool rankOne = config.Covariance == CovarianceKind.RankOne;
        int Width(int layer) => LadderRungs.Latent(config, layer);
        var kl = Enumerable.Range(0, rows).Select(r => -pass.LogWeights[r] - pass.ReconstructionPerRow[r]).ToArray();
        double loss = pass.ReconstructionPerRow.Average() + beta * kl.Average();
        var rowWeight = Enumerable.Repeat(1.0 / rows, rows).ToArray();
        var klRowWeight = rowWeight.Select(c => beta * c).ToArray();
        var gradient = new double[layers.Layout.Count];

        var dLogits = pass.ReconstructionGradient.Select(g => g / rows).ToArray();
        var dZ = layers.Backward(layers.Layout.DecoderStart, layers.Layout.Layers.Count, dLogits, rows, gradient);
        var dUpRaw = new double[count][];
        for (int layer = 1; layer < count; layer++)
        {
            int k = Width(layer);
            var (dPrior, dZFromPrior) = TwoLayerReference.PriorGradient(pass.Z[layer - 1], pass.Prior[layer - 1], klRowWeight, rows, k);
            for (int i = 0; i < dZ.Length; i++)
                dZ[i] += dZFromPrior[i];
            // A rank-one q's log q(z|·) with ε fixed depends on its stats through log|C| (and z); its prior's pull
            // on z is already in dZ.
            var dMerged = rankOne
                ? RankOneReference.WeightedBackward(pass.RowStats[layer - 1], pass.Z[layer - 1], pass.Epsilon[layer - 1], dZ, klRowWeight, rows, k, 1, standardPrior: false)
                : TwoLayerReference.SamplerBackward(pass.RowStats[layer - 1], pass.Epsilon[layer - 1], dZ, klRowWeight, rows, k);
            var (dUp, dPriorFromMerge) = rankOne
                ? LadderReference.RankOneMergeBackward(pass.Up[layer - 1], pass.Prior[layer - 1], dMerged, rows, k, samples)
                : LadderReference.MergeBackward(pass.Up[layer - 1], pass.Prior[layer - 1], dMerged, rows, k, samples);
            for (int i = 0; i < dPrior.Length; i++)
                dPrior[i] += dPriorFromMerge[i];
            dUpRaw[layer - 1] = RawGradient(config, pass.UpRaw[layer - 1], dUp, batch, k, rankOne);
            dZ = layers.Backward(rungs.PriorStart(layer), rungs.PriorEnd(layer), RawGradient(config, pass.PriorRaw[layer - 1], dPrior, rows, k), rows, gradient);
        }
        var dTopRows = rankOne
            ? RankOneReference.WeightedBackward(pass.RowStats[count - 1], pass.Z[count - 1], pass.Epsilon[count - 1], dZ, klRowWeight, rows, Width(count), 1)
            : ImportanceReference.SamplerBackward(pass.RowStats[count - 1], pass.Z[count - 1], pass.Epsilon[count - 1], dZ, rowWeight, rows, Width(count), beta);
        var dTop = ImportanceReference.SumRepeatedRows(dTopRows, batch, blocks * Width(count), samples);
        dUpRaw[count - 1] = RawGradient(config, pass.UpRaw[count - 1], dTop, batch, Width(count), rankOne);

        double[]? fromAbove = null;
        for (int layer = count; layer >= 1; layer--)
        {
            var dHidden = layers.Backward(rungs.Head(layer), rungs.Head(layer) + 1, dUpRaw[layer - 1], batch, gradient);
            if (fromAbove is not null)
                dHidden = dHidden.Select((d, i) => d + fromAbove[i]).ToArray();
            fromAbove = layers.Backward(rungs.InferenceStart(layer), rungs.Head(layer), dHidden, batch, gradient);
        }
        return new ReferenceVae.Result(loss, pass.ReconstructionPerRow.Average(), kl.Average(), gradient, layers.RunningAverages);
    }
}
