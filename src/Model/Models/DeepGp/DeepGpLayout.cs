using IlgpuVae.GpuKernels;
using MathNet.Numerics.LinearAlgebra;

namespace IlgpuVae.Model.Models.DeepGp;

/// <summary>One GP layer's shape and where its parameters sit in the flat double buffer.</summary>
/// <param name="InputWidth">D_in: the features for the first layer, the layer below's outputs above it.</param>
/// <param name="OutputWidth">O: the GP's output dimensions, which share its kernel and inducing inputs.</param>
/// <param name="Inner">Whether the layer has the fixed linear mean function (every layer but the last).</param>
public sealed record GpLayer(int Index, int InputWidth, int OutputWidth, int Inducing, bool Inner, long Offset)
{
    /// <summary>Z [M, D_in].</summary>
    public long InducingInputs => Offset;

    /// <summary>[log ℓ_1 … log ℓ_D | log σ_f²].</summary>
    public long Hyper => InducingInputs + (long)Inducing * InputWidth;

    /// <summary>q(u)'s means m [O, M].</summary>
    public long Means => Hyper + InputWidth + 1;

    /// <summary>q(u)'s factors L_S [O, M, M], lower triangular.</summary>
    public long Factors => Means + (long)OutputWidth * Inducing;

    public long End => Factors + (long)OutputWidth * Inducing * Inducing;
}

/// <summary>
/// The deep GP's parameters as one flat double buffer, layer after layer (Z, hyperparameters, m, L_S), then the
/// Gaussian likelihood's log noise variance; and the inner layers' fixed linear mean weights W [D_in, D_out] (the
/// identity when the widths agree, the top principal directions when the layer narrows, the identity padded with
/// zero columns when it widens: the authors' choice, which leaves the inner layers close to the identity map).
/// </summary>
public sealed class DeepGpLayout
{
    public DeepGpLayout(DeepGpSettings settings, int features, int outputs)
    {
        settings.Validate();
        Settings = settings;
        Features = features;
        Outputs = outputs;
        int inner = settings.InnerWidthFor(features);
        var layers = new List<GpLayer>();
        long offset = 0;
        for (int l = 0; l < settings.Layers; l++)
        {
            bool last = l == settings.Layers - 1;
            var layer = new GpLayer(l, l == 0 ? features : inner, last ? outputs : inner, settings.Inducing, !last, offset);
            layers.Add(layer);
            offset = layer.End;
        }
        Layers = layers;
        LogNoise = offset;
        Count = offset + (settings.Likelihood == DeepGpLikelihood.Gaussian ? 1 : 0);
    }

    public DeepGpSettings Settings { get; }
    public int Features { get; }
    public int Outputs { get; }
    public IReadOnlyList<GpLayer> Layers { get; }

    /// <summary>Where the Gaussian likelihood's log noise variance sits (the last element; none for softmax).</summary>
    public long LogNoise { get; }

    public long Count { get; }

