using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Tests;

/// <summary>The weight prior's gradient, g + θ/κ element by element, against the same sum in double.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class WeightPriorTests(AcceleratorFixture fixture)
{
    /// <summary>Two float roundings (the product, then the sum) of values of size ~1: 1e-6 of each value, and 1e-7
    /// absolute where the two nearly cancel.</summary>
    [Theory]
    [InlineData(1, 0.5)]
    [InlineData(33, 2.0)]
    [InlineData(7850, 1e4)]
    public void AddsThetaOverKappaToTheGradient(int count, double kappa)
    {
        var random = new Random(count);
        float[] parameters = Numerics.Uniform(random, count), gradients = Numerics.Uniform(random, count);
        float inverse = (float)(1 / kappa);
        var expected = gradients.Select((g, i) => g + (double)inverse * parameters[i]).ToArray();
        foreach (var kernels in fixture.KernelSets)
        {
            using var parameterBuffer = kernels.Accelerator.Upload(parameters);
            using var gradientBuffer = kernels.Accelerator.Upload(gradients);
            kernels.AddWeightPriorGradient(parameterBuffer.View, gradientBuffer.View, inverse);
            Numerics.AssertClose($"{kernels.Accelerator.AcceleratorType} weight prior {count}", expected, gradientBuffer.GetAsArray1D(), 1e-6, 1e-7);
            Assert.Equal(parameters, parameterBuffer.GetAsArray1D());
        }
    }
}
