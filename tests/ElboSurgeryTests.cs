using IlgpuVae.Model;

namespace IlgpuVae.Tests;

/// <summary>ELBO surgery on posteriors whose split is known in closed form.</summary>
public sealed class ElboSurgeryTests
{
    [Fact]
    public void IdenticalPosteriorsCarryNoInformation()
    {
        // Every q(z|x_n) is N(0.5, e^(−1)) in 2 dimensions: q(z) is that Gaussian, so the marginal KL is the
        // average KL (2·½(e^(−1) + 0.25 − 1 + 1) = 0.6179) and I(n; z) = 0. 20 000 samples of a term with
        // spread about 1 give ±0.007; 0.03 is four of those.
        const int examples = 50, latent = 2;
        var mu = Enumerable.Repeat(0.5f, examples * latent).ToArray();
        var logVariance = Enumerable.Repeat(-1f, examples * latent).ToArray();
        var report = ElboSurgery.Estimate(mu, logVariance, examples, latent, 20_000, seed: 3);
        Assert.Equal(Math.Exp(-1) + 0.25, report.AverageKl, 1e-6);
        Assert.Equal(report.AverageKl, report.MarginalKl, 0.03);
        Assert.InRange(report.MutualInformation, -0.03, 0.03);
    }

    [Fact]
    public void TwoSeparatedClustersCarryOneBitOfInformation()
    {
        // Half the posteriors at −10, half at +10, unit variance: z tells the cluster for certain and nothing
        // more, so I(n; z) = log 2 (with N = 40 the within-cluster posteriors coincide). Each sample's
        // log q(z) − log p(z) is 10·(z ± 10) + const, spread 10, so 400 000 samples give ±0.016; 0.05 is three.
        const int examples = 40;
        var mu = Enumerable.Range(0, examples).Select(n => n % 2 == 0 ? -10f : 10f).ToArray();
        var logVariance = new float[examples];
        var report = ElboSurgery.Estimate(mu, logVariance, examples, 1, 400_000, seed: 4);
        Assert.Equal(Math.Log(2), report.MutualInformation, 0.05);
        Assert.Equal(Math.Log(examples), report.LogN, 12);
        Assert.Equal(50.0, report.AverageKl, 1e-6);
    }

    /// <summary>A learned prior that is N(0, I) in disguise — one standard component (closed-form average KL), or
    /// two identical ones (a mixture: the average KL sampled on the same draws) — splits the KL as N(0, I) does.</summary>
    [Fact]
    public void LearnedPriorsThatAreTheStandardNormalGiveItsSplit()
    {
        const int examples = 30, latent = 3, samples = 5000;
        var random = new Random(6);
        var mu = Numerics.Uniform(random, examples * latent);
        var logVariance = Numerics.Uniform(random, examples * latent, -2, 0);
        var standard = ElboSurgery.Estimate(mu, logVariance, examples, latent, samples, seed: 7);
        var one = ElboSurgery.Estimate(mu, logVariance, examples, latent, samples, seed: 7, priorComponents: new float[2 * latent]);
        var two = ElboSurgery.Estimate(mu, logVariance, examples, latent, samples, seed: 7, priorComponents: new float[2 * 2 * latent]);
        Assert.False(one.SampledAverageKl);
        Assert.True(two.SampledAverageKl);
        // Same draws, same densities: equal to rounding.
        Assert.Equal(standard.AverageKl, one.AverageKl, 1e-12);
        Assert.Equal(standard.MarginalKl, one.MarginalKl, 1e-12);
        Assert.Equal(standard.MarginalKl, two.MarginalKl, 1e-12);
        // The sampled average KL: a mean of 5000 terms of spread about √(K/2) ≈ 1.2 is within ±0.07 (four standard errors).
        Assert.Equal(standard.AverageKl, two.AverageKl, 0.07);
    }

    [Fact]
    public void SameSeedGivesTheSameEstimate()
    {
        var random = new Random(5);
        var mu = Enumerable.Range(0, 60).Select(_ => (float)random.NextDouble()).ToArray();
        var logVariance = Enumerable.Range(0, 60).Select(_ => (float)(-random.NextDouble())).ToArray();
        Assert.Equal(ElboSurgery.Estimate(mu, logVariance, 20, 3, 500, 9), ElboSurgery.Estimate(mu, logVariance, 20, 3, 500, 9));
    }
}
