using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>Auto-encoding CorEx's KL against a learned factorized marginal: the reference's backward pass against
/// finite differences, its reduction to the standard KL, and the kernels against the reference at odd shapes.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class FactorizedPriorTests(AcceleratorFixture fixture)
{
    /// <summary>Central differences of Σ g·z + λ·Σ_rows Σ_j w_j KL_j by the stats and by the marginal, with two anchors
    /// weighted 0.3: 1e-6 relative (double throughout).</summary>
    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(3, 4, 2)]
    [InlineData(2, 7, 7)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int latent, int anchors)
    {
        var random = new Random(rows * 11 + latent * 3 + anchors);
        var stats = Numerics.ToDouble(Numerics.Uniform(random, rows * 2 * latent));
        var marginal = Numerics.ToDouble(Numerics.Uniform(random, 2 * latent));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var g = Numerics.ToDouble(Numerics.Uniform(random, rows * latent));
        var weights = FactorizedPriorReference.Weights(latent, anchors, 0.3);
        const double klWeight = 0.8;
        double Objective(double[] statsValues, double[] marginalValues)
        {
            var (z, _) = FactorizedPriorReference.Forward(statsValues, marginalValues, epsilon, rows, latent);
            double weightedKl = 0;
            for (int row = 0; row < rows; row++)
                for (int k = 0; k < latent; k++)
                    weightedKl += weights[k] * FactorizedPriorReference.Kl(statsValues[row * 2 * latent + k], statsValues[row * 2 * latent + latent + k],
                        marginalValues[k], marginalValues[latent + k]);
            return z.Select((value, i) => value * g[i]).Sum() + klWeight * weightedKl;
        }
        var (dStats, dMarginal) = FactorizedPriorReference.Backward(stats, marginal, epsilon, g, rows, latent, weights, klWeight);
        string label = $"factorized prior backward {rows}×{latent}, {anchors} anchors";
        Numerics.AssertClose(label + " dStats", Numerics.FiniteDifferenceGradient(values => Objective(values, marginal), stats), dStats, 1e-6, 1e-7);
        Numerics.AssertClose(label + " dMarginal", Numerics.FiniteDifferenceGradient(values => Objective(stats, values), marginal), dMarginal, 1e-6, 1e-7);
    }

    /// <summary>A marginal of m = 0, log s² = 0 is N(0, I): the KL and log w are the plain VAE's.</summary>
    [Fact]
    public void StandardMarginalIsThePlainVae()
    {
        const int rows = 4, latent = 3;
        var random = new Random(5);
        var stats = Numerics.ToDouble(Numerics.Uniform(random, rows * 2 * latent));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var reconstruction = Numerics.ToDouble(Numerics.Uniform(random, rows, 50, 150));
        var (z, kl) = FactorizedPriorReference.Forward(stats, new double[2 * latent], epsilon, rows, latent);
        var (plainZ, plainKl) = LossReference.ReparameterizeForward(stats, epsilon, rows, latent);
        var logWeights = FactorizedPriorReference.LogWeights(stats, new double[2 * latent], z, reconstruction, rows, latent);
        var plainLogWeights = LossReference.LogWeights(stats, plainZ, epsilon, reconstruction, rows, latent);
        for (int row = 0; row < rows; row++)
        {
            Assert.True(Math.Abs(kl[row] - plainKl[row]) <= 1e-12, $"row {row}: KL {kl[row]:R} against the standard marginal, {plainKl[row]:R} against N(0, I)");
            Assert.True(Math.Abs(logWeights[row] - plainLogWeights[row]) <= 1e-9, $"row {row}: log w {logWeights[row]:R}, plain {plainLogWeights[row]:R}");
        }
    }

    /// <summary>Float against double: z, the KL (K terms) and log w within 5e-5 of each value; the gradients within
    /// 5e-5 of the largest (the marginal's sums every example).</summary>
    [Theory]
    [InlineData(1, 1, 1, 0)]
    [InlineData(7, 7, 2, 3)]
    [InlineData(33, 20, 1, 5)]
    [InlineData(5, 6, 3, 6)]
    public void KernelsMatchTheReference(int examples, int latent, int samples, int anchors)
    {
        const float anchorScale = 0.25f, klWeight = 0.4f;
        var shape = new MarginalShape(latent, samples, anchors, anchorScale);
        int rows = examples * samples;
        var random = new Random(examples * 7 + latent + samples * 13);
        float[] stats = Numerics.Uniform(random, examples * 2 * latent);
        float[] marginal = Numerics.Uniform(random, 2 * latent, -1.5, 1.5);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 150);
        var key = new DrawKey(6, Philox.Streams.Reparameterize, 3);
        var epsilon = Enumerable.Range(0, rows * latent).Select(i => Philox.NormalDouble(6, Philox.Streams.Reparameterize, 3, i)).ToArray();
        var repeated = ImportanceReference.RepeatRows(Numerics.ToDouble(stats), examples, 2 * latent, samples);
        var marginalValues = Numerics.ToDouble(marginal);
        var (z, kl) = FactorizedPriorReference.Forward(repeated, marginalValues, epsilon, rows, latent);
        // The kernels weight each example's KL once by klWeight; the reference counts it on each of its k rows.
        var (dRepeated, dMarginal) = FactorizedPriorReference.Backward(repeated, marginalValues, epsilon, Numerics.ToDouble(dZ), rows, latent,
            FactorizedPriorReference.Weights(latent, anchors, anchorScale), klWeight / samples);
        var dStats = ImportanceReference.SumRepeatedRows(dRepeated, examples, 2 * latent, samples);
        var logWeights = FactorizedPriorReference.LogWeights(repeated, marginalValues, z, Numerics.ToDouble(reconstruction), rows, latent);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var marginalBuffer = accelerator.Upload(marginal);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var dZBuffer = accelerator.Upload(dZ);
            using var dStatsBuffer = accelerator.Allocate1D<float>(examples * 2 * latent);
            using var dMarginalBuffer = accelerator.Allocate1D<float>(2 * latent);
            using var reconstructionBuffer = accelerator.Upload(reconstruction);
            using var logWeightsBuffer = accelerator.Allocate1D<float>(rows);
            kernels.FactorizedPriorForward(statsBuffer.View, marginalBuffer.View, zBuffer.View, epsilonBuffer.View, klBuffer.View, rows, shape, key);
            kernels.FactorizedPriorLogWeights(statsBuffer.View, marginalBuffer.View, zBuffer.View, epsilonBuffer.View, reconstructionBuffer.View,
                logWeightsBuffer.View, rows, shape);
            kernels.FactorizedPriorBackward(statsBuffer.View, marginalBuffer.View, epsilonBuffer.View, dZBuffer.View, dStatsBuffer.View, examples, shape, klWeight);
            kernels.FactorizedMarginalBackward(statsBuffer.View, marginalBuffer.View, dMarginalBuffer.View, examples, shape, klWeight);
            string label = $"{accelerator.AcceleratorType} factorized prior {examples}×{latent}×{samples}, {anchors} anchors";
            Numerics.AssertClose(label + " z", z, zBuffer.GetAsArray1D(), 5e-5, 5e-5);
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            Numerics.AssertClose(label + " log w", logWeights, logWeightsBuffer.GetAsArray1D(), 1e-5, 1e-4);
            Numerics.AssertClose(label + " dStats", dStats, dStatsBuffer.GetAsArray1D(), 5e-5, 5e-5 * dStats.Max(Math.Abs));
            // The reference's marginal gradient sums the k repeated rows of each example: the same as the kernel's
            // per-example sum, since the closed form does not depend on the sample.
            Numerics.AssertClose(label + " dMarginal", dMarginal, dMarginalBuffer.GetAsArray1D(), 5e-5, 5e-5 * dMarginal.Max(Math.Abs));
        }
    }
}
