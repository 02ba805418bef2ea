using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.StackedCorex;

/// <summary>
/// Stacked CorEx in double, layer by layer as the hierarchical bound reads: layer 1 is CorEx on x (z1 ~ q(z1|x),
/// KL to r1, p(x|z1)), layer 2 is CorEx on z1 (z2 ~ q(z2|z1), KL to r2, q(z1|z2) a factorized Gaussian, r1 standing
/// for z1's marginal). The loss is the mean over z rows of rec + β·(KL1 + KL2 − log q(z1|z2) + log r1(z1)); each
/// layer trains on its own terms (layer 2 takes z1 and r1 as given, so its gradient stops at them), with the
/// anchors' share of KL1 weighted 1 − λ in
/// training (reported apart, as one-layer CorEx does). ε is [ε1 [batch·k, K1] | ε2 [batch·k, K2]], ε2 from the
/// second layer's stream.
/// </summary>
public sealed class StackedCorexModelReference : ReferenceModel
{
    private sealed record Pass(ReferenceLayers Layers, double[] Marginal1, double[] Marginal2, double[] RepeatedStats1, double[] Z1,
        double[] Stats2, double[] Z2, double[] Z1Stats, double[] Kl1, double[] KlPerRow, double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream) =>
        [.. base.Epsilon(config, seed, step, batch, stream),
         .. ReferenceVae.Epsilon(seed, step, batch * config.Samples, config.Latent2, stream + Philox.Streams.SecondLayerOffset)];

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, k1 = config.Latent, k2 = config.Latent2;
        var marginal1 = layers.Run(layout.AuxiliaryStart, layout.AuxiliaryStart + 1, [1.0], 1);
        var marginal2 = layers.Run(layout.AuxiliaryStart + 1, layout.AuxiliaryStart + 2, [1.0], 1);
        var stats1 = layers.Run(0, layout.EncoderLayerCount, x, batch);
        var repeated1 = ImportanceReference.RepeatRows(stats1, batch, config.PosteriorBlocks * k1, samples);
        var (z1, kl1) = LayerForward(config, repeated1, marginal1, epsilon[..(rows * k1)], rows, k1);
        var stats2 = layers.Run(layout.EncoderLayerCount, layout.Encoder2End, z1, rows);
        var (z2, kl2) = LayerForward(config, stats2, marginal2, epsilon[(rows * k1)..], rows, k2);
        var z1Stats = layers.Run(layout.Encoder2End, layout.DecoderStart, z2, rows);
        var z1Term = StackedCorexReference.LayerReconstruction(z1, z1Stats, marginal1, rows, k1);
        var output = layers.Run(layout.DecoderStart, layout.DecoderEnd, z1, rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, unitGradient) = LossReference.Reconstruction(config.Likelihood, target, output, rows, config.InputSize, config.GaussianVariance, 1.0);
        var kl = Enumerable.Range(0, rows).Select(r => kl1[r] + kl2[r] + z1Term[r]).ToArray();
        return new Pass(layers, marginal1, marginal2, repeated1, z1, stats2, z2, z1Stats, kl1, kl, reconstruction, unitGradient, rows);
    }

    /// <summary>One layer's z and KL against its factorized marginal, for a diagonal or a rank-one q.</summary>
    private static (double[] Z, double[] Kl) LayerForward(VaeConfig config, double[] stats, double[] marginal, double[] epsilon, int rows, int latent) =>
        config.Covariance == CovarianceKind.RankOne
            ? RankOneMarginalReference.Forward(stats, marginal, epsilon, rows, latent)
            : FactorizedPriorReference.Forward(stats, marginal, epsilon, rows, latent);

    /// <summary>One layer's backward pass to its stats and marginal (the anchors' weights for a diagonal q).</summary>
    private static (double[] DStats, double[] DMarginal) LayerBackward(VaeConfig config, double[] stats, double[] marginal, double[] epsilon, double[] dZ,
        int rows, int latent, int anchors, double klWeight) =>
        config.Covariance == CovarianceKind.RankOne
            ? RankOneMarginalReference.Backward(stats, marginal, epsilon, dZ, rows, latent, klWeight)
            : FactorizedPriorReference.Backward(stats, marginal, epsilon, dZ, rows, latent, FactorizedPriorReference.Weights(latent, anchors, 1 - config.AnchorWeight), klWeight);

    /// <summary>Layer 1's weights against r1.</summary>
    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training: false);
        return config.Covariance == CovarianceKind.RankOne
            ? RankOneMarginalReference.LogWeights(pass.RepeatedStats1, pass.Marginal1, pass.Z1, pass.ReconstructionPerRow, pass.Rows, config.Latent)
            : FactorizedPriorReference.LogWeights(pass.RepeatedStats1, pass.Marginal1, pass.Z1, pass.ReconstructionPerRow, pass.Rows, config.Latent);
    }

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training);
        var (layers, rows) = (pass.Layers, pass.Rows);
        var layout = layers.Layout;
        int samples = config.Samples, k1 = config.Latent, k2 = config.Latent2;
        var (epsilon1, epsilon2) = (epsilon[..(rows * k1)], epsilon[(rows * k1)..]);
        double perRow = beta / rows;
        var gradient = new double[layout.Count];

        var dZ1 = layers.Backward(layout.DecoderStart, layout.DecoderEnd, pass.ReconstructionGradient.Select(g => g / rows).ToArray(), rows, gradient);
        var dZ1Stats = StackedCorexReference.LayerReconstructionBackward(pass.Z1, pass.Z1Stats, rows, k1, perRow);
        var dZ2 = layers.Backward(layout.Encoder2End, layout.DecoderStart, dZ1Stats, rows, gradient);
        var (dStats2, dMarginal2) = LayerBackward(config, pass.Stats2, pass.Marginal2, epsilon2, dZ2, rows, k2, 0, perRow);
        // z1 is layer 2's data: q(z2|z1)'s network takes its weights' gradient and passes none back.
        layers.Backward(layout.EncoderLayerCount, layout.Encoder2End, dStats2, rows, gradient);
        // Each example's KL1 is counted on each of its k rows: β/rows per row is β/batch per example.
        var (dRepeated1, dMarginal1) = LayerBackward(config, pass.RepeatedStats1, pass.Marginal1, epsilon1, dZ1, rows, k1, config.Anchors, perRow);
        layers.Backward(0, layout.EncoderLayerCount, ImportanceReference.SumRepeatedRows(dRepeated1, batch, config.PosteriorBlocks * k1, samples), batch, gradient);
        layers.Backward(layout.AuxiliaryStart, layout.AuxiliaryStart + 1, dMarginal1, 1, gradient);
        layers.Backward(layout.AuxiliaryStart + 1, layout.AuxiliaryStart + 2, dMarginal2, 1, gradient);

        double reconstruction = pass.ReconstructionPerRow.Average(), klMean = pass.KlPerRow.Average();
        // The anchors train on (1 − λ)·KL1: their λ share is the difference between the trained and the reported loss.
        double anchorTerm = 0;
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < config.Anchors; k++)
                anchorTerm -= config.AnchorWeight * perRow * FactorizedPriorReference.Kl(pass.RepeatedStats1[row * 2 * k1 + k],
                    pass.RepeatedStats1[row * 2 * k1 + k1 + k], pass.Marginal1[k], pass.Marginal1[k1 + k]);
        // Layer 1's parameters (encoder, decoder, r1) train on rec + β·KL1, layer 2's (q(z2|z1), q(z1|z2), r2) on β times
        // its own terms: the gradient of each group is the derivative of its own objective.
        double layer1 = reconstruction + beta * pass.Kl1.Average(), layer2 = beta * (klMean - pass.Kl1.Average());
        int secondMarginal = layout.Layers[layout.AuxiliaryStart + 1].WeightOffset;
        int layer2From = layout.Layers[layout.EncoderLayerCount].WeightOffset, layer2To = layout.Layers[layout.DecoderStart].WeightOffset;
        return new ReferenceVae.Result(reconstruction + beta * klMean, reconstruction, klMean, gradient)
        {
            Penalty = anchorTerm,
            PrimaryObjective = layer1,
            AuxiliaryObjective = layer2,
            IsAuxiliary = index => (index >= layer2From && index < layer2To) || index >= secondMarginal,
        };
    }
}
