using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>The Deep VIB's softmax cross-entropy kernel against <see cref="ClassificationReference"/>, with labels
/// read through the order on the device, and the reference's gradient against finite differences.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ClassificationTests(AcceleratorFixture fixture)
{
    [Theory]
    [InlineData(1, 2, 1, 0)]
    [InlineData(7, 10, 1, 3)]
    [InlineData(11, 33, 3, 5)]
    [InlineData(4, 256, 2, 0)]
    public void CrossEntropyMatchesReference(int examples, int classes, int samples, int first)
    {
        int rows = examples * samples;
        var random = new Random(examples * classes + samples);
        float[] logits = Numerics.Uniform(random, rows * classes, -8, 8);
        var labels = Enumerable.Range(0, first + examples + 3).Select(_ => (byte)random.Next(classes)).ToArray();
        // A shuffled order, so the kernel must look labels up through it.
        var order = Enumerable.Range(0, labels.Length).OrderBy(_ => random.Next()).ToArray();
        var rowLabels = Enumerable.Range(0, rows).Select(r => (int)labels[order[first + r / samples]]).ToArray();
        var (loss, gradient, correct) = ClassificationReference.CrossEntropy(Numerics.ToDouble(logits), rowLabels, rows, classes);
        const float scale = 0.25f;
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var logitBuffer = accelerator.Upload(logits);
            using var labelBuffer = accelerator.Upload(labels);
            using var orderBuffer = accelerator.Upload(order);
            using var dLogits = accelerator.Allocate1D<float>(rows * classes);
            using var lossBuffer = accelerator.Allocate1D<float>(rows);
            using var correctBuffer = accelerator.Allocate1D<float>(rows);
            kernels.ClassificationLossGradient(logitBuffer.View, labelBuffer.View, orderBuffer.View, dLogits.View, lossBuffer.View,
                correctBuffer.View, rows, new ClassificationShape(classes, samples, first), scale);
            string label = $"{accelerator.AcceleratorType} cross-entropy {rows}×{classes}";
            // A float log-sum-exp of ≤ 256 terms: 1e-5 relative of the loss, or of 16 (the logits' spread).
            Numerics.AssertClose(label + " loss", loss, lossBuffer.GetAsArray1D(), 1e-5, 2e-5);
            Numerics.AssertClose(label + " gradient", gradient.Select(g => scale * g).ToArray(), dLogits.GetAsArray1D(), 1e-5, 1e-7);
            Assert.Equal(correct.Select(c => c ? 1f : 0f), correctBuffer.GetAsArray1D());
        }
    }

    [Fact]
    public void NegligibleProbabilitiesGiveZeroGradientNotSubnormal()
    {
        // Logits 0, −30, −50, −100 with label 0: softmax puts e^-30 (kept), e^-50 (under 2^-64, zeroed) and e^-100
        // (subnormal without the rule, zeroed) on the other classes; see StableMath.NegligibleGradient.
        float[] logits = [0, -30, -50, -100];
        double kept = Math.Exp(-30);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var logitBuffer = accelerator.Upload(logits);
            using var labelBuffer = accelerator.Upload(new byte[] { 0 });
            using var orderBuffer = accelerator.Upload(new[] { 0 });
            using var dLogits = accelerator.Allocate1D<float>(logits.Length);
            using var lossBuffer = accelerator.Allocate1D<float>(1);
            using var correctBuffer = accelerator.Allocate1D<float>(1);
            kernels.ClassificationLossGradient(logitBuffer.View, labelBuffer.View, orderBuffer.View, dLogits.View, lossBuffer.View,
                correctBuffer.View, 1, new ClassificationShape(logits.Length, 1, 0), 1f);
            var gradient = dLogits.GetAsArray1D();
            // The label's gradient, −(1 − p) = −9.4e-14, is the difference of two floats near 1: it comes out as 0
            // in float, which is what the kernel computed before the rule too.
            Assert.True(Math.Abs(gradient[0]) <= 1.2e-7, $"{accelerator.AcceleratorType}: label gradient {gradient[0]:E3}");
            Assert.True(Math.Abs(gradient[1] - kept) <= 1e-5 * kept, $"{accelerator.AcceleratorType}: gradient at −30 is {gradient[1]:E3}");
            Assert.Equal(0f, gradient[2]);
            Assert.Equal(0f, gradient[3]);
        }
    }

    [Fact]
    public void ReferenceGradientMatchesFiniteDifferences()
    {
        var logits = new[] { 0.3, -1.2, 2.0, 0.5, 0.1, -0.4 };
        var labels = new[] { 2, 0 };
        var (_, gradient, _) = ClassificationReference.CrossEntropy(logits, labels, 2, 3);
        const double h = 1e-6;
        for (int i = 0; i < logits.Length; i++)
        {
            var plus = (double[])logits.Clone();
            var minus = (double[])logits.Clone();
            plus[i] += h;
            minus[i] -= h;
            double slope = (ClassificationReference.CrossEntropy(plus, labels, 2, 3).Loss.Sum() - ClassificationReference.CrossEntropy(minus, labels, 2, 3).Loss.Sum()) / (2 * h);
            Assert.Equal(slope, gradient[i], 1e-8);
        }
    }
}
