using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>Stacked CorEx's second-layer term −log q(z1|z2) + log r1(z1): the reference's gradient (by q(z1|z2)'s
/// stats, the only ones that train on it) against finite differences, and the kernels against the reference at odd
/// shapes. The whole objective is checked in VaeTests.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class StackedCorexKernelTests(AcceleratorFixture fixture)
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(33, 20)]
    public void LayerTermMatchesTheReferenceAndFiniteDifferences(int rows, int latent)
    {
        var random = new Random(rows * 3 + latent);
        float[] z1 = Numerics.Uniform(random, rows * latent, -2, 2);
        float[] stats = Numerics.Uniform(random, rows * 2 * latent, -1.5, 1.5);
        float[] marginal = Numerics.Uniform(random, 2 * latent, -1, 1);
        const double scale = 0.4;
        var (z1Double, statsDouble, marginalDouble) = (Numerics.ToDouble(z1), Numerics.ToDouble(stats), Numerics.ToDouble(marginal));
        var term = StackedCorexReference.LayerReconstruction(z1Double, statsDouble, marginalDouble, rows, latent);
        var dStats = StackedCorexReference.LayerReconstructionBackward(z1Double, statsDouble, rows, latent, scale);

        // The reference's gradient against central differences of scale·Σ term (1e-6 relative, double).
        string label = $"stacked CorEx layer term {rows}×{latent}";
        double Objective(double[] z, double[] s, double[] r) => scale * StackedCorexReference.LayerReconstruction(z, s, r, rows, latent).Sum();
        Numerics.AssertClose(label + " d stats", Numerics.FiniteDifferenceGradient(values => Objective(z1Double, values, marginalDouble), statsDouble), dStats, 1e-6, 1e-7);
        // A log density ratio: scaling z1, q's means and r1's means by a and both variances by a² leaves it unchanged.
        const double a = 0.25;
        var scaledStats = statsDouble.Select((value, i) => i % (2 * latent) < latent ? a * value : value + 2 * Math.Log(a)).ToArray();
        var scaledMarginal = marginalDouble.Select((value, i) => i < latent ? a * value : value + 2 * Math.Log(a)).ToArray();
        var rescaled = StackedCorexReference.LayerReconstruction(z1Double.Select(value => a * value).ToArray(), scaledStats, scaledMarginal, rows, latent);
        for (int row = 0; row < rows; row++)
            Assert.Equal(term[row], rescaled[row], 1e-9);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var z1Buffer = accelerator.Upload(z1);
            using var statsBuffer = accelerator.Upload(stats);
            using var marginalBuffer = accelerator.Upload(marginal);
            using var termBuffer = accelerator.Allocate1D<float>(rows);
            using var dStatsBuffer = accelerator.Allocate1D<float>(rows * 2 * latent);
            kernels.LayerReconstruction(z1Buffer.View, statsBuffer.View, marginalBuffer.View, termBuffer.View, rows, latent);
            using var equalWeights = accelerator.Upload(Enumerable.Repeat(1f, rows).ToArray());
            // The model takes the term's gradient by q's stats from the two-layer prior network's kernel, rows weighing the same.
            kernels.PriorStatsGradient(z1Buffer.View, statsBuffer.View, equalWeights.View, dStatsBuffer.View, rows, latent, (float)scale);
            string what = $"{accelerator.AcceleratorType} {label}";
            // Sums of 2K terms of size ≤ e^1.5·16 (the 2π terms cancel in both): 1e-5 relative, 1e-5·K absolute.
            Numerics.AssertClose(what, term, termBuffer.GetAsArray1D(), 1e-5, 1e-5 * latent);
            Numerics.AssertClose(what + " d stats", dStats, dStatsBuffer.GetAsArray1D(), 1e-5, 1e-6);
        }
    }
}
