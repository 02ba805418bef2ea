using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.OneLayer;

/// <summary>
/// The one-layer model's objectives in double: VAE (mean over examples and samples of rec + β·KL), IWAE (mean over
/// examples of −L_k), autoencoder (mean rec with z the code), InfoVAE (+ λ·MMD²), target rate (rec + |KL − σ|)
/// and the Deep VIB (a cross-entropy term in place of the reconstruction).
/// </summary>
public class OneLayerModelReference : ReferenceModel
{
    /// <summary>The forward pass in double: the layers (each one's input and output), the stats repeated once per
    /// sample, z (the autoencoder's code), and the per-row KL and reconstruction terms (rows = batch·k).</summary>
    private sealed record Pass(ReferenceLayers Layers, double[] RepeatedStats, double[] Z, double[] KlPerRow,
        double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows)
    {
        /// <summary>A learned prior's components [C, 2·latent] (empty with N(0, I)).</summary>
        public double[] Components { get; init; } = [];
    }

    /// <summary>The InfoVAE also draws as many prior samples as the batch has examples, from the stream beside the sampler's.</summary>
    public override double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream)
    {
        var first = base.Epsilon(config, seed, step, batch, stream);
        return config.Model == ModelKind.InfoVae
            ? [.. first, .. ReferenceVae.Epsilon(seed, step, batch, config.Latent, stream + Philox.Streams.MmdPriorOffset)]
            : first;
    }

    /// <summary>What the encoder reads.</summary>
    protected virtual double[] EncoderInput(VaeConfig config, double[] x, int batch) => x;

    /// <summary>The decoder's output from z.</summary>
    protected virtual double[] DecoderForward(ReferenceLayers layers, VaeConfig config, double[] z, int rows) =>
        layers.Run(layers.Layout.DecoderStart, layers.Layout.DecoderEnd, z, rows);

    /// <summary>From the output's gradient back to z's, writing the decoder's parameter gradients.</summary>
    protected virtual double[] DecoderBackward(ReferenceLayers layers, VaeConfig config, double[] dOutput, int rows, double[] gradient) =>
        layers.Backward(layers.Layout.DecoderStart, layers.Layout.DecoderEnd, dOutput, rows, gradient);

    private Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training,
        int[]? labels = null)
    {
        var layers = new ReferenceLayers(config, parameters, training);
        var layout = layers.Layout;
        int samples = config.Samples, rows = batch * samples, latent = config.Latent;
        var (stats, components) = EncoderAndPrior(layers, config, EncoderInput(config, x, batch), batch);
        double[] repeatedStats = [], z = stats, kl = new double[rows];
        if (config.Model != ModelKind.Ae)
        {
            // Each example's q(z|x) sampled k times: its stats row repeated, one ε row per sample. (The autoencoder
            // decodes its code itself, with k = 1.)
            repeatedStats = ImportanceReference.RepeatRows(stats, batch, config.EncoderOutputs, samples);
            (z, kl) = config switch
            {
                { ModelPrior: PriorKind.Factorized, Covariance: CovarianceKind.RankOne } => RankOneMarginalReference.Forward(repeatedStats, components, epsilon, rows, latent),
                { FlowLength: > 0 } => PlanarFlowReference.Forward(repeatedStats, epsilon, rows, config.PosteriorFlow(1)),
                { Covariance: CovarianceKind.RankOne } => RankOneReference.Forward(repeatedStats, epsilon, rows, latent),
                { ModelPrior: PriorKind.Factorized } => FactorizedPriorReference.Forward(repeatedStats, components, epsilon, rows, latent),
                { ModelPrior: not PriorKind.Standard } => MixturePriorReference.Forward(repeatedStats, components, epsilon, rows, latent, config.PriorComponents),
                _ => LossReference.ReparameterizeForward(repeatedStats, epsilon, rows, latent),
            };
        }
        var output = DecoderForward(layers, config, z, rows);
        if (config.Model == ModelKind.Vib)
        {
            // The Deep VIB's decoder term: −log softmax(logits)[label] of each sample's example.
            var (loss, gradient, _) = ClassificationReference.CrossEntropy(output,
                Enumerable.Range(0, rows).Select(r => labels![r / samples]).ToArray(), rows, config.Classes);
            return new Pass(layers, repeatedStats, z, kl, loss, gradient, rows) { Components = components };
        }
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstructionPerRow, dOutput) = LossReference.Reconstruction(config.Likelihood, target, output, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layers, repeatedStats, z, kl, reconstructionPerRow, dOutput, rows) { Components = components };
    }

    /// <summary>The C×C identity a learned prior's layers read.</summary>
    private static double[] OneHotRows(int count) =>
        Enumerable.Range(0, count * count).Select(i => i / count == i % count ? 1.0 : 0.0).ToArray();

    /// <summary>The encoder's stats for the batch, and a learned prior's components: the mixture's from its layer
    /// on one-hot rows; the VampPrior's from the encoder run on its pseudo-inputs after the batch, in one pass as
    /// the model runs it.</summary>
    private static (double[] Stats, double[] Components) EncoderAndPrior(ReferenceLayers layers, VaeConfig config, double[] input, int batch)
    {
        var layout = layers.Layout;
        int count = config.ModelPriorComponents;
        switch (config.ModelPrior)
        {
            case PriorKind.Mixture or PriorKind.Factorized:
                return (layers.Run(0, layout.EncoderLayerCount, input, batch), layers.Run(layout.AuxiliaryStart, layout.Layers.Count, OneHotRows(count), count));
            case PriorKind.Vamp:
                var pseudoInputs = layers.Run(layout.AuxiliaryStart, layout.Layers.Count, OneHotRows(count), count);
                var all = layers.Run(0, layout.EncoderLayerCount, [.. input, .. pseudoInputs], batch + count);
                int split = batch * config.EncoderOutputs;
                return (all[..split], all[split..]);
            default:
                return (layers.Run(0, layout.EncoderLayerCount, input, batch), []);
        }
    }

    /// <summary>The encoder's backward pass from its stats' gradient, and a learned prior's layers from the
    /// components' gradient (through the encoder's pseudo-input rows for the VampPrior).</summary>
    private static void EncoderAndPriorBackward(ReferenceLayers layers, VaeConfig config, double[] dStats, double[] dComponents, int batch, double[] gradient)
    {
        var layout = layers.Layout;
        int count = config.ModelPriorComponents;
        switch (config.ModelPrior)
        {
            case PriorKind.Mixture or PriorKind.Factorized:
                layers.Backward(layout.AuxiliaryStart, layout.Layers.Count, dComponents, count, gradient);
                layers.Backward(0, layout.EncoderLayerCount, dStats, batch, gradient);
                break;
            case PriorKind.Vamp:
                var dInput = layers.Backward(0, layout.EncoderLayerCount, [.. dStats, .. dComponents], batch + count, gradient);
                layers.Backward(layout.AuxiliaryStart, layout.Layers.Count, dInput[(batch * config.EncoderInputs)..], count, gradient);
                break;
            default:
                layers.Backward(0, layout.EncoderLayerCount, dStats, batch, gradient);
                break;
        }
    }

    public override double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var pass = Forward(config, parameters, x, epsilon, batch, training: false);
        return LogWeights(config, pass, epsilon);
    }

    /// <summary>log w per row of a forward pass, for the posterior's covariance.</summary>
    private static double[] LogWeights(VaeConfig config, Pass pass, double[] epsilon) => config switch
    {
        { ModelPrior: PriorKind.Factorized, Covariance: CovarianceKind.RankOne } =>
            RankOneMarginalReference.LogWeights(pass.RepeatedStats, pass.Components, pass.Z, pass.ReconstructionPerRow, pass.Rows, config.Latent),
        { FlowLength: 0, Covariance: CovarianceKind.RankOne } => RankOneReference.LogWeights(pass.RepeatedStats, pass.Z, pass.ReconstructionPerRow, pass.Rows, config.Latent),
        // The flow's and a learned prior's KL terms are sampled: log w = −rec − it.
        { ModelPrior: PriorKind.Factorized } => FactorizedPriorReference.LogWeights(pass.RepeatedStats, pass.Components, pass.Z, pass.ReconstructionPerRow, pass.Rows, config.Latent),
        { FlowLength: > 0 } or { ModelPrior: not PriorKind.Standard } => pass.ReconstructionPerRow.Select((rec, r) => -rec - pass.KlPerRow[r]).ToArray(),
        _ => LossReference.LogWeights(pass.RepeatedStats, pass.Z, epsilon, pass.ReconstructionPerRow, pass.Rows, config.Latent),
    };

    public override ReferenceVae.Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon,
        int batch, double beta, int[]? labels, bool training)
    {
        if (config.Model == ModelKind.Vib && (labels is null || labels.Length < batch))
            throw new ArgumentException("the Deep VIB's objective needs each example's label");
        double[] priorDraws = [];
        if (config.Model == ModelKind.InfoVae)
            (epsilon, priorDraws) = (epsilon[..(batch * config.Latent)], epsilon[(batch * config.Latent)..]);
        var pass = Forward(config, parameters, x, epsilon, batch, training, labels);
        var (layers, rows) = (pass.Layers, pass.Rows);
        var layout = layers.Layout;
        int samples = config.Samples, latent = config.Latent;
        double reconstruction = pass.ReconstructionPerRow.Average();
        double klMean = pass.KlPerRow.Average();

        double loss;
        double[] rowWeights; // d loss / d rec_r
        double[] normalizedWeights = [];
        if (config.Model == ModelKind.Iwae)
        {
            var logWeights = LogWeights(config, pass, epsilon);
            (var negativeBound, normalizedWeights) = ImportanceReference.Bound(logWeights, batch, samples);
            loss = negativeBound.Average();
            rowWeights = normalizedWeights.Select(w => w / batch).ToArray();
        }
        else
        {
            loss = reconstruction + beta * klMean;
            rowWeights = Enumerable.Repeat(1.0 / rows, rows).ToArray();
        }
        if (config.Model == ModelKind.InfoVae)
            loss += config.MmdLambda * MmdReference.Squared(config.MmdKernel, pass.Z, priorDraws, batch, latent);
        if (config.TargetRate is { } rate)
        {
            // D + |σ − R|: the KL term's weight becomes sign(R − σ).
            loss = reconstruction + Math.Abs(rate - klMean);
            beta = Math.Sign(klMean - rate);
        }
        var dOutput = new double[pass.ReconstructionGradient.Length];
        for (int i = 0; i < dOutput.Length; i++)
            dOutput[i] = rowWeights[i / config.OutputSize] * pass.ReconstructionGradient[i];

        var gradient = new double[layout.Count];
        var dZ = DecoderBackward(layers, config, dOutput, rows, gradient);
        var dStats = dZ; // the autoencoder's code is its stats layer's output
        double[] dComponents = [];
        if (config.Model != ModelKind.Ae)
        {
            if (config.Model == ModelKind.InfoVae)
            {
                var dMmd = MmdReference.Gradient(config.MmdKernel, pass.Z, priorDraws, batch, latent);
                dZ = dZ.Select((value, index) => value + config.MmdLambda * dMmd[index]).ToArray();
            }
            (dStats, dComponents) = StatsGradient(config, pass, epsilon, dZ, normalizedWeights, batch, beta);
        }
        EncoderAndPriorBackward(layers, config, dStats, dComponents, batch, gradient);
        // AnchorVAE trains on rec + β·Σ_j w_j·KL_j with the anchors' w = 1 − λ, and reports the plain ELBO.
        double anchorTerm = 0;
        if (config.Anchors > 0 && config.ModelPrior == PriorKind.Factorized)
            for (int row = 0; row < rows; row++)
                for (int k = 0; k < config.Anchors; k++)
                    anchorTerm -= config.AnchorWeight * beta / rows * FactorizedPriorReference.Kl(pass.RepeatedStats[row * 2 * latent + k],
                        pass.RepeatedStats[row * 2 * latent + latent + k], pass.Components[k], pass.Components[latent + k]);
        return new ReferenceVae.Result(loss, reconstruction, klMean, gradient) { Penalty = anchorTerm };
    }

    /// <summary>From d loss/dz [batch·k, latent] to d loss/d stats [batch, 2·latent], and to a learned prior's
    /// components (empty with N(0, I)).</summary>
    private static (double[] DStats, double[] DComponents) StatsGradient(VaeConfig config, Pass pass, double[] epsilon, double[] dZ,
        double[] normalizedWeights, int batch, double beta)
    {
        int samples = config.Samples, latent = config.Latent, rows = pass.Rows;
        if (config.ModelPrior == PriorKind.Factorized)
        {
            // Each example's KL is counted on each of its k rows: β/rows per row is β/batch per example.
            var (dRepeated, dMarginal) = config.Covariance == CovarianceKind.RankOne
                ? RankOneMarginalReference.Backward(pass.RepeatedStats, pass.Components, epsilon, dZ, rows, latent, beta / rows)
                : FactorizedPriorReference.Backward(pass.RepeatedStats, pass.Components, epsilon, dZ, rows, latent,
                    FactorizedPriorReference.Weights(latent, config.Anchors, 1 - config.AnchorWeight), beta / rows);
            return (ImportanceReference.SumRepeatedRows(dRepeated, batch, config.EncoderOutputs, samples), dMarginal);
        }
        if (config.ModelPrior != PriorKind.Standard)
        {
            // The ELBO weights every row's KL by β/rows; the IWAE bound row r's by w̃_r/batch.
            var (dRepeated, dComponents) = config.Model == ModelKind.Iwae
                ? MixturePriorReference.Backward(pass.RepeatedStats, pass.Components, epsilon, dZ, rows, latent, config.PriorComponents, 1.0 / batch, normalizedWeights)
                : MixturePriorReference.Backward(pass.RepeatedStats, pass.Components, epsilon, dZ, rows, latent, config.PriorComponents, beta / rows);
            return (ImportanceReference.SumRepeatedRows(dRepeated, batch, config.EncoderOutputs, samples), dComponents);
        }
        var dRepeatedStats = config switch
        {
            { Model: ModelKind.Iwae, Covariance: CovarianceKind.RankOne } =>
                RankOneReference.WeightedBackward(pass.RepeatedStats, pass.Z, epsilon, dZ, normalizedWeights, rows, latent, 1.0 / batch),
            { Model: ModelKind.Iwae } => ImportanceReference.SamplerBackward(pass.RepeatedStats, pass.Z, epsilon, dZ, normalizedWeights, rows, latent, 1.0 / batch),
            // β·KL per example is β/k·KL on each of its k rows.
            { FlowLength: > 0 } => PlanarFlowReference.Backward(pass.RepeatedStats, epsilon, dZ, rows, config.PosteriorFlow(1), beta / rows),
            { Covariance: CovarianceKind.RankOne } => RankOneReference.Backward(pass.RepeatedStats, epsilon, dZ, rows, latent, beta / rows),
            _ => LossReference.ReparameterizeBackward(pass.RepeatedStats, epsilon, dZ, rows, latent, beta / rows),
        };
        return (ImportanceReference.SumRepeatedRows(dRepeatedStats, batch, config.EncoderOutputs, samples), []);
    }
}
