using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The Ladder VAE's merge, softplus variances, layer-by-layer log w and the batch-norm kernels against their
/// double references, and the references' backward passes against finite differences. The whole Ladder objective
/// is checked in VaeTests.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class LadderKernelTests(AcceleratorFixture fixture)
{
    public static TheoryData<int, int, int, double> MergeShapes => new()
    {
        // examples, latent, samples, spread of the log-variances
        { 1, 1, 1, 1.0 },
        { 7, 3, 2, 2.0 },
        { 33, 5, 3, 1.0 },
        // Precisions e^±20 apart: one side takes all the weight without overflow.
        { 4, 6, 2, 20.0 },
    };

    [Theory]
    [MemberData(nameof(MergeShapes))]
    public void MergeAndItsBackwardMatchTheReference(int examples, int latent, int samples, double spread)
    {
        int rows = examples * samples;
        var random = new Random(examples * 7 + latent);
        float[] bottomUp = Stats(random, examples, latent, spread), topDown = Stats(random, rows, latent, spread);
        float[] dMerged = Numerics.Uniform(random, rows * 2 * latent);
        float[] dTopDownBefore = Numerics.Uniform(random, rows * 2 * latent);
        var (up, down) = (Numerics.ToDouble(bottomUp), Numerics.ToDouble(topDown));
        var merged = LadderReference.Merge(up, down, rows, latent, samples);
        var (dUp, dDown) = LadderReference.MergeBackward(up, down, Numerics.ToDouble(dMerged), rows, latent, samples);

        // The reference's backward pass against central differences of Σ dMerged·merged.
        double Objective(double[] u, double[] d) => LadderReference.Merge(u, d, rows, latent, samples).Select((m, i) => m * dMerged[i]).Sum();
        AssertFiniteDifferences("d bottom-up", up, dUp, point => Objective(point, down), 9);
        AssertFiniteDifferences("d top-down", down, dDown, point => Objective(up, point), 9);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var upBuffer = accelerator.Upload(bottomUp);
            using var downBuffer = accelerator.Upload(topDown);
            using var mergedBuffer = accelerator.Allocate1D<float>(merged.Length);
            using var dMergedBuffer = accelerator.Upload(dMerged);
            using var dUpBuffer = accelerator.Allocate1D<float>(up.Length);
            using var dDownBuffer = accelerator.Upload(dTopDownBefore);
            kernels.LadderMerge(upBuffer.View, downBuffer.View, mergedBuffer.View, rows, latent, samples);
            kernels.LadderMergeBackward(upBuffer.View, downBuffer.View, dMergedBuffer.View, dUpBuffer.View, dDownBuffer.View, examples, latent, samples);
            string what = $"{accelerator.AcceleratorType} merge {examples}×{latent}×{samples} spread {spread}";
            // A handful of float operations per element: 1e-5 relative, and 1e-5 absolute for means near 0.
            Numerics.AssertClose(what, merged, mergedBuffer.GetAsArray1D(), 1e-5, 1e-5);
            // Sums of ≤ 3 samples' terms of size ≤ 1, plus the added gradient.
            Numerics.AssertClose(what + ": d bottom-up", dUp, dUpBuffer.GetAsArray1D(), 1e-5, 1e-5);
            Numerics.AssertClose(what + ": d top-down (added)", dDown.Select((d, i) => d + dTopDownBefore[i]).ToArray(), dDownBuffer.GetAsArray1D(), 1e-5, 1e-5);
        }
    }

    public static TheoryData<int, int, double> SoftplusShapes => new()
    {
        // rows, latent, spread of ρ (uniform in ±spread); every shape also gets the extremes below
        { 1, 1, 1.0 },
        { 7, 3, 4.0 },
        { 33, 5, 10.0 },
    };

    /// <summary>ρ where the kernels change form or a naive softplus would lose its digits or overflow.</summary>
    private static readonly float[] ExtremeRho = [-200f, -90f, -30f, -20.5f, -19.5f, -9.3f, -1e-3f, 0f, 1e-3f, 30f, 90f];

    [Theory]
    [MemberData(nameof(SoftplusShapes))]
    public void SoftplusVarianceAndItsBackwardMatchTheReference(int rows, int latent, double spread)
    {
        var random = new Random(rows * 11 + latent);
        float[] raw = Numerics.Uniform(random, rows * 2 * latent, -spread, spread);
        // Put the extremes into the ρ half of the rows, as many as fit.
        for (int i = 0; i < ExtremeRho.Length && i < rows * latent; i++)
            raw[i / latent * 2 * latent + latent + i % latent] = ExtremeRho[i];
        float[] dStats = Numerics.Uniform(random, rows * 2 * latent);
        var rawDouble = Numerics.ToDouble(raw);
        var stats = LadderReference.SoftplusVariance(rawDouble, rows, latent);
        var dRaw = LadderReference.SoftplusVarianceBackward(rawDouble, Numerics.ToDouble(dStats), rows, latent);

        // The reference against central differences of Σ dStats·stats, away from the extremes (h = 1e-6 on ρ).
        var moderate = (double[])rawDouble.Clone();
        for (int i = 0; i < moderate.Length; i++)
            moderate[i] = Math.Clamp(moderate[i], -15, 15);
        var dModerate = LadderReference.SoftplusVarianceBackward(moderate, Numerics.ToDouble(dStats), rows, latent);
        AssertFiniteDifferences("d ρ", moderate, dModerate,
            point => LadderReference.SoftplusVariance(point, rows, latent).Select((v, i) => v * dStats[i]).Sum(), 13);
        // At −200 the variance e^−200 is far below float's range: log σ² is still −200 to the digit.
        if (rows * latent > 0)
            Assert.Equal(-200, stats[latent], 1e-9);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var rawBuffer = accelerator.Upload(raw);
            using var statsBuffer = accelerator.Allocate1D<float>(raw.Length);
            using var dBuffer = accelerator.Upload(dStats);
            kernels.LadderSoftplusVariance(rawBuffer.View, statsBuffer.View, rows, latent);
            kernels.LadderSoftplusVarianceBackward(rawBuffer.View, dBuffer.View, rows, latent);
            string what = $"{accelerator.AcceleratorType} softplus variance {rows}×{latent} spread {spread}";
            // A few float operations with log(1 + u) corrected for the rounding of 1 + u: a few ulps of log σ², which
            // is up to 200 in size here (2e-6 relative), and 1e-6 absolute where log σ² crosses 0 (σ² near 1).
            Numerics.AssertClose(what, stats, statsBuffer.GetAsArray1D(), 2e-6, 1e-6);
            Numerics.AssertClose(what + ": d ρ", dRaw, dBuffer.GetAsArray1D(), 2e-6, 1e-6);
        }
    }

    public static TheoryData<int, int> LogWeightShapes => new()
    {
        // examples, samples; the layers are 3, 2 and 1 wide (and one run of 5, 1, 7 below)
        { 1, 1 },
        { 7, 2 },
        { 33, 3 },
    };

    [Theory]
    [MemberData(nameof(LogWeightShapes))]
    public void LayerByLayerLogWeightsMatchTheReference(int examples, int samples)
    {
        foreach (int[] widths in new[] { new[] { 3, 2, 1 }, [5, 1, 7], [4, 4] })
        {
            int rows = examples * samples, layers = widths.Length;
            var random = new Random(examples * 3 + samples + widths[0]);
            // Layers below the top: merged q and the prior per z row; the top: q per example. z = μ + σ·ε.
            var stats = new float[layers][];
            var priors = new float[layers][];
            var epsilons = new float[layers][];
            var codes = new float[layers][];
            var rowStats = new double[layers][];
            for (int l = 0; l < layers; l++)
            {
                int k = widths[l];
                bool top = l == layers - 1;
                stats[l] = Stats(random, top ? examples : rows, k, 2.0);
                priors[l] = top ? [] : Stats(random, rows, k, 2.0);
                epsilons[l] = Numerics.Uniform(random, rows * k, -2, 2);
                rowStats[l] = top ? ImportanceReference.RepeatRows(Numerics.ToDouble(stats[l]), examples, 2 * k, samples) : Numerics.ToDouble(stats[l]);
                codes[l] = new float[rows * k];
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < k; c++)
                        codes[l][r * k + c] = (float)(rowStats[l][r * 2 * k + c] + Math.Exp(rowStats[l][r * 2 * k + k + c] / 2) * epsilons[l][r * k + c]);
            }
            float[] reconstruction = Numerics.Uniform(random, rows, 0, 50);
            // The reference's Gaussians take z itself (not ε): z as the kernels will see it, in float.
            var expected = LadderReference.LogWeights(rowStats, codes.Select(Numerics.ToDouble).ToArray(),
                priors.Select(Numerics.ToDouble).ToArray(), Numerics.ToDouble(reconstruction), rows);

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
                    kernels.LadderPriorLogWeights(logWeights.View, Upload(stats[l]), Upload(codes[l]), Upload(epsilons[l]), Upload(priors[l]), rows, widths[l], l == 0 ? 1 : 0);
                kernels.LadderTopLogWeights(logWeights.View, Upload(stats[^1]), Upload(codes[^1]), Upload(epsilons[^1]), rows, widths[^1], samples);
                kernels.LadderFinishLogWeights(logWeights.View, Upload(reconstruction), kl.View, rows);
                string what = $"{accelerator.AcceleratorType} log w of layers {string.Join(",", widths)}, {examples}×{samples}";
                // Sums of ≤ 13 float terms of size ≤ e^4·4 beside a reconstruction ≤ 50: 1e-5 relative, 1e-4 absolute.
                Numerics.AssertClose(what, expected, logWeights.GetAsArray1D(), 1e-5, 1e-4);
                Numerics.AssertClose(what + ": KL terms", expected.Select((w, r) => -w - reconstruction[r]).ToArray(), kl.GetAsArray1D(), 1e-5, 1e-4);
                buffers.ForEach(buffer => buffer.Dispose());
            }
        }
    }

    /// <summary>Central differences (h = 1e-6, truncation error ~1e-12) at about <paramref name="probes"/> evenly
    /// spaced coordinates of <paramref name="point"/> against the analytic gradient: 1e-5 relative, 1e-6 absolute.</summary>
    private static void AssertFiniteDifferences(string what, double[] point, double[] analytic, Func<double[], double> objective, int probes)
    {
        const double h = 1e-6;
        for (int i = 0; i < point.Length; i += Math.Max(1, point.Length / probes))
        {
            var (plus, minus) = ((double[])point.Clone(), (double[])point.Clone());
            plus[i] += h;
            minus[i] -= h;
            Numerics.AssertClose($"{what} {i} vs finite differences", [(objective(plus) - objective(minus)) / (2 * h)], [analytic[i]], 1e-5, 1e-6);
        }
    }

    /// <summary>[μ | v] rows: means in ±1, log-variances in ±spread.</summary>
    private static float[] Stats(Random random, int rows, int latent, double spread)
    {
        var stats = new float[rows * 2 * latent];
        for (int row = 0; row < rows; row++)
            for (int k = 0; k < latent; k++)
            {
                stats[row * 2 * latent + k] = (float)(2 * random.NextDouble() - 1);
                stats[row * 2 * latent + latent + k] = (float)(spread * (2 * random.NextDouble() - 1));
            }
        return stats;
    }

    public static TheoryData<int, int, ActivationKind, bool> NormShapes => new()
    {
        { 1, 3, ActivationKind.Identity, false },
        { 7, 3, ActivationKind.Relu, true },
        { 33, 13, ActivationKind.Tanh, true },
        { 33, 5, ActivationKind.Sigmoid, false },
        { 128, 40, ActivationKind.Relu, true },
        { 2, 1, ActivationKind.Identity, true },
    };

    [Theory]
    [MemberData(nameof(NormShapes))]
    public void BatchNormAndItsBackwardMatchTheReference(int rows, int columns, ActivationKind activation, bool training)
    {
        var random = new Random(rows * 5 + columns);
        // Pre-activations off-centre and scaled, γ and β away from their initial 1 and 0, running averages
        // somewhere else again, so every term of the forward pass matters.
        float[] pre = Numerics.Uniform(random, rows * columns, -3, 5);
        float[] norm = [.. Numerics.Uniform(random, columns, 0.5, 2), .. Numerics.Uniform(random, columns, -1, 1),
            .. Numerics.Uniform(random, columns, -1, 1), .. Numerics.Uniform(random, columns, 0.5, 3)];
        float[] dY = Numerics.Uniform(random, rows * columns);
        var normDouble = Numerics.ToDouble(norm);
        var (output, statistics) = BatchNormReference.Forward(activation, Numerics.ToDouble(pre), normDouble, rows, columns, training);
        var (dPre, dNorm) = BatchNormReference.Backward(activation, Numerics.ToDouble(pre), normDouble, statistics,
            Numerics.ToDouble(dY), rows, columns, training);

        // The reference's backward pass against central differences of Σ dY·y, through pre-activations and γ, β.
        double Objective(double[] p, double[] n) =>
            BatchNormReference.Forward(activation, p, n, rows, columns, training).Output.Select((y, i) => y * dY[i]).Sum();
        var preDouble = Numerics.ToDouble(pre);
        AssertFiniteDifferences("d pre-activation", preDouble, dPre, point => Objective(point, normDouble), 11);
        // γ and β only: the running averages are not used in training and have no gradient.
        AssertFiniteDifferences("dγ, dβ", normDouble[..(2 * columns)], dNorm,
            point => Objective(preDouble, [.. point, .. normDouble[(2 * columns)..]]), 2 * columns);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var preBuffer = accelerator.Upload(pre);
            using var normBuffer = accelerator.Upload(norm);
            using var outputBuffer = accelerator.Allocate1D<float>(pre.Length);
            using var saved = accelerator.Allocate1D<float>(2 * columns);
            using var dBuffer = accelerator.Upload(dY);
            using var dNormBuffer = accelerator.Allocate1D<float>(2 * columns);
            var shape = new BatchNormShape(rows, columns, training);
            kernels.BatchNormForward(activation, preBuffer.View, normBuffer.View, outputBuffer.View, saved.View, shape);
            kernels.BatchNormBackward(activation, preBuffer.View, normBuffer.View, outputBuffer.View, saved.View, dBuffer.View, dNormBuffer.View, shape);
            string what = $"{accelerator.AcceleratorType} batch norm {rows}×{columns} {activation} {(training ? "training" : "evaluation")}";
            // Float means and variances over ≤ 128 rows of values ≤ 5, then a few operations: 1e-5.
            Numerics.AssertClose(what, output, outputBuffer.GetAsArray1D(), 1e-5, 1e-5);
            var runningExpected = statistics.RunningMean.Concat(statistics.RunningVariance).ToArray();
            Numerics.AssertClose(what + ": running averages", runningExpected, normBuffer.GetAsArray1D()[(2 * columns)..], 1e-5, 1e-6);
            // The backward pass subtracts batch means of s and s·x̂ from s: cancellation costs digits, so 1e-4
            // of the largest gradient.
            double scale = dPre.Concat(dNorm).Max(Math.Abs);
            Numerics.AssertClose(what + ": d pre-activation", dPre, dBuffer.GetAsArray1D(), 1e-4, 1e-4 * scale);
            Numerics.AssertClose(what + ": dγ, dβ", dNorm, dNormBuffer.GetAsArray1D(), 1e-4, 1e-4 * scale);
        }
    }
}
