using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>One dense layer's place in the flat parameter buffer: W [Outputs, Inputs] then b [Outputs], and for a
/// batch-normalised layer [γ | β | running mean | running variance], Outputs each (see <see cref="GpuKernels.BatchNorm"/>).</summary>
public sealed record DenseSlice(string Name, int Inputs, int Outputs, ActivationKind Activation, int WeightOffset, bool BatchNorm = false)
{
    /// <summary>A posterior's stats layer: [μ | log σ²], or [μ | log d | u] with a rank-one covariance (each with a
    /// flow's steps after it where the model has one). Other Gaussians' stats layers (prior networks, learned
    /// marginals, auxiliary r's) stay [μ | log σ²] whatever the covariance.</summary>
    public bool Posterior { get; init; }

    /// <summary>A block of running state, not a layer: no inputs, its Outputs values where a bias would be, never
    /// run, never given a gradient (so Adam leaves it), updated by the training pass that reads it, saved and
    /// restored with the weights (NVIL's running moments of the learning signal). Starts at zero.</summary>
    public bool State { get; init; }

    /// <summary>Autoregressive weights W [K, K] of which only the strictly lower triangle is used (a_j reads h_k for
    /// k &lt; j): never run as a dense layer; the rest of W and its bias start at zero and are never given a
    /// gradient, so they stay zero and are saved as zeros (see <see cref="GpuKernels.Autoregressive"/>).</summary>
    public bool Autoregressive { get; init; }

    /// <summary>Positive weights stored as θ, W = softplus(θ) (the deep exponential family's gamma-layer weights):
    /// never run as a dense layer; θ starts where W is uniform in (0, 1/Inputs), and the bias is unused, zero and
    /// never given a gradient (see <see cref="GpuKernels.DeepExponential"/>).</summary>
    public bool Positive { get; init; }

    public int WeightCount => Inputs * Outputs;
    public int BiasOffset => WeightOffset + WeightCount;
    public int NormOffset => BiasOffset + Outputs;
    public int End => NormOffset + (BatchNorm ? 4 * Outputs : 0);
}

/// <summary>
/// All parameters of a model in one flat buffer, so the optimiser is one launch and a checkpoint is one copy.
/// Layers run in the order listed: encoder hidden layers, the encoder's stats layer ([μ | log σ²], or the code
/// alone for the autoencoder), [two stochastic layers: q(z2|z1)'s layers and stats, the prior network p(z1|z2)'s
/// layers and stats,] decoder hidden layers, the decoder's output layer[, VCCA's second decoder for view 2].
/// </summary>
public sealed class ParameterLayout
{
    public ParameterLayout(VaeConfig config)
    {
        config.Validate();
        Config = config;
        // The family lays out its own networks; the builder keeps the offsets and the ranges.
        var builder = new LayoutBuilder(config);
        Models.ModelCatalog.FamilyOf(config).BuildLayout(builder);
        Layers = builder.Layers;
        EncoderLayerCount = builder.EncoderLayerCount;
        Encoder2End = builder.Encoder2End;
        DecoderStart = builder.DecoderStart;
        DecoderEnd = builder.DecoderEnd;
        AuxiliaryStart = builder.AuxiliaryStart ?? Layers.Count;
        Count = Layers[^1].End;
    }

    public VaeConfig Config { get; }
    public IReadOnlyList<DenseSlice> Layers { get; }
    /// <summary>Layers [0, EncoderLayerCount) are q(z1|x) (or q(z|x)); [EncoderLayerCount, Encoder2End) q(z2|z1)
    /// (the Ladder VAE: its second bottom-up stage, from the encoder's last hidden layer to q(z2|x));
    /// [Encoder2End, DecoderStart) the prior network p(z1|z2); [DecoderStart, Layers.Count) p(x|z1). With one
    /// stochastic layer the middle ranges are empty. VCCA's second decoder, p(x₂|z), is [DecoderEnd, Layers.Count);
    /// for every other model DecoderEnd is Layers.Count.</summary>
    public int EncoderLayerCount { get; }
    public int Encoder2End { get; }
    public int DecoderStart { get; }
    public int DecoderEnd { get; }

