using IlgpuVae.Model;

namespace IlgpuVae.Tests;

public sealed class MemoryPlanTests
{
    private const long GiB = 1L << 30;
    private static readonly VaeConfig Default = new();
    private const long MnistBytes = 70_000L * 784 + 4 * 70_000;

    [Fact]
    public void CountsEveryBufferOfTheModel()
    {
        // 784-400-20: layer outputs 400, 40, 400, 784; per example the input, z, ε and dz, three row sums, and
        // each layer's output and gradient.
        Assert.Equal(4L * (784 + 3 * 20 + 3 + 2 * (400 + 40 + 400 + 784)), MemoryPlan.BytesPerExample(Default));
        Assert.Equal(16L * new ParameterLayout(Default).Count, MemoryPlan.ModelBytes(Default));
    }

    [Fact]
    public void TheDefaultRunFitsAnyGpu() =>
        MemoryPlan.Check(Default, 128, MnistBytes, 8 * GiB, "test GPU");

    [Fact]
    public void ABatchTooLargeIsRefusedWithABatchThatFits()
    {
        var error = Assert.Throws<ArgumentException>(() => MemoryPlan.Check(Default, 2_000_000, MnistBytes, 24 * GiB, "test GPU"));
        Assert.Contains("batch 2000000 needs", error.Message);
        Assert.Contains("24576 MiB is available", error.Message);
        int fits = int.Parse(System.Text.RegularExpressions.Regex.Match(error.Message, @"--batch-size (\d+)").Groups[1].Value);
        MemoryPlan.Check(Default, fits, MnistBytes, 24 * GiB, "test GPU");
        Assert.Throws<ArgumentException>(() => MemoryPlan.Check(Default, fits + 1, MnistBytes, 24 * GiB, "test GPU"));
    }

    [Fact]
    public void ABatchBeyondThirtyTwoBitIndicesIsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => MemoryPlan.Check(Default, int.MaxValue / 784 + 1, MnistBytes, long.MaxValue, "test GPU"));
        Assert.Contains("32-bit indices", error.Message);
    }
}
