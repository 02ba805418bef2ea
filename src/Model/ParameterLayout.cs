using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>One dense layer's place in the flat parameter buffer: W [Outputs, Inputs] then b [Outputs].</summary>
public sealed record DenseSlice(string Name, int Inputs, int Outputs, ActivationKind Activation, int WeightOffset)
{
    public int WeightCount => Inputs * Outputs;
    public int BiasOffset => WeightOffset + WeightCount;
    public int End => BiasOffset + Outputs;
}

/// <summary>
/// All parameters of a model in one flat buffer, so the optimiser is one launch and a checkpoint is one copy.
/// Layers run in the order listed: encoder hidden layers, the encoder's stats layer ([μ | log σ²], or the code
/// alone for the autoencoder), decoder hidden layers, the decoder's output layer.
/// </summary>
public sealed class ParameterLayout
{
    public ParameterLayout(VaeConfig config)
    {
        config.Validate();
        var layers = new List<DenseSlice>();
        int offset = 0;
        void Add(string name, int inputs, int outputs, ActivationKind activation)
        {
            var slice = new DenseSlice(name, inputs, outputs, activation, offset);
            layers.Add(slice);
            // Each weight matrix starts on a 4-float boundary so kernels may read it 16 bytes at a time; the
            // few floats of padding stay zero and receive zero gradients.
            offset = (slice.End + 3) / 4 * 4;
        }

        int width = config.InputSize;
        for (int i = 0; i < config.Hidden.Length; i++)
        {
            Add($"encoder.{i}", width, config.Hidden[i], config.Activation);
            width = config.Hidden[i];
        }
        Add("encoder.stats", width, config.EncoderOutputs, ActivationKind.Identity);
        EncoderLayerCount = layers.Count;

        width = config.Latent;
        for (int i = config.Hidden.Length - 1; i >= 0; i--)
        {
            Add($"decoder.{config.Hidden.Length - 1 - i}", width, config.Hidden[i], config.Activation);
            width = config.Hidden[i];
        }
        Add("decoder.out", width, config.InputSize, config.OutputActivation);

        Layers = layers;
        Count = layers[^1].End;
    }

    public IReadOnlyList<DenseSlice> Layers { get; }
    public int EncoderLayerCount { get; }
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
            for (int i = layer.WeightOffset; i < layer.End; i++)
                parameters[i] = (2f * Philox.Uniform(seed, Philox.Streams.Initialise, 0, i) - 1f) * bound;
        }
        return parameters;
    }
}
