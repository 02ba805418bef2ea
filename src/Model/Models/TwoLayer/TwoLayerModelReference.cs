using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.TwoLayer;

/// <summary>
/// The two-layer objective in double: −log w = rec + KL terms per row (KL terms = −log w − rec, sampled); the VAE
/// takes the mean over rows of rec + β·KL terms, the IWAE the mean over examples of −L_k. Each row weighs c_r
/// (1/rows, or w̃_r/batch), so every term of −log w_r is differentiated with that weight (β on the KL terms).
/// </summary>
public class TwoLayerModelReference : ReferenceModel
{
    /// <summary>The forward pass: the layers, per z row the stats of q(z1|·) and q(z2|·) (repeated per sample
    /// where they are per example), z1, z2 and their ε, and per row the reconstruction, its unit gradient and
    /// log w; also q(z1|·)'s stats per example.</summary>
    private sealed record Pass(ReferenceLayers Layers, double[] Stats1, double[] RowStats1, double[] Z1, double[] Epsilon1,
        double[] RowStats2, double[] Z2, double[] Epsilon2, double[] ReconstructionPerRow, double[] ReconstructionGradient,
        double[] LogWeights, int Rows);

    /// <summary>The stochastic layers between the encoder's output and the decoder.</summary>
    private sealed record Latents(double[] RowStats1, double[] Z1, double[] RowStats2, double[] Z2, double[] PriorStats);