    /// <summary>Layers [AuxiliaryStart, Layers.Count) are networks beside the encoder and the decoders: a learned
    /// prior's (the mixture's [μ_c | log σ_c²] or the VampPrior's pseudo-inputs, from one-hot rows), or the mutual
    /// autoencoder's r(z|x). Without any, AuxiliaryStart is Layers.Count, and the decoders
    /// end there.</summary>
    public int AuxiliaryStart { get; }
    public int Count { get; }

    /// <summary>
    /// PyTorch's nn.Linear initialisation: weights and biases uniform in ±1/√fan_in (kaiming_uniform with a = √5
    /// reduces to this bound), drawn from Philox so that every accelerator starts from the same bits.
    /// </summary>
    public float[] Initialise(ulong seed)
    {
        var parameters = new float[Count];
        foreach (var layer in Layers.Where(layer => !layer.State))
        {
            float bound = 1f / MathF.Sqrt(layer.Inputs);
            for (int i = layer.WeightOffset; i < layer.NormOffset; i++)
                parameters[i] = (2f * Philox.Uniform(seed, Philox.Streams.Initialise, 0, i) - 1f) * bound;
            if (layer.Autoregressive)
                // Only the strictly lower triangle is a weight; the rest, and the bias, stay zero.
                for (int i = layer.WeightOffset; i < layer.NormOffset; i++)
                {
                    int entry = i - layer.WeightOffset;
                    if (entry >= layer.WeightCount || entry % layer.Inputs >= entry / layer.Inputs)
                        parameters[i] = 0f;
                }
            if (layer.Positive)
                for (int i = layer.WeightOffset; i < layer.NormOffset; i++)
                {
                    // θ = log(e^w − 1) for w = u/Inputs, u uniform in (0, 1): a layer's mean starts at about half
                    // the mean of what it reads.
                    double w = Philox.Uniform(seed, Philox.Streams.Initialise, 0, i) / (double)layer.Inputs;
                    parameters[i] = i < layer.BiasOffset ? (float)Math.Log(Math.Exp(w) - 1) : 0f;
                }
            if (layer.BatchNorm)
            {
                // The product's bias is redundant before normalisation (β takes its place): it is held at 0 and
                // gets no gradient. Then PyTorch's BatchNorm1d: γ = 1, β = 0, running mean 0, running variance 1.
                Array.Fill(parameters, 0f, layer.BiasOffset, layer.Outputs);
                Array.Fill(parameters, 1f, layer.NormOffset, layer.Outputs);
                Array.Fill(parameters, 1f, layer.NormOffset + 3 * layer.Outputs, layer.Outputs);
            }
        }
        return parameters;
    }
}

/// <summary>
/// Lays out a family's dense layers in order in one flat buffer, and marks where the encoder, the second encoder,
/// the prior network and the decoders begin and end (see <see cref="ParameterLayout"/>).
/// </summary>
public sealed class LayoutBuilder(VaeConfig config)
{
    private readonly List<DenseSlice> layers = [];
    private int offset;

    public VaeConfig Config { get; } = config;
    public IReadOnlyList<DenseSlice> Layers => layers;
    public int EncoderLayerCount { get; private set; }
    public int Encoder2End { get; private set; }
    public int DecoderStart { get; private set; }
    public int DecoderEnd { get; private set; }

    /// <summary>One dense layer; a hidden layer is batch-normalised when the config asks for it.</summary>
    public void Add(string name, int inputs, int outputs, ActivationKind activation, bool hidden = false)
    {
        var slice = new DenseSlice(name, inputs, outputs, activation, offset, hidden && Config.BatchNorm);
        layers.Add(slice);
        // Each weight matrix starts on a 4-float boundary so kernels may read it 16 bytes at a time; the few
        // floats of padding stay zero and receive zero gradients.
        offset = (slice.End + 3) / 4 * 4;
    }

