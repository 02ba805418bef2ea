using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>One dense layer's place in the flat parameter buffer: W [Outputs, Inputs] then b [Outputs], and for a
/// batch-normalised layer [γ | β | running mean | running variance], Outputs each (see <see cref="GpuKernels.BatchNorm"/>).</summary>
public sealed record DenseSlice(string Name, int Inputs, int Outputs, ActivationKind Activation, int WeightOffset, bool BatchNorm = false)
{
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
        var layers = new List<DenseSlice>();
        int offset = 0;
        void Add(string name, int inputs, int outputs, ActivationKind activation, bool hidden = false)
        {
            var slice = new DenseSlice(name, inputs, outputs, activation, offset, hidden && config.BatchNorm);
            layers.Add(slice);
            // Each weight matrix starts on a 4-float boundary so kernels may read it 16 bytes at a time; the
            // few floats of padding stay zero and receive zero gradients.
            offset = (slice.End + 3) / 4 * 4;
        }

        // One Gaussian stage: deterministic layers from `inputs`, then a stats layer of `outputs` columns.
        void Stage(string name, int inputs, IReadOnlyList<int> hidden, int outputs)
        {
            int width = inputs;
            for (int i = 0; i < hidden.Count; i++)
            {
                Add($"{name}.{i}", width, hidden[i], config.Activation, hidden: true);
                width = hidden[i];
            }
            Add($"{name}.stats", width, outputs, ActivationKind.Identity);
        }

        Stage("encoder", config.EncoderInputs, config.Hidden, config.EncoderOutputs);
        EncoderLayerCount = layers.Count;
        if (config.StochasticLayers == 2)
        {
            // q(z2|·) from what the family feeds it (z1, or the Ladder VAE's top hidden layer), then p(z1|z2)
            // mirroring it: means and log-variances of z1.
            Stage("encoder2", Models.ModelCatalog.FamilyOf(config).SecondStageInputs(config), config.Hidden2, 2 * config.Latent2);
            Encoder2End = layers.Count;
            Stage("prior", config.Latent2, config.Hidden2.Reverse().ToArray(), 2 * config.Latent);
        }
        else
            Encoder2End = layers.Count;
        DecoderStart = layers.Count;

        // A decoder mirroring the encoder's hidden widths from z to `outputs` columns. The Deep VIB's is a softmax
        // regression on z, as in Alemi et al.: no hidden layers.
        bool labels = config.Spec.Has(Models.ModelCapabilities.Labels);
        void Decoder(string name, int outputs)
        {
            int width = config.Latent;
            for (int i = config.Hidden.Length - 1; i >= 0 && !labels; i--)
            {
                Add($"{name}.{config.Hidden.Length - 1 - i}", width, config.Hidden[i], config.Activation, hidden: true);
                width = config.Hidden[i];
            }
            Add($"{name}.out", width, outputs, labels ? ActivationKind.Identity : config.OutputActivation);
        }

        if (config.Spec.Has(Models.ModelCapabilities.TwoViews))
        {
            // One decoder per view, both from the same z.
            Decoder("decoder", config.Views.View1Size);
            DecoderEnd = layers.Count;
            Decoder("decoder2", config.Views.View2Size);
        }
        else
        {
            Decoder("decoder", config.OutputSize);
            DecoderEnd = layers.Count;
        }

        Layers = layers;
        Count = layers[^1].End;
    }

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
    public int Count { get; }

    /// <summary>
    /// PyTorch's nn.Linear initialisation: weights and biases uniform in ±1/√fan_in (kaiming_uniform with a = √5
    /// reduces to this bound), drawn from Philox so that every accelerator starts from the same bits.
    /// </summary>
    public float[] Initialise(ulong seed)
    {
        var parameters = new float[Count];
        foreach (var layer in Layers)
        {
            float bound = 1f / MathF.Sqrt(layer.Inputs);
            for (int i = layer.WeightOffset; i < layer.NormOffset; i++)
                parameters[i] = (2f * Philox.Uniform(seed, Philox.Streams.Initialise, 0, i) - 1f) * bound;
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
