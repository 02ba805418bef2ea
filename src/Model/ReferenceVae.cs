using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Model;

/// <summary>
/// The whole objective (VAE, IWAE or autoencoder) and its gradient in double precision, built from the kernel
/// references: the pipeline against which <see cref="Vae"/> is checked step for step. Same layout, same
/// objective, same ε. It repeats each example's stats and target once per sample and sums the samples'
/// gradients back, where the kernels index row / k instead: the two must agree.
/// </summary>
public static class ReferenceVae
{
    /// <summary>The objective's value, its mean terms per z row, its gradient, and for batch-normalised layers in a
    /// training pass the running averages after it (offset in the parameters → values).</summary>
    public sealed record Result(double Loss, double Reconstruction, double Kl, double[] Gradient,
        IReadOnlyDictionary<int, double[]>? RunningAverages = null);

    /// <summary>The ε that <see cref="Vae"/> draws for training step <paramref name="step"/>, in double.</summary>
    public static double[] Epsilon(ulong seed, long step, int batch, int latent, uint stream = Philox.Streams.Reparameterize) =>
        Enumerable.Range(0, batch * latent)
            .Select(element => Philox.NormalDouble(seed, stream, step, element)).ToArray();

    /// <summary>All the ε a model draws for <paramref name="batch"/> examples at one step, as
    /// <see cref="LossAndGradient"/> takes them: ε [batch·k, K], then for two stochastic layers ε2 [batch·k, K2]
    /// from the second layer's stream, or for the InfoVAE the prior draws [batch, K] that MMD compares z with.</summary>
    public static double[] Epsilon(VaeConfig config, ulong seed, long step, int batch, uint stream = Philox.Streams.Reparameterize)
    {
        int rows = batch * config.Samples;
        var first = Epsilon(seed, step, rows, config.Latent, stream);
        if (config.Model == ModelKind.InfoVae)
            return [.. first, .. Epsilon(seed, step, batch, config.Latent, stream + Philox.Streams.MmdPriorOffset)];
        return config.StochasticLayers == 2
            ? [.. first, .. Epsilon(seed, step, rows, config.Latent2, stream + Philox.Streams.SecondLayerOffset)]
            : first;
    }

    /// <summary>The forward pass in double: the layers (each one's input and output), the stats repeated once per
    /// sample, z (the autoencoder's code), and the per-row KL and reconstruction terms (rows = batch·k).</summary>
    private sealed record Pass(LayerRunner Layers, double[] RepeatedStats, double[] Z, double[] KlPerRow,
        double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training,
        int[]? labels = null)
    {
        var runner = new LayerRunner(config, parameters, training);
        var layout = runner.Layout;
        int samples = config.Samples, rows = batch * samples, latent = config.Latent;
        // VCCA's encoder reads the left view alone.
        var stats = runner.Run(0, layout.EncoderLayerCount, config.Model == ModelKind.Vcca ? ViewReference.Split(x, batch, config.Views).View1 : x, batch);
        double[] repeatedStats = [], z = stats, kl = new double[rows];
        if (config.Model != ModelKind.Ae)
        {
            // Each example's q(z|x) sampled k times: its stats row repeated, one ε row per sample. (The autoencoder
            // decodes its code itself, with k = 1.)
            repeatedStats = ImportanceReference.RepeatRows(stats, batch, 2 * latent, samples);
            (z, kl) = LossReference.ReparameterizeForward(repeatedStats, epsilon, rows, latent);
        }
        var output = runner.Run(layout.DecoderStart, layout.DecoderEnd, z, rows);
        if (config.Model == ModelKind.Vcca)
            output = ViewReference.Join(output, runner.Run(layout.DecoderEnd, layout.Layers.Count, z, rows), rows, config.Views);
        if (config.Model == ModelKind.Vib)
        {
            // The Deep VIB's decoder term: −log softmax(logits)[label] of each sample's example.
            var (loss, gradient, _) = ClassificationReference.CrossEntropy(output,
                Enumerable.Range(0, rows).Select(r => labels![r / samples]).ToArray(), rows, config.Classes);
            return new Pass(runner, repeatedStats, z, kl, loss, gradient, rows);
        }
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstructionPerRow, dOutput) = LossReference.Reconstruction(config.Likelihood, target, output, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(runner, repeatedStats, z, kl, reconstructionPerRow, dOutput, rows);
    }

