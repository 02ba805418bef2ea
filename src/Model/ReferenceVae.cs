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
    public sealed record Result(double Loss, double Reconstruction, double Kl, double[] Gradient);

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

    /// <summary>The forward pass in double: each layer's input and output, the stats (or the autoencoder's code),
    /// the stats repeated once per sample, z, and the per-row KL and reconstruction terms (rows = batch·k).</summary>
    private sealed record Pass(ParameterLayout Layout, double[][] Inputs, double[][] Outputs, double[] RepeatedStats,
        double[] Z, double[] KlPerRow, double[] ReconstructionPerRow, double[] ReconstructionGradient, int Rows);

    private static Pass Forward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, int[]? labels = null)
    {
        var layout = new ParameterLayout(config);
        var layers = layout.Layers;
        int samples = config.Samples, rows = batch * samples, latent = config.Latent;
        var inputs = new double[layers.Count][];
        var outputs = new double[layers.Count][];
        bool twoViews = config.Model == ModelKind.Vcca;
        // VCCA's encoder reads the left view alone.
        double[] current = twoViews ? ViewReference.Split(x, batch, config.Views).View1 : x;
        double[] repeatedStats = [], z = [], kl = new double[rows], view1Output = [];
        int currentRows = batch;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            if (i == layout.DecoderEnd && twoViews)
            {
                // The second view's decoder reads the same z.
                view1Output = current;
                current = z;
            }
            if (i == layout.EncoderLayerCount && config.Model != ModelKind.Ae)
            {
                // Each example's q(z|x) sampled k times: its stats row repeated, one ε row per sample.
                repeatedStats = ImportanceReference.RepeatRows(current, batch, 2 * latent, samples);
                (z, kl) = LossReference.ReparameterizeForward(repeatedStats, epsilon, rows, latent);
                current = z;
                currentRows = rows;
            }
            inputs[i] = current;
            outputs[i] = DenseReference.Forward(layer.Activation, current, Weights(parameters, layer), Bias(parameters, layer),
                currentRows, layer.Inputs, layer.Outputs);
            current = outputs[i];
        }
        if (config.Model == ModelKind.Vib)
        {
            // The Deep VIB's decoder term: −log softmax(logits)[label] of each sample's example.
            var (loss, gradient, _) = ClassificationReference.CrossEntropy(current,
                Enumerable.Range(0, rows).Select(r => labels![r / samples]).ToArray(), rows, config.Classes);
            return new Pass(layout, inputs, outputs, repeatedStats, z, kl, loss, gradient, rows);
        }
        if (twoViews)
            current = ViewReference.Join(view1Output, current, rows, config.Views);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstructionPerRow, dOutput) = LossReference.Reconstruction(config.Likelihood, target, current, rows,
            config.InputSize, config.GaussianVariance, 1.0);
        return new Pass(layout, inputs, outputs, repeatedStats, z, kl, reconstructionPerRow, dOutput, rows);
    }

    /// <summary>log w = log p(x|z) + log p(z) − log q(z|x) per row, for the given ε.</summary>
    public static double[] LogWeights(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        if (config.StochasticLayers == 2)
            return TwoLayerForward(config, parameters, x, epsilon, batch).LogWeights;
        var pass = Forward(config, parameters, x, epsilon, batch);
        return LossReference.LogWeights(pass.RepeatedStats, pass.Z, epsilon, pass.ReconstructionPerRow, pass.Rows, config.Latent);
    }

    /// <summary>
    /// The objective and its gradient for a batch with ε [batch·k, latent] (none for the autoencoder):
    /// VAE: mean over examples and samples of rec + β·KL (β = <paramref name="klWeight"/>, default the config's);
    /// IWAE: mean over examples of −L_k; autoencoder: mean rec with z the code. Reconstruction and Kl are means per
    /// z row.
    /// </summary>
    public static Result LossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch,
        double? klWeight = null, int[]? labels = null)
    {
        if (config.Model == ModelKind.Vib && (labels is null || labels.Length < batch))
            throw new ArgumentException("the Deep VIB's objective needs each example's label");
        double beta = klWeight ?? config.Beta;
        if (config.StochasticLayers == 2)
            return TwoLayerLossAndGradient(config, parameters, x, epsilon, batch, beta);
        double[] priorDraws = [];
        if (config.Model == ModelKind.InfoVae)
            (epsilon, priorDraws) = (epsilon[..(batch * config.Latent)], epsilon[(batch * config.Latent)..]);
        var pass = Forward(config, parameters, x, epsilon, batch, labels);
        var (layout, inputs, rows) = (pass.Layout, pass.Inputs, pass.Rows);
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

        var layers = layout.Layers;
        var gradient = new double[layout.Count];
        double[] dCurrent = dOutput, dView1Output = [], dZFromView2 = [];
        if (config.Model == ModelKind.Vcca)
            (dView1Output, dCurrent) = ViewReference.Split(dOutput, rows, config.Views);
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            var layer = layers[i];
            if (config.Model == ModelKind.Vcca && i == layout.DecoderEnd - 1)
            {
                // Done with the second view's decoder: its dz waits for the first's.
                dZFromView2 = dCurrent;
                dCurrent = dView1Output;
            }
            int layerRows = i < layout.EncoderLayerCount || config.Model == ModelKind.Ae ? batch : rows;
            var (dInput, dWeights, dBias) = DenseReference.Backward(layer.Activation, inputs[i],
                Weights(parameters, layer), Bias(parameters, layer), dCurrent, layerRows, layer.Inputs, layer.Outputs);
            dWeights.CopyTo(gradient, layer.WeightOffset);
            dBias.CopyTo(gradient, layer.BiasOffset);
            dCurrent = dInput;
            if (i == layout.DecoderStart && config.Model == ModelKind.Vcca)
                dCurrent = dCurrent.Select((value, index) => value + dZFromView2[index]).ToArray();
            if (i == layout.EncoderLayerCount && config.Model != ModelKind.Ae)
            {
                if (config.Model == ModelKind.InfoVae)
                {
                    var dMmd = MmdReference.Gradient(config.MmdKernel, pass.Z, priorDraws, batch, latent);
                    dCurrent = dCurrent.Select((value, index) => value + config.MmdLambda * dMmd[index]).ToArray();
                }
                dCurrent = StatsGradient(config, pass, epsilon, dCurrent, normalizedWeights, batch, beta);
            }
        }
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

    /// <summary>The two-layer model's forward pass in double: every layer's input and output, z1, z2, the prior
    /// network's [m | u], and per row the reconstruction, its unit gradient and log w.</summary>
    private sealed record TwoLayerPass(ParameterLayout Layout, double[][] Inputs, double[][] Outputs, double[] RepeatedStats1,
        double[] Z1, double[] Epsilon1, double[] Z2, double[] Epsilon2, double[] ReconstructionPerRow,
        double[] ReconstructionGradient, double[] LogWeights, int Rows);

    private static TwoLayerPass TwoLayerForward(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch)
    {
        var layout = new ParameterLayout(config);
        int samples = config.Samples, rows = batch * samples, k1 = config.Latent, k2 = config.Latent2;
        var epsilon1 = epsilon[..(rows * k1)];
        var epsilon2 = epsilon[(rows * k1)..];
        var inputs = new double[layout.Layers.Count][];
        var outputs = new double[layout.Layers.Count][];
        double[] Run(int from, int to, double[] input, int layerRows)
        {
            for (int i = from; i < to; i++)
            {
                var layer = layout.Layers[i];
                inputs[i] = input;
                outputs[i] = DenseReference.Forward(layer.Activation, input, Weights(parameters, layer), Bias(parameters, layer),
                    layerRows, layer.Inputs, layer.Outputs);
                input = outputs[i];
            }
            return input;
        }
        var stats1 = Run(0, layout.EncoderLayerCount, x, batch);
        var repeatedStats1 = ImportanceReference.RepeatRows(stats1, batch, 2 * k1, samples);
        var (z1, _) = LossReference.ReparameterizeForward(repeatedStats1, epsilon1, rows, k1);
        var stats2 = Run(layout.EncoderLayerCount, layout.Encoder2End, z1, rows);
        var (z2, _) = LossReference.ReparameterizeForward(stats2, epsilon2, rows, k2);
        var priorStats = Run(layout.Encoder2End, layout.DecoderStart, z2, rows);
        var output = Run(layout.DecoderStart, layout.Layers.Count, z1, rows);
        var target = ImportanceReference.RepeatRows(x, batch, config.InputSize, samples);
        var (reconstruction, unitGradient) = LossReference.Reconstruction(config.Likelihood, target, output, rows,
            config.InputSize, config.GaussianVariance, 1.0);

        var logWeights = TwoLayerReference.LogWeights(repeatedStats1, z1, stats2, z2, priorStats, reconstruction, rows, k1, k2);
        return new TwoLayerPass(layout, inputs, outputs, repeatedStats1, z1, epsilon1, z2, epsilon2, reconstruction,
            unitGradient, logWeights, rows);
    }

    /// <summary>
    /// The two-layer objective: −log w = rec + KL terms per row (KL terms = −log w − rec, sampled); the VAE takes
    /// the mean over rows of rec + β·KL terms, the IWAE the mean over examples of −L_k. Each row weighs c_r
    /// (1/rows, or w̃_r/batch), so every term of −log w_r is differentiated with that weight (β on the KL terms).
    /// </summary>
    private static Result TwoLayerLossAndGradient(VaeConfig config, double[] parameters, double[] x, double[] epsilon, int batch, double beta)
    {
        var pass = TwoLayerForward(config, parameters, x, epsilon, batch);
        var layout = pass.Layout;
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
        double[] Backward(int from, int to, double[] dOutput, int layerRows)
        {
            for (int i = to - 1; i >= from; i--)
            {
                var layer = layout.Layers[i];
                var (dInput, dWeights, dBias) = DenseReference.Backward(layer.Activation, pass.Inputs[i],
                    Weights(parameters, layer), Bias(parameters, layer), dOutput, layerRows, layer.Inputs, layer.Outputs);
                dWeights.CopyTo(gradient, layer.WeightOffset);
                dBias.CopyTo(gradient, layer.BiasOffset);
                dOutput = dInput;
            }
            return dOutput;
        }

        // p(x|z1): the reconstruction's gradient, row r weighted by c_r.
        var dLogits = pass.ReconstructionGradient.Select((g, i) => rowWeight[i / config.InputSize] * g).ToArray();
        var dZ1 = Backward(layout.DecoderStart, layout.Layers.Count, dLogits, rows);

        // p(z1|z2) = N(m, e^u): −log p = ½((z1 − m)²e^(−u) + u + log 2π).
        var klRowWeight = rowWeight.Select(c => beta * c).ToArray();
        var (dPriorStats, dZ1FromPrior) = TwoLayerReference.PriorGradient(pass.Z1, pass.Outputs[layout.DecoderStart - 1], klRowWeight, rows, k1);
        var dZ2 = Backward(layout.Encoder2End, layout.DecoderStart, dPriorStats, rows);

        // p(z2) = N(0, I) through z2, and log q(z2|z1) = −½Σ(ε2² + v2 + log 2π) directly (ε fixed).
        var stats2 = pass.Outputs[layout.Encoder2End - 1];
        var dStats2 = ImportanceReference.SamplerBackward(stats2, pass.Z2, pass.Epsilon2, dZ2, rowWeight, rows, k2, beta);
        var dZ1FromEncoder2 = Backward(layout.EncoderLayerCount, layout.Encoder2End, dStats2, rows);
        for (int i = 0; i < dZ1.Length; i++)
            dZ1[i] += dZ1FromEncoder2[i] + dZ1FromPrior[i];

        // log q(z1|x) likewise, then the samples' gradients summed per example.
        var dRepeatedStats1 = TwoLayerReference.SamplerBackward(pass.RepeatedStats1, pass.Epsilon1, dZ1, klRowWeight, rows, k1);
        var dStats1 = ImportanceReference.SumRepeatedRows(dRepeatedStats1, batch, 2 * k1, samples);
        Backward(0, layout.EncoderLayerCount, dStats1, batch);
        return new Result(loss, pass.ReconstructionPerRow.Average(), kl.Average(), gradient);
    }

    private static double[] Weights(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.WeightOffset, layer.WeightCount).ToArray();

    private static double[] Bias(double[] parameters, DenseSlice layer) =>
        parameters.AsSpan(layer.BiasOffset, layer.Outputs).ToArray();
}
