using System.Text.RegularExpressions;
using IlgpuVae.Host;
using IlgpuVae.Model;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Tests;

/// <summary>The catalog is the one place a model is named: every kind has one entry, and nothing outside the
/// catalog and the family folders decides by comparing the kind.</summary>
public sealed class ModelCatalogTests
{
    [Fact]
    public void EveryKindHasOneEntryWithALowerCaseName()
    {
        foreach (var kind in Enum.GetValues<ModelKind>())
            Assert.Single(ModelCatalog.All, spec => spec.Kind == kind);
        Assert.Equal(ModelCatalog.All.Count, ModelCatalog.Names.Distinct().Count());
        Assert.All(ModelCatalog.Names, name => Assert.Equal(name.ToLowerInvariant(), name));
        Assert.Equal(ModelKind.Iwae, ModelCatalog.Find("IWAE")!.Kind);
        Assert.Null(ModelCatalog.Find("dlgm"));
    }

    [Theory]
    [InlineData(ModelKind.Vae, 1, "OneLayerFamily")]
    [InlineData(ModelKind.Vae, 2, "TwoLayerFamily")]
    [InlineData(ModelKind.Iwae, 2, "TwoLayerFamily")]
    [InlineData(ModelKind.Ae, 1, "OneLayerFamily")]
    [InlineData(ModelKind.Vcca, 1, "VccaFamily")]
    [InlineData(ModelKind.Ladder, 2, "LadderFamily")]
    [InlineData(ModelKind.Vlae, 1, "VlaeFamily")]
    [InlineData(ModelKind.Corex, 1, "OneLayerFamily")]
    [InlineData(ModelKind.Mutual, 1, "MutualFamily")]
    [InlineData(ModelKind.Hvm, 1, "HvmFamily")]
    [InlineData(ModelKind.HvmBernoulli, 1, "HvmBernoulliFamily")]
    public void EachConfigFindsItsFamily(ModelKind kind, int stochasticLayers, string family)
    {
        var config = new VaeConfig { Model = kind, StochasticLayers = stochasticLayers, BatchNorm = false };
        Assert.Equal(family, ModelCatalog.FamilyOf(config).GetType().Name);
    }

    [Fact]
    public void CapabilitiesMatchWhatTheModelsDo()
    {
        // The autoencoder has no posterior, so no bound; the Deep VIB predicts labels, so no images.
        Assert.False(ModelCatalog.For(ModelKind.Ae).Has(ModelCapabilities.Posterior));
        Assert.False(ModelCatalog.For(ModelKind.Ae).Has(ModelCapabilities.LikelihoodBound));
        Assert.False(ModelCatalog.For(ModelKind.Vib).Has(ModelCapabilities.Images));
        Assert.True(ModelCatalog.For(ModelKind.Vib).Has(ModelCapabilities.Labels));
        Assert.Equal("vae, vcca, ladder, vlae, corex, hvm", ModelCatalog.NamesWith(ModelCapabilities.KlWarmup));
        Assert.Equal(0, ModelCatalog.For(ModelKind.InfoVae).DefaultBeta);
        Assert.Equal(2, ModelCatalog.For(ModelKind.Ladder).DefaultStochasticLayers);
        // The Bernoulli HVM's encoder writes q(λ|x)'s Gaussian statistics, though its codes are binary.
        var bernoulliHvm = new VaeConfig { Model = ModelKind.HvmBernoulli, Latent = 5, FlowLength = 2 };
        Assert.False(bernoulliHvm.Spec.Has(ModelCapabilities.Posterior));
        Assert.Equal(2 * 5 + 2 * (2 * 5 + 1), bernoulliHvm.EncoderOutputs);
        Assert.Equal(2, bernoulliHvm.Spec.DefaultFlowLength);
    }

    [Fact]
    public void AModelWithOneStochasticLayerNamesTheOnesWithTwo()
    {
        var error = Assert.Throws<GpuKernels.SettingException>(() => new VaeConfig { Model = ModelKind.Ae, StochasticLayers = 2 }.Validate());
        // The model layer names its settings; the command line renders them as its options.
        Assert.Contains("StochasticLayers 2 needs Model vae or iwae", error.Message);
        Assert.Contains("--stochastic-layers 2 needs --model vae or iwae", SettingNames.Describe(error));
    }

    [Fact]
    public void NoCodeOutsideTheCatalogAndTheFamiliesComparesTheModelKind()
    {
        string? repository = DataSets.FindRepositoryRoot();
        Assert.NotNull(repository);
        var source = Path.Combine(repository, "src");
        var families = Path.Combine(source, "Model", "Models") + Path.DirectorySeparatorChar;
        // A kind named anywhere but in a default value (`= ModelKind.Vae;`) is a decision on the kind.
        var decision = new Regex(@"ModelKind\.(?!Vae;)\w+");
        var offenders = Directory.EnumerateFiles(source, "*.cs", SearchOption.AllDirectories)
            .Where(file => !file.StartsWith(families, StringComparison.Ordinal) && !file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .SelectMany(file => File.ReadLines(file).Select((line, index) => (file, line, index)))
            .Where(entry => decision.IsMatch(entry.line))
            .Select(entry => $"{Path.GetRelativePath(repository, entry.file)}:{entry.index + 1}: {entry.line.Trim()}")
            .ToList();
        Assert.Empty(offenders);
    }
}
