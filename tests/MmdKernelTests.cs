using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The InfoVAE's MMD kernels against <see cref="MmdReference"/>, and the reference's gradient against
/// finite differences.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class MmdKernelTests(AcceleratorFixture fixture)
{
    [Theory]
    [InlineData(MmdKernelKind.Gaussian, 1, 1)]
    [InlineData(MmdKernelKind.Gaussian, 7, 3)]
    [InlineData(MmdKernelKind.InverseMultiquadric, 33, 20)]
    [InlineData(MmdKernelKind.InverseMultiquadric, 128, 2)]
    [InlineData(MmdKernelKind.Gaussian, 127, 50)]
    public void MmdAndItsGradientMatchReference(MmdKernelKind kind, int rows, int latent)
    {
        var random = new Random(rows + latent);
        // Codes off-centre and too narrow, so MMD² is clearly positive.
        float[] z = Numerics.Uniform(random, rows * latent, -0.5, 1.5);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 100);
        float[] kl = Numerics.Uniform(random, rows, 0, 20);
        const float lambda = 2.5f, beta = 0.5f;
        var key = new DrawKey(4, Philox.Streams.Reparameterize + Philox.Streams.MmdPriorOffset, 9);
        var prior = Enumerable.Range(0, rows * latent).Select(i => Philox.NormalDouble(key.Seed, key.Stream, key.Step, i)).ToArray();

        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var zBuffer = accelerator.Upload(z);
            using var priorBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var dZBuffer = accelerator.Upload(dZ);
            using var recBuffer = accelerator.Upload(reconstruction);
            using var klBuffer = accelerator.Upload(kl);
            using var mmdBuffer = accelerator.Allocate1D<float>(rows);
            using var objectiveBuffer = accelerator.Allocate1D<float>(rows);
            var parameters = new MmdParameters(latent, rows, kind, lambda, beta);
            kernels.PriorSample(priorBuffer.View, key);
            kernels.MmdForward(zBuffer.View, priorBuffer.View, recBuffer.View, klBuffer.View, mmdBuffer.View, objectiveBuffer.View, parameters);
            kernels.MmdBackward(zBuffer.View, priorBuffer.View, dZBuffer.View, parameters, lambda);
            string label = $"{accelerator.AcceleratorType} MMD {kind} {rows}×{latent}";

            // The device's prior draws are the host's Philox numbers (float vs double evaluation only).
            var devicePrior = priorBuffer.GetAsArray1D();
            Numerics.AssertClose(label + " prior draws", prior, devicePrior, 1e-5, 1e-5);
            // The rest is compared on the device's own draws, so only the MMD arithmetic is tested.
            var priorUsed = Numerics.ToDouble(devicePrior);
            double expected = MmdReference.Squared(kind, Numerics.ToDouble(z), priorUsed, rows, latent);
            var shares = mmdBuffer.GetAsArray1D();
            // 3·rows² kernel values of at most 1, summed in float per row then here in double: 1e-6 of the 3 that
            // bound each pair's contribution.
            Assert.True(Math.Abs(shares.Sum(share => (double)share) - expected) <= 3e-6 + 1e-5 * Math.Abs(expected),
                $"{label}: MMD² {shares.Sum(share => (double)share)} vs {expected}");
            var objective = objectiveBuffer.GetAsArray1D();
            for (int i = 0; i < rows; i++)
                Assert.Equal(reconstruction[i] + beta * kl[i] + lambda * rows * shares[i], objective[i], 1e-3);
            var gradient = MmdReference.Gradient(kind, Numerics.ToDouble(z), priorUsed, rows, latent);
            var expectedDZ = dZ.Select((value, i) => value + lambda * gradient[i]).ToArray();
            // Each gradient sums 2·rows terms of size ≤ (4/rows²)·|k'|·|Δ| ≲ 4/rows²: rounding ~1e-6 of the total.
            Numerics.AssertClose(label + " dZ", expectedDZ, dZBuffer.GetAsArray1D(), 1e-5, 1e-6);
        }
    }

    [Theory]
    [InlineData(MmdKernelKind.Gaussian)]
    [InlineData(MmdKernelKind.InverseMultiquadric)]
    public void ReferenceGradientMatchesFiniteDifferences(MmdKernelKind kind)
    {
        const int rows = 5, latent = 3;
        var random = new Random(11);
        var z = Enumerable.Range(0, rows * latent).Select(_ => random.NextDouble() * 2 - 0.5).ToArray();
        var prior = Enumerable.Range(0, rows * latent).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var gradient = MmdReference.Gradient(kind, z, prior, rows, latent);
        const double h = 1e-6;
        for (int i = 0; i < z.Length; i++)
        {
            var plus = (double[])z.Clone();
            var minus = (double[])z.Clone();
            plus[i] += h;
            minus[i] -= h;
            double slope = (MmdReference.Squared(kind, plus, prior, rows, latent) - MmdReference.Squared(kind, minus, prior, rows, latent)) / (2 * h);
            Assert.Equal(slope, gradient[i], 1e-8);
        }
    }
}