    /// <summary>A block of <paramref name="count"/> values of running state (see <see cref="DenseSlice.State"/>).</summary>
    public void AddState(string name, int count)
    {
        Add(name, 0, count, ActivationKind.Identity);
        layers[^1] = layers[^1] with { State = true };
    }

    /// <summary>Autoregressive weights over <paramref name="units"/> binary units (see <see cref="DenseSlice.Autoregressive"/>).</summary>
    public void AddAutoregressive(string name, int units)
    {
        Add(name, units, units, ActivationKind.Identity);
        layers[^1] = layers[^1] with { Autoregressive = true };
    }

    /// <summary>Positive weights W [outputs, inputs] = softplus(θ) (see <see cref="DenseSlice.Positive"/>).</summary>
    public void AddPositive(string name, int inputs, int outputs)
    {
        Add(name, inputs, outputs, ActivationKind.Identity);
        layers[^1] = layers[^1] with { Positive = true };
    }

    /// <summary>One Gaussian stage: deterministic layers from <paramref name="inputs"/>, then a stats layer of
    /// <paramref name="outputs"/> columns (saved as μ and log σ², see the checkpoints); a <paramref name="posterior"/>'s
    /// stats take the posterior's covariance (see <see cref="DenseSlice.Posterior"/>).</summary>
    public void Stage(string name, int inputs, IReadOnlyList<int> hidden, int outputs, bool posterior = false)
    {
        int width = inputs;
        for (int i = 0; i < hidden.Count; i++)
        {
            Add($"{name}.{i}", width, hidden[i], Config.Activation, hidden: true);
            width = hidden[i];
        }
        Add($"{name}.stats", width, outputs, ActivationKind.Identity);
        layers[^1] = layers[^1] with { Posterior = posterior };
    }

    /// <summary>A decoder from z (<see cref="VaeConfig.Latent"/> columns) to <paramref name="outputs"/> columns:
    /// the encoder's hidden widths mirrored (unless <paramref name="mirrorHidden"/> is false), then an output
    /// layer with <paramref name="outputActivation"/> (default: the likelihood's); <paramref name="inputs"/> columns
    /// in place of z's where it reads more (VCCA-private's [z | h]).</summary>
    public void Decoder(string name, int outputs, bool mirrorHidden = true, ActivationKind? outputActivation = null, int? inputs = null)
    {
        int width = inputs ?? Config.Latent;
        for (int i = Config.Hidden.Length - 1; i >= 0 && mirrorHidden; i--)
        {
            Add($"{name}.{Config.Hidden.Length - 1 - i}", width, Config.Hidden[i], Config.Activation, hidden: true);
            width = Config.Hidden[i];
        }
        Add($"{name}.out", width, outputs, outputActivation ?? Config.OutputActivation);
    }

    /// <summary>The layers so far are q(z|x) (or q(z1|x)); a second encoder and a prior network may follow.</summary>
    public void EndEncoder() => EncoderLayerCount = Encoder2End = layers.Count;

    /// <summary>The layers since <see cref="EndEncoder"/> are the second encoder q(z2|·).</summary>
    public void EndSecondEncoder() => Encoder2End = layers.Count;

    /// <summary>The layers from here are p(x|z); those since <see cref="EndSecondEncoder"/> were the prior network.</summary>
    public void StartDecoder() => DecoderStart = DecoderEnd = layers.Count;

    /// <summary>The layers since <see cref="StartDecoder"/> are the first decoder; any after it are a second one.</summary>
    public void EndDecoder() => DecoderEnd = layers.Count;

    /// <summary>Where the auxiliary networks start (null: none).</summary>
    public int? AuxiliaryStart { get; private set; }

    /// <summary>The layers from here are auxiliary networks (a learned prior's, r(z|x)); they come after every decoder.</summary>
    public void StartAuxiliary() => AuxiliaryStart = layers.Count;
}
