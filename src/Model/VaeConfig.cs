using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>
/// The architecture and objective of a Gaussian-encoder VAE: an MLP encoder input → hidden… → [μ | log σ²], and a
/// mirrored decoder latent → …hidden → input. Defaults are the PyTorch VAE example: 784-400-20, ReLU, Bernoulli.
/// </summary>
public sealed record VaeConfig
{
    public int InputSize { get; init; } = 784;
    public int[] Hidden { get; init; } = [400];
    public int Latent { get; init; } = 20;
    public ActivationKind Activation { get; init; } = ActivationKind.Relu;
    public LikelihoodKind Likelihood { get; init; } = LikelihoodKind.Bernoulli;

    /// <summary>c of the Gaussian decoder N(f(z), c·I); unused by Bernoulli.</summary>
    public double GaussianVariance { get; init; } = 1.0;

    /// <summary>Weight of the KL term (β-VAE); 1 is the ELBO.</summary>
    public double Beta { get; init; } = 1.0;

    /// <summary>Bernoulli decoders output logits; Gaussian decoders output means in (0, 1) through a sigmoid,
    /// matching pixel intensities.</summary>
    public ActivationKind OutputActivation =>
        Likelihood == LikelihoodKind.Bernoulli ? ActivationKind.Identity : ActivationKind.Sigmoid;

    /// <summary>Value equality, comparing the hidden widths element by element (a record alone compares the
    /// array reference).</summary>
    public bool Equals(VaeConfig? other) =>
        other is not null && InputSize == other.InputSize && Hidden.SequenceEqual(other.Hidden) && Latent == other.Latent
        && Activation == other.Activation && Likelihood == other.Likelihood
        && GaussianVariance.Equals(other.GaussianVariance) && Beta.Equals(other.Beta);

    public override int GetHashCode() =>
        HashCode.Combine(InputSize, Hidden.Length > 0 ? Hidden[0] : 0, Hidden.Length, Latent, Activation, Likelihood, GaussianVariance, Beta);

    /// <summary>Throws with a message naming the setting and what to change.</summary>
    public void Validate()
    {
        if (InputSize < 1)
            throw new ArgumentException($"input size must be at least 1 (got {InputSize})");
        if (Latent < 1)
            throw new ArgumentException($"--latent must be at least 1 (got {Latent})");
        if (Hidden.Any(width => width < 1))
            throw new ArgumentException($"--hidden widths must each be at least 1 (got {string.Join(",", Hidden)})");
        if (Likelihood == LikelihoodKind.Gaussian && !(GaussianVariance > 0))
            throw new ArgumentException($"the Gaussian decoder variance c must be positive (got {GaussianVariance})");
        if (!(Beta >= 0) || double.IsInfinity(Beta))
            throw new ArgumentException($"β must be a finite number ≥ 0 (got {Beta})");
    }
}

/// <summary>Optimiser settings (Adam, PyTorch defaults).</summary>
public sealed record AdamSettings
{
    public double LearningRate { get; init; } = 1e-3;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Clip the gradient to this L2 norm over all parameters before each step (PyTorch's
    /// clip_grad_norm_); null leaves it unclipped.</summary>
    public double? MaxGradientNorm { get; init; }

    /// <summary>Throws with a message naming the option and what to change.</summary>
    public void Validate()
    {
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentException($"--lr must be a positive finite number (got {LearningRate})");
        if (MaxGradientNorm is { } norm && (!(norm > 0) || double.IsInfinity(norm)))
            throw new ArgumentException($"--clip-grad-norm must be a positive finite number (got {norm})");
    }
}
