using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.TwoLayer;

namespace IlgpuVae.Model.Models.Ladder;

/// <summary>The Ladder VAE in double: the two-layer objective with the bottom-up pass, the merge and its backward pass.</summary>
public sealed class LadderModelReference : TwoLayerModelReference
{
    /// <summary>Bottom-up to q(z2|x) from the top hidden layer; z2, the top-down prior, the merge, then z1.</summary>
    protected override Latents Sample(ReferenceLayers layers, VaeConfig config, double[] stats1, double[] epsilon1, double[] epsilon2, int batch)
    {
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, k1 = config.Latent, k2 = config.Latent2;
        var stats2 = layers.Run(layout.EncoderLayerCount, layout.Encoder2End, layers.Outputs[layout.EncoderLayerCount - 2], batch);
        var rowStats2 = ImportanceReference.RepeatRows(stats2, batch, 2 * k2, samples);
        var (z2, _) = LossReference.ReparameterizeForward(rowStats2, epsilon2, rows, k2);
        var priorStats = layers.Run(layout.Encoder2End, layout.DecoderStart, z2, rows);
        var rowStats1 = LadderReference.Merge(stats1, priorStats, rows, k1, samples);
        var (z1, _) = LossReference.ReparameterizeForward(rowStats1, epsilon1, rows, k1);
        return new Latents(rowStats1, z1, rowStats2, z2, priorStats);
    }

    /// <summary>
    /// z1 ~ q(z1|x, z2) = the merge of the bottom-up stats and the prior: log q directly (ε fixed), then the merge's
    /// two inputs. z2 ~ q(z2|x), one stats row per example, with the N(0, I) prior. Both bottom-up stages meet at
    /// the encoder's top hidden layer.
    /// </summary>
    protected override void EncoderBackward(VaeConfig config, Pass pass, double[] dZ1, double[] dZ1FromPrior, double[] dPriorStats, double[] rowWeight,
        double[] klRowWeight, double beta, int batch, double[] gradient)
    {
        var layers = pass.Layers;
        var layout = layers.Layout;
        int samples = config.Samples, rows = pass.Rows, k1 = config.Latent, k2 = config.Latent2;
        var priorStats = layers.Outputs[layout.DecoderStart - 1];
        for (int i = 0; i < dZ1.Length; i++)
            dZ1[i] += dZ1FromPrior[i];
        var dMerged = TwoLayerReference.SamplerBackward(pass.RowStats1, pass.Epsilon1, dZ1, klRowWeight, rows, k1);
        var (dStats1, dPriorFromMerge) = LadderReference.MergeBackward(pass.Stats1, priorStats, dMerged, rows, k1, samples);
        for (int i = 0; i < dPriorStats.Length; i++)
            dPriorStats[i] += dPriorFromMerge[i];
        var dZ2 = layers.Backward(layout.Encoder2End, layout.DecoderStart, dPriorStats, rows, gradient);
        var dRowStats2 = ImportanceReference.SamplerBackward(pass.RowStats2, pass.Z2, pass.Epsilon2, dZ2, rowWeight, rows, k2, beta);
        var dStats2 = ImportanceReference.SumRepeatedRows(dRowStats2, batch, 2 * k2, samples);
        var dHiddenFromAbove = layers.Backward(layout.EncoderLayerCount, layout.Encoder2End, dStats2, batch, gradient);
        var dHidden = layers.Backward(layout.EncoderLayerCount - 1, layout.EncoderLayerCount, dStats1, batch, gradient);
        layers.Backward(0, layout.EncoderLayerCount - 1, dHidden.Select((d, i) => d + dHiddenFromAbove[i]).ToArray(), batch, gradient);
    }
}