    /// <summary>ε1 [batch·k, K1], then ε2 [batch·k, K2] from the second layer's stream.</summary>
    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) =>
        [.. base.Epsilon(config, seed, step, batch, stream),
         .. ReferenceVae.Epsilon(seed, step, batch * config.Samples, config.Latent2, stream + Philox.Streams.SecondLayerOffset)];

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch) =>
        Forward(config, parameters, x, epsilon, batch, training: false).LogWeights;

    /// <summary>z1 from q(z1|x), q(z2|z1) on every z1 row and z2 from it, then the prior network p(z1|z2).</summary>
    private static Latents Sample(ReferenceLayers layers, VaeConfig config, double[] stats1, double[] epsilon1, double[] epsilon2, int batch)
    {
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, k1 = config.Latent, k2 = config.Latent2;
        var rowStats1 = ImportanceReference.RepeatRows(stats1, batch, config.PosteriorBlocks * k1, samples);
        var z1 = Draw(config, rowStats1, epsilon1, rows, k1);
        var rowStats2 = layers.Run(layout.EncoderLayerCount, layout.Encoder2End, z1, rows);
        var z2 = Draw(config, rowStats2, epsilon2, rows, k2);
        var priorStats = layers.Run(layout.Encoder2End, layout.DecoderStart, z2, rows);
        return new Latents(rowStats1, z1, rowStats2, z2, priorStats);
    }

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, k1 = config.Latent, k2 = config.Latent2;
        var epsilon1 = epsilon[..(rows * k1)];
        var epsilon2 = epsilon[(rows * k1)..];
        var stats1 = layers.Run(0, layout.EncoderLayerCount, x, batch);
        var latents = Sample(layers, config, stats1, epsilon1, epsilon2, batch);
        var output = layers.Run(layout.DecoderStart, layout.Layers.Count, latents.Z1, rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, unitGradient) = LossReference.Reconstruction(config.Likelihood, target, output, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        var logWeights = config.Covariance == CovarianceKind.RankOne
            ? RankOneLogWeights(latents, reconstruction, rows, k1, k2)
            : TwoLayerReference.LogWeights(latents.RowStats1, latents.Z1, latents.RowStats2, latents.Z2, latents.PriorStats, reconstruction, rows, k1, k2);
        return new Pass(layers, stats1, latents.RowStats1, latents.Z1, epsilon1, latents.RowStats2, latents.Z2, epsilon2,
            reconstruction, unitGradient, logWeights, rows);
    }

    /// <summary>z = μ + σε, or μ + Rε with a rank-one covariance.</summary>
    private static double[] Draw(VaeConfig config, double[] rowStats, double[] epsilon, int rows, int latent) =>
        config.Covariance == CovarianceKind.RankOne ? RankOneReference.Forward(rowStats, epsilon, rows, latent).Z
            : LossReference.ReparameterizeForward(rowStats, epsilon, rows, latent).z;

    /// <summary>log w = −rec + log p(z1|z2) + log N(z2; 0, I) − log q(z1|x) − log q(z2|z1) with both q's N(μ, C) of
    /// rank-one precisions, every density in full.</summary>
    private static double[] RankOneLogWeights(Latents latents, double[] reconstruction, int rows, int k1, int k2)
    {
        var logQ1 = RankOneReference.LogDensity(latents.RowStats1, latents.Z1, rows, k1);
        var logQ2 = RankOneReference.LogDensity(latents.RowStats2, latents.Z2, rows, k2);
        return Enumerable.Range(0, rows).Select(r => -reconstruction[r] - logQ1[r] - logQ2[r]
            + Enumerable.Range(0, k1).Sum(k => TwoLayerReference.LogNormal(latents.Z1[r * k1 + k], latents.PriorStats[r * 2 * k1 + k], latents.PriorStats[r * 2 * k1 + k1 + k]))
            + Enumerable.Range(0, k2).Sum(k => TwoLayerReference.LogNormal(latents.Z2[r * k2 + k], 0, 0))).ToArray();
    }

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training);
        var layers = pass.Layers;
        var layout = layers.Layout;
        int samples = config.Samples, rows = pass.Rows, k1 = config.Latent;
        var kl = Enumerable.Range(0, rows).Select(r => -pass.LogWeights[r] - pass.ReconstructionPerRow[r]).ToArray();
        double loss;
        double[] rowWeight;
        if (config.Model == ModelKind.Iwae)
        {
            var (negativeBound, normalized) = ImportanceReference.Bound(pass.LogWeights, batch, samples);
            loss = negativeBound.Average();
            rowWeight = normalized.Select(w => w / batch).ToArray();
            beta = 1;
        }
        else
        {
            loss = pass.ReconstructionPerRow.Average() + beta * kl.Average();
            rowWeight = Enumerable.Repeat(1.0 / rows, rows).ToArray();
        }

        var gradient = new double[layout.Count];
        // p(x|z1): the reconstruction's gradient, row r weighted by c_r.
        var dLogits = pass.ReconstructionGradient.Select((g, i) => rowWeight[i / config.InputSize] * g).ToArray();
        var dZ1 = layers.Backward(layout.DecoderStart, layout.Layers.Count, dLogits, rows, gradient);

        // p(z1|z2) = N(m, e^u): −log p = ½((z1 − m)²e^(−u) + u + log 2π).
        var klRowWeight = rowWeight.Select(c => beta * c).ToArray();
        var priorStats = layers.Outputs[layout.DecoderStart - 1];
        var (dPriorStats, dZ1FromPrior) = TwoLayerReference.PriorGradient(pass.Z1, priorStats, klRowWeight, rows, k1);
        EncoderBackward(config, pass, dZ1, dZ1FromPrior, dPriorStats, rowWeight, klRowWeight, beta, batch, gradient);
        return new ReferenceVae.Result(loss, pass.ReconstructionPerRow.Average(), kl.Average(), gradient, layers.RunningAverages);
    }

    /// <summary>
    /// From dz1 (the decoder's, and the prior's given apart) and the prior network's output gradient down to the data: the prior
    /// network to dz2; p(z2) = N(0, I) through z2 and log q(z2|z1) = −½Σ(ε2² + v2 + log 2π) directly (ε fixed);
    /// q(z2|z1)'s layers add to dz1; log q(z1|x) likewise, then the samples' gradients summed per example.
    /// </summary>
    private static void EncoderBackward(VaeConfig config, Pass pass, double[] dZ1, double[] dZ1FromPrior, double[] dPriorStats, double[] rowWeight,
        double[] klRowWeight, double beta, int batch, double[] gradient)
    {
        var layers = pass.Layers;
        var layout = layers.Layout;
        int samples = config.Samples, rows = pass.Rows, k1 = config.Latent, k2 = config.Latent2;
        var dZ2 = layers.Backward(layout.Encoder2End, layout.DecoderStart, dPriorStats, rows, gradient);
        bool rankOne = config.Covariance == CovarianceKind.RankOne;
        var dStats2 = rankOne ? RankOneReference.WeightedBackward(pass.RowStats2, pass.Z2, pass.Epsilon2, dZ2, rowWeight, rows, k2, beta)
            : ImportanceReference.SamplerBackward(pass.RowStats2, pass.Z2, pass.Epsilon2, dZ2, rowWeight, rows, k2, beta);
        var dZ1FromEncoder2 = layers.Backward(layout.EncoderLayerCount, layout.Encoder2End, dStats2, rows, gradient);
        for (int i = 0; i < dZ1.Length; i++)
            dZ1[i] += dZ1FromEncoder2[i] + dZ1FromPrior[i];
        // z1's prior is p(z1|z2), whose pull is already in dz1.
        var dRepeatedStats1 = rankOne ? RankOneReference.WeightedBackward(pass.RowStats1, pass.Z1, pass.Epsilon1, dZ1, rowWeight, rows, k1, beta, standardPrior: false)
            : TwoLayerReference.SamplerBackward(pass.RowStats1, pass.Epsilon1, dZ1, klRowWeight, rows, k1);
        var dStats1 = ImportanceReference.SumRepeatedRows(dRepeatedStats1, batch, config.PosteriorBlocks * k1, samples);
        layers.Backward(0, layout.EncoderLayerCount, dStats1, batch, gradient);
    }
}
