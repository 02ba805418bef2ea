using System.Globalization;
using System.Text.Json.Serialization;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Models.Darn;
using IlgpuVae.Model.Models.Def;
using IlgpuVae.Model.Models.Hvm;
using IlgpuVae.Model.Models.HvmBernoulli;
using IlgpuVae.Model.Models.Ladder;
using IlgpuVae.Model.Models.Mutual;
using IlgpuVae.Model.Models.OneLayer;
using IlgpuVae.Model.Models.Sbn;
using IlgpuVae.Model.Models.StackedCorex;
using IlgpuVae.Model.Models.TwoLayer;
using IlgpuVae.Model.Models.Vcca;
using IlgpuVae.Model.Models.VccaPrivate;
using IlgpuVae.Model.Models.Vlae;

namespace IlgpuVae.Model.Models;

/// <summary>What a model can do, for the commands and checks that depend on it (never on its name).</summary>
[Flags]
public enum ModelCapabilities
{
    None = 0,
    /// <summary>The decoder writes images: sample, reconstruct and the pictures of a run.</summary>
    Images = 1,
    /// <summary>A likelihood bound of x: eval's L_k and NLL, and importance weights.</summary>
    LikelihoodBound = 2,
    /// <summary>q(z|x) has a variance: a KL term (the rate), ELBO surgery, and log σ² from encode.</summary>
    Posterior = 4,
    /// <summary>Its KL weight may be warmed up (--warmup-epochs).</summary>
    KlWarmup = 8,
    /// <summary>It is trained on labels and reports a test error.</summary>
    Labels = 16,
    /// <summary>Two views of each image (left and right halves): the encoder reads the left one.</summary>
    TwoViews = 32,
    /// <summary>It may take a second stochastic layer (--stochastic-layers 2).</summary>
    TwoStochasticLayers = 64,
    /// <summary>Batch normalisation of its hidden layers (--batch-norm).</summary>
    BatchNorm = 128,
    /// <summary>Target-rate training (--target-rate) in place of β·KL.</summary>
    TargetRate = 256,
    /// <summary>Its prior is a learned factorized marginal r(z) = Π_j N(m_j, s_j²) (auto-encoding CorEx).</summary>
    FactorizedMarginal = 512,
    /// <summary>It can score pixels as Poisson counts (--likelihood poisson: a grey level × 255, its byte).</summary>
    CountObservations = 1024,
    /// <summary>Its encoder's last layer holds a Gaussian's statistics (μ, log σ² and any flow steps), as a posterior's
    /// do, though its codes are not that Gaussian's draws: the Bernoulli HVM's q(λ|x) over the mean-field parameters.</summary>
    GaussianEncoder = 2048,
}

/// <summary>
/// What a model calls its loss and the two terms it is split into, wherever they are shown: progress lines,
/// metrics.csv columns, loss.png and eval.json. The ELBO's are "reconstruction" and "KL"; the Deep VIB's first
/// term is a cross-entropy, and the two-layer models' KL terms are sampled.
/// </summary>
public sealed record ObjectiveTerms(string Loss, string Distortion, string Rate,
    [property: JsonIgnore] string DistortionColumn = "reconstruction", [property: JsonIgnore] string RateColumn = "kl")
{
    public static ObjectiveTerms Elbo { get; } = new("−ELBO", "reconstruction", "KL");
}

/// <summary>
/// A setting only some models take, declared by their catalog entries: the command line offers it as
/// <c>--Name</c> with this help, and <see cref="Apply"/> parses the text a user gave into the config (throwing a
/// <see cref="SettingException"/> for text it cannot read). A model that does not declare it refuses it.
/// </summary>
public sealed record ModelOption(string Name, string Help, string ValueName, Func<VaeConfig, string, VaeConfig> Apply)
{
    /// <summary>The <see cref="VaeConfig"/> property it sets, which messages name as <c>@Property</c> (null: none).</summary>
    public string? Property { get; init; }

    /// <summary>A whole number in the invariant culture, or a <see cref="SettingException"/> naming <paramref name="setting"/>.</summary>
    public static int WholeNumber(string text, string setting) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value)
            ? value
            : throw new SettingException($"@{setting} must be a whole number (got '{text}')");

    /// <summary>A number in the invariant culture, or a <see cref="SettingException"/> naming <paramref name="setting"/>.</summary>
    public static double Number(string text, string setting) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            ? value
            : throw new SettingException($"@{setting} must be a number (got '{text}')");
}

/// <summary>One latent layer's columns of the codes a model encodes and decodes: the VLAE's z_l.</summary>
public sealed record LatentGroup(string Name, int First, int Width);

/// <summary>
/// One model of the catalog: its name as a user types it, its help, its capabilities, the defaults it changes,
/// its own validation, what its objective is called, and the family that builds it and its reference.
/// </summary>
public sealed record ModelSpec(ModelKind Kind, string Name, string Help)
{
    public ModelCapabilities Capabilities { get; init; }

    public bool Has(ModelCapabilities capability) => (Capabilities & capability) == capability;

    /// <summary>Whether the encoder's last layer is a Gaussian's statistics: a posterior's, or the Bernoulli HVM's q(λ|x).</summary>
    public bool GaussianStatistics => Has(ModelCapabilities.Posterior) || Has(ModelCapabilities.GaussianEncoder);

    /// <summary>Whether one of its options sets the config property <paramref name="property"/>.</summary>
    public bool Declares(string property) => Options.Any(option => option.Property == property);

    /// <summary>The β it trains with unless one is given (null: the usual 1).</summary>
    public double? DefaultBeta { get; init; }

    /// <summary>This model on <paramref name="config"/>'s sizes, with the defaults it changes (β, samples, stochastic
    /// layers, batch norm) in place of the config's; the latent width is left as given.</summary>
    public VaeConfig WithDefaults(VaeConfig config) => config with
    {
        Model = Kind,
        Beta = DefaultBeta ?? config.Beta,
        Samples = DefaultSamples ?? config.Samples,
        StochasticLayers = Math.Max(DefaultStochasticLayers, config.StochasticLayers),
        BatchNorm = DefaultBatchNorm || config.BatchNorm,
        FlowLength = FlowLengthOrDefault(config.FlowLength),
    };