    /// <summary>log w = log p(x|z) + log p(z) − log q(z|x) per row, for the given ε.</summary>
    public static double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        if (config.StochasticLayers == 2)
            return TwoLayerForward(config, parameters, x, epsilon, batch, training: false).LogWeights;
        var pass = Forward(config, parameters, x, epsilon, batch, training: false);
        return LossReference.LogWeights(pass.RepeatedStats, pass.Z, epsilon, pass.ReconstructionPerRow, pass.Rows, config.Latent);
    }

    /// <summary>
    /// The objective and its gradient for a batch with ε [batch·k, latent] (none for the autoencoder):
    /// VAE: mean over examples and samples of rec + β·KL (β = <paramref name="klWeight"/>, default the config's);
    /// IWAE: mean over examples of −L_k; autoencoder: mean rec with z the code. Reconstruction and Kl are means per
    /// z row.
    /// </summary>
    public static Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch,
        double? klWeight = null, int[]? labels = null, bool training = true)
    {
        if (config.Model == ModelKind.Vib && (labels is null || labels.Length < batch))
            throw new ArgumentException("the Deep VIB's objective needs each example's label");
        double beta = klWeight ?? config.Beta;
        if (config.StochasticLayers == 2)
            return TwoLayerLossAndGradient(config, parameters, x, epsilon, batch, beta, training);
        double[] priorDraws = [];
        if (config.Model == ModelKind.InfoVae)
            (epsilon, priorDraws) = (epsilon[..(batch * config.Latent)], epsilon[(batch * config.Latent)..]);
        var pass = Forward(config, parameters, x, epsilon, batch, training, labels);
        var (runner, rows) = (pass.Layers, pass.Rows);
        var layout = runner.Layout;
        int samples = config.Samples, latent = config.Latent;
        double reconstruction = pass.ReconstructionPerRow.Average();
        double klMean = pass.KlPerRow.Average();

        double loss;
        double[] rowWeights; // d loss / d rec_r
        double[] normalizedWeights = [];
        if (config.Model == ModelKind.Iwae)
        {
            var logWeights = LossReference.LogWeights(pass.RepeatedStats, pass.Z, epsilon, pass.ReconstructionPerRow, rows, latent);
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
        double[] dZ;
        if (config.Model == ModelKind.Vcca)
        {
            // Each view's decoder back to z, where their gradients add.
            var (dLeft, dRight) = ViewReference.Split(dOutput, rows, config.Views);
            var dZFromRight = runner.Backward(layout.DecoderEnd, layout.Layers.Count, dRight, rows, gradient);
            dZ = runner.Backward(layout.DecoderStart, layout.DecoderEnd, dLeft, rows, gradient)
                .Select((value, index) => value + dZFromRight[index]).ToArray();
        }
        else
            dZ = runner.Backward(layout.DecoderStart, layout.DecoderEnd, dOutput, rows, gradient);
        var dStats = dZ; // the autoencoder's code is its stats layer's output
        if (config.Model != ModelKind.Ae)
        {
            if (config.Model == ModelKind.InfoVae)
            {
                var dMmd = MmdReference.Gradient(config.MmdKernel, pass.Z, priorDraws, batch, latent);
                dZ = dZ.Select((value, index) => value + config.MmdLambda * dMmd[index]).ToArray();
            }
            dStats = StatsGradient(config, pass, epsilon, dZ, normalizedWeights, batch, beta);
        }
        runner.Backward(0, layout.EncoderLayerCount, dStats, batch, gradient);
        return new Result(loss, reconstruction, klMean, gradient);
    }

    /// <summary>From d loss/dz [batch·k, latent] to d loss/d stats [batch, 2·latent].</summary>
    private static double[] StatsGradient(VaeConfig config, Pass pass, double[] epsilon, double[] dZ,
        double[] normalizedWeights, int batch, double beta)
    {
        int samples = config.Samples, latent = config.Latent, rows = pass.Rows;
        double[] dRepeatedStats;
        if (config.Model == ModelKind.Iwae)
        {
            dRepeatedStats = ImportanceReference.SamplerBackward(pass.RepeatedStats, pass.Z, epsilon, dZ, normalizedWeights,
                rows, latent, 1.0 / batch);
        }
        else
        {
            // β·KL per example is β/k·KL on each of its k rows.
            dRepeatedStats = LossReference.ReparameterizeBackward(pass.RepeatedStats, epsilon, dZ, rows, latent, beta / rows);
        }
        return ImportanceReference.SumRepeatedRows(dRepeatedStats, batch, 2 * latent, samples);
    }

    /// <summary>Dense layers run in double, batch norm included: every layer's input and output, and for a
    /// batch-normalised layer its product before normalisation, the statistics it normalised with, and in a
    /// training pass the running averages after it (keyed by their offset in the parameters).</summary>
    public sealed class LayerRunner
    {
        private readonly double[] parameters;
        private readonly bool training;

        public LayerRunner(VaeConfig config, double[] parameters, bool training)
        {
            Layout = new ParameterLayout(config);
            Inputs = new double[Layout.Layers.Count][];
            Outputs = new double[Layout.Layers.Count][];
            this.parameters = parameters;
            this.training = training;
        }

        public ParameterLayout Layout { get; }
        public double[][] Inputs { get; }
        public double[][] Outputs { get; }
        private readonly Dictionary<int, (double[] PreActivation, BatchNormReference.Statistics Statistics)> normalised = [];
        public Dictionary<int, double[]> RunningAverages { get; } = [];

        /// <summary>Layers [from, to) forward from <paramref name="input"/> on <paramref name="rows"/> rows.</summary>
        public double[] Run(int from, int to, double[] input, int rows)
        {
            for (int i = from; i < to; i++)
            {
                var layer = Layout.Layers[i];
                Inputs[i] = input;
                if (layer.BatchNorm)
                {
                    var preActivation = DenseReference.Forward(ActivationKind.Identity, input, Weights(parameters, layer),
                        Bias(parameters, layer), rows, layer.Inputs, layer.Outputs);
                    (Outputs[i], var statistics) = BatchNormReference.Forward(layer.Activation, preActivation, Norm(parameters, layer),
                        rows, layer.Outputs, training);
                    normalised[i] = (preActivation, statistics);
                    if (training)
                        RunningAverages[layer.NormOffset + 2 * layer.Outputs] = [.. statistics.RunningMean, .. statistics.RunningVariance];
                }
                else
                    Outputs[i] = DenseReference.Forward(layer.Activation, input, Weights(parameters, layer), Bias(parameters, layer),
                        rows, layer.Inputs, layer.Outputs);
                input = Outputs[i];
            }
            return input;
        }

        /// <summary>Layers to−1 down to from, writing their parameters' gradients; returns d input of layer from.</summary>
        public double[] Backward(int from, int to, double[] dOutput, int rows, double[] gradient)
        {
            for (int i = to - 1; i >= from; i--)
            {
                var layer = Layout.Layers[i];
                var activation = layer.Activation;
                if (layer.BatchNorm)
                {
                    var (preActivation, statistics) = normalised[i];
                    (dOutput, var dNorm) = BatchNormReference.Backward(layer.Activation, preActivation, Norm(parameters, layer),
                        statistics, dOutput, rows, layer.Outputs, training);
                    dNorm.CopyTo(gradient, layer.NormOffset);
                    activation = ActivationKind.Identity;
                }
                var (dInput, dWeights, dBias) = DenseReference.Backward(activation, Inputs[i],
                    Weights(parameters, layer), Bias(parameters, layer), dOutput, rows, layer.Inputs, layer.Outputs);
                dWeights.CopyTo(gradient, layer.WeightOffset);
                if (!layer.BatchNorm)
                    dBias.CopyTo(gradient, layer.BiasOffset); // (normalisation removes the bias: it stays 0)
                dOutput = dInput;
            }
            return dOutput;
        }
    }

    /// <summary>The two-layer model's (or Ladder VAE's) forward pass in double: the layers, per z row the stats
    /// of q(z1|·) and q(z2|·) (repeated per sample where they are per example), z1, z2 and their ε, the prior
    /// network's [m | u], and per row the reconstruction, its unit gradient and log w. The Ladder VAE also keeps
    /// its bottom-up stats of z1 per example.</summary>
    private sealed record TwoLayerPass(LayerRunner Layers, double[] Stats1, double[] RowStats1, double[] Z1, double[] Epsilon1,
        double[] RowStats2, double[] Z2, double[] Epsilon2, double[] ReconstructionPerRow, double[] ReconstructionGradient,
        double[] LogWeights, int Rows);

    private static TwoLayerPass TwoLayerForward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, bool training)
    {
        var runner = new LayerRunner(config, parameters, training);
        var layout = runner.Layout;
        int samples = config.Samples, rows = batch * samples, k1 = config.Latent, k2 = config.Latent2;
        var epsilon1 = epsilon[..(rows * k1)];
        var epsilon2 = epsilon[(rows * k1)..];
        var stats1 = runner.Run(0, layout.EncoderLayerCount, x, batch);
        double[] rowStats1, z1, rowStats2, z2, priorStats;
        if (config.Model == ModelKind.Ladder)
        {
            // Bottom-up to q(z2|x) from the top hidden layer; z2, the top-down prior, the merge, then z1.
            var stats2 = runner.Run(layout.EncoderLayerCount, layout.Encoder2End, runner.Outputs[layout.EncoderLayerCount - 2], batch);
            rowStats2 = ImportanceReference.RepeatRows(stats2, batch, 2 * k2, samples);
            (z2, _) = LossReference.ReparameterizeForward(rowStats2, epsilon2, rows, k2);
            priorStats = runner.Run(layout.Encoder2End, layout.DecoderStart, z2, rows);
            rowStats1 = LadderReference.Merge(stats1, priorStats, rows, k1, samples);
            (z1, _) = LossReference.ReparameterizeForward(rowStats1, epsilon1, rows, k1);
        }
        else
        {
            rowStats1 = ImportanceReference.RepeatRows(stats1, batch, 2 * k1, samples);
            (z1, _) = LossReference.ReparameterizeForward(rowStats1, epsilon1, rows, k1);
            rowStats2 = runner.Run(layout.EncoderLayerCount, layout.Encoder2End, z1, rows);
            (z2, _) = LossReference.ReparameterizeForward(rowStats2, epsilon2, rows, k2);
            priorStats = runner.Run(layout.Encoder2End, layout.DecoderStart, z2, rows);
        }
        var output = runner.Run(layout.DecoderStart, layout.Layers.Count, z1, rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, unitGradient) = LossReference.Reconstruction(config.Likelihood, target, output, rows,
            config.InputSize, config.GaussianVariance, 1.0);

        var logWeights = TwoLayerReference.LogWeights(rowStats1, z1, rowStats2, z2, priorStats, reconstruction, rows, k1, k2);
        return new TwoLayerPass(runner, stats1, rowStats1, z1, epsilon1, rowStats2, z2, epsilon2, reconstruction,
            unitGradient, logWeights, rows);
    }

    /// <summary>
    /// The two-layer objective (and the Ladder VAE's): −log w = rec + KL terms per row (KL terms = −log w − rec,
    /// sampled); the VAE takes the mean over rows of rec + β·KL terms, the IWAE the mean over examples of −L_k.
    /// Each row weighs c_r (1/rows, or w̃_r/batch), so every term of −log w_r is differentiated with that weight
    /// (β on the KL terms).
    /// </summary>
    private static Result TwoLayerLossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch,
        double beta, bool training)
    {
        var pass = TwoLayerForward(config, parameters, x, epsilon, batch, training);
        var runner = pass.Layers;
        var layout = runner.Layout;
        int samples = config.Samples, rows = pass.Rows, k1 = config.Latent, k2 = config.Latent2;
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
        var dZ1 = runner.Backward(layout.DecoderStart, layout.Layers.Count, dLogits, rows, gradient);

        // p(z1|z2) = N(m, e^u): −log p = ½((z1 − m)²e^(−u) + u + log 2π).
        var klRowWeight = rowWeight.Select(c => beta * c).ToArray();
        var priorStats = runner.Outputs[layout.DecoderStart - 1];
        var (dPriorStats, dZ1FromPrior) = TwoLayerReference.PriorGradient(pass.Z1, priorStats, klRowWeight, rows, k1);
        if (config.Model == ModelKind.Ladder)
        {
            // z1 ~ q(z1|x, z2) = the merge of the bottom-up stats and the prior: log q directly (ε fixed), then
            // the merge's two inputs. z2 ~ q(z2|x), one stats row per example, with the N(0, I) prior.
            for (int i = 0; i < dZ1.Length; i++)
                dZ1[i] += dZ1FromPrior[i];
            var dMerged = TwoLayerReference.SamplerBackward(pass.RowStats1, pass.Epsilon1, dZ1, klRowWeight, rows, k1);
            var (dStats1, dPriorFromMerge) = LadderReference.MergeBackward(pass.Stats1, priorStats, dMerged, rows, k1, samples);
            for (int i = 0; i < dPriorStats.Length; i++)
                dPriorStats[i] += dPriorFromMerge[i];
            var dZ2Ladder = runner.Backward(layout.Encoder2End, layout.DecoderStart, dPriorStats, rows, gradient);
            var dRowStats2 = ImportanceReference.SamplerBackward(pass.RowStats2, pass.Z2, pass.Epsilon2, dZ2Ladder, rowWeight, rows, k2, beta);
            var dStats2 = ImportanceReference.SumRepeatedRows(dRowStats2, batch, 2 * k2, samples);
            var dHiddenFromAbove = runner.Backward(layout.EncoderLayerCount, layout.Encoder2End, dStats2, batch, gradient);
            var dHidden = runner.Backward(layout.EncoderLayerCount - 1, layout.EncoderLayerCount, dStats1, batch, gradient);
            runner.Backward(0, layout.EncoderLayerCount - 1, dHidden.Select((d, i) => d + dHiddenFromAbove[i]).ToArray(), batch, gradient);
            return new Result(loss, pass.ReconstructionPerRow.Average(), kl.Average(), gradient, runner.RunningAverages);
        }
        var dZ2 = runner.Backward(layout.Encoder2End, layout.DecoderStart, dPriorStats, rows, gradient);

        // p(z2) = N(0, I) through z2, and log q(z2|z1) = −½Σ(ε2² + v2 + log 2π) directly (ε fixed).
        var dStats2TwoLayer = ImportanceReference.SamplerBackward(pass.RowStats2, pass.Z2, pass.Epsilon2, dZ2, rowWeight, rows, k2, beta);
        var dZ1FromEncoder2 = runner.Backward(layout.EncoderLayerCount, layout.Encoder2End, dStats2TwoLayer, rows, gradient);
        for (int i = 0; i < dZ1.Length; i++)
            dZ1[i] += dZ1FromEncoder2[i] + dZ1FromPrior[i];

        // log q(z1|x) likewise, then the samples' gradients summed per example.
        var dRepeatedStats1 = TwoLayerReference.SamplerBackward(pass.RowStats1, pass.Epsilon1, dZ1, klRowWeight, rows, k1);
        var dStats1TwoLayer = ImportanceReference.SumRepeatedRows(dRepeatedStats1, batch, 2 * k1, samples);
        runner.Backward(0, layout.EncoderLayerCount, dStats1TwoLayer, batch, gradient);
        return new Result(loss, pass.ReconstructionPerRow.Average(), kl.Average(), gradient, runner.RunningAverages);
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

    private static double[] Norm(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.NormOffset, 4 * layer.Outputs).ToArray();

    private static double[] Weights(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.WeightOffset, layer.WeightCount).ToArray();

    private static double[] Bias(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.BiasOffset, layer.Outputs).ToArray();
}
