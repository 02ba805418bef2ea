using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The planar-flow posterior on a diagonal or a rank-one base: the reference's backward pass against finite
/// differences of its forward pass, and the kernels against the reference at odd shapes.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class PlanarFlowTests(AcceleratorFixture fixture)
{
    private static float[] Stats(Random random, int rows, FlowShape shape) => Numerics.Uniform(random, rows * shape.StatsWidth);

    /// <summary>Central differences of Σ g·z_L + λ·Σ KL through the reference's forward pass: 1e-6 relative. Base
    /// blocks 3: a rank-one base Gaussian (built as matrices), also with no steps.</summary>
    [Theory]
    [InlineData(1, 1, 1, 2)]
    [InlineData(3, 4, 2, 2)]
    [InlineData(2, 7, 3, 2)]
    [InlineData(1, 1, 1, 3)]
    [InlineData(3, 4, 0, 3)]
    [InlineData(2, 7, 3, 3)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int latent, int length, int baseBlocks)
    {
        var shape = new FlowShape(latent, length, 1, baseBlocks);
        var random = new Random(rows * 17 + latent * 3 + length);
        var stats = Numerics.ToDouble(Stats(random, rows, shape));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var g = Numerics.ToDouble(Numerics.Uniform(random, rows * latent));
        const double klWeight = 0.6;
        double Objective(double[] values)
        {
            var (z, kl) = PlanarFlowReference.Forward(values, epsilon, rows, shape);
            return z.Select((value, i) => value * g[i]).Sum() + klWeight * kl.Sum();
        }
        Numerics.AssertClose($"planar flow backward {rows}×{latent}×{length}, base blocks {baseBlocks}", Numerics.FiniteDifferenceGradient(Objective, stats),
            PlanarFlowReference.Backward(stats, epsilon, g, rows, shape, klWeight), 1e-6, 1e-7);
    }

    /// <summary>Float against double through L sequential steps of tanh, log and K-term dot products: 5e-5 of each
    /// value for z and the KL, and of the largest gradient for dStats (each sample's terms add).</summary>
    [Theory]
    [InlineData(1, 1, 1, 1, 2)]
    [InlineData(7, 7, 2, 2, 2)]
    [InlineData(33, 20, 1, 1, 2)]
    [InlineData(5, 6, 4, 3, 2)]
    [InlineData(1, 1, 1, 1, 3)]
    [InlineData(7, 7, 2, 2, 3)]
    [InlineData(33, 20, 0, 1, 3)]
    [InlineData(5, 6, 4, 3, 3)]
    public void KernelsMatchTheReference(int examples, int latent, int length, int samples, int baseBlocks)
    {
        var shape = new FlowShape(latent, length, samples, baseBlocks);
        int rows = examples * samples;
        var random = new Random(examples * 5 + latent + length * 11);
        float[] stats = Stats(random, examples, shape);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 150);
        const float klWeight = 0.4f;
        var key = new DrawKey(4, Philox.Streams.Reparameterize, 7);
        var epsilon = Enumerable.Range(0, rows * latent).Select(i => Philox.NormalDouble(4, Philox.Streams.Reparameterize, 7, i)).ToArray();
        var repeated = ImportanceReference.RepeatRows(Numerics.ToDouble(stats), examples, shape.StatsWidth, samples);
        var (z, kl) = PlanarFlowReference.Forward(repeated, epsilon, rows, shape);
        var dStats = ImportanceReference.SumRepeatedRows(
            PlanarFlowReference.Backward(repeated, epsilon, Numerics.ToDouble(dZ), rows, shape, klWeight / samples), examples, shape.StatsWidth, samples);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var states = accelerator.Allocate1D<float>(Math.Max(1, rows * length * latent));
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var dZBuffer = accelerator.Upload(dZ);
            using var dStatsBuffer = accelerator.Allocate1D<float>(examples * shape.StatsWidth);
            using var reconstructionBuffer = accelerator.Upload(reconstruction);
            using var logWeights = accelerator.Allocate1D<float>(rows);
            kernels.PlanarFlowForward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, states.View, klBuffer.View, rows, shape, key);
            kernels.SampledKlLogWeights(klBuffer.View, reconstructionBuffer.View, logWeights.View, rows);
            kernels.PlanarFlowBackward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, states.View, dZBuffer.View, dStatsBuffer.View, examples, shape, klWeight);
            string label = $"{accelerator.AcceleratorType} planar flow {examples}×{latent}×{length}×{samples}, base blocks {baseBlocks}";
            Numerics.AssertClose(label + " z", z, zBuffer.GetAsArray1D(), 5e-5, 5e-5);
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            Numerics.AssertClose(label + " log w", reconstruction.Select((value, r) => -(double)value - kl[r]).ToArray(), logWeights.GetAsArray1D(), 1e-5, 1e-4);
            Numerics.AssertClose(label + " dStats", dStats, dStatsBuffer.GetAsArray1D(), 5e-5, 5e-5 * dStats.Max(Math.Abs));
        }
    }
}