    /// <summary>The flow steps a config of this model has: <paramref name="flowLength"/> where steps were given, else the
    /// model's own <see cref="DefaultFlowLength"/> (the Bernoulli HVM's two: without steps its q(z|x) is mean-field
    /// again). What train, bench and check all build from; an explicit --flow-length, applied after, wins.</summary>
    public int FlowLengthOrDefault(int flowLength) => flowLength == 0 ? DefaultFlowLength ?? 0 : flowLength;

    /// <summary>The latent width it trains with unless one is given (null: the config's).</summary>
    public int? DefaultLatent { get; init; }

    /// <summary>The hidden widths it trains with unless --hidden (and --hidden2) are given (null: the config's; empty:
    /// none, the sigmoid belief network's linear layers).</summary>
    public int[]? DefaultHidden { get; init; }

    /// <summary>Samples per example k it trains with unless --samples is given (null: the config's).</summary>
    public int? DefaultSamples { get; init; }

    /// <summary>Planar flow steps it trains with unless --flow-length (or a preset) gives some (null: the config's).</summary>
    public int? DefaultFlowLength { get; init; }

    /// <summary>The width of the codes that sampling and decoding take, where it is not the one-layer or two-layer
    /// rule's (the DEF's top layer); null: that rule.</summary>
    public Func<VaeConfig, int>? TopLatent { get; init; }

    /// <summary>Stochastic layers and batch norm unless told otherwise.</summary>
    public int DefaultStochasticLayers { get; init; } = 1;
    public bool DefaultBatchNorm { get; init; }

    /// <summary>A term of its objective that is a function of the whole minibatch, not a mean over its examples
    /// (null: none): data-parallel training, where each rank sees a slice, refuses the model and says why.</summary>
    public string? WholeBatchTerm { get; init; }

    /// <summary>What eval calls the loss it reports.</summary>
    public Func<VaeConfig, string> ObjectiveName { get; init; } = _ => "ELBO (one sample per image)";

    /// <summary>The settings this model alone (or with a few others) takes.</summary>
    public IReadOnlyList<ModelOption> Options { get; init; } = [];

    /// <summary>The names of its loss and terms (see <see cref="ObjectiveTerms"/>).</summary>
    public Func<VaeConfig, ObjectiveTerms> Terms { get; init; } = config => config.TargetRate is not null
        ? ObjectiveTerms.Elbo with { Loss = "D + |σ − R|" }
        : config.StochasticLayers == 2 || config.Prior is PriorKind.Mixture or PriorKind.Vamp ? SampledKl : ObjectiveTerms.Elbo;

    /// <summary>Two stochastic layers or a learned prior: the KL terms are sampled.</summary>
    private static readonly ObjectiveTerms SampledKl = ObjectiveTerms.Elbo with { Rate = "sampled KL terms" };

    /// <summary>What the training banner adds about this model's own settings ("" when nothing).</summary>
    public Func<VaeConfig, string> Settings { get; init; } = _ => "";

    /// <summary>Whether a config's loss is summed per example apart from rec + β·KL per row (−L_k, the InfoVAE's,
    /// target rate's).</summary>
    public Func<VaeConfig, bool> SeparateObjective { get; init; } = config => config.TargetRate is not null;

    /// <summary>Its codes' latent layers, top first, when they are more than one (the VLAE's z_L … z_1): pictures
    /// vary each layer with the others held. Empty: one latent.</summary>
    public Func<VaeConfig, IReadOnlyList<LatentGroup>> LatentGroups { get; init; } = _ => [];

    /// <summary>The checks of this model's own settings; throws with a message naming them.</summary>
    public Action<VaeConfig> Validate { get; init; } = _ => { };

    /// <summary>The family that builds a model of this config.</summary>
    public required Func<VaeConfig, ModelFamily> Family { get; init; }
}

/// <summary>
/// Every model the program trains, one line each: commands, checkpoints, the layout, the memory plan and the
/// references find a model's family and capabilities here.
/// </summary>
public static class ModelCatalog
{
    private static readonly OneLayerFamily OneLayer = new();
    private static readonly TwoLayerFamily TwoLayer = new();
    private static readonly LadderFamily LadderFamily = new();
    private static readonly VccaFamily VccaFamily = new();
    private static readonly VlaeFamily VlaeFamily = new();
    private static readonly VccaPrivateFamily VccaPrivateFamily = new();
    private static readonly MutualFamily MutualFamily = new();
    private static readonly HvmFamily HvmFamily = new();
    private static readonly HvmBernoulliFamily HvmBernoulliFamily = new();
    private static readonly StackedCorexFamily StackedCorexFamily = new();
    private static readonly SbnFamily SbnFamily = new();
    private static readonly DarnFamily DarnFamily = new();
    private static readonly DefFamily DefFamily = new();

    /// <summary>The most stochastic layers of a Ladder VAE (the paper's deepest is 5).</summary>
    public const int MaxLadderLayers = 8;

    private static ModelFamily OneOrTwoLayers(VaeConfig config) => config.StochasticLayers == 2 ? TwoLayer : OneLayer;

    private const ModelCapabilities Generative = ModelCapabilities.Images | ModelCapabilities.LikelihoodBound | ModelCapabilities.Posterior;

