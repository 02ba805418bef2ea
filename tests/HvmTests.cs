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
            kernels.HvmSample(lambdaBuffer.View, logTauBuffer.View, zBuffer.View, epsilonBuffer.View, latent, 1, key);
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

    /// <summary>r as an inverse flow: −weight·Σ log r(λ|z) by λ and by r's stats rows against central differences
    /// (1e-6 relative, double); without steps it is the Gaussian r's, which the objective above already checks.</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 4, 2)]
    [InlineData(2, 7, 3)]
    public void InverseFlowReferenceBackwardMatchesFiniteDifferences(int rows, int latent, int steps)
    {
        var random = new Random(rows * 5 + latent + steps);
        var shape = new FlowShape(latent, steps, 1);
        var lambda = Numerics.ToDouble(Numerics.Uniform(random, rows * latent, -1.5, 1.5));
        var rStats = Numerics.ToDouble(Numerics.Uniform(random, rows * shape.StatsWidth));
        const double weight = 0.6;
        double Objective(double[] lambdaValues, double[] rStatsValues) =>
            -weight * HvmReference.AuxiliaryLogDensity(lambdaValues, rStatsValues, rows, shape).Sum();
        var (dLambda, dRStats) = HvmReference.AuxiliaryBackward(lambda, rStats, rows, shape, weight);
        string label = $"inverse-flow r backward {rows}×{latent}, {steps} steps";
        Numerics.AssertClose(label + " dλ", Numerics.FiniteDifferenceGradient(values => Objective(values, rStats), lambda), dLambda, 1e-6, 1e-7);
        Numerics.AssertClose(label + " d r's stats", Numerics.FiniteDifferenceGradient(values => Objective(lambda, values), rStats), dRStats, 1e-6, 1e-7);
        // log r is a density in λ: with one dimension, its integral over a wide grid is 1.
        if (latent == 1)
        {
            double integral = 0, step = 1e-3;
            for (double value = -40; value < 40; value += step)
                integral += Math.Exp(HvmReference.AuxiliaryLogDensity([value], rStats[..shape.StatsWidth], 1, shape)[0]) * step;
            Assert.Equal(1, integral, 1e-4);
        }
    }

    /// <summary>The inverse-flow kernels against the reference: r's term −log r − (K/2)log 2π within 5e-5 relative
    /// (K terms and J steps of log-determinants), the KL with it, and the gradients within 5e-5 of the largest.</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 7, 2)]
    [InlineData(33, 20, 3)]
    public void InverseFlowKernelsMatchTheReference(int rows, int latent, int steps)
    {
        var random = new Random(rows + latent * 3 + steps);
        var shape = new FlowShape(latent, steps, 1);
        float[] lambda = Numerics.Uniform(random, rows * latent, -1.5, 1.5);
        float[] rStats = Numerics.Uniform(random, rows * shape.StatsWidth);
        float[] epsilon = Numerics.Uniform(random, rows * latent, -2, 2);
        float[] logTau = Numerics.Uniform(random, latent);
        // z = λ + τε₂, as the kernels' KL reads ε₂ where the reference reads z.
        float[] z = HvmReference.Sample(Numerics.ToDouble(lambda), Numerics.ToDouble(logTau), Numerics.ToDouble(epsilon), latent).Select(value => (float)value).ToArray();
        float[] flowKl = Numerics.Uniform(random, rows, -3, 3);
        float[] dZ = Numerics.Uniform(random, rows * latent);
        const float weight = 0.35f;
        var (lambdaDouble, rStatsDouble) = (Numerics.ToDouble(lambda), Numerics.ToDouble(rStats));
        var logR = HvmReference.AuxiliaryLogDensity(lambdaDouble, rStatsDouble, rows, shape);
        var rTerm = logR.Select(value => -value - 0.5 * latent * Math.Log(2 * Math.PI)).ToArray();
        var kl = HvmReference.KlGivenAuxiliary(Numerics.ToDouble(flowKl), lambdaDouble, Numerics.ToDouble(z), Numerics.ToDouble(logTau), logR, rows, latent);
        var (dLambdaFromR, dRStats) = HvmReference.AuxiliaryBackward(lambdaDouble, rStatsDouble, rows, shape, weight);
        var (dLambda, _) = HvmReference.BackwardGivenAuxiliary(lambdaDouble, Numerics.ToDouble(z), Numerics.ToDouble(epsilon), Numerics.ToDouble(logTau),
            Numerics.ToDouble(dZ), dLambdaFromR, rows, latent, weight);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var lambdaBuffer = accelerator.Upload(lambda);
            using var rStatsBuffer = accelerator.Upload(rStats);
            using var zBuffer = accelerator.Upload(z);
            using var epsilonBuffer = accelerator.Upload(epsilon);
            using var logTauBuffer = accelerator.Upload(logTau);
            using var flowKlBuffer = accelerator.Upload(flowKl);
            using var dZBuffer = accelerator.Upload(dZ);
            using var flowed = accelerator.Allocate1D<float>(rows * latent);
            using var states = accelerator.Allocate1D<float>(rows * steps * latent);
            using var rTermBuffer = accelerator.Allocate1D<float>(rows);
            using var klBuffer = accelerator.Allocate1D<float>(rows);
            // Garbage in the flow's columns: the backward kernel must write every one of them.
            using var dRStatsBuffer = accelerator.Upload(Numerics.Uniform(random, rows * shape.StatsWidth, 5, 9));
            using var dLambdaFromRBuffer = accelerator.Allocate1D<float>(rows * latent);
            using var dLambdaBuffer = accelerator.Allocate1D<float>(rows * latent);
            kernels.HvmInverseFlowForward(lambdaBuffer.View, rStatsBuffer.View, flowed.View, states.View, rTermBuffer.View, rows, shape);
            kernels.HvmKlWithAuxiliaryTerm(flowKlBuffer.View, lambdaBuffer.View, zBuffer.View, epsilonBuffer.View, logTauBuffer.View, rTermBuffer.View,
                klBuffer.View, rows, latent);
            kernels.HvmInverseFlowBackward(rStatsBuffer.View, states.View, flowed.View, dRStatsBuffer.View, dLambdaFromRBuffer.View, rows, shape, weight);
            kernels.HvmLambdaGradientWithAuxiliary(lambdaBuffer.View, zBuffer.View, dLambdaFromRBuffer.View, dZBuffer.View, dLambdaBuffer.View, weight);
            string label = $"{accelerator.AcceleratorType} inverse-flow r {rows}×{latent}, {steps} steps";
            Numerics.AssertClose(label + " r term", rTerm, rTermBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            // The KL's 2π terms: the reference's log r has them, the kernels' r term and the rest do not, and they cancel.
            Numerics.AssertClose(label + " KL", kl, klBuffer.GetAsArray1D(), 5e-5, 5e-5 * latent);
            Numerics.AssertClose(label + " d r's stats", dRStats, dRStatsBuffer.GetAsArray1D(), 5e-5, 5e-5 * dRStats.Max(Math.Abs));
            Numerics.AssertClose(label + " dλ", dLambda, dLambdaBuffer.GetAsArray1D(), 5e-5, 5e-5 * dLambda.Max(Math.Abs));
        }
    }
}
