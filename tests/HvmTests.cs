using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The hierarchical variational model's terms: the reference's backward pass against finite differences,
/// and the kernels against the reference at odd shapes.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class HvmTests(AcceleratorFixture fixture)
{
    /// <summary>Central differences of f = Σ g·z + w·Σ_rows (Kl − flowKl), z = λ + τε₂, by λ, log τ² and r's stats:
    /// 1e-6 relative (double).</summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 4)]
    [InlineData(2, 7)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int latent)
    {
        var random = new Random(rows * 7 + latent);
        var lambda = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -1.5, 1.5));
        var logTau = Numerics.ToDouble(Numerics.Uniform(random, latent));
        var rStats = Numerics.ToDouble(Numerics.Uniform(random, rows * 2 * latent));
        var epsilon = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -2, 2));
        var flowKl = Numerics.ToDouble(Numerics.Uniform(random, rows));
        var g = Numerics.ToDouble(Numerics.Uniform(random, rows * latent));
        const double weight = 0.6;
        double Objective(double[] lambdaValues, double[] logTauValues, double[] rStatsValues)
        {
            var z = HvmReference.Sample(lambdaValues, logTauValues, epsilon, latent);
            var kl = HvmReference.Kl(flowKl, lambdaValues, z, logTauValues, rStatsValues, rows, latent);
            return z.Select((value, i) => value * g[i]).Sum() + weight * kl.Select((value, row) => value - flowKl[row]).Sum();
        }
        var z0 = HvmReference.Sample(lambda, logTau, epsilon, latent);
        var (dLambda, dLogTau, dRStats) = HvmReference.Backward(lambda, z0, epsilon, logTau, rStats, g, rows, latent, weight);
        string label = $"hierarchical model backward {rows}×{latent}";
        Numerics.AssertClose(label + " dλ", Numerics.FiniteDifferenceGradient(values => Objective(values, logTau, rStats), lambda), dLambda, 1e-6, 1e-7);
        Numerics.AssertClose(label + " d log τ²", Numerics.FiniteDifferenceGradient(values => Objective(lambda, values, rStats), logTau), dLogTau, 1e-6, 1e-7);
        Numerics.AssertClose(label + " d r's stats", Numerics.FiniteDifferenceGradient(values => Objective(lambda, logTau, values), rStats), dRStats, 1e-6, 1e-7);
    }

    /// <summary>Float against double: z and the KL within 5e-5 of each value (K-term sums), the gradients within
    /// 5e-5 of the largest (log τ²'s sums every row).</summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 7)]
    [InlineData(33, 20)]
    [InlineData(12, 3)]
    public void KernelsMatchTheReference(int rows, int latent)
    {
        var random = new Random(rows + latent * 3);
        float[] lambda = Numerics.Uniform(random, rows * latent, -1.5, 1.5);
        float[] logTau = Numerics.Uniform(random, latent);
        float[] rStats = Numerics.Uniform(random, rows * 2 * latent);
        float[] flowKl = Numerics.Uniform(random, rows, -3, 3);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        const float weight = 0.35f;
        var key = new DrawKey(7, Philox.Streams.Reparameterize + Philox.Streams.HvmOffset, 5);
        var epsilon = Enumerable.Range(0, rows * latent).Select(i => Philox.NormalDouble(key.Seed, key.Stream, key.Step, i)).ToArray();
        var z = HvmReference.Sample(Numerics.ToDouble(lambda), Numerics.ToDouble(logTau), epsilon, latent);
        var kl = HvmReference.Kl(Numerics.ToDouble(flowKl), Numerics.ToDouble(lambda), z, Numerics.ToDouble(logTau), Numerics.ToDouble(rStats), rows, latent);
        var (dLambda, dLogTau, dRStats) = HvmReference.Backward(Numerics.ToDouble(lambda), z, epsilon, Numerics.ToDouble(logTau), Numerics.ToDouble(rStats),
            Numerics.ToDouble(dZ), rows, latent, weight);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var lambdaBuffer = accelerator.Upload(lambda);
            using var logTauBuffer = accelerator.Upload(logTau);
            using var rStatsBuffer = accelerator.Upload(rStats);
            using var flowKlBuffer = accelerator.Upload(flowKl);
            using var dZBuffer = accelerator.Upload(dZ);
            using var zBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var epsilonBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            using var dLambdaBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var dLogTauBuffer = accelerator.Allocate1D<float>(latent);
            using var dRStatsBuffer = accelerator.Allocate1D<float>(rows * 2 * latent);
            kernels.HvmSample(lambdaBuffer.View, logTauBuffer.View, zBuffer.View, epsilonBuffer.View, latent, key);
            kernels.HvmKl(flowKlBuffer.View, lambdaBuffer.View, zBuffer.View, epsilonBuffer.View, logTauBuffer.View, rStatsBuffer.View, klBuffer.View, rows, latent);
            kernels.HvmAuxiliaryGradient(lambdaBuffer.View, rStatsBuffer.View, dRStatsBuffer.View, rows, latent, weight);
            kernels.HvmTauGradient(zBuffer.View, epsilonBuffer.View, logTauBuffer.View, dZBuffer.View, dLogTauBuffer.View, rows, latent, weight);
            kernels.HvmLambdaGradient(lambdaBuffer.View, zBuffer.View, rStatsBuffer.View, dZBuffer.View, dLambdaBuffer.View, latent, weight);
            string label = $"{accelerator.AcceleratorType} hierarchical model {rows}×{latent}";
            Numerics.AssertClose(label + " z", z, zBuffer.GetAsArray1D(), 5e-5, 5e-5);
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            Numerics.AssertClose(label + " d r's stats", dRStats, dRStatsBuffer.GetAsArray1D(), 5e-5, 5e-5 * dRStats.Max(Math.Abs));
            Numerics.AssertClose(label + " d log τ²", dLogTau, dLogTauBuffer.GetAsArray1D(), 5e-5, 5e-5 * dLogTau.Max(Math.Abs));
            Numerics.AssertClose(label + " dλ", dLambda, dLambdaBuffer.GetAsArray1D(), 5e-5, 5e-5 * dLambda.Max(Math.Abs));
        }
    }
}
