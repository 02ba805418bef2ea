using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Core;

/// <summary>
/// The names of the device buffers every family shares (a family names its own in its folder), and the plan of
/// those buffers: parameters, optimiser state, loss totals, the batch, the latent rows and the per-row terms.
/// </summary>
public static class ModelBuffers
{
    public const string Parameters = "parameters", Gradients = "gradients", FirstMoment = "adam.first_moment",
        SecondMoment = "adam.second_moment", GradientScale = "gradient_scale", ClipPartials = "clip_partials",
        TrainingTotals = "totals.training", EvaluationTotals = "totals.evaluation";
    public const string Input = "x", Z = "z", Epsilon = "epsilon", ZGradient = "dz", KlPerRow = "kl_per_row",
        ReconstructionPerRow = "reconstruction_per_row", LogWeights = "log_weights", NormalizedWeights = "normalized_weights",
        ObjectivePerExample = "objective_per_example", UnusedBiasGradient = "batch_norm.bias_gradient_unused";

    public static string LayerOutput(int layer) => $"layer{layer}.output";
    public static string LayerGradient(int layer) => $"layer{layer}.gradient";
    public static string PreActivation(int layer) => $"layer{layer}.pre_activation";
    public static string NormStatistics(int layer) => $"layer{layer}.norm_statistics";

    /// <summary>The slots of the loss totals: reconstruction, KL and rows (see <see cref="LossSums"/>), the
    /// per-example objective and its examples, and the Deep VIB's correct rows.</summary>
    public const int TotalsLength = 6, CorrectSlot = 5;

    /// <summary>
    /// The buffers every family uses, for batches of <paramref name="batch"/> examples and
    /// <paramref name="rows"/> latent rows: parameters with their gradient and Adam's moments, the gradient
    /// scale (and clipping's scratch when clipping is on), both loss totals, the batch, z (with ε and dz when it is
    /// sampled), and the per-row KL and reconstruction terms. Families with a likelihood bound add log w themselves.
    /// </summary>
    public static void PlanShared(WorkspacePlan plan, ParameterLayout layout, VaeConfig config, AdamSettings adam, long batch, long rows)
    {
        foreach (var name in new[] { Parameters, Gradients, FirstMoment, SecondMoment })
            plan.Floats(name, layout.Count);
        plan.Floats(GradientScale, 2);
        if (adam.MaxGradientNorm is not null)
            plan.Floats(ClipPartials, GradientClipping.Slots);
        plan.Doubles(TrainingTotals, TotalsLength);
        plan.Doubles(EvaluationTotals, TotalsLength);
        plan.Floats(Input, batch * config.InputSize);
        // z is also where Decode puts the codes it is given, the autoencoder's included.
        plan.Floats(Z, rows * config.CodeWidth);
        // Draws and the gradient of z for a sampled latent; the autoencoder's code is the encoder's own output.
        if (config.Spec.Has(Models.ModelCapabilities.Posterior))
        {
            plan.Floats(Epsilon, rows * config.CodeWidth);
            plan.Floats(ZGradient, rows * config.CodeWidth);
        }
        plan.Floats(KlPerRow, rows);
        plan.Floats(ReconstructionPerRow, rows);
    }
}
