using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model;

public sealed partial class Vae
{
    /// <summary>The names of the device buffers in a <see cref="Vae"/>'s workspace.</summary>
    private static class Buffers
    {
        public const string Parameters = "parameters", Gradients = "gradients", FirstMoment = "adam.first_moment",
            SecondMoment = "adam.second_moment", GradientScale = "gradient_scale", ClipPartials = "clip_partials",
            TrainingTotals = "totals.training", EvaluationTotals = "totals.evaluation";
        public const string Input = "x", Z = "z", Epsilon = "epsilon", ZGradient = "dz", KlPerRow = "kl_per_row",
            ReconstructionPerRow = "reconstruction_per_row", LogWeights = "log_weights", NormalizedWeights = "normalized_weights",
            ObjectivePerExample = "objective_per_example";
        public const string Z2 = "z2", Epsilon2 = "epsilon2", Z2Gradient = "dz2", Z1GradientFromEncoder2 = "dz1_from_encoder2",
            UnusedKl2 = "kl2_unused", EqualWeights = "equal_weights";
        public const string PriorDraws = "mmd.prior_draws", MmdPerRow = "mmd.per_row", RateSign = "target_rate.sign",
            CorrectPerRow = "vib.correct_per_row";
        public const string View1 = "vcca.view1", View2 = "vcca.view2", JointOutput = "vcca.joint_output",
            JointOutputGradient = "vcca.joint_output_gradient", ZGradientFromView2 = "vcca.dz_from_view2";
        public const string MergedStats = "ladder.merged_stats", MergedStatsGradient = "ladder.merged_stats_gradient",
            HiddenGradientFromAbove = "ladder.hidden_gradient_from_above", UnusedBiasGradient = "batch_norm.bias_gradient_unused";

        public static string LayerOutput(int layer) => $"layer{layer}.output";
        public static string LayerGradient(int layer) => $"layer{layer}.gradient";
        public static string PreActivation(int layer) => $"layer{layer}.pre_activation";
        public static string NormStatistics(int layer) => $"layer{layer}.norm_statistics";
    }

    /// <summary>
    /// Every device buffer a model of <paramref name="config"/> uses for batches of up to
    /// <paramref name="maxBatch"/> examples, and only those: what the constructor allocates and what
    /// <see cref="MemoryPlan"/> adds up. With k samples, buffers after the encoder hold one row per sample.
    /// </summary>
    public static WorkspacePlan Plan(VaeConfig config, int maxBatch, AdamSettings? adam = null)
    {
        var layout = new ParameterLayout(config);
        var plan = new WorkspacePlan();
        long batch = maxBatch, rows = (long)maxBatch * config.Samples;
        var model = config.Model;
        bool twoLayers = config.StochasticLayers == 2, ladder = model == ModelKind.Ladder;
        bool importance = model == ModelKind.Iwae;

        // Parameters, their gradient and Adam's moments, in one flat layout each.
        foreach (var name in new[] { Buffers.Parameters, Buffers.Gradients, Buffers.FirstMoment, Buffers.SecondMoment })
            plan.Floats(name, layout.Count);
        plan.Floats(Buffers.GradientScale, 2);
        if ((adam ?? new AdamSettings()).MaxGradientNorm is not null)
            plan.Floats(Buffers.ClipPartials, GradientClipping.Slots);
        plan.Doubles(Buffers.TrainingTotals, TotalsLength);
        plan.Doubles(Buffers.EvaluationTotals, TotalsLength);

        plan.Floats(Buffers.Input, batch * config.InputSize);
        // z is also where Decode puts the codes it is given, the autoencoder's included.
        plan.Floats(Buffers.Z, rows * config.Latent);
        plan.Floats(Buffers.Epsilon, rows * config.Latent);
        plan.Floats(Buffers.ZGradient, rows * config.Latent);
        plan.Floats(Buffers.KlPerRow, rows);
        plan.Floats(Buffers.ReconstructionPerRow, rows);
        // log w for L_k: every model with a q(z|x) and a likelihood of x.
        if (model is not (ModelKind.Ae or ModelKind.Vib))
            plan.Floats(Buffers.LogWeights, rows);
        if (importance)
            plan.Floats(Buffers.NormalizedWeights, rows);
        if (importance || model == ModelKind.InfoVae || config.TargetRate is not null)
            plan.Floats(Buffers.ObjectivePerExample, batch);
        if (twoLayers)
        {
            plan.Floats(Buffers.Z2, rows * config.Latent2);
            plan.Floats(Buffers.Epsilon2, rows * config.Latent2);
            plan.Floats(Buffers.Z2Gradient, rows * config.Latent2);
            plan.Floats(Buffers.UnusedKl2, rows);
            // The Ladder VAE's z1 has no reader above it but the decoder and the prior.
            if (!ladder)
                plan.Floats(Buffers.Z1GradientFromEncoder2, rows * config.Latent);
            if (!importance)
                plan.Floats(Buffers.EqualWeights, rows);
        }
        if (model == ModelKind.InfoVae)
        {
            plan.Floats(Buffers.PriorDraws, batch * config.Latent);
            plan.Floats(Buffers.MmdPerRow, batch);
        }
        if (config.TargetRate is not null)
            plan.Floats(Buffers.RateSign, 1);
        if (model == ModelKind.Vib)
            plan.Floats(Buffers.CorrectPerRow, rows);
        if (model == ModelKind.Vcca)
        {
            plan.Floats(Buffers.View1, batch * config.Views.View1Size);
            plan.Floats(Buffers.View2, batch * config.Views.View2Size);
            plan.Floats(Buffers.JointOutput, rows * config.InputSize);
            plan.Floats(Buffers.JointOutputGradient, rows * config.InputSize);
            plan.Floats(Buffers.ZGradientFromView2, rows * config.Latent);
        }
        if (ladder)
        {
            plan.Floats(Buffers.MergedStats, rows * 2 * config.Latent);
            plan.Floats(Buffers.MergedStatsGradient, rows * 2 * config.Latent);
            plan.Floats(Buffers.HiddenGradientFromAbove, batch * config.Hidden[^1]);
        }
        for (int i = 0; i < layout.Layers.Count; i++)
        {
            var layer = layout.Layers[i];
            long layerRows = RowsOf(layout, config, i, maxBatch, config.Samples);
            plan.Floats(Buffers.LayerOutput(i), layerRows * layer.Outputs);
            plan.Floats(Buffers.LayerGradient(i), layerRows * layer.Outputs);
            if (layer.BatchNorm)
            {
                plan.Floats(Buffers.PreActivation(i), layerRows * layer.Outputs);
                plan.Floats(Buffers.NormStatistics(i), 2 * layer.Outputs);
            }
        }
        if (layout.Layers.Any(layer => layer.BatchNorm))
            plan.Floats(Buffers.UnusedBiasGradient, layout.Layers.Where(layer => layer.BatchNorm).Max(layer => layer.Outputs));
        return plan;
    }

    /// <summary>Rows layer i sees for a batch with <paramref name="samples"/> z per example: one per example in the
    /// encoder (both encoders in the Ladder VAE), one per sample above it.</summary>
    private static long RowsOf(ParameterLayout layout, VaeConfig config, int layer, int batch, int samples) =>
        layer < (config.Model == ModelKind.Ladder ? layout.Encoder2End : layout.EncoderLayerCount) ? batch : (long)batch * samples;
}
