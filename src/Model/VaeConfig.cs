using System.Text.Json.Serialization;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Models;

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

    /// <summary>Weight of the KL term (β-VAE); 1 is the ELBO. The VAE only (warm-up varies it per epoch).</summary>
    public double Beta { get; init; } = 1.0;

    public ModelKind Model { get; init; } = ModelKind.Vae;

    /// <summary>The catalog's entry for <see cref="Model"/>: its capabilities, defaults and family.</summary>
    [JsonIgnore]
    public ModelSpec Spec => ModelCatalog.For(Model);

    /// <summary>z samples per example, k: the VAE averages the ELBO over them, the IWAE bounds with all of them;
    /// the autoencoder takes 1.</summary>
    public int Samples { get; init; } = 1;

    /// <summary>Deep VIB: the number of classes the decoder predicts.</summary>
    public int Classes { get; init; } = 10;

    /// <summary>Columns of the decoder's output: the pixels, or the Deep VIB's class logits.</summary>
    public int OutputSize => Spec.Has(ModelCapabilities.Labels) ? Classes : InputSize;

    /// <summary>Target-rate training (Alemi et al. 2018): with σ set, the VAE minimises D + |σ − R| per batch
    /// instead of D + β·R; null is the ordinary objective.</summary>
    public double? TargetRate { get; init; }

    /// <summary>InfoVAE: λ, the weight of MMD², and the kernel it is estimated with.</summary>
    public double MmdLambda { get; init; } = 1000;
    public MmdKernelKind MmdKernel { get; init; } = MmdKernelKind.Gaussian;

    /// <summary>Stochastic layers: 1 (x → z), or 2 as in the IWAE paper (x → z1 → z2, with p(z2) p(z1|z2) p(x|z1)).</summary>
    public int StochasticLayers { get; init; } = 1;

    /// <summary>The second stochastic layer (two-layer models only): deterministic widths between z1 and z2, which
    /// the prior network p(z1|z2) mirrors, and the width of z2.</summary>
    public int[] Hidden2 { get; init; } = [100, 100];
    public int Latent2 { get; init; } = 50;

    /// <summary>Batch normalisation on every hidden layer (the Ladder VAE's), with running averages for
    /// evaluation.</summary>
    public bool BatchNorm { get; init; }

    /// <summary>q(z|x)'s covariance: diagonal, or the rank-one precision D + uuᵀ of the deep latent Gaussian model
    /// (the VAE only; its encoder then writes [μ | log d | u]).</summary>
    public CovarianceKind Covariance { get; init; } = CovarianceKind.Diagonal;

    /// <summary>The VLAE's latent layers L: <see cref="Latent"/> counts the dimensions of all of them together,
    /// <see cref="Latent"/> / L each (the VLAE only).</summary>
    public int LatentLayers { get; init; } = 3;

    /// <summary>The width of the top latent, the one the prior N(0, I) is on: what sampling and decoding take.</summary>
    public int TopLatent => Spec.TopLatent?.Invoke(this) ?? (StochasticLayers == 2 ? Models.Ladder.LadderRungs.Latent(this, Math.Max(2, LadderLayers)) : CodeWidth);

    /// <summary>Blocks of a Gaussian q's statistics row: [μ | log σ²], or [μ | log d | u] with a rank-one covariance.</summary>
    [JsonIgnore]
    public int PosteriorBlocks => Covariance == CovarianceKind.RankOne ? 3 : 2;

    /// <summary>The Ladder VAE's stochastic layers L (2 by default): z1 and z2 are sized by <see cref="Latent"/>,
    /// <see cref="Hidden"/>, <see cref="Latent2"/> and <see cref="Hidden2"/>, and each layer above z2 halves z2's
    /// widths once more (the paper's 64-32-16-8-4 over 512-256-128-64-32). The Ladder VAE only.</summary>
    public int LadderLayers { get; init; } = 2;

    /// <summary>How the Ladder VAE's Gaussians read their variance from a layer's output ρ: as log σ² = ρ (the
    /// default) or as σ² = softplus(ρ), the paper's. The Ladder VAE only.</summary>
    public VarianceForm LadderVariance { get; init; } = VarianceForm.LogVariance;

    /// <summary>Pixels per image row (MNIST: 28), which VCCA cuts into views; 0 takes the side of a square input.</summary>
    public int ImageWidth { get; init; }

    [JsonIgnore]
    public int RowWidth
    {
        get
        {
            if (ImageWidth > 0)
                return ImageWidth;
            int side = (int)Math.Round(Math.Sqrt(InputSize));
            return side * side == InputSize ? side : 0;
        }
    }

    /// <summary>VCCA's two views: the left ⌈width/2⌉ columns of each image row, and the rest.</summary>
    public ViewShape Views => new(InputSize, Math.Max(1, RowWidth), (RowWidth + 1) / 2);

    /// <summary>VCCA: the views q(z|·) reads, 1 (the left half: q(z|x), so the right half is predicted from the
    /// left) or 2 (both: q(z|x, y), the survey's first form).</summary>
    public int EncoderViews { get; init; } = 1;

    /// <summary>Planar flow steps on q(z|x) (Rezende and Mohamed 2015), their parameters written by the encoder
    /// beside μ and log σ² (the VAE only); 0: none.</summary>
    public int FlowLength { get; init; }

    /// <summary>The hierarchical variational model's r(λ|z): 0 for a Gaussian, else the planar steps of an inverse flow
    /// whose parameters r's network writes beside [a | log b²] (the HVM only).</summary>
    public int AuxiliaryFlowLength { get; init; }

    /// <summary>κ of a Gaussian prior N(0, κI) on the generative weights (the decoder's weight matrices), as in the
    /// deep latent Gaussian model: each step adds θ/κ to their gradient, the per-example loss gaining ‖θ‖²/(2κ)
    /// (a prior N(0, κ₀I) over a data set of N examples is κ = κ₀·N). Null: no prior.</summary>
    public double? WeightPrior { get; init; }

    /// <summary>p(z): the standard normal N(0, I), or a learned multimodal prior of <see cref="PriorComponents"/>
    /// components (the VAE only): a mixture of Gaussians with learned means and variances, or the VampPrior
    /// (1/C) Σ_c q(z|u_c) of learned pseudo-inputs u_c. With either, the KL term is sampled.</summary>
    public PriorKind Prior { get; init; } = PriorKind.Standard;

    /// <summary>The learned prior's components C (0 with the standard normal).</summary>
    public int PriorComponents { get; init; }

    /// <summary>The prior the model trains with: <see cref="Prior"/>, or the learned factorized marginal of a model
    /// that has one (CorEx's r(z), <see cref="ModelCapabilities.FactorizedMarginal"/>).</summary>
    [JsonIgnore]
    public PriorKind ModelPrior => Spec.Has(ModelCapabilities.FactorizedMarginal) ? PriorKind.Factorized : Prior;

    /// <summary>That prior's components: one for the factorized marginal.</summary>
    [JsonIgnore]
    public int ModelPriorComponents => ModelPrior == PriorKind.Factorized ? 1 : PriorComponents;

    /// <summary>AnchorVAE: the first <see cref="Anchors"/> latent dimensions are anchors, whose information term
    /// λ·I(z_k; x) (λ = <see cref="AnchorWeight"/>), bounded by their KL, leaves them a KL weight of 1 − λ (CorEx only).</summary>
    public int Anchors { get; init; }
    public double AnchorWeight { get; init; } = 0.5;

    /// <summary>The anchors among the codes' columns: stacked CorEx's anchors are z1's, and its codes z2.</summary>
    [JsonIgnore]
    public int CodeAnchors => StochasticLayers == 1 ? Anchors : 0;

    /// <summary>The mutual autoencoder: the target M of Î(x; z) in nats, and the weight C of |Î − M|.</summary>
    public double MutualInformation { get; init; } = 10;
    public double MiWeight { get; init; } = 10;

    /// <summary>The deep exponential family's layers, bottom (nearest the data) first, as "gamma:100,gamma:40,gamma:15"
    /// (see <see cref="Models.Def.DefLayerSpec"/>); the DEF only. Its first width is <see cref="Latent"/>.</summary>
    public string DefLayers { get; init; } = Models.Def.DefLayerSpec.Default;

    /// <summary>α of the DEF's sparse gamma layers: p(z_l | z_{l+1}) = Gamma(α, α/μ), and the top layer's
    /// Gamma(α, α) (the DEF paper's sparse gamma takes α = 0.1). The DEF only.</summary>
    public double DefShape { get; init; } = 0.1;

    /// <summary>DARN's decoder: false, p(x|h) = Π_i Bernoulli(x_i; σ(f_i(h))); true, autoregressive over the pixels in
    /// raster order, logit_i = f_i(h) + Σ_{k&lt;i} A_ik·x_k with A strictly lower triangular (Gregor et al. 2014). DARN only.</summary>
    public bool AutoregressiveDecoder { get; init; }

    /// <summary>How DARN's encoder is trained: NVIL's score-function estimator, or the paper's Taylor-expansion
    /// baseline (see <see cref="GpuKernels.DarnEstimatorKind"/>). DARN only.</summary>
    public GpuKernels.DarnEstimatorKind DarnEstimator { get; init; }

    /// <summary>The most components a learned prior may have (the VampPrior paper's largest is 500).</summary>
    public const int MaxPriorComponents = 5000;

    /// <summary>VCCA-private: the width of each view's private latent h_x and h_y beside the shared z (0: none). The
    /// codes are then [z | h_x | h_y], <see cref="CodeWidth"/> wide.</summary>
    public int PrivateLatent { get; init; }

    /// <summary>Columns of the codes a one-layer model samples, encodes and decodes: z, and VCCA-private's h_x and h_y.</summary>
    public int CodeWidth => Latent + 2 * PrivateLatent;

    /// <summary>Whether the model infers every code from the first view alone and so predicts the second (VCCA with
    /// one encoder view and no private latents): the cross-view picture.</summary>
    [JsonIgnore]
    public bool PredictsSecondView => Spec.Has(ModelCapabilities.TwoViews) && EncoderViews == 1 && PrivateLatent == 0;

    /// <summary>Columns the (first) encoder reads: the whole input (with both of VCCA's views), or VCCA's first view.</summary>
    public int EncoderInputs => Spec.Has(ModelCapabilities.TwoViews) && EncoderViews == 1 ? Views.View1Size : InputSize;

    /// <summary>Columns of the encoder's last layer: [μ | log σ²] for the VAE and IWAE, the code alone for the
    /// autoencoder.</summary>
    public int EncoderOutputs => !Spec.GaussianStatistics ? Latent
        : PosteriorBlocks * Latent + FlowLength * (2 * Latent + 1);

    /// <summary>The planar flow on q(z|x) (or the HVM's q(λ|x)) with <paramref name="samples"/> rows per example: its
    /// steps after a diagonal or rank-one base.</summary>
    public GpuKernels.FlowShape PosteriorFlow(int samples) => new(Latent, FlowLength, samples, PosteriorBlocks);

    /// <summary>Bernoulli decoders output logits; Gaussian decoders output means in (0, 1) through a sigmoid,
    /// matching pixel intensities.</summary>
    public ActivationKind OutputActivation =>
        Likelihood == LikelihoodKind.Bernoulli ? ActivationKind.Identity : ActivationKind.Sigmoid;

    /// <summary>Value equality, comparing the hidden widths element by element (a record alone compares the
    /// array reference).</summary>
    public bool Equals(VaeConfig? other) =>
        other is not null && InputSize == other.InputSize && Hidden.SequenceEqual(other.Hidden) && Latent == other.Latent
        && Activation == other.Activation && Likelihood == other.Likelihood
        && GaussianVariance.Equals(other.GaussianVariance) && Beta.Equals(other.Beta)
        && Model == other.Model && Samples == other.Samples && StochasticLayers == other.StochasticLayers && BatchNorm == other.BatchNorm
        && LatentLayers == other.LatentLayers && LadderLayers == other.LadderLayers && LadderVariance == other.LadderVariance && Covariance == other.Covariance && EncoderViews == other.EncoderViews && PrivateLatent == other.PrivateLatent && Prior == other.Prior && PriorComponents == other.PriorComponents && Anchors == other.Anchors && AnchorWeight.Equals(other.AnchorWeight) && MutualInformation.Equals(other.MutualInformation) && MiWeight.Equals(other.MiWeight) && WeightPrior.Equals(other.WeightPrior) && FlowLength == other.FlowLength && AuxiliaryFlowLength == other.AuxiliaryFlowLength && MmdLambda.Equals(other.MmdLambda) && MmdKernel == other.MmdKernel && TargetRate.Equals(other.TargetRate)
        && DefLayers == other.DefLayers && DefShape.Equals(other.DefShape) && AutoregressiveDecoder == other.AutoregressiveDecoder && DarnEstimator == other.DarnEstimator
        && (!Spec.Has(ModelCapabilities.Labels) || Classes == other.Classes)
        && (!Spec.Has(ModelCapabilities.TwoViews) || RowWidth == other.RowWidth)
        && (StochasticLayers == 1 || (Hidden2.SequenceEqual(other.Hidden2) && Latent2 == other.Latent2));

    public override int GetHashCode() =>
        HashCode.Combine(InputSize, Hidden.Length > 0 ? Hidden[0] : 0, Hidden.Length, Latent, Activation, Likelihood,
            HashCode.Combine(GaussianVariance, Beta, Model, Samples, StochasticLayers));

    /// <summary>The most samples per example: the IWAE paper's largest training k is 50; 5000 is the evaluation k.</summary>
    public const int MaxSamples = 5000;

    /// <summary>Every setting at its default: a model that does not declare an option must leave it there.</summary>
    private static readonly VaeConfig Defaults = new();

    /// <summary>Throws with a message naming the setting and what to change.</summary>
    public void Validate()
    {
        if (InputSize < 1)
            throw new SettingException($"@InputSize must be at least 1 (got {InputSize})");
        if (Latent < 1)
            throw new SettingException($"@Latent must be at least 1 (got {Latent})");
        if (Hidden.Any(width => width < 1))
            throw new SettingException($"@Hidden widths must each be at least 1 (got {string.Join(",", Hidden)})");
        if (Likelihood == LikelihoodKind.Gaussian && !(GaussianVariance > 0))
            throw new SettingException($"@GaussianVariance, the Gaussian decoder's variance c, must be positive (got {GaussianVariance})");
        if (Likelihood == LikelihoodKind.Poisson && !Spec.Has(ModelCapabilities.CountObservations))
            throw new SettingException($"@Likelihood poisson (grey levels as counts) is for @Model {ModelCatalog.NamesWith(ModelCapabilities.CountObservations)}, whose rates are positive; use bernoulli or gaussian");
        if (!(Beta >= 0) || double.IsInfinity(Beta))
            throw new SettingException($"@Beta must be a finite number ≥ 0 (got {Beta})");
        if (Samples < 1 || Samples > MaxSamples)
            throw new SettingException($"@Samples must be from 1 to {MaxSamples} (got {Samples})");
        if (StochasticLayers is not (1 or 2))
            throw new SettingException($"@StochasticLayers must be 1 or 2 (got {StochasticLayers})");
        if (StochasticLayers == 2 && (Latent2 < 1 || Hidden2.Any(width => width < 1)))
            throw new SettingException($"the second stochastic layer's widths, @Hidden2 and @Latent2, must each be at least 1 (got {string.Join(",", Hidden2)} and {Latent2})");
        if (TargetRate is { } rate && (!(rate >= 0) || double.IsInfinity(rate)))
            throw new SettingException($"@TargetRate must be a finite number of nats ≥ 0 (got {rate})");
        if (TargetRate is not null && (!Spec.Has(ModelCapabilities.TargetRate) || Samples != 1 || StochasticLayers != 1 || Beta != 1))
            throw new SettingException("@TargetRate replaces β·KL of the one-layer VAE with k = 1: use it without @Model, @Samples, @StochasticLayers or @Beta");
        if (BatchNorm && !Spec.Has(ModelCapabilities.BatchNorm))
            throw new SettingException($"@BatchNorm is implemented for @Model {ModelCatalog.NamesWith(ModelCapabilities.BatchNorm)} only");
        if (Covariance != CovarianceKind.Diagonal && !Spec.Declares(nameof(Covariance)))
            throw new SettingException($"@Covariance {Covariance} is implemented for @Model {ModelCatalog.NamesDeclaring(nameof(Covariance))}");
        if (Prior != PriorKind.Standard && !Spec.Declares(nameof(Prior)))
            throw new SettingException($"@Prior {Prior.ToString().ToLowerInvariant()} is implemented for @Model {ModelCatalog.NamesDeclaring(nameof(Prior))}");
        if ((Prior == PriorKind.Standard) != (PriorComponents == 0) || PriorComponents < 0 || PriorComponents > MaxPriorComponents)
            throw new SettingException($"@Prior takes 1 to {MaxPriorComponents} components, as mog:C or vamp:C, and the standard normal none (got {Prior.ToString().ToLowerInvariant()} with {PriorComponents})");
        if ((MutualInformation != Defaults.MutualInformation && !Spec.Declares(nameof(MutualInformation)))
            || (MiWeight != Defaults.MiWeight && !Spec.Declares(nameof(MiWeight))))
            throw new SettingException($"@MutualInformation and @MiWeight are the mutual autoencoder's, for @Model {ModelCatalog.NamesDeclaring(nameof(MutualInformation))}");
        if ((Anchors != Defaults.Anchors && !Spec.Declares(nameof(Anchors))) || (AnchorWeight != Defaults.AnchorWeight && !Spec.Declares(nameof(AnchorWeight))))
            throw new SettingException($"@Anchors and @AnchorWeight are AnchorVAE's, for @Model {ModelCatalog.NamesDeclaring(nameof(Anchors))}");
        if (FlowLength < 0 || (FlowLength > 0 && !Spec.Declares(nameof(FlowLength))))
            throw new SettingException($"@FlowLength is the planar flow steps of @Model {ModelCatalog.NamesDeclaring(nameof(FlowLength))}, at least 0 (got {FlowLength})");
        if (AuxiliaryFlowLength < 0 || (AuxiliaryFlowLength > 0 && !Spec.Declares(nameof(AuxiliaryFlowLength))))
            throw new SettingException($"@AuxiliaryFlowLength is the inverse flow steps of the auxiliary r(λ|z) of @Model {ModelCatalog.NamesDeclaring(nameof(AuxiliaryFlowLength))}, at least 0 (got {AuxiliaryFlowLength})");
        if (WeightPrior is { } kappa && (!(kappa > 0) || double.IsInfinity(kappa) || !Spec.Declares(nameof(WeightPrior))))
            throw new SettingException($"@WeightPrior is κ > 0 of the generative weights' prior, for @Model {ModelCatalog.NamesDeclaring(nameof(WeightPrior))} (got {kappa})");
        if (PrivateLatent < 0 || (PrivateLatent != 0 && !Spec.Declares(nameof(PrivateLatent))))
            throw new SettingException($"@PrivateLatent is the width of the private latents of a model of two views (@Model {ModelCatalog.NamesWith(ModelCapabilities.TwoViews)}), at least 0 (got {PrivateLatent})");
        if ((LadderLayers != Defaults.LadderLayers && !Spec.Declares(nameof(LadderLayers)))
            || (LadderVariance != Defaults.LadderVariance && !Spec.Declares(nameof(LadderVariance))))
            throw new SettingException($"@LadderLayers and @LadderVariance are the Ladder VAE's, for @Model {ModelCatalog.NamesDeclaring(nameof(LadderLayers))}");
        if ((DefLayers != Defaults.DefLayers && !Spec.Declares(nameof(DefLayers))) || (DefShape != Defaults.DefShape && !Spec.Declares(nameof(DefShape))))
            throw new SettingException($"@DefLayers and @DefShape are the deep exponential family's, for @Model {ModelCatalog.NamesDeclaring(nameof(DefLayers))}");
        if (AutoregressiveDecoder && !Spec.Declares(nameof(AutoregressiveDecoder)))
            throw new SettingException($"@AutoregressiveDecoder is DARN's, for @Model {ModelCatalog.NamesDeclaring(nameof(AutoregressiveDecoder))}");
        if (DarnEstimator != GpuKernels.DarnEstimatorKind.Nvil && !Spec.Declares(nameof(DarnEstimator)))
            throw new SettingException($"@DarnEstimator is DARN's, for @Model {ModelCatalog.NamesDeclaring(nameof(DarnEstimator))}");
        if (AutoregressiveDecoder && Likelihood != LikelihoodKind.Bernoulli)
            throw new SettingException($"@AutoregressiveDecoder reads binary pixels: it needs @Likelihood bernoulli (got {Likelihood.ToString().ToLowerInvariant()})");
        if (EncoderViews != 1 && !Spec.Declares(nameof(EncoderViews)))
            throw new SettingException($"@EncoderViews is for a model of two views (@Model {ModelCatalog.NamesWith(ModelCapabilities.TwoViews)})");
        // The model's own checks first: they name what it takes instead.
        Spec.Validate(this);
        if (StochasticLayers == 2 && !Spec.Has(ModelCapabilities.TwoStochasticLayers) && Spec.DefaultStochasticLayers != 2)
            throw new SettingException($"@Model {Spec.Name} has one stochastic layer; @StochasticLayers 2 needs @Model {ModelCatalog.NamesWith(ModelCapabilities.TwoStochasticLayers).Replace(", ", " or ")}");
    }
}

