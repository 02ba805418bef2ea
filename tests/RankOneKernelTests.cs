using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// The rank-one covariance posterior (precision D + uuᵀ): the reference's matrices are what the paper says they are,
/// its backward pass agrees with finite differences of its forward pass, and the kernels agree with it at odd shapes.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class RankOneKernelTests(AcceleratorFixture fixture)
{
    /// <summary>Stats [examples, 3K] = [μ | log d | u]; <paramref name="uScale"/> sets how far from diagonal C is.</summary>
    private static float[] Stats(Random random, int examples, int latent, double uScale)
    {
        var stats = new float[examples * 3 * latent];
        for (int b = 0; b < examples; b++)
            for (int k = 0; k < latent; k++)
            {
                stats[b * 3 * latent + k] = (float)(2 * random.NextDouble() - 1);
                stats[b * 3 * latent + latent + k] = (float)(2 * random.NextDouble() - 1);
                stats[b * 3 * latent + 2 * latent + k] = (float)(uScale * (2 * random.NextDouble() - 1));
            }
        return stats;
    }

    [Theory]
    [InlineData(1, 0.5)]
    [InlineData(7, 2.0)]
    [InlineData(20, 0.0)]
    public void ReferenceMatricesFactorTheCovarianceWhosePrecisionIsDPlusUUt(int latent, double uScale)
    {
        var stats = Numerics.ToDouble(Stats(new Random(latent), 1, latent, uScale));
        var (c, r) = RankOneReference.Matrices(stats, 0, latent);
        for (int i = 0; i < latent; i++)
            for (int j = 0; j < latent; j++)
            {
                double rrt = 0, identity = 0;
                for (int k = 0; k < latent; k++)
                {
                    rrt += r[i, k] * r[j, k];
                    // C·(D + uuᵀ) with d = e^(log d).
                    double precision = (k == j ? Math.Exp(stats[latent + k]) : 0) + stats[2 * latent + k] * stats[2 * latent + j];
                    identity += c[i, k] * precision;
                }
                Assert.Equal(c[i, j], rrt, 1e-12);
                Assert.Equal(i == j ? 1 : 0, identity, 1e-10);
            }
    }

    /// <summary>eval's correlations of q(z|x) from the closed form, against the explicit matrix C.</summary>
    [Theory]
    [InlineData(2, 1.0)]
    [InlineData(7, 2.0)]
    public void CorrelationsAreThoseOfTheCovarianceMatrix(int latent, double uScale)
    {
        var stats = Stats(new Random(latent + 3), 2, latent, uScale);
        var (c, _) = RankOneReference.Matrices(Numerics.ToDouble(stats), 1, latent);
        var expected = new List<double>();
        for (int i = 0; i < latent; i++)
            for (int j = i + 1; j < latent; j++)
                expected.Add(c[i, j] / Math.Sqrt(c[i, i] * c[j, j]));
        Numerics.AssertClose("correlations", expected, IlgpuVae.Model.Evaluation.RankOneCorrelations(stats, 1, latent).ToArray(), 1e-6, 1e-9); // (the helper compares as floats)
    }

    /// <summary>
    /// Central differences of L = Σ g·z + λ·Σ KL through the reference's forward pass (explicit R and a Cholesky
    /// log-determinant) against its backward pass (the chain rule through s, t, a, c): independent computations,
    /// so agreement to 1e-6 checks both.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 0.5)]
    [InlineData(3, 7, 1.5)]
    [InlineData(2, 5, 0.0)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int latent, double uScale)
    {
        var random = new Random(rows * 31 + latent);
        var stats = Numerics.ToDouble(Stats(random, rows, latent, uScale));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var g = Numerics.ToDouble(Numerics.Uniform(random, rows * latent));
        const double klWeight = 0.7;
        double Objective(double[] values)
        {
            var (z, kl) = RankOneReference.Forward(values, epsilon, rows, latent);
            return z.Select((value, i) => value * g[i]).Sum() + klWeight * kl.Sum();
        }
        var expected = Numerics.FiniteDifferenceGradient(Objective, stats);
        var actual = RankOneReference.Backward(stats, epsilon, g, rows, latent, klWeight);
        Numerics.AssertClose($"rank-one backward {rows}×{latent}", expected, actual, 1e-6, 1e-7);
    }

    /// <summary>The weighted (IWAE) backward pass against central differences of Σ_r c_r(−log p(z_r) + log q(z_r|x)) + Σ g·z
    /// through the reference's forward pass and Cholesky log-density, ε fixed.</summary>
    [Theory]
    [InlineData(1, 1, 0.5)]
    [InlineData(3, 6, 1.5)]
    public void ReferenceWeightedBackwardMatchesFiniteDifferences(int rows, int latent, double uScale)
    {
        var random = new Random(rows * 13 + latent);
        var stats = Numerics.ToDouble(Stats(random, rows, latent, uScale));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var g = Numerics.ToDouble(Numerics.Uniform(random, rows * latent));
        var weights = Numerics.ToDouble(Numerics.Uniform(random, rows, 0.1, 1));
        const double scale = 0.4;
        double Objective(double[] values)
        {
            var (z, _) = RankOneReference.Forward(values, epsilon, rows, latent);
            // −log w with no reconstruction is −log p(z) + log q(z|x).
            var logWeights = RankOneReference.LogWeights(values, z, new double[rows], rows, latent);
            return z.Select((value, i) => value * g[i]).Sum() - logWeights.Select((value, r) => scale * weights[r] * value).Sum();
        }
        var (zAt, _) = RankOneReference.Forward(stats, epsilon, rows, latent);
        var expected = Numerics.FiniteDifferenceGradient(Objective, stats);
        var actual = RankOneReference.WeightedBackward(stats, zAt, epsilon, g, weights, rows, latent, scale);
        Numerics.AssertClose($"rank-one weighted backward {rows}×{latent}", expected, actual, 1e-6, 1e-7);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 7, 3)]
    [InlineData(4, 33, 2)]
    public void WeightedBackwardKernelMatchesTheReference(int examples, int latent, int samples)
    {
        var random = new Random(examples + latent * 3);
        int rows = examples * samples;
        float[] stats = Stats(random, examples, latent, 1.0);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        float[] weights = Numerics.Uniform(random, rows, 0.1, 1);
        const float scale = 0.25f;
        var key = new DrawKey(8, Philox.Streams.ImportanceReparameterize, 2);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var dZBuffer = accelerator.Upload(dZ);
            using var weightsBuffer = accelerator.Upload(weights);
            using var dStatsBuffer = accelerator.Allocate1D<float>(examples * 3 * latent);
            kernels.RankOneForward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, klBuffer.View, rows, latent, key, samples);
            kernels.RankOneWeightedBackward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, dZBuffer.View, weightsBuffer.View, dStatsBuffer.View,
                examples, latent, samples, scale);
            var repeated = ImportanceReference.RepeatRows(Numerics.ToDouble(stats), examples, 3 * latent, samples);
            var expected = ImportanceReference.SumRepeatedRows(RankOneReference.WeightedBackward(repeated, Numerics.ToDouble(zBuffer.GetAsArray1D()),
                Numerics.ToDouble(epsilonBuffer.GetAsArray1D()), Numerics.ToDouble(dZ), Numerics.ToDouble(weights), rows, latent, scale), examples, 3 * latent, samples);
            // As the unweighted pass: 2e-5 of each value and of the largest.
            Numerics.AssertClose($"{accelerator.AcceleratorType} rank-one weighted backward {examples}×{latent}×{samples}", expected,
                dStatsBuffer.GetAsArray1D(), 2e-5, 2e-5 * expected.Max(Math.Abs));
        }
    }

    // Float kernels against double: exp/log per element and sums over K of a few products (relative ~1e-6 each);
    // z subtracts c·t·a from μ + w, and the backward pass adds each sample's terms, so both get 2e-5 of their scale.
    [Theory]
    [InlineData(1, 1, 1, 0.5)]
    [InlineData(7, 7, 2, 1.5)]
    [InlineData(33, 20, 1, 0.3)]
    [InlineData(5, 33, 3, 1.0)]
    [InlineData(4, 6, 1, 0.0)]
    public void KernelsMatchTheReference(int examples, int latent, int samples, double uScale)
    {
        var random = new Random(examples * 7 + latent);
        int rows = examples * samples;
        float[] stats = Stats(random, examples, latent, uScale);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 150);
        const ulong seed = 5;
        const long step = 3;
        const float klWeight = 0.3f;
        var epsilon = Enumerable.Range(0, rows * latent).Select(i => Philox.NormalDouble(seed, Philox.Streams.Reparameterize, step, i)).ToArray();
        var repeated = ImportanceReference.RepeatRows(Numerics.ToDouble(stats), examples, 3 * latent, samples);
        var (z, kl) = RankOneReference.Forward(repeated, epsilon, rows, latent);
        // The kernel weighs the KL once per example; the reference once per row.
        var dStats = ImportanceReference.SumRepeatedRows(
            RankOneReference.Backward(repeated, epsilon, Numerics.ToDouble(dZ), rows, latent, klWeight / samples), examples, 3 * latent, samples);
        var logWeights = RankOneReference.LogWeights(repeated, z, Numerics.ToDouble(reconstruction), rows, latent);
        double statsScale = dStats.Max(Math.Abs);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var dZBuffer = accelerator.Upload(dZ);
            using var dStatsBuffer = accelerator.Allocate1D<float>(examples * 3 * latent);
            using var reconstructionBuffer = accelerator.Upload(reconstruction);
            using var logWeightsBuffer = accelerator.Allocate1D<float>(rows);
            kernels.RankOneForward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, klBuffer.View, rows, latent,
                new DrawKey(seed, Philox.Streams.Reparameterize, step), samples);
            kernels.RankOneBackward(statsBuffer.View, epsilonBuffer.View, dZBuffer.View, dStatsBuffer.View, examples, latent, klWeight, samples);
            kernels.RankOneLogWeights(statsBuffer.View, zBuffer.View, epsilonBuffer.View, reconstructionBuffer.View, logWeightsBuffer.View, rows, latent, samples);
            string label = $"{accelerator.AcceleratorType} rank-one {examples}×{latent}×{samples}";
            Numerics.AssertClose(label + " ε", epsilon, epsilonBuffer.GetAsArray1D(), 1e-5, 1e-5);
            Numerics.AssertClose(label + " z", z, zBuffer.GetAsArray1D(), 2e-5, 2e-5);
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 2e-5, 2e-6 * latent);
            Numerics.AssertClose(label + " dStats", dStats, dStatsBuffer.GetAsArray1D(), 2e-5, 2e-5 * statsScale);
            // log w is ~−100 with a few terms of size K: 1e-5 relative.
            Numerics.AssertClose(label + " log w", logWeights, logWeightsBuffer.GetAsArray1D(), 1e-5, 1e-4);
        }
    }
}
