using IlgpuVae.GpuKernels;
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
        // 784-400-20: layer outputs 400, 40, 400, 784. Per example the input and the encoder's outputs and
        // gradients; per sample z, ε, dz, three row terms (rec, KL, log w), and the decoder's outputs and gradients.
        Assert.Equal(4L * (784 + 2 * (400 + 40) + 3 * 20 + 3 + 2 * (400 + 784)), MemoryPlan.BytesPerExample(Default));
        // The IWAE paper's two-layer model with k = 5: per example also −L_k, and the encoder 200, 200, 200 (z1
        // stats); per sample four row terms (w̃ too), z2, ε2, dz2, the unused analytic KL of z2, a second dz1, and
        // q(z2|z1) 100, 100, 100 and p(z1|z2) 100, 100, 200 before the decoder 200, 200, 784.
        var twoLayers = new VaeConfig { Hidden = [200, 200], Latent = 100, StochasticLayers = 2, Model = ModelKind.Iwae, Samples = 5 };
        long perSample = 3 * 100 + 4 + 3 * 50 + 1 + 100 + 2 * (100 + 100 + 100 + 100 + 100 + 200 + 200 + 200 + 784);
        Assert.Equal(4L * (784 + 1 + 2 * (200 + 200 + 200) + 5 * perSample), MemoryPlan.BytesPerExample(twoLayers));
        // VCCA on MNIST's halves (392 pixels each): per example also both views; per sample the joined output,
        // its gradient and the second decoder's dz, and the two decoders' outputs 400, 392 and 400, 392.
        var vcca = new VaeConfig { Model = ModelKind.Vcca, Samples = 2 };
        long vccaPerSample = 3 * 20 + 3 + 2 * 784 + 20 + 2 * (400 + 392 + 400 + 392);
        Assert.Equal(4L * (2 * 784 + 2 * (400 + 40) + 2 * vccaPerSample), MemoryPlan.BytesPerExample(vcca));
        // The Ladder VAE with batch norm, k = 3: per example the input, the top hidden layer's second gradient and
        // both bottom-up stages (400 normalised, 40; 100 normalised, 100); per sample z1's and z2's buffers (no
        // second dz1: nothing above z1 reads it), the equal row weights, the merged stats and their gradient, the
        // prior network (100 normalised, 40) and the decoder (400 normalised, 784).
        var ladder = new VaeConfig { Model = ModelKind.Ladder, StochasticLayers = 2, Hidden2 = [100], Latent2 = 50, BatchNorm = true, Samples = 3 };
        long ladderPerSample = 3 * 20 + 3 + 3 * 50 + 1 + 1 + 4 * 20 + 3 * 100 + 2 * 40 + 3 * 400 + 2 * 784;
        Assert.Equal(4L * (784 + 400 + 3 * 400 + 2 * 40 + 3 * 100 + 2 * 100 + 3 * ladderPerSample), MemoryPlan.BytesPerExample(ladder));
        // Besides parameters, gradients and two moments: the gradient scale (2 floats) and two sets of six loss
        // totals in double; clipping adds its partial sums.
        Assert.Equal(16L * new ParameterLayout(Default).Count + 2 * 4 + 2 * 6 * 8, MemoryPlan.ModelBytes(Default));
        Assert.Equal(MemoryPlan.ModelBytes(Default) + 4L * IlgpuVae.GpuKernels.GradientClipping.Slots,
            MemoryPlan.ModelBytes(Default, new AdamSettings { MaxGradientNorm = 1 }));
    }

    /// <summary>The plan is what a model allocates: every buffer the constructor asks for is in it, and a batch's
    /// bytes grow linearly, so the batch size that fits follows exactly.</summary>
    [Fact]
    public void ThePlanIsLinearInTheBatch()
    {
        foreach (var config in new[] { Default, new VaeConfig { Model = ModelKind.Ladder, StochasticLayers = 2, BatchNorm = true, Samples = 2 } })
            Assert.Equal(MemoryPlan.ModelBytes(config) + 37 * MemoryPlan.BytesPerExample(config), MemoryPlan.Needed(config, 37, dataBytes: 0));
    }

    [Fact]
    public void TheDefaultRunFitsAnyGpu() =>
        MemoryPlan.Check(Default, 128, MnistBytes, 8 * GiB, "test GPU");

    [Fact]
    public void ABatchTooLargeIsRefusedWithABatchThatFits()
    {
        var error = Assert.Throws<SettingException>(() => MemoryPlan.Check(Default, 2_000_000, MnistBytes, 24 * GiB, "test GPU"));
        Assert.Contains("batch 2000000 needs", error.Message);
        Assert.Contains("24576 MiB is available", error.Message);
        int fits = int.Parse(System.Text.RegularExpressions.Regex.Match(error.Message, @"BatchSize (\d+)").Groups[1].Value);
        MemoryPlan.Check(Default, fits, MnistBytes, 24 * GiB, "test GPU");
        Assert.Throws<SettingException>(() => MemoryPlan.Check(Default, fits + 1, MnistBytes, 24 * GiB, "test GPU"));
    }

    [Fact]
    public void ABatchBeyondThirtyTwoBitIndicesIsRefused()
    {
        var error = Assert.Throws<SettingException>(() => MemoryPlan.Check(Default, int.MaxValue / 784 + 1, MnistBytes, long.MaxValue, "test GPU"));
        Assert.Contains("32-bit indices", error.Message);
    }
}
