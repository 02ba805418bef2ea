using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>Stacked CorEx's second-layer term −log q(z1|z2): the reference's gradient against finite differences,
/// and the kernels against the reference at odd shapes. The whole objective is checked in VaeTests.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class StackedCorexKernelTests(AcceleratorFixture fixture)
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(33, 20)]
    public void LayerReconstructionMatchesTheReferenceAndFiniteDifferences(int rows, int latent)
    {
        var random = new Random(rows * 3 + latent);
        float[] z1 = Numerics.Uniform(random, rows * latent, -2, 2);
        float[] stats = Numerics.Uniform(random, rows * 2 * latent, -1.5, 1.5);
        float[] dZ1Before = Numerics.Uniform(random, rows * latent);
        const double scale = 0.4;
        var (z1Double, statsDouble) = (Numerics.ToDouble(z1), Numerics.ToDouble(stats));
        var term = StackedCorexReference.LayerReconstruction(z1Double, statsDouble, rows, latent);
        var (dStats, dZ1) = StackedCorexReference.LayerReconstructionBackward(z1Double, statsDouble, rows, latent, scale);

        // The reference's gradient against central differences of scale·Σ term (1e-6 relative, double).
        string label = $"layer reconstruction {rows}×{latent}";
        Numerics.AssertClose(label + " d stats", Numerics.FiniteDifferenceGradient(values => scale * StackedCorexReference.LayerReconstruction(z1Double, values, rows, latent).Sum(), statsDouble), dStats, 1e-6, 1e-7);
        Numerics.AssertClose(label + " dz1", Numerics.FiniteDifferenceGradient(values => scale * StackedCorexReference.LayerReconstruction(values, statsDouble, rows, latent).Sum(), z1Double), dZ1, 1e-6, 1e-7);

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var z1Buffer = accelerator.Upload(z1);
            using var statsBuffer = accelerator.Upload(stats);
            using var termBuffer = accelerator.Allocate1D<float>(rows);
            using var dStatsBuffer = accelerator.Allocate1D<float>(rows * 2 * latent);
            using var dZ1Buffer = accelerator.Upload(dZ1Before);
            kernels.LayerReconstruction(z1Buffer.View, statsBuffer.View, termBuffer.View, rows, latent);
            kernels.LayerReconstructionBackward(z1Buffer.View, statsBuffer.View, dStatsBuffer.View, dZ1Buffer.View, rows, latent, (float)scale);
            string what = $"{accelerator.AcceleratorType} {label}";
            // The kernels leave out the ½·K·log 2π of the density; sums of K terms of size ≤ e^1.5·16: 1e-5 relative.
            Numerics.AssertClose(what, term.Select(value => value - 0.5 * latent * Math.Log(2 * Math.PI)).ToArray(), termBuffer.GetAsArray1D(), 1e-5, 1e-5 * latent);
            Numerics.AssertClose(what + " d stats", dStats, dStatsBuffer.GetAsArray1D(), 1e-5, 1e-6);
            Numerics.AssertClose(what + " dz1 (added)", dZ1.Select((value, i) => value + dZ1Before[i]).ToArray(), dZ1Buffer.GetAsArray1D(), 1e-5, 1e-6);
        }
    }
}