/// <summary>The covariance of a Gaussian q(z|x).</summary>
public enum CovarianceKind
{
    Diagonal,
    /// <summary>Precision D + uuᵀ (Rezende et al. 2014): one direction of correlation per example.</summary>
    RankOne,
}

/// <summary>How a Gaussian's variance is read from the layer that writes it.</summary>
public enum VarianceForm
{
    /// <summary>The output is log σ².</summary>
    LogVariance,
    /// <summary>σ² = softplus(output) = log(1 + e^output), as the Ladder VAE paper has it.</summary>
    Softplus,
}

/// <summary>The prior p(z) of a one-layer VAE.</summary>
public enum PriorKind
{
    /// <summary>N(0, I), with the closed-form KL term.</summary>
    Standard,
    /// <summary>(1/C) Σ_c N(μ_c, diag σ_c²), every μ_c and log σ_c² learned.</summary>
    Mixture,
    /// <summary>The VampPrior (Tomczak and Welling 2018): (1/C) Σ_c q(z|u_c), u_c learned pseudo-inputs.</summary>
    Vamp,
    /// <summary>A learned factorized Gaussian Π_j N(m_j, s_j²), with the closed-form KL per dimension (CorEx's r(z)).</summary>
    Factorized,
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
            throw new SettingException($"@LearningRate must be a positive finite number (got {LearningRate})");
        if (MaxGradientNorm is { } norm && (!(norm > 0) || double.IsInfinity(norm)))
            throw new SettingException($"@MaxGradientNorm must be a positive finite number (got {norm})");
    }
}
