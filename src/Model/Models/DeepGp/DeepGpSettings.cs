using System.Globalization;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Models.DeepGp;

/// <summary>The deep GP's likelihood: Gaussian with a learned noise variance (regression), or over classes the softmax
/// of the last layer's sample or the robust-max under its marginals (the authors' MNIST likelihood).</summary>
public enum DeepGpLikelihood
{
    Gaussian,
    Softmax,
    RobustMax,
}

/// <summary>
/// A deep GP's settings (Salimbeni and Deisenroth 2017; shared/docs/SCIENCE.md). The defaults are the paper's
/// regression setting: 100 inducing points a layer, inner layers min(D, 30) wide, Adam at 0.01 on batches of
/// 10 000 (the whole table for the UCI sets), jitter 10⁻⁶ on K_ZZ.
/// </summary>
public sealed record DeepGpSettings
{
    /// <summary>GP layers (1: a single sparse variational GP).</summary>
    public int Layers { get; init; } = 2;

    /// <summary>Inducing points M per layer.</summary>
    public int Inducing { get; init; } = 100;

    /// <summary>Width of the inner layers; 0: min(D, 30) for D input features, as the paper.</summary>
    public int InnerWidth { get; init; }

    public DeepGpLikelihood Likelihood { get; init; } = DeepGpLikelihood.Gaussian;

    /// <summary>Points per step (the whole training set when it has fewer).</summary>
    public int BatchSize { get; init; } = 10000;

    public double LearningRate { get; init; } = 0.01;

    /// <summary>Added to K_ZZ's diagonal before its factorisation.</summary>
    public double Jitter { get; init; } = 1e-6;

    /// <summary>The Gaussian likelihood's noise variance at the start (on standardised targets).</summary>
    public double InitialNoise { get; init; } = 0.01;

    /// <summary>S = scale²·I at the start of each inner layer's q(u), so that the inner layers begin almost
    /// deterministic and the first steps see the linear mean's map of the inputs (the authors' initialisation).</summary>
    public double InnerScale { get; init; } = 1e-5;

    /// <summary>
    /// Whether q(u) is held whitened, u = L v with L the factor of K_ZZ + jitter·I and q(v) = N(m, L_S L_Sᵀ) against
    /// p(v) = N(0, I) (the default: the KL no longer reads K⁻¹, so Adam is not slowed by K_ZZ's conditioning), or as
    /// SCIENCE.md writes it, q(u) = N(m, L_S L_Sᵀ) against N(0, K_ZZ), started at the prior as the authors' code does.
    /// The two describe the same family of q; only the coordinates Adam moves in differ.
    /// </summary>
    public bool Whitened { get; init; } = true;

    /// <summary>Every layer's lengthscales at the start; 0: √D_in for D_in inputs (a standardised input's squared
    /// distances are of order D). The authors' MNIST runs start at 2.</summary>
    public double InitialLengthscale { get; init; }

    /// <summary>Every layer's σ_f² at the start (the authors' MNIST runs: 2).</summary>
    public double InitialSignalVariance { get; init; } = 1;

    /// <summary>The robust-max likelihood's ε: p(y | f) = 1 − ε when f_y is the largest, else ε/(C − 1) (GPflow's
    /// default, fixed as there).</summary>
    public double RobustMaxEpsilon { get; init; } = 1e-3;

    /// <summary>Gauss–Hermite points of the robust-max likelihood's expectation (GPflow's default).</summary>
    public int QuadraturePoints { get; init; } = 20;

    /// <summary>Whether the likelihood reads the last layer's marginals (Gaussian, robust-max) rather than its sample.</summary>
    public bool LikelihoodReadsMarginals => Likelihood != DeepGpLikelihood.Softmax;

    /// <summary>Seed of the k-means start and every draw.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>The inner width for <paramref name="features"/> inputs.</summary>
    public int InnerWidthFor(int features) => InnerWidth > 0 ? InnerWidth : Math.Min(features, 30);

    public void Validate()
    {
        if (Layers is < 1 or > 10)
            throw new SettingException($"@Layers must be 1 to 10 (got {Layers})");
        if (Inducing is < 1 or > 2000)
            throw new SettingException($"@Inducing must be 1 to 2000 inducing points a layer (got {Inducing})");
        if (InnerWidth < 0)
            throw new SettingException($"@InnerWidth must be at least 1, or 0 for min(D, 30) (got {InnerWidth})");
        if (!(RobustMaxEpsilon is > 0 and < 1))
            throw new SettingException($"@RobustMaxEpsilon must lie between 0 and 1 (got {RobustMaxEpsilon.ToString(CultureInfo.InvariantCulture)})");
        if (QuadraturePoints is < 1 or > 100)
            throw new SettingException($"@QuadraturePoints must be 1 to 100 (got {QuadraturePoints})");
        if (BatchSize < 1)
            throw new SettingException($"@BatchSize must be at least 1 (got {BatchSize})");
        if (!(Jitter >= 0) || double.IsInfinity(Jitter))
            throw new SettingException($"@Jitter must be a finite number ≥ 0 (got {Jitter.ToString(CultureInfo.InvariantCulture)})");
        if (!(InitialLengthscale >= 0) || double.IsInfinity(InitialLengthscale))
            throw new SettingException($"@InitialLengthscale must be a finite number > 0, or 0 for √D (got {InitialLengthscale.ToString(CultureInfo.InvariantCulture)})");
        foreach (var (name, value) in new[] { ("@InitialSignalVariance", InitialSignalVariance), ("@LearningRate", LearningRate), ("@InitialNoise", InitialNoise), ("@InnerScale", InnerScale) })
            if (!(value > 0) || double.IsInfinity(value))
                throw new SettingException($"{name} must be a finite number > 0 (got {value.ToString(CultureInfo.InvariantCulture)})");
    }
}
