using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.GpuKernels.Verification;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Model.Verification;

/// <summary>
/// Every model of the catalog, small, through one whole training gradient (forward, objective, backward) on the
/// kernels, against its family's double-precision reference with the same parameters and the same draws: what
/// `ilgpu-vae check` runs after the kernels, so a machine is checked on the models as well as on their parts.
/// </summary>
public sealed class ModelCheck(KernelSet kernels)
{
    /// <summary>As in the tests: float forward and backward through a handful of layers compounds ~1e-6 relative
    /// errors; 1e-4 relative plus 2e-4 of the gradient's largest magnitude catches any wrong term.</summary>
    private const double Relative = 1e-4, OfLargest = 2e-4;
    private const int Batch = 5, Height = 3, Width = 4;
    private const ulong Seed = 21;

    /// <summary>Each model with its own defaults on 3×4 images: one hidden layer of 7, z of 4 (or the model's own
    /// width), a second stochastic layer of 5 then 2 where it has one, and 2 samples where it averages over them.</summary>
    public static VaeConfig SmallConfig(ModelSpec spec)
    {
        var config = spec.WithDefaults(new VaeConfig
        {
            InputSize = Height * Width, ImageWidth = Width, Hidden = [7], Latent = spec.DefaultLatent ?? 4, Hidden2 = [5], Latent2 = 2,
        });
        var withSamples = config with { Samples = 2 };
        try
        {
            withSamples.Validate();
            return withSamples;
        }
        catch (SettingException)
        {
            return config; // a model that draws one z per example (the autoencoder, the InfoVAE)
        }
    }

    public IEnumerable<CheckResult> Run()
    {
        foreach (var spec in ModelCatalog.All)
        {
            yield return Gradient(spec, SmallConfig(spec));
            // A model that takes the rank-one covariance or private latents, with them.
            if (spec.Declares(nameof(VaeConfig.Covariance)))
                yield return Gradient(spec, SmallConfig(spec) with { Covariance = CovarianceKind.RankOne });
            // The deep latent Gaussian model proper: two stochastic layers, both rank-one.
            if (spec.Declares(nameof(VaeConfig.Covariance)) && spec.Has(ModelCapabilities.TwoStochasticLayers))
                yield return Gradient(spec, SmallConfig(spec) with { Covariance = CovarianceKind.RankOne, StochasticLayers = 2 });
            if (spec.Declares(nameof(VaeConfig.PrivateLatent)))
                yield return Gradient(spec, SmallConfig(spec) with { PrivateLatent = 2 });
            // Flow steps where the model has none unless given; none where it has some by default.
            if (spec.Declares(nameof(VaeConfig.FlowLength)))
                yield return Gradient(spec, SmallConfig(spec) with { FlowLength = spec.DefaultFlowLength is null ? 2 : 0 });
            // A flow on a rank-one base.
            if (spec.Declares(nameof(VaeConfig.FlowLength)) && spec.Declares(nameof(VaeConfig.Covariance)))
                yield return Gradient(spec, SmallConfig(spec) with { FlowLength = 2, Covariance = CovarianceKind.RankOne });
            if (spec.Declares(nameof(VaeConfig.Anchors)))
                yield return Gradient(spec, SmallConfig(spec) with { Anchors = 2, AnchorWeight = 0.7 });
            // A one-layer model that may be stacked, with two layers (the two-layer VAE and IWAE are their own family).
            if (spec.Has(ModelCapabilities.TwoStochasticLayers) && spec.Has(ModelCapabilities.FactorizedMarginal))
                yield return Gradient(spec, SmallConfig(spec) with { StochasticLayers = 2, Anchors = 1 });
            // Two layers of a model that has no covariance to vary (the sigmoid belief network's binary units).
            if (spec.Has(ModelCapabilities.TwoStochasticLayers) && !spec.Declares(nameof(VaeConfig.Covariance)))
                yield return Gradient(spec, SmallConfig(spec) with { StochasticLayers = 2 });
            if (spec.Declares(nameof(VaeConfig.AuxiliaryFlowLength)))
                yield return Gradient(spec, SmallConfig(spec) with { FlowLength = 1, AuxiliaryFlowLength = 2 });
            if (spec.Declares(nameof(VaeConfig.LadderLayers)))
                yield return Gradient(spec, SmallConfig(spec) with { LadderLayers = 3, LadderVariance = VarianceForm.Softplus });
            if (spec.Declares(nameof(VaeConfig.AutoregressiveDecoder)))
                yield return Gradient(spec, SmallConfig(spec) with { AutoregressiveDecoder = true });
            if (spec.Declares(nameof(VaeConfig.DarnEstimator)))
                yield return Gradient(spec, SmallConfig(spec) with { DarnEstimator = DarnEstimatorKind.Taylor });
            // The DEF with a layer of each type: the sigmoid belief net's real weights, the Poisson's and gamma's positive ones.
            if (spec.Declares(nameof(VaeConfig.DefLayers)))
                yield return Gradient(spec, SmallConfig(spec) with { DefLayers = "sbn:4,poisson:3,gamma:2", Latent = 4 });
            if (spec.Declares(nameof(VaeConfig.Prior)))
                foreach (var prior in new[] { PriorKind.Mixture, PriorKind.Vamp })
                    yield return Gradient(spec, SmallConfig(spec) with { Prior = prior, PriorComponents = 3 });
        }
        // The double DEF stands outside the catalog (it factorises a count matrix, with no encoder).
        yield return DoubleDefGradient();
    }

