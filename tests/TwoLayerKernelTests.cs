using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The two-stochastic-layer kernels against <see cref="TwoLayerReference"/>, at odd shapes and sample
/// counts; the whole two-layer gradient is checked against finite differences in VaeTests.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class TwoLayerKernelTests(AcceleratorFixture fixture)
{
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(7, 5, 3, 2)]
    [InlineData(3, 100, 50, 5)]
    [InlineData(2, 33, 7, 50)]
    public void LogWeightsAndGradientsMatchReference(int batch, int k1, int k2, int samples)
    {
        int rows = batch * samples;
        var random = new Random(batch + 10 * k1 + 100 * k2 + 1000 * samples);
        float[] stats1 = Numerics.Uniform(random, batch * 2 * k1, -1.5, 1.5);
        float[] z1 = Numerics.Uniform(random, rows * k1, -2, 2);
        float[] stats2 = Numerics.Uniform(random, rows * 2 * k2, -1.5, 1.5);
        float[] z2 = Numerics.Uniform(random, rows * k2, -2, 2);
        float[] priorStats = Numerics.Uniform(random, rows * 2 * k1, -1.5, 1.5);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 150);
        float[] weights = Numerics.Uniform(random, rows, 0, 1);
        float[] dZ1FromDecoder = Numerics.Uniform(random, rows * k1);
        float[] dZ1FromEncoder2 = Numerics.Uniform(random, rows * k1);
        const float scale = 0.3f;

        // The reference's log q(z|·) evaluates N(z; μ, σ²) at the kernel's z; for the kernel's cancelled form
        // (which uses ε) to agree, z must equal μ + σε, so the reference gets ε back from z.
        var repeated1 = ImportanceReference.RepeatRows(Numerics.ToDouble(stats1), batch, 2 * k1, samples);
        var consistentEpsilon1 = Enumerable.Range(0, rows * k1).Select(i =>
            (z1[i] - repeated1[i / k1 * 2 * k1 + i % k1]) / Math.Exp(0.5 * repeated1[i / k1 * 2 * k1 + k1 + i % k1])).ToArray();
        var consistentEpsilon2 = Enumerable.Range(0, rows * k2).Select(i =>
            (z2[i] - stats2[i / k2 * 2 * k2 + i % k2]) / Math.Exp(0.5 * stats2[i / k2 * 2 * k2 + k2 + i % k2])).ToArray();
        float[] epsilon1Used = consistentEpsilon1.Select(e => (float)e).ToArray();
        float[] epsilon2Used = consistentEpsilon2.Select(e => (float)e).ToArray();
        var logWeights = TwoLayerReference.LogWeights(repeated1, Numerics.ToDouble(z1), Numerics.ToDouble(stats2),
            Numerics.ToDouble(z2), Numerics.ToDouble(priorStats), Numerics.ToDouble(reconstruction), rows, k1, k2);
        var rowWeight = weights.Select(w => scale * (double)w).ToArray();
        var (dPriorStats, dZ1FromPrior) = TwoLayerReference.PriorGradient(Numerics.ToDouble(z1), Numerics.ToDouble(priorStats), rowWeight, rows, k1);
        var dZ1 = Enumerable.Range(0, rows * k1).Select(i => (double)dZ1FromDecoder[i] + dZ1FromEncoder2[i] + dZ1FromPrior[i]).ToArray();
        var dStats1 = ImportanceReference.SumRepeatedRows(
            TwoLayerReference.SamplerBackward(repeated1, Numerics.ToDouble(epsilon1Used), dZ1, rowWeight, rows, k1), batch, 2 * k1, samples);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var stats1Buffer = accelerator.Upload(stats1);
            using var z1Buffer = accelerator.Upload(z1);
            using var epsilon1Buffer = accelerator.Upload(epsilon1Used);
            using var stats2Buffer = accelerator.Upload(stats2);
            using var z2Buffer = accelerator.Upload(z2);
            using var epsilon2Buffer = accelerator.Upload(epsilon2Used);
            using var priorBuffer = accelerator.Upload(priorStats);
            using var recBuffer = accelerator.Upload(reconstruction);
            using var weightBuffer = accelerator.Upload(weights);
            using var decoderBuffer = accelerator.Upload(dZ1FromDecoder);
            using var encoder2Buffer = accelerator.Upload(dZ1FromEncoder2);
            using var logWeightBuffer = accelerator.Allocate1D<float>(rows);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var dPriorBuffer = accelerator.Allocate1D<float>(rows * 2 * k1);
            using var dStats1Buffer = accelerator.Allocate1D<float>(batch * 2 * k1);
            kernels.TwoLayerLogWeights(stats1Buffer.View, z1Buffer.View, epsilon1Buffer.View, stats2Buffer.View, z2Buffer.View,
                epsilon2Buffer.View, priorBuffer.View, recBuffer.View, logWeightBuffer.View, klBuffer.View, rows, new LatentWidths(k1, k2, samples));
            kernels.PriorStatsGradient(z1Buffer.View, priorBuffer.View, weightBuffer.View, dPriorBuffer.View, rows, k1, scale);
            kernels.FirstLayerBackward(stats1Buffer.View, z1Buffer.View, epsilon1Buffer.View, priorBuffer.View, decoderBuffer.View,
                encoder2Buffer.View, weightBuffer.View, dStats1Buffer.View, batch, k1, samples, scale);
            string label = $"{accelerator.AcceleratorType} two-layer {batch}×({k1},{k2}), k={samples}";
            // log w sums 2·(k1 + k2) float terms of size up to ~30 besides rec ≤ 150: 1e-6 of 150 + 60·(k1 + k2).
            double logWeightTolerance = 1e-6 * (150 + 60.0 * (k1 + k2));
            Numerics.AssertClose(label + " log w", logWeights, logWeightBuffer.GetAsArray1D(), 1e-6, logWeightTolerance);
            Numerics.AssertClose(label + " KL terms", logWeights.Select((w, r) => -w - reconstruction[r]).ToArray(),
                klBuffer.GetAsArray1D(), 1e-6, logWeightTolerance);
            // Element-wise with one exp: 1e-5 relative (e^{1.5}·4 at most in magnitude).
            Numerics.AssertClose(label + " d[m|u]", dPriorStats, dPriorBuffer.GetAsArray1D(), 1e-5, 1e-6);
            // Sums over k samples of O(10) terms.
            Numerics.AssertClose(label + " dStats1", dStats1, dStats1Buffer.GetAsArray1D(), 2e-5, 2e-5 * samples);
        }
    }

    /// <summary>
    /// The deep latent Gaussian model's two layers, both q's rank-one: log w against the reference's full densities
    /// (N(z; μ, C) through a Cholesky factor of C, the prior network's diagonal Gaussian, N(0, I)), with z drawn by the
    /// reference from the same ε; and p(z1|z2)'s pull on z1 added to dz1 against the reference's prior gradient.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(7, 5, 3, 2)]
    [InlineData(3, 33, 7, 5)]
    public void RankOneLogWeightsAndPriorPullMatchReference(int batch, int k1, int k2, int samples)
    {
        int rows = batch * samples;
        var random = new Random(batch + 10 * k1 + 100 * k2 + 1000 * samples);
        // log d in [−1, 1] and u small enough that C stays well conditioned for the reference's Cholesky.
        float[] RankOneStats(int count, int width) => Enumerable.Range(0, count * 3 * width)
            .Select(i => (float)(i % (3 * width) < 2 * width ? 2 * random.NextDouble() - 1 : random.NextDouble() - 0.5)).ToArray();
        float[] stats1 = RankOneStats(batch, k1), stats2 = RankOneStats(rows, k2);
        float[] epsilon1 = Numerics.Uniform(random, rows * k1, -2, 2), epsilon2 = Numerics.Uniform(random, rows * k2, -2, 2);
        float[] priorStats = Numerics.Uniform(random, rows * 2 * k1, -1.5, 1.5);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 150);
        float[] weights = Numerics.Uniform(random, rows, 0, 1);
        float[] dZ1Before = Numerics.Uniform(random, rows * k1);
        const float scale = 0.3f;
        var repeated1 = ImportanceReference.RepeatRows(Numerics.ToDouble(stats1), batch, 3 * k1, samples);
        float[] z1 = RankOneReference.Forward(repeated1, Numerics.ToDouble(epsilon1), rows, k1).Z.Select(v => (float)v).ToArray();
        float[] z2 = RankOneReference.Forward(Numerics.ToDouble(stats2), Numerics.ToDouble(epsilon2), rows, k2).Z.Select(v => (float)v).ToArray();
        var logQ1 = RankOneReference.LogDensity(repeated1, Numerics.ToDouble(z1), rows, k1);
        var logQ2 = RankOneReference.LogDensity(Numerics.ToDouble(stats2), Numerics.ToDouble(z2), rows, k2);
        var logWeights = Enumerable.Range(0, rows).Select(r => -reconstruction[r] - logQ1[r] - logQ2[r]
            + Enumerable.Range(0, k1).Sum(k => TwoLayerReference.LogNormal(z1[r * k1 + k], priorStats[r * 2 * k1 + k], priorStats[r * 2 * k1 + k1 + k]))
            + Enumerable.Range(0, k2).Sum(k => TwoLayerReference.LogNormal(z2[r * k2 + k], 0, 0))).ToArray();
        var (_, dZ1FromPrior) = TwoLayerReference.PriorGradient(Numerics.ToDouble(z1), Numerics.ToDouble(priorStats),
            weights.Select(w => scale * (double)w).ToArray(), rows, k1);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var stats1Buffer = accelerator.Upload(stats1);
            using var z1Buffer = accelerator.Upload(z1);
            using var epsilon1Buffer = accelerator.Upload(epsilon1);
            using var stats2Buffer = accelerator.Upload(stats2);
            using var z2Buffer = accelerator.Upload(z2);
            using var epsilon2Buffer = accelerator.Upload(epsilon2);
            using var priorBuffer = accelerator.Upload(priorStats);
            using var recBuffer = accelerator.Upload(reconstruction);
            using var weightBuffer = accelerator.Upload(weights);
            using var dZ1Buffer = accelerator.Upload(dZ1Before);
            using var logWeightBuffer = accelerator.Allocate1D<float>(rows);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            kernels.TwoLayerRankOneLogWeights(stats1Buffer.View, z1Buffer.View, epsilon1Buffer.View, stats2Buffer.View, z2Buffer.View,
                epsilon2Buffer.View, priorBuffer.View, recBuffer.View, logWeightBuffer.View, klBuffer.View, rows, new LatentWidths(k1, k2, samples));
            kernels.ConditionalPriorCodeGradient(z1Buffer.View, priorBuffer.View, weightBuffer.View, dZ1Buffer.View, rows, k1, scale);
            string label = $"{accelerator.AcceleratorType} rank-one two-layer {batch}×({k1},{k2}), k={samples}";
            // As above, and z rounded to float where the reference reads it: 1e-6 of 150 + 60·(k1 + k2).
            double logWeightTolerance = 1e-6 * (150 + 60.0 * (k1 + k2));
            Numerics.AssertClose(label + " log w", logWeights, logWeightBuffer.GetAsArray1D(), 1e-6, logWeightTolerance);
            Numerics.AssertClose(label + " KL terms", logWeights.Select((w, r) => -w - reconstruction[r]).ToArray(), klBuffer.GetAsArray1D(), 1e-6, logWeightTolerance);
            Numerics.AssertClose(label + " dz1 with p(z1|z2)'s pull", dZ1FromPrior.Select((d, i) => d + dZ1Before[i]).ToArray(), dZ1Buffer.GetAsArray1D(), 1e-5, 1e-6);
        }
    }
}