    /// <summary>--covariance, which the one-layer models with a Gaussian q(z|x) (VAE, IWAE, InfoVAE, Deep VIB, the
    /// mutual autoencoder, CorEx), VCCA (with or without private latents), the VLAE, the Ladder VAE and the HVM take:
    /// q(z|x) with a rank-one precision (over all the codes together where a model has several; per layer in the Ladder
    /// VAE, whose merged posteriors stay rank-one; as the base of a planar flow, the VAE's or the HVM's q(λ|x)).</summary>
    private static readonly ModelOption Covariance =
        new("covariance", "q(z|x)'s covariance: diagonal (the default) or rank1, the deep latent Gaussian model's precision D + uuᵀ (Rezende et al. 2014)", "diagonal|rank1",
            (config, text) => config with
            {
                Covariance = text.ToLowerInvariant() switch
                {
                    "diagonal" => CovarianceKind.Diagonal,
                    "rank1" or "rank-one" or "rankone" => CovarianceKind.RankOne,
                    _ => throw new SettingException($"@Covariance must be diagonal or rank1 (got {text})"),
                },
            })
        { Property = nameof(VaeConfig.Covariance) };

    /// <summary>--weight-prior, which the one-layer VAE and IWAE take: N(0, κI) on the decoder's weights.</summary>
    private static readonly ModelOption WeightPriorOption =
        new("weight-prior", "κ of a Gaussian prior N(0, κI) on the decoder's weights (Rezende et al. 2014): θ/κ added to their gradient each step (none by default)", "KAPPA",
            (config, text) => config with { WeightPrior = ModelOption.Number(text, nameof(VaeConfig.WeightPrior)) })
        { Property = nameof(VaeConfig.WeightPrior) };

    /// <summary>--flow-length, which the VAE takes: planar flow steps on q(z|x).</summary>
    private static readonly ModelOption FlowLengthOption =
        new("flow-length", "planar flow steps on q(z|x) (Rezende and Mohamed 2015), their parameters from the encoder; the KL term is then sampled (default 0: none)", "L",
            (config, text) => config with { FlowLength = ModelOption.WholeNumber(text, nameof(VaeConfig.FlowLength)) })
        { Property = nameof(VaeConfig.FlowLength) };

    /// <summary>--auxiliary-flow-length, which both hierarchical variational models take.</summary>
    private static readonly ModelOption AuxiliaryFlowLengthOption =
        new("auxiliary-flow-length", "planar steps J of an inverse flow in the auxiliary r(λ|z) = N(g(λ); a, b²)·|det ∂g/∂λ|, g = g_J ∘ … ∘ g_1 from r's network (default 0: a Gaussian r)", "J",
            (config, text) => config with { AuxiliaryFlowLength = ModelOption.WholeNumber(text, nameof(VaeConfig.AuxiliaryFlowLength)) })
        { Property = nameof(VaeConfig.AuxiliaryFlowLength) };