    /// <summary>
    /// The starting parameters and the fixed mean weights for training inputs [N, D] (or <see cref="InitialisationRows"/>
    /// of them): the first layer's inducing inputs by k-means on the inputs (<see cref="KMeans"/>), each layer above taking the one below's mapped through its mean
    /// weights; lengthscales √D_in (a standardised input's squared distances are of order D) and σ_f² = 1 unless the
    /// settings give others (<see cref="StartingHyper"/>); m = 0;
    /// q(u) at the prior on the last layer (L_S = I whitened, the factor of K_ZZ + jitter·I otherwise) and that times
    /// <see cref="DeepGpSettings.InnerScale"/> below it; the noise variance <see cref="DeepGpSettings.InitialNoise"/>.
    /// </summary>
    public (double[] Parameters, double[][] MeanWeights) Initialise(double[] inputs, int rows)
    {
        var parameters = new double[Count];
        var meanWeights = new double[Layers.Count - 1][];
        (inputs, rows) = Subsample(inputs, rows, Features, Settings.Seed);
        var z = KMeans(inputs, rows, Features, Settings.Inducing, Settings.Seed);
        var running = inputs;
        foreach (var layer in Layers)
        {
            Array.Copy(z, 0, parameters, layer.InducingInputs, z.Length);
            StartingHyper(layer).CopyTo(parameters, layer.Hyper);
            double scale = layer.Inner ? Settings.InnerScale : 1;
            var prior = PriorFactor(z, layer);
            for (int o = 0; o < layer.OutputWidth; o++)
                for (int at = 0; at < prior.Length; at++)
                    parameters[layer.Factors + (long)o * prior.Length + at] = scale * prior[at];
            if (!layer.Inner)
                break;
            var w = MeanWeights(running, rows, layer.InputWidth, layer.OutputWidth);
            meanWeights[layer.Index] = w;
            z = Multiply(z, w, layer.Inducing, layer.InputWidth, layer.OutputWidth);
            running = Multiply(running, w, rows, layer.InputWidth, layer.OutputWidth);
        }
        if (Settings.Likelihood == DeepGpLikelihood.Gaussian)
            parameters[LogNoise] = Math.Log(Settings.InitialNoise);
        return (parameters, meanWeights);
    }

    /// <summary>The factor of q(u)'s covariance at the prior: I whitened, else the factor of K_ZZ + jitter·I at the
    /// starting hyperparameters.</summary>
    private double[] PriorFactor(double[] z, GpLayer layer)
    {
        int m = layer.Inducing;
        if (Settings.Whitened)
            return Enumerable.Range(0, m * m).Select(at => at % m == at / m ? 1.0 : 0.0).ToArray();
        var hyper = StartingHyper(layer);
        var (factor, failures) = GpuKernels.Reference.LinearAlgebraReference.Cholesky(GpuKernels.Reference.LinearAlgebraReference.Rbf(z, z, hyper, 1, m, m, layer.InputWidth),
            1, m, Settings.Jitter);
        if (failures[0] >= 0)
            throw new SettingException($"layer {layer.Index + 1}: K_ZZ + {Settings.Jitter:G3}·I of the starting inducing inputs is not positive definite (pivot {failures[0] + 1} of {m}): raise @Jitter or use fewer inducing points");
        return factor;
    }

    /// <summary>A layer's starting log-hyperparameters [log ℓ_1 … log ℓ_D | log σ_f²]: every lengthscale
    /// <see cref="DeepGpSettings.InitialLengthscale"/> (0: √D_in) and σ_f² = <see cref="DeepGpSettings.InitialSignalVariance"/>.</summary>
    private double[] StartingHyper(GpLayer layer)
    {
        double logLengthscale = Settings.InitialLengthscale > 0 ? Math.Log(Settings.InitialLengthscale) : 0.5 * Math.Log(layer.InputWidth);
        return Enumerable.Repeat(logLengthscale, layer.InputWidth).Append(Math.Log(Settings.InitialSignalVariance)).ToArray();
    }

    /// <summary>The most rows k-means and the principal directions read: above it (MNIST's 60 000 images), a Philox
    /// sample of this many rows stands for the inputs, which keeps the start to seconds.</summary>
    public const int InitialisationRows = 10000;

    private static (double[] Inputs, int Rows) Subsample(double[] inputs, int rows, int features, ulong seed)
    {
        if (rows <= InitialisationRows)
            return (inputs, rows);
        var chosen = Enumerable.Range(0, rows).OrderBy(row => Philox.Uniform(seed, Philox.Streams.Initialise, 1, row)).ThenBy(row => row)
            .Take(InitialisationRows).Order().ToArray();
        var sample = new double[(long)chosen.Length * features];
        for (int r = 0; r < chosen.Length; r++)
            Array.Copy(inputs, (long)chosen[r] * features, sample, (long)r * features, features);
        return (sample, chosen.Length);
    }

    private static double[] Multiply(double[] x, double[] w, int rows, int inner, int columns)
    {
        var result = new double[(long)rows * columns];
        Parallel.For(0, rows, row =>
        {
            for (int c = 0; c < columns; c++)
            {
                double sum = 0;
                for (int d = 0; d < inner; d++)
                    sum += x[(long)row * inner + d] * w[(long)d * columns + c];
                result[(long)row * columns + c] = sum;
            }
        });
        return result;
    }

