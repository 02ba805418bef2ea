using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Tests;

/// <summary>The target-rate kernel against the objective D + |σ − R| written out; the whole objective's gradient
/// is checked by finite differences in VaeTests (configurations target-rate-below and -above).</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class TargetRateTests(AcceleratorFixture fixture)
{
    [Theory]
    [InlineData(1, 3.0)]
    [InlineData(7, 0.5)]
    [InlineData(33, 100.0)]
    public void ObjectiveAndSignMatchTheDefinition(int rows, double rate)
    {
        var random = new Random(rows);
        float[] kl = Numerics.Uniform(random, rows, 0, 10);
        float[] reconstruction = Numerics.Uniform(random, rows, 50, 100);
        double meanRate = kl.Average(value => (double)value);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var klBuffer = accelerator.Upload(kl);
            using var recBuffer = accelerator.Upload(reconstruction);
            using var objective = accelerator.Allocate1D<float>(rows);
            using var sign = accelerator.Allocate1D<float>(1);
            kernels.TargetRateObjective(klBuffer.View, recBuffer.View, objective.View, sign.View, rows, (float)rate);
            Assert.Equal(Math.Sign(meanRate - rate), sign.GetAsArray1D()[0]);
            // A float sum of ≤ 33 KL values below 10: 1e-5 absolute.
            Numerics.AssertClose($"{accelerator.AcceleratorType} target rate {rows} σ={rate}",
                reconstruction.Select(r => r + Math.Abs(rate - meanRate)).ToArray(), objective.GetAsArray1D(), 1e-6, 1e-5);
        }
    }
}
