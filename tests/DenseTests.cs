using ILGPU.Runtime;
using ILGPU;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class DenseTests(AcceleratorFixture fixture)
{
    // Tolerance for float dot products: the rounding error of a K-term float sum is at most about K·2⁻²⁴·Σ|a·b|
    // and typically √K·2⁻²⁴·Σ|a·b|; 2e-5·Σ|a·b| is ~10× the typical error at K = 784 and below the worst case
    // only for sign-coherent sums, which random data does not produce. The activations after the product have
    // slopes ≤ 1 and add about one rounding of their own, covered by the absolute term.
    private const double DotRelative = 2e-5;
    private const double DotAbsolute = 1e-6;

    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 },
        { 1, 784, 33 },
        { 7, 33, 7 },
        { 33, 7, 127 },
        { 7, 127, 1 },
        { 33, 784, 20 },
        { 5, 20, 784 },
        { 6, 12, 8 },
    };

    /// <summary>
    /// Runs a check with every dense kernel variant on every accelerator that can run it: the simple tiled
    /// kernels, the <see cref="DenseCpu"/> variants (which apply where the widths are multiples of 4), and the
    /// shared-memory <see cref="DenseGpu"/> kernel (on GPUs, and on a CPU accelerator with 256-thread groups).
    /// The default variant is restored after.
    /// </summary>
    private void ForEachVariant(Action<KernelSet, string> check)
    {
        var runs = fixture.KernelSets
            .SelectMany(kernels => Enum.GetValues<DenseVariant>()
                .Where(variant => variant != DenseVariant.GpuTiled || kernels.SupportsTiled)
                .Select(variant => (kernels, variant)))
            .Append((fixture.WideCpuKernels, DenseVariant.GpuTiled));
        foreach (var (kernels, variant) in runs)
        {
            var original = kernels.DenseKernels;
            try
            {
                kernels.DenseKernels = variant;
                check(kernels, $"{kernels.Accelerator.AcceleratorType} ({kernels.Accelerator.MaxNumThreadsPerGroup} threads/group) {variant} kernels");
            }
            finally
            {
                kernels.DenseKernels = original;
            }
        }
    }

    public static IEnumerable<ActivationKind> Activations => Enum.GetValues<ActivationKind>();

    /// <summary>Inputs in [−1, 1), weights at nn.Linear's scale (so pre-activations stay O(1) and every
    /// activation is exercised away from saturation), biases in [−0.5, 0.5).</summary>
    private static (float[] x, float[] weights, float[] bias) RandomLayer(Random random, int batch, int inputs, int outputs) =>
        (Numerics.Uniform(random, batch * inputs),
         Numerics.Uniform(random, outputs * inputs, -1 / Math.Sqrt(inputs), 1 / Math.Sqrt(inputs)),
         Numerics.Uniform(random, outputs, -0.5, 0.5));

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardMatchesReference(int batch, int inputs, int outputs)
    {
        var (x, weights, bias) = RandomLayer(new Random(batch * 1000 + inputs * 7 + outputs), batch, inputs, outputs);
        double[] scale = DenseReference.AbsoluteScale(Numerics.ToDouble(x), Numerics.ToDouble(weights), Numerics.ToDouble(bias), batch, inputs, outputs);

        ForEachVariant((kernels, variant) =>
        {
            using var xBuffer = kernels.Accelerator.Upload(x);
            using var wBuffer = kernels.Accelerator.Upload(weights);
            using var bBuffer = kernels.Accelerator.Upload(bias);
            using var yBuffer = kernels.Accelerator.Allocate1D<float>(batch * outputs);
            foreach (var activation in Activations)
            {
                kernels.DenseForward(activation, xBuffer.View, wBuffer.View, bBuffer.View, yBuffer.View, batch, inputs, outputs);
                var expected = DenseReference.Forward(activation, Numerics.ToDouble(x), Numerics.ToDouble(weights), Numerics.ToDouble(bias), batch, inputs, outputs);
                Numerics.AssertClose($"{variant}: dense forward {activation} {batch}×{inputs}→{outputs}",
                    expected, yBuffer.GetAsArray1D(), DotRelative, DotAbsolute, scale);
            }
        });
    }

    /// <summary>
    /// The backward pass from dPre, with each activation of the layer below fused into the input gradient: x is
    /// act_below(u) for pre-activations u in [−2, 2) (both sides of every kink and curve), and the reference applies
    /// act_below'(u) from u, not from x as the kernels do, so that form is checked too.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void BackwardMatchesReference(int batch, int inputs, int outputs)
    {
        var random = new Random(batch * 31 + inputs * 17 + outputs);
        var (_, weights, _) = RandomLayer(random, batch, inputs, outputs);
        double[] belowPre = Numerics.ToDouble(Numerics.Uniform(random, batch * inputs, -2, 2));
        float[] dPre = Numerics.Uniform(random, batch * outputs);
        var wd = Numerics.ToDouble(weights);

        ForEachVariant((kernels, variant) =>
        {
            var accelerator = kernels.Accelerator;
            using var xBuffer = accelerator.Allocate1D<float>(batch * inputs);
            using var wBuffer = accelerator.Upload(weights);
            using var dPreBuffer = accelerator.Upload(dPre);
            using var dXBuffer = accelerator.Allocate1D<float>(batch * inputs);
            using var dWBuffer = accelerator.Allocate1D<float>(outputs * inputs);
            using var dBBuffer = accelerator.Allocate1D<float>(outputs);
            foreach (var below in Activations)
            {
                float[] x = belowPre.Select(u => (float)ActivationReference.Forward(below, u)).ToArray();
                xBuffer.View.CopyFromCPU(x);
                // NaN in every output first, so an element a kernel fails to write cannot pass on what an earlier
                // run (or a recycled allocation) left there.
                dXBuffer.View.CopyFromCPU(Enumerable.Repeat(float.NaN, batch * inputs).ToArray());
                dWBuffer.View.CopyFromCPU(Enumerable.Repeat(float.NaN, outputs * inputs).ToArray());
                dBBuffer.View.CopyFromCPU(Enumerable.Repeat(float.NaN, outputs).ToArray());
                kernels.DenseBackward(xBuffer.View, wBuffer.View, dPreBuffer.View, dXBuffer.View, below,
                    dWBuffer.View, dBBuffer.View, batch, inputs, outputs);

                var (dBelow, dWeights, dBias) = DenseReference.BackwardFromPreActivation(below, belowPre, wd, Numerics.ToDouble(dPre), batch, inputs, outputs);
                // Scales: the same products with absolute values; every act' is at most 1.
                var absDPre = dPre.Select(v => (double)Math.Abs(v)).ToArray();
                var scale = DenseReference.Backward(ActivationKind.Identity, x.Select(v => (double)Math.Abs(v)).ToArray(), wd.Select(Math.Abs).ToArray(), [], absDPre, batch, inputs, outputs);
                string label = $"{variant}: dense backward, {below} below, {batch}×{inputs}→{outputs}";
                Numerics.AssertClose(label + " dInput", dBelow, dXBuffer.GetAsArray1D(), DotRelative, DotAbsolute, scale.dInput);
                Numerics.AssertClose(label + " dWeights", dWeights, dWBuffer.GetAsArray1D(), DotRelative, DotAbsolute, scale.dWeights);
                Numerics.AssertClose(label + " dBias", dBias, dBBuffer.GetAsArray1D(), DotRelative, DotAbsolute, scale.dBias);
            }
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(784)]
    public void ActivationGradientMatchesReference(int count)
    {
        var random = new Random(count);
        double[] pre = Numerics.ToDouble(Numerics.Uniform(random, count, -2, 2));
        float[] dY = Numerics.Uniform(random, count);
        foreach (var kernels in fixture.KernelSets)
            foreach (var activation in Activations)
            {
                float[] y = pre.Select(u => (float)ActivationReference.Forward(activation, u)).ToArray();
                using var yBuffer = kernels.Accelerator.Upload(y);
                using var dYBuffer = kernels.Accelerator.Upload(dY);
                kernels.ActivationGradient(activation, yBuffer.View, dYBuffer.View);
                var expected = pre.Select((u, i) => dY[i] * ActivationReference.Derivative(activation, u)).ToArray();
                // One float product of values ≤ 1 after y's own rounding: a few 2⁻²⁴ relative.
                Numerics.AssertClose($"{kernels.Accelerator.AcceleratorType}: activation gradient {activation} ×{count}",
                    expected, dYBuffer.GetAsArray1D(), 1e-6, 1e-7);
            }
    }

    [Theory]
    [InlineData(ActivationKind.Identity)]
    [InlineData(ActivationKind.Relu)]
    [InlineData(ActivationKind.Tanh)]
    [InlineData(ActivationKind.Sigmoid)]
    public void ReferenceBackwardFromPreActivationMatchesFiniteDifferences(ActivationKind below)
    {
        const int batch = 3, inputs = 7, outputs = 5;
        var random = new Random(13);
        double[] belowPre = Numerics.ToDouble(Numerics.Uniform(random, batch * inputs, -2, 2));
        double[] weights = Numerics.ToDouble(Numerics.Uniform(random, outputs * inputs));
        double[] bias = Numerics.ToDouble(Numerics.Uniform(random, outputs));
        double[] dPre = Numerics.ToDouble(Numerics.Uniform(random, batch * outputs));
        // The objective whose gradient at this layer's pre-activation is dPre.
        double Objective(double[] us, double[] ws, double[] bs) =>
            DenseReference.PreActivation(us.Select(u => ActivationReference.Forward(below, u)).ToArray(), ws, bs, batch, inputs, outputs)
                .Zip(dPre, (p, d) => p * d).Sum();

        var (dBelow, dWeights, dBias) = DenseReference.BackwardFromPreActivation(below, belowPre, weights, dPre, batch, inputs, outputs);
        // As in the test below: central differences with step 1e-6, accurate to ~1e-9 away from a kink.
        Numerics.AssertClose("dBelow vs finite differences", Numerics.FiniteDifferenceGradient(v => Objective(v, weights, bias), belowPre), dBelow, 1e-6, 1e-7);
        Numerics.AssertClose("dWeights vs finite differences", Numerics.FiniteDifferenceGradient(v => Objective(belowPre, v, bias), weights), dWeights, 1e-6, 1e-7);
        Numerics.AssertClose("dBias vs finite differences", Numerics.FiniteDifferenceGradient(v => Objective(belowPre, weights, v), bias), dBias, 1e-6, 1e-7);
    }

    [Theory]
    [InlineData(ActivationKind.Identity)]
    [InlineData(ActivationKind.Relu)]
    [InlineData(ActivationKind.Tanh)]
    [InlineData(ActivationKind.Sigmoid)]
    public void ReferenceBackwardMatchesFiniteDifferences(ActivationKind activation)
    {
        const int batch = 3, inputs = 7, outputs = 5;
        var random = new Random(11);
        double[] x = Numerics.ToDouble(Numerics.Uniform(random, batch * inputs));
        double[] weights = Numerics.ToDouble(Numerics.Uniform(random, outputs * inputs));
        double[] bias = Numerics.ToDouble(Numerics.Uniform(random, outputs));
        double[] dY = Numerics.ToDouble(Numerics.Uniform(random, batch * outputs));
        double Objective(double[] xs, double[] ws, double[] bs) =>
            DenseReference.Forward(activation, xs, ws, bs, batch, inputs, outputs).Zip(dY, (y, d) => y * d).Sum();

        var (dInput, dWeights, dBias) = DenseReference.Backward(activation, x, weights, bias, dY, batch, inputs, outputs);
        // Central differences in double with step 1e-6 are accurate to ~1e-9 here (truncation h² and rounding
        // 1e-16/h); 1e-6 leaves room for a ReLU input that lands within h of its kink by chance.
        Numerics.AssertClose("dInput vs finite differences", Numerics.FiniteDifferenceGradient(v => Objective(v, weights, bias), x), dInput, 1e-6, 1e-7);
        Numerics.AssertClose("dWeights vs finite differences", Numerics.FiniteDifferenceGradient(v => Objective(x, v, bias), weights), dWeights, 1e-6, 1e-7);
        Numerics.AssertClose("dBias vs finite differences", Numerics.FiniteDifferenceGradient(v => Objective(x, weights, v), bias), dBias, 1e-6, 1e-7);
    }

    [Fact]
    public void GemmWithoutBiasUsesStridesForTransposedOperands()
    {
        // C = Aᵀ·B through strides alone: A stored [K, M], read with row stride 1 and column stride M.
        const int m = 5, n = 3, k = 4;
        var random = new Random(5);
        float[] aStored = Numerics.Uniform(random, k * m);
        float[] b = Numerics.Uniform(random, k * n);
        var expected = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                for (int t = 0; t < k; t++)
                    expected[i * n + j] += (double)aStored[t * m + i] * b[t * n + j];
        foreach (var kernels in fixture.KernelSets)
        {
            using var aBuffer = kernels.Accelerator.Upload(aStored);
            using var bBuffer = kernels.Accelerator.Upload(b);
            using var cBuffer = kernels.Accelerator.Allocate1D<float>(m * n);
            kernels.Gemm(ActivationKind.Identity, aBuffer.View, bBuffer.View, kernels.None, cBuffer.View,
                new GemmShape(m, n, k, aRowStride: 1, aColumnStride: m, bRowStride: n, bColumnStride: 1));
            Numerics.AssertClose("strided GEMM", expected, cBuffer.GetAsArray1D(), 1e-6, 1e-6);
        }
    }
}