    /// <summary>W [D_in, D_out]: the identity, the identity padded with zero columns, or (narrowing) the top D_out
    /// right singular vectors of the layer's inputs, as the eigenvectors of XᵀX with the largest eigenvalues (each
    /// signed so that its largest entry is positive, which makes the choice unique).</summary>
    public static double[] MeanWeights(double[] inputs, int rows, int inputWidth, int outputWidth)
    {
        var w = new double[inputWidth * outputWidth];
        if (inputWidth <= outputWidth)
        {
            for (int d = 0; d < inputWidth; d++)
                w[d * outputWidth + d] = 1;
            return w;
        }
        var x = Matrix<double>.Build.Dense(rows, inputWidth, (row, column) => inputs[(long)row * inputWidth + column]);
        var gram = x.TransposeThisAndMultiply(x);
        var evd = gram.Evd(Symmetricity.Symmetric);
        var order = Enumerable.Range(0, inputWidth).OrderByDescending(i => evd.EigenValues[i].Real).Take(outputWidth).ToArray();
        for (int c = 0; c < outputWidth; c++)
        {
            var vector = evd.EigenVectors.Column(order[c]);
            int largest = Enumerable.Range(0, inputWidth).MaxBy(d => Math.Abs(vector[d]));
            double sign = vector[largest] < 0 ? -1 : 1;
            for (int d = 0; d < inputWidth; d++)
                w[d * outputWidth + c] = sign * vector[d];
        }
        return w;
    }

    /// <summary>
    /// M centres by Lloyd's algorithm on inputs [N, D], started from M distinct rows picked by Philox uniforms
    /// (the rows with the smallest keys) and run until no point changes centre or for 100 rounds; a centre that loses
    /// every point keeps its place. With M = N every row is its own centre: Z = X.
    /// </summary>
    public static double[] KMeans(double[] inputs, int rows, int dims, int centres, ulong seed)
    {
        if (centres > rows)
            throw new SettingException($"@Inducing ({centres}) is more than the {rows} training points: use at most {rows} inducing points");
        var start = Enumerable.Range(0, rows).OrderBy(row => Philox.Uniform(seed, Philox.Streams.Initialise, 0, row)).ThenBy(row => row).Take(centres).Order().ToArray();
        var z = new double[(long)centres * dims];
        for (int c = 0; c < centres; c++)
            Array.Copy(inputs, (long)start[c] * dims, z, (long)c * dims, dims);
        var assignment = Enumerable.Repeat(-1, rows).ToArray();
        for (int round = 0; round < 100; round++)
        {
            int changed = 0;
            Parallel.For(0, rows, () => 0, (row, _, count) =>
            {
                int best = 0;
                double bestDistance = double.PositiveInfinity;
                for (int c = 0; c < centres; c++)
                {
                    double distance = 0;
                    for (int d = 0; d < dims; d++)
                    {
                        double difference = inputs[(long)row * dims + d] - z[(long)c * dims + d];
                        distance += difference * difference;
                    }
                    if (distance < bestDistance)
                        (best, bestDistance) = (c, distance);
                }
                if (assignment[row] != best)
                {
                    assignment[row] = best;
                    count++;
                }
                return count;
            }, count => Interlocked.Add(ref changed, count));
            if (changed == 0)
                break;
            var sums = new double[z.Length];
            var counts = new int[centres];
            for (int row = 0; row < rows; row++)
            {
                counts[assignment[row]]++;
                for (int d = 0; d < dims; d++)
                    sums[(long)assignment[row] * dims + d] += inputs[(long)row * dims + d];
            }
            for (int c = 0; c < centres; c++)
                if (counts[c] > 0)
                    for (int d = 0; d < dims; d++)
                        z[(long)c * dims + d] = sums[(long)c * dims + d] / counts[c];
        }
        return z;
    }
}