    /// <summary>A double DEF of 9 × 6 random counts (rows 4-3-2, columns 4-2, k = 4, a fifth of the cells held out):
    /// its loss and gradient estimate against <see cref="Models.DoubleDef.DoubleDefReference"/> for the same draws.</summary>
    private CheckResult DoubleDefGradient()
    {
        var random = new Random(2);
        var data = new CountMatrix("check", 9, 6, Enumerable.Range(0, 54).Select(_ => (float)random.Next(0, 16)).ToArray());
        var settings = new Models.DoubleDef.DoubleDefSettings
        {
            RowLayers = "gamma:4,gamma:3,gamma:2", ColumnLayers = "gamma:4,gamma:2", Samples = 4, HeldOut = 0.2, Seed = Seed,
        };
        using var model = new Models.DoubleDef.DoubleDefModel(kernels, data, settings);
        var (_, expected) = Models.DoubleDef.DoubleDefReference.LossAndGradient(settings, data, model.ObservedCells.ToArray(),
            model.Parameters.Select(value => (double)value).ToArray(), Philox.Streams.Reparameterize, 1);
        model.LossAndGradient(Philox.Streams.Reparameterize, 1);
        var actual = model.Gradient;
        double largest = expected.Max(Math.Abs), worstRatio = 0, worstError = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Math.Abs(actual[i] - expected[i]);
            // The score-function part carries float's rounding of signals of a few hundred nats: 1e-3 relative (as in
            // DoubleDefTests).
            double ratio = error / (1e-3 * Math.Abs(expected[i]) + 1e-4 * largest);
            if (ratio > worstRatio || double.IsNaN(ratio))
                (worstRatio, worstError) = (double.IsNaN(ratio) ? double.PositiveInfinity : ratio, error);
        }
        return new CheckResult("model double-def: gradient estimate", "9x6 4-3-2|4-2 k=4", worstRatio, worstError);
    }

    private CheckResult Gradient(ModelSpec spec, VaeConfig config)
    {
        var random = new Random(1);
        var pixels = new byte[Batch * Height * Width];
        random.NextBytes(pixels);
        var images = new ImageDataset("check", pixels, Enumerable.Range(0, Batch).Select(i => (byte)(i % 10)).ToArray(), Batch, Height, Width);
        var x = MinibatchReference.Gather(images.Images, Enumerable.Range(0, Batch).ToArray(), 0, Batch, config.InputSize, false, default);
        const long step = 1;
        var epsilon = ReferenceVae.Epsilon(config, Seed, step, Batch);
        var layout = new ParameterLayout(config);
        var parameters = layout.Initialise(Seed).Select(value => (double)value).ToArray();
        var labels = images.Labels.Select(label => (int)label).ToArray();
        var expected = ReferenceVae.LossAndGradient(config, parameters, x, epsilon, Batch, labels: labels).Gradient;

        using var data = new DeviceDataset(kernels.Accelerator, images);
        using var vae = new Vae(kernels, config, Batch, Seed);
        vae.ComputeGradient(data, 0, Batch, step);
        var actual = vae.GetGradients();
        double largest = expected.Max(Math.Abs), worstRatio = 0, worstError = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Math.Abs(actual[i] - expected[i]);
            double ratio = error / (Relative * Math.Abs(expected[i]) + OfLargest * largest);
            if (ratio > worstRatio || double.IsNaN(ratio))
                (worstRatio, worstError) = (double.IsNaN(ratio) ? double.PositiveInfinity : ratio, error);
        }
        return new CheckResult($"model {spec.Name}{Variant(config)}: training gradient", $"{config.InputSize}-7-{config.Latent} k={config.Samples}", worstRatio, worstError);
    }

    /// <summary>What sets a checked config apart from the model's small default, as the check's row names it.</summary>
    private static string Variant(VaeConfig config)
    {
        var parts = new List<string>();
        if (config.Covariance == CovarianceKind.RankOne)
            parts.Add("rank1");
        if (config.PrivateLatent > 0)
            parts.Add("private");
        if (config.FlowLength != (config.Spec.DefaultFlowLength ?? 0))
            parts.Add(config.FlowLength > 0 ? "flow" : "no flow");
        if (config.Anchors > 0)
            parts.Add($"{config.Anchors} anchors");
        if (config.Prior != PriorKind.Standard)
            parts.Add($"prior {config.Prior.ToString().ToLowerInvariant()}:{config.PriorComponents}");
        if (config.AuxiliaryFlowLength > 0)
            parts.Add("inverse-flow r");
        if (config.StochasticLayers == 2 && config.Spec.DefaultStochasticLayers == 1)
            parts.Add("two layers");
        if (config.LadderLayers != 2)
            parts.Add($"{config.LadderLayers} layers");
        if (config.LadderVariance == VarianceForm.Softplus)
            parts.Add("softplus");
        if (config.AutoregressiveDecoder)
            parts.Add("autoregressive decoder");
        if (config.DarnEstimator == DarnEstimatorKind.Taylor)
            parts.Add("Taylor baseline");
        if (config.DefLayers != Models.Def.DefLayerSpec.Default)
            parts.Add(config.DefLayers);
        return string.Concat(parts.Select(part => " " + part));
    }
}
