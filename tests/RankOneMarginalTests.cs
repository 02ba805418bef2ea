using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// CorEx with a rank-one posterior: KL(N(μ, C) ‖ Π N(m_j, s_j²)) and log w. The reference's matrix KL reduces to the
/// known cases (r = N(0, I): the rank-one KL; u = 0: the diagonal CorEx KL), its closed-form backward pass agrees with
/// finite differences of that matrix KL, and the kernels agree with the reference at odd shapes.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class RankOneMarginalTests(AcceleratorFixture fixture)
{
    /// <summary>Stats [examples, 3K] = [μ | log d | u] with u in ±<paramref name="uScale"/>.</summary>
    private static float[] Stats(Random random, int examples, int latent, double uScale)
    {
        var stats = Numerics.Uniform(random, examples * 3 * latent);
        for (int b = 0; b < examples; b++)
            for (int k = 0; k < latent; k++)
                stats[b * 3 * latent + 2 * latent + k] *= (float)uScale;
        return stats;
    }

    [Fact]
    public void StandardMarginalGivesTheRankOneKlAndLogWeights()
    {
        const int rows = 3, latent = 5;
        var random = new Random(2);
        var stats = Numerics.ToDouble(Stats(random, rows, latent, 1.5));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var reconstruction = Numerics.ToDouble(Numerics.Uniform(random, rows, 50, 150));
        var standard = new double[2 * latent];
        var (z, kl) = RankOneMarginalReference.Forward(stats, standard, epsilon, rows, latent);
        var (_, plainKl) = RankOneReference.Forward(stats, epsilon, rows, latent);
        var logWeights = RankOneMarginalReference.LogWeights(stats, standard, z, reconstruction, rows, latent);
        var plainLogWeights = RankOneReference.LogWeights(stats, z, reconstruction, rows, latent);
        for (int row = 0; row < rows; row++)
        {
            Assert.True(Math.Abs(kl[row] - plainKl[row]) <= 1e-12, $"row {row}: KL {kl[row]:R} against r = N(0, I), {plainKl[row]:R} rank-one");
            Assert.True(Math.Abs(logWeights[row] - plainLogWeights[row]) <= 1e-10, $"row {row}: log w {logWeights[row]:R}, rank-one {plainLogWeights[row]:R}");
        }
    }

    /// <summary>With u = 0, C = D⁻¹: the diagonal posterior with log σ² = −log d, whose KL against r is CorEx's.</summary>
    [Fact]
    public void DiagonalPosteriorGivesTheFactorizedKl()
    {
        const int rows = 4, latent = 6;
        var random = new Random(3);
        var stats = Numerics.ToDouble(Stats(random, rows, latent, 0));
        var marginal = Numerics.ToDouble(Numerics.Uniform(random, 2 * latent, -1.5, 1.5));
        var kl = RankOneMarginalReference.Kl(stats, marginal, rows, latent);
        for (int row = 0; row < rows; row++)
        {
            double expected = Enumerable.Range(0, latent).Sum(k =>
                FactorizedPriorReference.Kl(stats[row * 3 * latent + k], -stats[row * 3 * latent + latent + k], marginal[k], marginal[latent + k]));
            Assert.True(Math.Abs(kl[row] - expected) <= 1e-12, $"row {row}: KL {kl[row]:R}, diagonal CorEx {expected:R}");
        }
    }

    /// <summary>A correlated q pays for its correlations against a factorized r: at equal marginals (C's diagonal)
    /// its KL exceeds the diagonal posterior's by ½(Σ log C_jj − log|C|), q's total correlation, which is ≥ 0.</summary>
    [Fact]
    public void CorrelationsCostTheirTotalCorrelation()
    {
        const int latent = 4;
        var random = new Random(4);
        var stats = Numerics.ToDouble(Stats(random, 1, latent, 2.0));
        var marginal = Numerics.ToDouble(Numerics.Uniform(random, 2 * latent, -1, 1));
        var (c, _) = RankOneReference.Matrices(stats, 0, latent);
        double diagonal = Enumerable.Range(0, latent).Sum(k => FactorizedPriorReference.Kl(stats[k], Math.Log(c[k, k]), marginal[k], marginal[latent + k]));
        double totalCorrelation = 0.5 * (Enumerable.Range(0, latent).Sum(k => Math.Log(c[k, k])) - RankOneReference.LogDeterminant(c));
        double kl = RankOneMarginalReference.Kl(stats, marginal, 1, latent)[0];
        Assert.True(totalCorrelation > 1e-3, $"u = 2 should correlate q: total correlation {totalCorrelation:R}");
        Assert.True(Math.Abs(kl - diagonal - totalCorrelation) <= 1e-10, $"KL {kl:R} = diagonal {diagonal:R} + total correlation {totalCorrelation:R}?");
    }

    /// <summary>Central differences of Σ g·z + λ·Σ_rows KL (KL from the matrices) by the stats and the marginal, 1e-6 relative.</summary>
    [Theory]
    [InlineData(1, 1, 0.5)]
    [InlineData(3, 4, 1.5)]
    [InlineData(2, 7, 3.0)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int latent, double uScale)
    {
        var random = new Random(rows * 11 + latent);
        var stats = Numerics.ToDouble(Stats(random, rows, latent, uScale));
        var marginal = Numerics.ToDouble(Numerics.Uniform(random, 2 * latent, -1, 1));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var g = Numerics.ToDouble(Numerics.Uniform(random, rows * latent));
        const double klWeight = 0.7;
        double Objective(double[] statsValues, double[] marginalValues)
        {
            var (z, kl) = RankOneMarginalReference.Forward(statsValues, marginalValues, epsilon, rows, latent);
            return z.Select((value, i) => value * g[i]).Sum() + klWeight * kl.Sum();
        }
        var (dStats, dMarginal) = RankOneMarginalReference.Backward(stats, marginal, epsilon, g, rows, latent, klWeight);
        string label = $"rank-one against r, backward {rows}×{latent}";
        Numerics.AssertClose(label + " dStats", Numerics.FiniteDifferenceGradient(values => Objective(values, marginal), stats), dStats, 1e-6, 1e-7);
        Numerics.AssertClose(label + " dMarginal", Numerics.FiniteDifferenceGradient(values => Objective(stats, values), marginal), dMarginal, 1e-6, 1e-7);
    }

    /// <summary>Float against double: z within 5e-5, the KL (K terms and a log-determinant) within 5e-5·K, log w
    /// within 1e-5 relative (its −rec of 50–150 dominates), the gradients within 5e-5 of the largest (the marginal's
    /// sums every example).</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 7, 2)]
    [InlineData(33, 20, 1)]
    [InlineData(5, 33, 3)]
    public void KernelsMatchTheReference(int examples, int latent, int samples)
    {
        const float klWeight = 0.4f;
        int rows = examples * samples;
        var random = new Random(examples * 7 + latent + samples * 13);
        float[] stats = Stats(random, examples, latent, 1.0);
        float[] marginal = Numerics.Uniform(random, 2 * latent, -1.5, 1.5);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 150);
        var key = new DrawKey(6, Philox.Streams.Reparameterize, 3);
        var epsilon = Enumerable.Range(0, rows * latent).Select(i => Philox.NormalDouble(6, Philox.Streams.Reparameterize, 3, i)).ToArray();
        var repeated = ImportanceReference.RepeatRows(Numerics.ToDouble(stats), examples, 3 * latent, samples);
        var marginalValues = Numerics.ToDouble(marginal);
        var (z, kl) = RankOneMarginalReference.Forward(repeated, marginalValues, epsilon, rows, latent);
        // The kernels weight each example's KL once by klWeight; the reference counts it on each of its k rows.
        var (dRepeated, dMarginal) = RankOneMarginalReference.Backward(repeated, marginalValues, epsilon, Numerics.ToDouble(dZ), rows, latent, klWeight / samples);
        var dStats = ImportanceReference.SumRepeatedRows(dRepeated, examples, 3 * latent, samples);
        var logWeights = RankOneMarginalReference.LogWeights(repeated, marginalValues, z, Numerics.ToDouble(reconstruction), rows, latent);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var marginalBuffer = accelerator.Upload(marginal);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var dZBuffer = accelerator.Upload(dZ);
            using var dStatsBuffer = accelerator.Allocate1D<float>(examples * 3 * latent);
            using var dMarginalBuffer = accelerator.Allocate1D<float>(2 * latent);
            using var reconstructionBuffer = accelerator.Upload(reconstruction);
            using var logWeightsBuffer = accelerator.Allocate1D<float>(rows);
            kernels.RankOneForward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, klBuffer.View, rows, latent, key, samples);
            kernels.RankOneMarginalKl(statsBuffer.View, marginalBuffer.View, klBuffer.View, rows, latent, samples);
            kernels.RankOneMarginalLogWeights(statsBuffer.View, marginalBuffer.View, zBuffer.View, epsilonBuffer.View, reconstructionBuffer.View,
                logWeightsBuffer.View, rows, latent, samples);
            kernels.RankOneBackward(statsBuffer.View, epsilonBuffer.View, dZBuffer.View, dStatsBuffer.View, examples, latent, 0f, samples);
            kernels.RankOneMarginalKlBackward(statsBuffer.View, marginalBuffer.View, dStatsBuffer.View, examples, latent, klWeight);
            kernels.RankOneMarginalBackward(statsBuffer.View, marginalBuffer.View, dMarginalBuffer.View, examples, latent, klWeight);
            string label = $"{accelerator.AcceleratorType} rank-one against r {examples}×{latent}×{samples}";
            Numerics.AssertClose(label + " z", z, zBuffer.GetAsArray1D(), 5e-5, 5e-5);
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            Numerics.AssertClose(label + " log w", logWeights, logWeightsBuffer.GetAsArray1D(), 1e-5, 1e-4);
            Numerics.AssertClose(label + " dStats", dStats, dStatsBuffer.GetAsArray1D(), 5e-5, 5e-5 * dStats.Max(Math.Abs));
            Numerics.AssertClose(label + " dMarginal", dMarginal, dMarginalBuffer.GetAsArray1D(), 5e-5, 5e-5 * dMarginal.Max(Math.Abs));
        }
    }
}
