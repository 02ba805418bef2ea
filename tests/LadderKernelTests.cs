using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The Ladder VAE's merge and the batch-norm kernels against their double references, and the references'
/// backward passes against finite differences. The whole Ladder objective is checked in VaeTests.</summary>
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
