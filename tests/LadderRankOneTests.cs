using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The Ladder VAE with rank-one posteriors: the merge by precision of a rank-one q̂ and a diagonal prior, its
/// backward pass, the softplus rewrite of a rank-one head and log w layer by layer, against the double references
/// (the merge's built from the precision matrices), and the references against finite differences and the
/// diagonal merge. The whole objective is checked in VaeTests.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class LadderRankOneTests(AcceleratorFixture fixture)
{
    /// <summary>[μ̂ | log d̂ | û] rows: means in ±1, log d̂ in ±spread, û in ±uScale.</summary>
    private static float[] UpStats(Random random, int rows, int latent, double spread, double uScale)
    {
        var stats = new float[rows * 3 * latent];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                stats[row * 3 * latent + k] = (float)(2 * random.NextDouble() - 1);
                stats[row * 3 * latent + latent + k] = (float)(spread * (2 * random.NextDouble() - 1));
                stats[row * 3 * latent + 2 * latent + k] = (float)(uScale * (2 * random.NextDouble() - 1));
            }
        return stats;
    }

    /// <summary>[μ | v] rows of a diagonal prior.</summary>
    private static float[] PriorStats(Random random, int rows, int latent, double spread)
    {
        var stats = Numerics.Uniform(random, rows * 2 * latent);
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
                stats[row * 2 * latent + latent + k] *= (float)spread;
        return stats;
    }

    /// <summary>With û = 0 both are diagonal: the merge is the diagonal Ladder merge, with log d = −log σ².</summary>
    [Fact]
    public void WithoutTheRankOneDirectionTheMergeIsTheDiagonalOne()
    {
        const int examples = 3, latent = 4, samples = 2, rows = examples * samples;
        var random = new Random(8);
        var up = Numerics.ToDouble(UpStats(random, examples, latent, 2.0, 0));
        var down = Numerics.ToDouble(PriorStats(random, rows, latent, 2.0));
        var diagonalUp = new double[examples * 2 * latent];
        for (int b = 0; b < examples; b++)
            for (int k = 0; k < latent; k++)
            {
                diagonalUp[b * 2 * latent + k] = up[b * 3 * latent + k];
                diagonalUp[b * 2 * latent + latent + k] = -up[b * 3 * latent + latent + k];
            }
        var merged = LadderReference.RankOneMerge(up, down, rows, latent, samples);
        var diagonal = LadderReference.Merge(diagonalUp, down, rows, latent, samples);
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < latent; k++)
            {
                Assert.Equal(diagonal[r * 2 * latent + k], merged[r * 3 * latent + k], 1e-12);
                Assert.Equal(-diagonal[r * 2 * latent + latent + k], merged[r * 3 * latent + latent + k], 1e-12);
                Assert.Equal(0, merged[r * 3 * latent + 2 * latent + k]);
            }
    }

    public static TheoryData<int, int, int, double, double> MergeShapes => new()
    {
        // examples, latent, samples, spread of log d̂ and v, scale of û
        { 1, 1, 1, 1.0, 0.5 },
        { 7, 3, 2, 2.0, 1.5 },
        { 33, 7, 3, 1.0, 1.0 },
        { 4, 20, 2, 3.0, 0.7 },
    };

    [Theory]
    [MemberData(nameof(MergeShapes))]
    public void MergeAndItsBackwardMatchTheReference(int examples, int latent, int samples, double spread, double uScale)
    {
        int rows = examples * samples;
        var random = new Random(examples * 7 + latent);
        float[] bottomUp = UpStats(random, examples, latent, spread, uScale), topDown = PriorStats(random, rows, latent, spread);
        float[] dMerged = Numerics.Uniform(random, rows * 3 * latent);
        float[] dTopDownBefore = Numerics.Uniform(random, rows * 2 * latent);
        var (up, down) = (Numerics.ToDouble(bottomUp), Numerics.ToDouble(topDown));
        var merged = LadderReference.RankOneMerge(up, down, rows, latent, samples);
        var (dUp, dDown) = LadderReference.RankOneMergeBackward(up, down, Numerics.ToDouble(dMerged), rows, latent, samples);

        // The reference's closed-form backward pass against central differences of Σ dMerged·merged, the merge
        // solved from the matrices each time.
        double Objective(double[] u, double[] d) => LadderReference.RankOneMerge(u, d, rows, latent, samples).Select((m, i) => m * dMerged[i]).Sum();
        Numerics.AssertClose("d bottom-up vs finite differences", Numerics.FiniteDifferenceGradient(point => Objective(point, down), up), dUp, 1e-6, 1e-7);
        Numerics.AssertClose("d top-down vs finite differences", Numerics.FiniteDifferenceGradient(point => Objective(up, point), down), dDown, 1e-6, 1e-7);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var upBuffer = accelerator.Upload(bottomUp);
            using var downBuffer = accelerator.Upload(topDown);
            using var mergedBuffer = accelerator.Allocate1D<float>(merged.Length);
            using var dMergedBuffer = accelerator.Upload(dMerged);
            using var dUpBuffer = accelerator.Allocate1D<float>(up.Length);
            using var dDownBuffer = accelerator.Upload(dTopDownBefore);
            kernels.LadderRankOneMerge(upBuffer.View, downBuffer.View, mergedBuffer.View, rows, latent, samples);
            kernels.LadderRankOneMergeBackward(upBuffer.View, downBuffer.View, dMergedBuffer.View, dUpBuffer.View, dDownBuffer.View, examples, latent, samples);
            string what = $"{accelerator.AcceleratorType} rank-one merge {examples}×{latent}×{samples} spread {spread}, û ±{uScale}";
            // μq sums K products of size up to e^spread and divides by d' (Sherman–Morrison in float against a
            // Cholesky solve in double): 2e-5 of the row's largest term.
            var scale = Enumerable.Range(0, merged.Length).Select(i => Math.Max(1, Math.Abs(merged[i]))).ToArray();
            Numerics.AssertClose(what, merged, mergedBuffer.GetAsArray1D(), 2e-5, 2e-5, scale);
            // Sums over K and the samples of such terms: 1e-4 of the largest gradient.
            Numerics.AssertClose(what + ": d bottom-up", dUp, dUpBuffer.GetAsArray1D(), 1e-4, 1e-4 * dUp.Max(Math.Abs));
            var expectedDown = dDown.Select((d, i) => d + dTopDownBefore[i]).ToArray();
            Numerics.AssertClose(what + ": d top-down (added)", expectedDown, dDownBuffer.GetAsArray1D(), 1e-4, 1e-4 * expectedDown.Max(Math.Abs));
        }
    }

    /// <summary>A rank-one head's [μ | ρ | u] becomes [μ | −log softplus(ρ) | u], and its gradient goes back to ρ.</summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(33, 5)]
    public void SoftplusRewriteOfARankOneHeadMatchesTheReference(int rows, int latent)
    {
        var random = new Random(rows + 3 * latent);
        float[] raw = Numerics.Uniform(random, rows * 3 * latent, -4, 4);
        float[] dStats = Numerics.Uniform(random, rows * 3 * latent);
        var rawDouble = Numerics.ToDouble(raw);
        var stats = LadderReference.SoftplusVariance(rawDouble, rows, latent, rankOne: true);
        var dRaw = LadderReference.SoftplusVarianceBackward(rawDouble, Numerics.ToDouble(dStats), rows, latent, rankOne: true);
        Numerics.AssertClose("rank-one softplus rewrite vs finite differences",
            Numerics.FiniteDifferenceGradient(point => LadderReference.SoftplusVariance(point, rows, latent, rankOne: true).Select((v, i) => v * dStats[i]).Sum(), rawDouble),
            dRaw, 1e-6, 1e-7);
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < latent; k++)
                // 1/d = softplus(ρ): the diagonal variance before the rank-one correction.
                Assert.Equal(LadderReference.Softplus(rawDouble[r * 3 * latent + latent + k]), Math.Exp(-stats[r * 3 * latent + latent + k]), 1e-12);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var rawBuffer = accelerator.Upload(raw);
            using var statsBuffer = accelerator.Allocate1D<float>(raw.Length);
            using var dBuffer = accelerator.Upload(dStats);
            kernels.LadderSoftplusVariance(rawBuffer.View, statsBuffer.View, rows, latent, rankOne: true);
            kernels.LadderSoftplusVarianceBackward(rawBuffer.View, dBuffer.View, rows, latent, rankOne: true);
            string what = $"{accelerator.AcceleratorType} rank-one softplus rewrite {rows}×{latent}";
            // As the diagonal rewrite: a few ulps of log softplus.
            Numerics.AssertClose(what, stats, statsBuffer.GetAsArray1D(), 2e-6, 1e-6);
            Numerics.AssertClose(what + ": d ρ", dRaw, dBuffer.GetAsArray1D(), 2e-6, 1e-6);
        }
    }

    /// <summary>log w of three layers (K = 3, 2, 1 and 5, 1, 7): merged rank-one q's and diagonal priors below the
    /// top, the top's rank-one q per example; the reference takes log q from C's Cholesky factor.</summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 2)]
    [InlineData(33, 3)]
    public void LayerByLayerLogWeightsMatchTheReference(int examples, int samples)
    {
        foreach (int[] widths in new[] { new[] { 3, 2, 1 }, [5, 1, 7] })
        {
            int rows = examples * samples, layers = widths.Length;
            var random = new Random(examples * 3 + samples + widths[0]);
            var stats = new float[layers][];
            var priors = new float[layers][];
            var epsilons = new float[layers][];
            var codes = new float[layers][];
            var rowStats = new double[layers][];
            for (int l = 0; l < layers; l++)
            {
                int k = widths[l];
                bool top = l == layers - 1;
                stats[l] = UpStats(random, top ? examples : rows, k, 1.5, 1.0);
                priors[l] = top ? [] : PriorStats(random, rows, k, 2.0);
                epsilons[l] = Numerics.Uniform(random, rows * k, -2, 2);
                rowStats[l] = top ? ImportanceReference.RepeatRows(Numerics.ToDouble(stats[l]), examples, 3 * k, samples) : Numerics.ToDouble(stats[l]);
                codes[l] = RankOneReference.Forward(rowStats[l], Numerics.ToDouble(epsilons[l]), rows, k).Z.Select(value => (float)value).ToArray();
            }
            float[] reconstruction = Numerics.Uniform(random, rows, 0, 50);
            var expected = LadderReference.LogWeights(rowStats, codes.Select(Numerics.ToDouble).ToArray(),
                priors.Select(Numerics.ToDouble).ToArray(), Numerics.ToDouble(reconstruction), rows, rankOne: true);
            foreach (var kernels in fixture.KernelSets)
            {
                var accelerator = kernels.Accelerator;
                var buffers = new List<MemoryBuffer1D<float, ILGPU.Stride1D.Dense>>();
                ILGPU.ArrayView<float> Upload(float[] values)
                {
                    var buffer = accelerator.Upload(values.Length == 0 ? [0f] : values);
                    buffers.Add(buffer);
                    return buffer.View;
                }
                using var logWeights = accelerator.Allocate1D<float>(rows);
                using var kl = accelerator.Allocate1D<float>(rows);
                for (int l = 0; l < layers - 1; l++)
                    kernels.LadderRankOnePriorLogWeights(logWeights.View, Upload(stats[l]), Upload(codes[l]), Upload(epsilons[l]), Upload(priors[l]), rows, widths[l], l == 0 ? 1 : 0);
                kernels.LadderRankOneTopLogWeights(logWeights.View, Upload(stats[^1]), Upload(codes[^1]), Upload(epsilons[^1]), rows, widths[^1], samples);
                kernels.LadderFinishLogWeights(logWeights.View, Upload(reconstruction), kl.View, rows);
                string what = $"{accelerator.AcceleratorType} rank-one log w of layers {string.Join(",", widths)}, {examples}×{samples}";
                // The kernels take (z − μ)ᵀC⁻¹(z − μ) as εᵀε, exact only for z drawn from ε: z rounded to float moves
                // each quadratic form by ~1e-6 of its size; sums of ≤ 13 terms beside a reconstruction ≤ 50.
                Numerics.AssertClose(what, expected, logWeights.GetAsArray1D(), 1e-5, 2e-4);
                buffers.ForEach(buffer => buffer.Dispose());
            }
        }
    }
}