    /// <summary>--prior, which the VAE takes: N(0, I), or a learned mixture of Gaussians or VampPrior.</summary>
    private static readonly ModelOption PriorOption =
        new("prior", "p(z): standard (N(0, I), the default), mog:C (a mixture of C Gaussians with learned means and variances) or vamp:C (the VampPrior of Tomczak and Welling 2018, q(z|u) averaged over C learned pseudo-inputs u); the KL term is then sampled", "standard|mog:C|vamp:C",
            (config, text) =>
            {
                string[] parts = text.ToLowerInvariant().Split(':');
                var kind = parts[0] switch
                {
                    "standard" or "normal" when parts.Length == 1 => PriorKind.Standard,
                    "mog" or "mixture" when parts.Length == 2 => PriorKind.Mixture,
                    "vamp" or "vampprior" when parts.Length == 2 => PriorKind.Vamp,
                    _ => throw new SettingException($"@Prior is standard, mog:C or vamp:C with C components (got '{text}')"),
                };
                if (kind == PriorKind.Standard)
                    return config with { Prior = kind, PriorComponents = 0 };
                return int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int count)
                    ? config with { Prior = kind, PriorComponents = count }
                    : throw new SettingException($"@Prior {parts[0]}:C takes a whole number of components C (got '{parts[1]}')");
            })
        { Property = nameof(VaeConfig.Prior) };

    private static string CovarianceSetting(VaeConfig config) =>
        config.Covariance == CovarianceKind.RankOne ? ", rank-one covariance" : "";

    private static string LatentOptionsSetting(VaeConfig config) =>
        (config.FlowLength > 0 ? $", {config.FlowLength} planar flow steps" : "") + CovarianceSetting(config)
        + (config.WeightPrior is { } kappa ? $", weight prior N(0, {kappa.ToString(CultureInfo.InvariantCulture)}·I) on the decoder" : "")
        + config.Prior switch
        {
            PriorKind.Mixture => $", prior: a mixture of {config.PriorComponents} learned Gaussians",
            PriorKind.Vamp => $", VampPrior with {config.PriorComponents} pseudo-inputs",
            _ => "",
        };

    private static void LatentOptionsValidate(VaeConfig config)
    {
        if (config.Covariance == CovarianceKind.RankOne && config.TargetRate is not null)
            throw new SettingException("target-rate training is built for the diagonal posterior: use @Covariance rank1 without @TargetRate");
        if (config.FlowLength > 0 && (config.StochasticLayers != 1 || config.TargetRate is not null))
            throw new SettingException("planar flows start from the one-layer VAE's Gaussian: use @FlowLength without @StochasticLayers 2 or @TargetRate");
        if (config.Prior != PriorKind.Standard && (config.StochasticLayers != 1 || config.TargetRate is not null || config.Covariance != CovarianceKind.Diagonal || config.FlowLength > 0))
            throw new SettingException("a learned prior is built for the one-layer VAE's diagonal Gaussian: use @Prior without @StochasticLayers 2, @TargetRate, @Covariance rank1 or @FlowLength");
        if (config.Prior == PriorKind.Vamp && config.BatchNorm)
            throw new SettingException("the VampPrior runs the encoder on its pseudo-inputs beside the batch, which batch normalisation would mix: use @Prior vamp:C without @BatchNorm");
    }

    public static IReadOnlyList<ModelSpec> All { get; } =
    [
        new(ModelKind.Vae, "vae", "ELBO, averaged over its k samples")
        {
            Capabilities = Generative | ModelCapabilities.KlWarmup | ModelCapabilities.TwoStochasticLayers | ModelCapabilities.TargetRate,
            Options =
            [
                new("target-rate", "train on D + |σ − R| for this rate σ in nats (Alemi et al. 2018) instead of the ELBO", "NATS",
                    (config, text) => config with { TargetRate = ModelOption.Number(text, nameof(VaeConfig.TargetRate)) })
                { Property = nameof(VaeConfig.TargetRate) },
                Covariance,
                WeightPriorOption,
                FlowLengthOption,
                PriorOption,
            ],
            Settings = LatentOptionsSetting,
            Validate = LatentOptionsValidate,
            Family = OneOrTwoLayers,
        },
        new(ModelKind.Iwae, "iwae", "the k-sample importance-weighted bound")
        {
            Capabilities = Generative | ModelCapabilities.TwoStochasticLayers,
            Options = [Covariance, WeightPriorOption, PriorOption],
            Settings = LatentOptionsSetting,
            ObjectiveName = config => $"IWAE bound −L_{config.Samples} (training k)",
            Terms = config => new($"−L_{config.Samples}", "reconstruction", config.StochasticLayers == 2 || config.Prior != PriorKind.Standard ? "sampled KL terms" : "KL"),
            SeparateObjective = _ => true,
            Validate = config =>
            {
                if (config.Beta != 1)
                    throw new SettingException($"β weights the VAE's KL term; the IWAE bound has none, so leave @Beta at 1 (got {config.Beta})");
                LatentOptionsValidate(config);
            },
            Family = OneOrTwoLayers,
        },
        new(ModelKind.Ae, "ae", "plain autoencoder, z = the code")
        {
            Capabilities = ModelCapabilities.Images,
            ObjectiveName = _ => "reconstruction (autoencoder)",
            Terms = _ => new("reconstruction", "reconstruction", "KL (none: a deterministic code)"),
            Validate = config =>
            {
                if (config.Samples != 1)
                    throw new SettingException($"the autoencoder draws no samples; leave @Samples at 1 (got {config.Samples})");
                if (config.StochasticLayers == 2)
                    throw new SettingException($"the autoencoder has one deterministic code; @StochasticLayers 2 needs @Model {NamesWith(ModelCapabilities.TwoStochasticLayers).Replace(", ", " or ")}");
            },
            Family = _ => OneLayer,
        },
        new(ModelKind.InfoVae, "infovae", "rec + β·KL + λ·MMD², β 0 unless given")
        {
            Capabilities = Generative,
            DefaultBeta = 0,
            WholeBatchTerm = "MMD compares the codes of the whole minibatch with the prior's draws",
            ObjectiveName = config => $"InfoVAE objective (rec + β·KL + {config.MmdLambda.ToString(CultureInfo.InvariantCulture)}·MMD²)",
            Terms = _ => new("rec + β·KL + λ·MMD²", "reconstruction", "KL"),
            Options =
            [
                new("mmd-lambda", "λ, the weight of MMD² between the batch's codes and as many prior draws (default 1000)", "LAMBDA",
                    (config, text) => config with { MmdLambda = ModelOption.Number(text, nameof(VaeConfig.MmdLambda)) })
                { Property = nameof(VaeConfig.MmdLambda) },
                new("mmd-kernel", "gaussian (exp(-d²/2K), the default) or imq (inverse multiquadric 2K/(2K + d²))", "gaussian|imq",
                    (config, text) => config with
                    {
                        MmdKernel = text.ToLowerInvariant() switch
                        {
                            "gaussian" => MmdKernelKind.Gaussian,
                            "imq" or "inversemultiquadric" => MmdKernelKind.InverseMultiquadric,
                            _ => throw new SettingException($"@MmdKernel must be gaussian or imq (got {text})"),
                        },
                    })
                { Property = nameof(VaeConfig.MmdKernel) },
                Covariance,
            ],
            Settings = config => $", MMD λ {config.MmdLambda.ToString(CultureInfo.InvariantCulture)} ({config.MmdKernel.ToString().ToLowerInvariant()} kernel)" + CovarianceSetting(config),
            SeparateObjective = _ => true,
            Validate = config =>
            {
                if (config.Samples != 1 || config.StochasticLayers != 1)
                    throw new SettingException("the InfoVAE compares one code per example with the prior: use @Samples 1 and one stochastic layer");
                if (!(config.MmdLambda >= 0) || double.IsInfinity(config.MmdLambda))
                    throw new SettingException($"@MmdLambda must be a finite number ≥ 0 (got {config.MmdLambda})");
            },
            Family = _ => OneLayer,
        },
        new(ModelKind.Vib, "vib", "Deep VIB: −log q(label|z) + β·KL, β 1e-3 unless given")
        {
            Capabilities = ModelCapabilities.Posterior | ModelCapabilities.Labels,
            // Alemi et al.'s choice for MNIST.
            DefaultBeta = 1e-3,
            ObjectiveName = _ => "Deep VIB objective (−log q(y|z) + β·KL)",
            Options = [Covariance],
            Settings = CovarianceSetting,
            Terms = _ => new("−log q(y|z) + β·KL", "cross-entropy", "KL", DistortionColumn: "cross_entropy"),
            Validate = config =>
            {
                if (config.StochasticLayers != 1 || config.Classes < 2 || config.Classes > 256)
                    throw new SettingException($"the Deep VIB classifies 2 to 256 classes (got {config.Classes}) from one stochastic layer");
            },
            Family = _ => OneLayer,
        },
        new(ModelKind.Vcca, "vcca", "two views, the left and right image halves, share z inferred from the left: rec(left) + rec(right) + β·KL")
        {
            Capabilities = Generative | ModelCapabilities.KlWarmup | ModelCapabilities.TwoViews,
            Options =
            [
                new("encoder-views", "the views q(z|·) reads: 1 (the left half, q(z|x): the right half is predicted from it; the default) or 2 (both halves, q(z|x, y))", "1|2",
                    (config, text) => config with { EncoderViews = ModelOption.WholeNumber(text, nameof(VaeConfig.EncoderViews)) })
                { Property = nameof(VaeConfig.EncoderViews) },
                new("private-latent", "VCCA-private: each view's own latent h_x, h_y of this width beside the shared z (0, the default: none)", "P",
                    (config, text) => config with { PrivateLatent = ModelOption.WholeNumber(text, nameof(VaeConfig.PrivateLatent)) })
                { Property = nameof(VaeConfig.PrivateLatent) },
                Covariance,
            ],
            Settings = config => (config.EncoderViews == 2 ? ", q(z|x, y) from both views" : "")
                + (config.PrivateLatent > 0 ? $", private latents h_x, h_y of {config.PrivateLatent}" : "") + LatentOptionsSetting(config),
            LatentGroups = config => config.PrivateLatent == 0 ? []
                : [new("z", 0, config.Latent), new("h_x", config.Latent, config.PrivateLatent), new("h_y", config.Latent + config.PrivateLatent, config.PrivateLatent)],
            Validate = config =>
            {
                if (config.EncoderViews is not (1 or 2))
                    throw new SettingException($"@EncoderViews is 1 (the left half) or 2 (both halves) (got {config.EncoderViews})");
                if (config.PrivateLatent > 0 && config.EncoderViews != 1)
                    throw new SettingException("VCCA-private infers z from the left view and h_y from the right: use @PrivateLatent with @EncoderViews 1");
                if (config.RowWidth < 2 || config.InputSize % config.RowWidth != 0)
                    throw new SettingException($"VCCA cuts images into left and right halves: it needs images at least 2 pixels wide (got {config.InputSize} features in rows of {config.RowWidth})");
                if (config.StochasticLayers != 1)
                    throw new SettingException("VCCA shares one stochastic layer between its views: leave @StochasticLayers at 1");
            },
            Family = config => config.PrivateLatent > 0 ? VccaPrivateFamily : VccaFamily,
        },
        new(ModelKind.Ladder, "ladder", "Ladder VAE: --ladder-layers stochastic layers (2 by default), each q(z_l|·) merging the bottom-up pass with p(z_l|z_{l+1}) by precision; batch norm on by default")
        {
            Capabilities = Generative | ModelCapabilities.KlWarmup | ModelCapabilities.BatchNorm,
            DefaultStochasticLayers = 2,
            DefaultBatchNorm = true,
            Terms = _ => new("−ELBO", "reconstruction", "sampled KL terms"),
            Options =
            [
                new("ladder-layers", $"stochastic layers L, 2 to {MaxLadderLayers} (default 2): z1 and z2 as --latent/--hidden and --latent2/--hidden2 give them, each layer above z2 with z2's widths halved once more (the paper's MNIST model is 5)", "L",
                    (config, text) => config with { LadderLayers = ModelOption.WholeNumber(text, nameof(VaeConfig.LadderLayers)) })
                { Property = nameof(VaeConfig.LadderLayers) },
                new("ladder-variance", "how each Gaussian's variance is read from its layer's output ρ: log (log σ² = ρ, the default) or softplus (σ² = softplus(ρ), the paper's)", "log|softplus",
                    (config, text) => config with
                    {
                        LadderVariance = text.ToLowerInvariant() switch
                        {
                            "log" or "logvar" or "log-variance" => VarianceForm.LogVariance,
                            "softplus" => VarianceForm.Softplus,
                            _ => throw new SettingException($"@LadderVariance must be log or softplus (got {text})"),
                        },
                    })
                { Property = nameof(VaeConfig.LadderVariance) },
                Covariance,
            ],
            Settings = config => (config.LadderLayers != 2 ? $", {config.LadderLayers} stochastic layers" : "")
                + (config.LadderVariance == VarianceForm.Softplus ? ", softplus variances" : "") + CovarianceSetting(config),
            Validate = config =>
            {
                if (config.StochasticLayers != 2 || config.Hidden.Length < 1)
                    throw new SettingException("the Ladder VAE has two or more stochastic layers (@StochasticLayers 2, and @LadderLayers for more) and at least one hidden layer below z1 for its bottom-up pass");
                if (config.LadderLayers < 2 || config.LadderLayers > MaxLadderLayers)
                    throw new SettingException($"@LadderLayers must be from 2 to {MaxLadderLayers} (got {config.LadderLayers})");
                if (config.LadderLayers > 2 && config.Hidden2.Length < 1)
                    throw new SettingException("each rung of the Ladder VAE above z2 goes on from the top hidden layer of the one below: give @Hidden2 at least one width with @LadderLayers above 2");
                int halvings = config.LadderLayers - 2;
                if (LadderRungs.Latent(config, config.LadderLayers) < 1 || LadderRungs.Hidden(config, config.LadderLayers).Any(width => width < 1))
                    throw new SettingException($"layer {config.LadderLayers} of the Ladder VAE halves z2's widths {halvings} times, which leaves none of @Latent2 {config.Latent2} or @Hidden2 {string.Join(",", config.Hidden2)}: widen them or take fewer @LadderLayers");
            },
            Family = _ => LadderFamily,
        },
        new(ModelKind.Vlae, "vlae", "Variational Ladder Autoencoder: --latent-layers small codes (--latent counts them all), each from a deeper hidden layer, joining the decoder at increasing depth")
        {
            Capabilities = Generative | ModelCapabilities.KlWarmup,
            // The paper's MNIST model: three layers of two dimensions each.
            DefaultLatent = 6,
            Options =
            [
                new("latent-layers", "the VLAE's latent layers L (default 3); --latent is split evenly among them", "L",
                    (config, text) => config with { LatentLayers = ModelOption.WholeNumber(text, nameof(VaeConfig.LatentLayers)) })
                { Property = nameof(VaeConfig.LatentLayers) },
                Covariance,
            ],
            Settings = config => $", {config.LatentLayers} latent layers of {config.Latent / Math.Max(1, config.LatentLayers)}" + LatentOptionsSetting(config),
            LatentGroups = config => Enumerable.Range(1, config.LatentLayers).Reverse()
                .Select(l => new LatentGroup($"z{l}", (l - 1) * (config.Latent / config.LatentLayers), config.Latent / config.LatentLayers)).ToList(),
            Validate = config =>
            {
                if (config.LatentLayers < 1 || config.LatentLayers > config.Latent || config.Latent % config.LatentLayers != 0)
                    throw new SettingException($"the VLAE splits @Latent evenly among @LatentLayers: give a number of layers from 1 to {config.Latent} that divides {config.Latent} (got {config.LatentLayers})");
                if (config.Hidden.Length < 1)
                    throw new SettingException("each VLAE rung is a stack of @Hidden layers: give at least one width");
                if (config.StochasticLayers != 1)
                    throw new SettingException("the VLAE's latent layers are set by @LatentLayers: leave @StochasticLayers at 1");
            },
            Family = _ => VlaeFamily,
        },
        new(ModelKind.Corex, "corex", "auto-encoding CorEx: the ELBO with a learned factorized marginal r(z) = Π N(m_j, s_j²) as the prior; AnchorVAE with --anchors; stacked (z2 over z1) with --stochastic-layers 2")
        {
            Capabilities = Generative | ModelCapabilities.KlWarmup | ModelCapabilities.FactorizedMarginal | ModelCapabilities.TwoStochasticLayers,
            Options =
            [
                new("anchors", "AnchorVAE (Gao et al. 2019): the first N latent dimensions are anchors, given more information by a KL weight of 1 − λ (default 0: plain CorEx)", "N",
                    (config, text) => config with { Anchors = ModelOption.WholeNumber(text, nameof(VaeConfig.Anchors)) })
                { Property = nameof(VaeConfig.Anchors) },
                new("anchor-weight", "λ of the anchors' information term λ·I(z_k; x), in [0, 1): their KL weight is 1 − λ (default 0.5)", "LAMBDA",
                    (config, text) => config with { AnchorWeight = ModelOption.Number(text, nameof(VaeConfig.AnchorWeight)) })
                { Property = nameof(VaeConfig.AnchorWeight) },
                Covariance,
            ],
            Settings = config => (config.StochasticLayers == 2 ? ", stacked: z2 over z1, learned factorized marginals r1(z1) and r2(z2)" : ", learned factorized marginal r(z)")
                + (config.Anchors > 0 ? $", {config.Anchors} anchors with KL weight 1 − {config.AnchorWeight.ToString(CultureInfo.InvariantCulture)}" : "")
                + CovarianceSetting(config),
            ObjectiveName = config => config.StochasticLayers == 2 ? "stacked CorEx bound (one sample per image)" : "ELBO (one sample per image)",
            Terms = config => config.StochasticLayers == 2 ? ObjectiveTerms.Elbo with { Loss = "−stacked CorEx bound", Rate = "KL1 + KL2 − log q(z1|z2)/r1(z1)" } : ObjectiveTerms.Elbo,
            // Each anchor is its own group (one row of its traversal), the other dimensions one more; stacked CorEx's
            // anchors are z1's, not among its codes.
            LatentGroups = config => config.CodeAnchors == 0 ? []
                : [.. Enumerable.Range(0, config.Anchors).Select(k => new LatentGroup($"anchor {k}", k, 1)),
                   .. config.Anchors < config.Latent ? [new LatentGroup("others", config.Anchors, config.Latent - config.Anchors)] : Array.Empty<LatentGroup>()],
            Validate = config =>
            {
                if (config.Anchors < 0 || config.Anchors > config.Latent)
                    throw new SettingException($"@Anchors is how many of the {config.Latent} latent dimensions are anchors, from 0 to {config.Latent} (got {config.Anchors})");
                if (!(config.AnchorWeight >= 0 && config.AnchorWeight < 1))
                    throw new SettingException($"@AnchorWeight is λ in [0, 1), leaving the anchors a KL weight 1 − λ > 0 (got {config.AnchorWeight.ToString(CultureInfo.InvariantCulture)})");
                if (config.Covariance == CovarianceKind.RankOne && config.Anchors > 0)
                    throw new SettingException("the rank-one posterior's KL against r(z) does not split by dimension, so it cannot weight anchors: use @Covariance rank1 without @Anchors");
            },
            Family = config => config.StochasticLayers == 2 ? StackedCorexFamily : OneLayer,
        },
        new(ModelKind.Mutual, "mae", "mutual autoencoder: −ELBO + C·|Î(x; z) − M|, Î = H(z) + E log r(z|x) on pairs drawn from the model, r learned (Phuong et al. 2018)")
        {
            Capabilities = Generative,
            WholeBatchTerm = "information term Î is estimated over the whole minibatch",
            Options =
            [
                new("mutual-information", "M, the nats of information I(x; z) the model is held to (default 10)", "M",
                    (config, text) => config with { MutualInformation = ModelOption.Number(text, nameof(VaeConfig.MutualInformation)) })
                { Property = nameof(VaeConfig.MutualInformation) },
                new("mi-weight", "C, the weight of |Î − M| in the loss (default 10)", "C",
                    (config, text) => config with { MiWeight = ModelOption.Number(text, nameof(VaeConfig.MiWeight)) })
                { Property = nameof(VaeConfig.MiWeight) },
                Covariance,
            ],
            Settings = config => string.Create(CultureInfo.InvariantCulture, $", Î held to M = {config.MutualInformation} nats with C = {config.MiWeight}")
                + (config.Likelihood == LikelihoodKind.Bernoulli ? " (REINFORCE through the Bernoulli draws)" : " (pathwise through the Gaussian draws)")
                + CovarianceSetting(config),
            Validate = config =>
            {
                if (config.StochasticLayers != 1)
                    throw new SettingException("the mutual autoencoder has one stochastic layer: leave @StochasticLayers at 1");
                if (!(config.MutualInformation >= 0) || double.IsInfinity(config.MutualInformation))
                    throw new SettingException($"@MutualInformation is M in nats, a finite number ≥ 0 (got {config.MutualInformation.ToString(CultureInfo.InvariantCulture)})");
                if (!(config.MiWeight >= 0) || double.IsInfinity(config.MiWeight))
                    throw new SettingException($"@MiWeight is C, a finite number ≥ 0 (got {config.MiWeight.ToString(CultureInfo.InvariantCulture)})");
            },
            Family = _ => MutualFamily,
        },
        new(ModelKind.Hvm, "hvm", "hierarchical variational model: a planar-flow variational prior q(λ|x) over z's means, z ~ N(λ, τ²), and an auxiliary r(λ|z) in the hierarchical ELBO (Ranganath et al. 2016)")
        {
            Capabilities = Generative | ModelCapabilities.KlWarmup,
            Options =
            [
                FlowLengthOption,
                Covariance,
                AuxiliaryFlowLengthOption,
            ],
            Settings = config => $", variational prior q(λ|x) with {config.FlowLength} planar flow steps, auxiliary r(λ|z)"
                + (config.AuxiliaryFlowLength > 0 ? $" an inverse flow of {config.AuxiliaryFlowLength} steps" : "")
                + (config.Covariance == CovarianceKind.RankOne ? ", rank-one base for q(λ|x)" : ""),
            Terms = _ => new("−hierarchical ELBO", "reconstruction", "sampled KL terms"),
            ObjectiveName = _ => "hierarchical ELBO (one sample of (λ, z) per image)",
            Validate = config =>
            {
                if (config.StochasticLayers != 1)
                    throw new SettingException("the hierarchical variational model has one stochastic layer: leave @StochasticLayers at 1");
            },
            Family = _ => HvmFamily,
        },
        new(ModelKind.Sbn, "sbn", "sigmoid belief network: --latent binary units h1 (and --latent2 h2 over them with --stochastic-layers 2), sigmoid layers, a learned factorised prior on the top layer; the encoders trained by NVIL's score-function estimator (Mnih and Gregor 2014); 200 units and no hidden layers unless told")
        {
            Capabilities = ModelCapabilities.Images | ModelCapabilities.LikelihoodBound | ModelCapabilities.TwoStochasticLayers,
            // NVIL's MNIST SBNs: 200 (and 200-200) binary units, linear (sigmoid) layers in q and p.
            DefaultLatent = 200,
            DefaultHidden = [],
            WholeBatchTerm = "NVIL running moments of the learning signal are updated from the whole minibatch",
            Terms = _ => new("−ELBO", "reconstruction", "sampled KL terms"),
            ObjectiveName = _ => "ELBO (one sample of the units per image)",
            Settings = config => (config.StochasticLayers == 2 ? $", two layers of binary units ({config.Latent} and {config.Latent2})" : ", binary units")
                + $", NVIL: baseline network of {Nvil.BaselineHidden} tanh units, running mean and variance of the signal",
            Family = _ => SbnFamily,
        },
        new(ModelKind.Darn, "darn", "DARN: --latent binary units, 500 unless given (and --latent2 h2 over them with --stochastic-layers 2), whose prior p(h_j|h_<j) and encoder q(h_j|h_<j, x) are autoregressive (strictly lower-triangular weights), sigmoid layers unless --hidden is given; trained by NVIL's score-function estimator (Gregor et al. 2014)")
        {
            Capabilities = ModelCapabilities.Images | ModelCapabilities.LikelihoodBound | ModelCapabilities.TwoStochasticLayers,
            // Gregor et al.'s MNIST DARN: one layer of 500 units.
            DefaultLatent = 500,
            DefaultHidden = [],
            WholeBatchTerm = "NVIL running moments of the learning signal are updated from the whole minibatch",
            Terms = _ => new("−ELBO", "reconstruction", "sampled KL terms"),
            ObjectiveName = _ => "ELBO (one sample of the units per image)",
            Settings = config => (config.StochasticLayers == 2 ? $", two layers of autoregressive binary units ({config.Latent} and {config.Latent2}) in p and q" : ", autoregressive binary units in p(h) and q(h|x)") + $"{(config.AutoregressiveDecoder ? ", an autoregressive decoder over the pixels" : "")}{(config.DarnEstimator == DarnEstimatorKind.Taylor ? ", q trained by the Taylor-expansion baseline (the NVIL baseline is trained beside it)" : "")}, NVIL: baseline network of {Nvil.BaselineHidden} tanh units, running mean and variance of the signal",
            Options =
            [
                new("darn-decoder", "factorized (p(x|h) = Π Bernoulli, the default) or autoregressive (each pixel's logit also reads the pixels before it in raster order through strictly lower-triangular weights, as in Gregor et al.)",
                    "factorized|autoregressive",
                    (config, text) => config with
                    {
                        AutoregressiveDecoder = text.ToLowerInvariant() switch
                        {
                            "factorized" or "factorised" => false,
                            "autoregressive" => true,
                            _ => throw new SettingException($"@AutoregressiveDecoder: the DARN decoder is factorized or autoregressive (got {text})"),
                        },
                    })
                { Property = nameof(VaeConfig.AutoregressiveDecoder) },
                new("darn-estimator", "how q(h|x) is trained: nvil (the score-function estimator with NVIL's baseline and centring, unbiased; the default) or taylor (the paper's minimum-description-length gradient with its first-order Taylor-expansion baseline, biased with less variance)",
                    "nvil|taylor",
                    (config, text) => config with
                    {
                        DarnEstimator = text.ToLowerInvariant() switch
                        {
                            "nvil" => DarnEstimatorKind.Nvil,
                            "taylor" => DarnEstimatorKind.Taylor,
                            _ => throw new SettingException($"@DarnEstimator: the DARN estimator is nvil or taylor (got {text})"),
                        },
                    })
                { Property = nameof(VaeConfig.DarnEstimator) },
            ],
            Validate = config =>
            {
                if (config.StochasticLayers == 2 && config.DarnEstimator == DarnEstimatorKind.Taylor)
                    throw new SettingException("@DarnEstimator taylor is built for one layer of DARN units: with @StochasticLayers 2 use nvil");
            },
            Family = _ => DarnFamily,
        },
        new(ModelKind.Def, "def", "deep exponential family: --def-layers of sparse gamma, Poisson or sigmoid-belief-net units (bottom first, default " + DefLayerSpec.Default + "), each gamma or Poisson unit's mean a positive-weighted sum of the layer above, each sbn unit's logit a real-weighted one, binary pixels p(x=1) = 1 − exp(−rate) (or with --likelihood poisson grey levels as Poisson(rate) counts of 0 to 255); a mean-field q(z|x) of the same families written by the encoder, trained by black-box VI: score-function gradients with Rao-Blackwellization and a leave-one-out baseline over --samples (4 unless given) (Ranganath et al. 2015)")
        {
            Capabilities = ModelCapabilities.Images | ModelCapabilities.LikelihoodBound | ModelCapabilities.CountObservations,
            DefaultLatent = DefLayerSpec.Widths(DefLayerSpec.Default)[0],
            // The leave-one-out baseline needs two samples per example; four is a fair trade of variance and time.
            DefaultSamples = 4,
            TopLatent = config => DefLayerSpec.Widths(config.DefLayers)[^1],
            Options =
            [
                new("def-layers", "the DEF's layers, bottom first, TYPE:WIDTH each (gamma, poisson or sbn; default " + DefLayerSpec.Default + "); the first width is the codes' --latent", "LAYERS",
                    (config, text) => config with { DefLayers = text, Latent = DefLayerSpec.Widths(text)[0] })
                { Property = nameof(VaeConfig.DefLayers) },
                new("def-shape", "α of the sparse gamma layers, p(z_l | z_{l+1}) = Gamma(α, α/μ) (default 0.1, the paper's)", "ALPHA",
                    (config, text) => config with { DefShape = ModelOption.Number(text, nameof(VaeConfig.DefShape)) })
                { Property = nameof(VaeConfig.DefShape) },
            ],
            Terms = _ => new("−ELBO", "reconstruction", "sampled KL terms"),
            ObjectiveName = _ => "ELBO (one sample of every layer per image)",
            Settings = config => $", {DefLayerSpec.Describe(config)}, black-box VI (Rao-Blackwellized, leave-one-out baseline over {config.Samples} samples)",
            Validate = DefLayerSpec.Validate,
            Family = _ => DefFamily,
        },
        new(ModelKind.HvmBernoulli, "hvm-bernoulli", "hierarchical variational model with Bernoulli mean-field latents: λ ~ q(λ|x), a Gaussian with --flow-length planar steps (2 unless given), z_k ~ Bernoulli(σ(λ_k)), and an auxiliary r(λ|z, x) in the hierarchical ELBO (Ranganath et al. 2016); a sigmoid belief network p(x|z) with a learned factorised prior, 200 units and no hidden layers unless told; λ's gradient pathwise at the drawn z plus the score-function one through z's draw, centred by NVIL's baseline network and running mean")
        {
            Capabilities = ModelCapabilities.Images | ModelCapabilities.LikelihoodBound | ModelCapabilities.GaussianEncoder,
            // The sigmoid belief network of NVIL's MNIST experiments, so that the HVM's q compares with mean-field q.
            DefaultLatent = 200,
            DefaultHidden = [],
            // Without a flow the λ_k are independent and q(z|x) is mean-field again.
            DefaultFlowLength = 2,
            Options = [FlowLengthOption, AuxiliaryFlowLengthOption],
            WholeBatchTerm = "NVIL running moments of the learning signal are updated from the whole minibatch",
            Terms = _ => new("−hierarchical ELBO", "reconstruction", "sampled KL terms"),
            ObjectiveName = _ => "hierarchical ELBO (one sample of (λ, z) per image)",
            Settings = config => $", binary units, variational prior q(λ|x) with {config.FlowLength} planar flow steps, auxiliary r(λ|z, x)"
                + (config.AuxiliaryFlowLength > 0 ? $" an inverse flow of {config.AuxiliaryFlowLength} steps" : "")
                + $", NVIL baseline network of {Nvil.BaselineHidden} tanh units and running mean of the signal",
            Validate = config =>
            {
                if (config.StochasticLayers != 1)
                    throw new SettingException("the Bernoulli hierarchical variational model has one stochastic layer: leave @StochasticLayers at 1");
            },
            Family = _ => HvmBernoulliFamily,
        },
    ];

    /// <summary>The names of the models, as a user types them.</summary>
    public static IEnumerable<string> Names => All.Select(spec => spec.Name);

    public static ModelSpec For(ModelKind kind) =>
        All.FirstOrDefault(spec => spec.Kind == kind) ?? throw new ArgumentException($"no model '{kind}' in the catalog");

    public static ModelSpec For(VaeConfig config) => For(config.Model);

    /// <summary>The model of this name (as typed, any case), or null.</summary>
    public static ModelSpec? Find(string name) =>
        All.FirstOrDefault(spec => string.Equals(spec.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The names of the models that take the setting <paramref name="property"/>, for messages ("vae or iwae").</summary>
    public static string NamesDeclaring(string property) =>
        string.Join(" or ", All.Where(spec => spec.Declares(property)).Select(spec => spec.Name));

    /// <summary>The names of the models with a capability, for messages ("vae, vcca, ladder").</summary>
    public static string NamesWith(ModelCapabilities capability) =>
        string.Join(", ", All.Where(spec => spec.Has(capability)).Select(spec => spec.Name));

    /// <summary>The family that builds a model of this config.</summary>
    public static ModelFamily FamilyOf(VaeConfig config) => For(config).Family(config);
}
