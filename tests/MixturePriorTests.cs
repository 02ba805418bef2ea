using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The mixture prior's sampled KL term: the reference's backward pass against finite differences, the
/// reference against the standard-normal KL it must reduce to, and the kernels against the reference at odd shapes.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class MixturePriorTests(AcceleratorFixture fixture)
{
    /// <summary>Central differences of Σ g·z + λ·Σ KL through the reference's forward pass, by the encoder's
    /// stats and by the components: 1e-6 relative (double throughout; the step error is O(h²)).</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 4, 2)]
    [InlineData(2, 7, 5)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int latent, int count)
    {
        var random = new Random(rows * 13 + latent * 5 + count);
        var stats = Numerics.ToDouble(Numerics.Uniform(random, rows * 2 * latent));
        var components = Numerics.ToDouble(Numerics.Uniform(random, count * 2 * latent));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var g = Numerics.ToDouble(Numerics.Uniform(random, rows * latent));
        const double klWeight = 0.7;
        double Objective(double[] statsValues, double[] componentValues)
        {
            var (z, kl) = MixturePriorReference.Forward(statsValues, componentValues, epsilon, rows, latent, count);
            return z.Select((value, i) => value * g[i]).Sum() + klWeight * kl.Sum();
        }
        var (dStats, dComponents) = MixturePriorReference.Backward(stats, components, epsilon, g, rows, latent, count, klWeight);
        string label = $"mixture prior backward {rows}×{latent}×{count}";
        Numerics.AssertClose(label + " dStats", Numerics.FiniteDifferenceGradient(values => Objective(values, components), stats), dStats, 1e-6, 1e-7);
        Numerics.AssertClose(label + " dComponents", Numerics.FiniteDifferenceGradient(values => Objective(stats, values), components), dComponents, 1e-6, 1e-7);
    }

    /// <summary>Components that are all N(0, I) make p(z) the standard normal, whose sampled KL at z = μ + σε is
    /// ½Σ(z² − ε² − log σ²) exactly: the mixture's log-sum-exp and log C must cancel to that.</summary>
    [Fact]
    public void StandardComponentsReduceToTheStandardNormal()
    {
        const int rows = 4, latent = 3, count = 5;
        var random = new Random(2);
        var stats = Numerics.ToDouble(Numerics.Uniform(random, rows * 2 * latent));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var (z, kl) = MixturePriorReference.Forward(stats, new double[count * 2 * latent], epsilon, rows, latent, count);
        var expected = Enumerable.Range(0, rows).Select(row => Enumerable.Range(0, latent).Sum(k =>
            0.5 * (z[row * latent + k] * z[row * latent + k] - epsilon[row * latent + k] * epsilon[row * latent + k] - stats[row * 2 * latent + latent + k]))).ToArray();
        // Compared in double (AssertClose rounds its second argument to float).
        for (int row = 0; row < rows; row++)
            Assert.True(Math.Abs(kl[row] - expected[row]) <= 1e-12, $"row {row}: KL {kl[row]:R} against C standard components, {expected[row]:R} against N(0, I)");
    }

    /// <summary>Float against double: z and the KL within 5e-5 of each value (K-term sums and a C-term
    /// log-sum-exp); dStats and dComponents within 5e-5 of the largest value, since each sums many rows'
    /// responsibility-weighted terms of both signs.</summary>
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(7, 7, 3, 2)]
    [InlineData(33, 20, 10, 1)]
    [InlineData(5, 6, 33, 3)]
    public void KernelsMatchTheReference(int examples, int latent, int count, int samples) => CompareKernels(examples, latent, count, samples, weighted: false);

    /// <summary>The same with a weight per row (the importance-weighted bound's w̃, here arbitrary positive values).</summary>
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(7, 7, 3, 2)]
    [InlineData(5, 6, 33, 3)]
    public void WeightedKernelsMatchTheReference(int examples, int latent, int count, int samples) => CompareKernels(examples, latent, count, samples, weighted: true);

    private void CompareKernels(int examples, int latent, int count, int samples, bool weighted)
    {
        var shape = new MixtureShape(latent, count, samples);
        int rows = examples * samples;
        var random = new Random(examples * 3 + latent * 7 + count);
        float[] stats = Numerics.Uniform(random, examples * 2 * latent);
        float[] components = Numerics.Uniform(random, count * 2 * latent, -1.5, 1.5);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 150);
        const float klWeight = 0.3f;
        var key = new DrawKey(5, Philox.Streams.Reparameterize, 9);
        var epsilon = Enumerable.Range(0, rows * latent).Select(i => Philox.NormalDouble(5, Philox.Streams.Reparameterize, 9, i)).ToArray();
        var repeated = ImportanceReference.RepeatRows(Numerics.ToDouble(stats), examples, 2 * latent, samples);
        var componentValues = Numerics.ToDouble(components);
        var (z, kl) = MixturePriorReference.Forward(repeated, componentValues, epsilon, rows, latent, count);
        float[] rowWeights = Numerics.Uniform(random, rows, 0.1, 1);
        var (dRepeated, dComponents) = weighted
            ? MixturePriorReference.Backward(repeated, componentValues, epsilon, Numerics.ToDouble(dZ), rows, latent, count, klWeight, Numerics.ToDouble(rowWeights))
            : MixturePriorReference.Backward(repeated, componentValues, epsilon, Numerics.ToDouble(dZ), rows, latent, count, klWeight / samples);
        var dStats = ImportanceReference.SumRepeatedRows(dRepeated, examples, 2 * latent, samples);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var statsBuffer = accelerator.Upload(stats);
            using var componentsBuffer = accelerator.Upload(components);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var responsibilities = accelerator.Allocate1D<float>(rows * count);
            using var dZBuffer = accelerator.Upload(dZ);
            using var dStatsBuffer = accelerator.Allocate1D<float>(examples * 2 * latent);
            using var dComponentsBuffer = accelerator.Allocate1D<float>(count * 2 * latent);
            using var reconstructionBuffer = accelerator.Upload(reconstruction);
            using var logWeights = accelerator.Allocate1D<float>(rows);
            using var rowWeightsBuffer = accelerator.Upload(rowWeights);
            ArrayView<float>? weights = weighted ? rowWeightsBuffer.View : null;
            kernels.MixturePriorForward(statsBuffer.View, componentsBuffer.View, zBuffer.View, epsilonBuffer.View, klBuffer.View,
                responsibilities.View, rows, shape, key);
            kernels.SampledKlLogWeights(klBuffer.View, reconstructionBuffer.View, logWeights.View, rows);
            kernels.MixturePriorBackward(statsBuffer.View, componentsBuffer.View, zBuffer.View, epsilonBuffer.View, responsibilities.View,
                dZBuffer.View, dStatsBuffer.View, examples, shape, klWeight, weights);
            kernels.MixturePriorComponentsBackward(componentsBuffer.View, zBuffer.View, responsibilities.View, dComponentsBuffer.View,
                rows, shape, klWeight, weights);
            string label = $"{accelerator.AcceleratorType} mixture prior {examples}×{latent}×{count}×{samples}{(weighted ? " weighted" : "")}";
            Numerics.AssertClose(label + " z", z, zBuffer.GetAsArray1D(), 5e-5, 5e-5);
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            Numerics.AssertClose(label + " log w", reconstruction.Select((value, r) => -(double)value - kl[r]).ToArray(), logWeights.GetAsArray1D(), 1e-5, 1e-4);
            Numerics.AssertClose(label + " dStats", dStats, dStatsBuffer.GetAsArray1D(), 5e-5, 5e-5 * dStats.Max(Math.Abs));
            Numerics.AssertClose(label + " dComponents", dComponents, dComponentsBuffer.GetAsArray1D(), 5e-5, 5e-5 * dComponents.Max(Math.Abs));
        }
    }
}
