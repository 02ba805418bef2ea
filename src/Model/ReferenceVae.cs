using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model;

/// <summary>
/// The whole objective of any family and its gradient in double precision (see <see cref="ReferenceModel"/>;
/// each family's reference lives in its folder): the pipeline against which <see cref="Vae"/> is checked step
/// for step.
/// </summary>
public static class ReferenceVae
{
    /// <summary>The objective's value, its mean terms per z row, its gradient, and for batch-normalised layers in a
    /// training pass the running averages after it (offset in the parameters → values).</summary>
    public sealed record Result(double Loss, double Reconstruction, double Kl, double[] Gradient,
        IReadOnlyDictionary<int, double[]>? RunningAverages = null)
    {
        /// <summary>What the gradient includes and <see cref="Loss"/> (what training reports) does not: −log p(θ) of
        /// the weight prior (‖θ‖²/(2κ) over the decoder's weights), and AnchorVAE's −λ·β·(the anchors' KL).</summary>
        public double Penalty { get; init; }

        /// <summary>What <see cref="Gradient"/> is the gradient of (outside the auxiliary parameters).</summary>
        public double Objective => (PrimaryObjective ?? Loss) + Penalty;

        /// <summary>What the parameters outside the auxiliary group train on, where that is not the reported loss
        /// (stacked CorEx's first layer: rec + β·KL1); null: the loss.</summary>
        public double? PrimaryObjective { get; init; }

        /// <summary>The objective of the parameters from <see cref="AuxiliaryFrom"/> on (and of those
        /// <see cref="IsAuxiliary"/> picks), where a model trains part of itself on an objective of its own (the
        /// mutual autoencoder's r, on −mean log r; stacked CorEx's second layer, on its own bound).</summary>
        public double AuxiliaryObjective { get; init; }
        public int AuxiliaryFrom { get; init; } = int.MaxValue;
        public Func<int, bool>? IsAuxiliary { get; init; }

        /// <summary>The parameters whose gradient is a score-function estimate (the sigmoid belief network's encoder):
        /// unbiased over the draws, but not the derivative of the objective at fixed draws, which is flat in them
        /// where the draws are discrete; finite differences skip them (null: none).</summary>
        public Func<int, bool>? ScoreFunction { get; init; }

        /// <summary>What parameter <paramref name="index"/>'s gradient is the derivative of.</summary>
        public double ObjectiveOf(int index) => index >= AuxiliaryFrom || IsAuxiliary?.Invoke(index) == true ? AuxiliaryObjective : Objective;
    }

    /// <summary>The ε that <see cref="Vae"/> draws for training step <paramref name="step"/>, in double.</summary>
    public static double[] Epsilon(ulong seed, long step, int batch, int latent, uint stream = Philox.Streams.Reparameterize) =>
        Enumerable.Range(0, batch * latent)
            .Select(element => Philox.NormalDouble(seed, stream, step, element)).ToArray();

    /// <summary>All the ε a model draws for <paramref name="batch"/> examples at one step, as
    /// <see cref="LossAndGradient"/> takes them: ε [batch·k, K], then for two stochastic layers ε2 [batch·k, K2]
    /// from the second layer's stream, or for the InfoVAE the prior draws [batch, K] that MMD compares z with.</summary>
    public static double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream = Philox.Streams.Reparameterize) =>
        Models.ModelCatalog.FamilyOf(config).Reference.Epsilon(config, seed, step, batch, stream);

    /// <summary>log w = log p(x|z) + log p(z) − log q(z|x) per row, for the given ε.</summary>
    public static double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch) =>
        Models.ModelCatalog.FamilyOf(config).Reference.LogWeights(config, parameters, x, epsilon, batch);

    /// <summary>
    /// The objective and its gradient for a batch with ε as <see cref="Epsilon(VaeConfig, ulong, long, int, uint)"/>
    /// draws them (none for the autoencoder), with β = <paramref name="klWeight"/> (default the config's).
    /// Reconstruction and Kl are means per z row.
    /// </summary>
    public static Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch,
        double? klWeight = null, int[]? labels = null, bool training = true)
    {
        var result = Models.ModelCatalog.FamilyOf(config).Reference.LossAndGradient(config, parameters, x, epsilon, batch, klWeight ?? config.Beta, labels, training);
        if (config.WeightPrior is not { } kappa)
            return result;
        // N(0, κI) on the decoder's weight matrices: ‖θ‖²/(2κ), gradient θ/κ.
        var layout = new ParameterLayout(config);
        double penalty = 0;
        var gradient = (double[])result.Gradient.Clone();
        foreach (var layer in layout.Layers.Take(layout.DecoderEnd).Skip(layout.DecoderStart))
            for (int i = layer.WeightOffset; i < layer.WeightOffset + layer.WeightCount; i++)
            {
                penalty += parameters[i] * parameters[i] / (2 * kappa);
                gradient[i] += parameters[i] / kappa;
            }
        return result with { Gradient = gradient, Penalty = result.Penalty + penalty };
    }

    /// <summary>Writes a training pass's running averages (see <see cref="Result.RunningAverages"/>) into the
    /// parameters, as the device's forward pass does before Adam's step (which leaves them alone: their gradient
    /// is zero).</summary>
    public static void ApplyRunningAverages(double[] parameters, Result result)
    {
        if (result.RunningAverages is null)
            return;
        foreach (var (offset, values) in result.RunningAverages)
            values.CopyTo(parameters, offset);
    }
}
