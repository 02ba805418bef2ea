using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>
/// The deep GP layer's additions (issue 25) — linear mean, reparameterized sample, softmax likelihood, the Gaussian
/// likelihood's weighted derivatives — and the double helpers, against their double references at odd shapes and
/// their reverse modes against central differences.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class DeepGpLayerTests(AcceleratorFixture fixture)
{
    /// <summary>(points N, dimensions D, outputs O); (6, 5, 8) fills the CPU's linear mean's tiles (pairs of points,
    /// four outputs) with none left over.</summary>
    public static TheoryData<int, int, int> Shapes => new() { { 1, 1, 1 }, { 7, 3, 5 }, { 33, 13, 10 }, { 6, 5, 8 } };

    private static double[] Draw(Random random, int count, double scale = 1) => Enumerable.Range(0, count).Select(_ => (random.NextDouble() * 2 - 1) * scale).ToArray();

    /// <summary>Both double with the same sums in the same order: 1e-12 of the largest value; the forward pass's two
    /// kernel shapes bit for bit. The reverse mode is the transpose of a linear map, checked against central differences
    /// (exact for a linear function up to round-off, about 1e-16·|F|/h ≈ 1e-9 for sums of order 10: 1e-7 relative plus
    /// 1e-8).</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void LinearMeanMatchesTheReference(int n, int dims, int outputs)
    {
        var random = new Random(n + dims + outputs);
        var (x, w, start, dMean) = (Draw(random, n * dims), Draw(random, dims * outputs), Draw(random, n * outputs), Draw(random, n * outputs));
        var expected = DeepGpLayerReference.LinearMean(x, w, n, dims, outputs).Zip(start, (a, b) => a + b).ToArray();
        var expectedDX = DeepGpLayerReference.LinearMeanBackward(dMean, w, n, dims, outputs);
        Numerics.AssertClose("dX by differences", Numerics.FiniteDifferenceGradient(values =>
            DeepGpLayerReference.LinearMean(values, w, n, dims, outputs).Zip(dMean, (a, b) => a * b).Sum(), x), expectedDX, 1e-7, 1e-8);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var xB = accelerator.Upload(x);
            using var wB = accelerator.Upload(w);
            using var meanB = accelerator.Upload(start);
            var shapes = KernelShapes.RunBoth(kernels, () =>
            {
                meanB.CopyFromCPU(start);
                kernels.LinearMean(xB.View, wB.View, meanB.View, n, dims, outputs);
                return meanB.GetAsArray1D();
            });
            Assert.Equal(shapes[0], shapes[1]);
            meanB.CopyFromCPU(start);
            using var dMeanB = accelerator.Upload(dMean);
            using var dXB = accelerator.Upload(Enumerable.Repeat(0.5, n * dims).ToArray());
            kernels.LinearMean(xB.View, wB.View, meanB.View, n, dims, outputs);
            kernels.LinearMeanBackward(dMeanB.View, wB.View, dXB.View, n, dims, outputs);
            Numerics.AssertCloseToLargest($"{accelerator.AcceleratorType} mean", expected, meanB.GetAsArray1D(), 1e-12);
            // The reverse mode adds to what is there (0.5 each).
            Numerics.AssertCloseToLargest($"{accelerator.AcceleratorType} dX", expectedDX.Select(value => value + 0.5).ToArray(), dXB.GetAsArray1D(), 1e-12);
        }
    }

    /// <summary>
    /// The sample draws the reference's ε (the same Philox words, bit for bit on the CPU, 1e-12 relative anywhere);
    /// its reverse mode against central differences of Σ f̄∘f in μ and σ² with ε held (1e-6 relative plus 1e-8 in μ; in
    /// σ² element by element, 1e-6 relative plus 1e-9); a
    /// variance below the floor samples the mean and passes no gradient.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void SampleMatchesTheReference(int n, int dims, int outputs)
    {
        _ = dims;
        int count = n * outputs;
        var random = new Random(count);
        var mean = Draw(random, count);
        var variance = Draw(random, count).Select(value => 0.1 + Math.Abs(value)).ToArray();
        variance[0] = DeepGpLayer.VarianceFloor / 2;
        var dF = Draw(random, count);
        // A chunk that starts at point 4 of a larger set draws that set's ε for its points.
        var key = new DrawKey(3, 17, 5, firstExample: 4);
        var expected = DeepGpLayerReference.Sample(mean, variance, key, outputs);
        Assert.Equal(Philox.NormalDouble(3, 17, 5, 4 * outputs + 1), DeepGpLayerReference.Epsilon(key, 1, outputs));
        Assert.Equal(mean[0], expected[0]);
        Numerics.AssertClose("dMean by differences", Numerics.FiniteDifferenceGradient(values =>
            DeepGpLayerReference.Sample(values, variance, key, outputs).Zip(dF, (a, b) => a * b).Sum(), mean), dF, 1e-6, 1e-8);
        // Element by element (f_i reads σ²_i alone), so the differences see one term, not the sum's round-off.
        var dVarianceExpected = Enumerable.Range(0, count).Select(i =>
        {
            const double h = 1e-6;
            var (up, down) = ((double[])variance.Clone(), (double[])variance.Clone());
            up[i] += h;
            down[i] -= h;
            return dF[i] * (DeepGpLayerReference.Sample(mean, up, key, outputs)[i] - DeepGpLayerReference.Sample(mean, down, key, outputs)[i]) / (2 * h);
        }).ToArray();
        dVarianceExpected[0] = 0;
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var meanB = accelerator.Upload(mean);
            using var varianceB = accelerator.Upload(variance);
            using var f = accelerator.Allocate1D<double>(count);
            using var epsilon = accelerator.Allocate1D<double>(count);
            using var dFB = accelerator.Upload(dF);
            using var dMean = accelerator.Allocate1D<double>(count);
            using var dVariance = accelerator.Allocate1D<double>(count);
            kernels.SampleMarginals(meanB.View, varianceB.View, f.View, epsilon.View, count, outputs, key);
            kernels.SampleMarginalsBackward(varianceB.View, epsilon.View, dFB.View, dMean.View, dVariance.View, count);
            Numerics.AssertCloseToLargest($"{accelerator.AcceleratorType} f", expected, f.GetAsArray1D(), 1e-12);
            Assert.Equal(dF, dMean.GetAsArray1D());
            Numerics.AssertClose($"{accelerator.AcceleratorType} dVariance", dVarianceExpected, dVariance.GetAsArray1D(), 1e-6, 1e-9);
        }
    }

    /// <summary>Softmax log-likelihood against the reference (1e-12 of the largest) and its weighted derivative against
    /// central differences (1e-6 relative plus 1e-6: the differenced sum reaches 10³, whose round-off over a step of
    /// 1e-6 is about 1e-7); logits up to ±40 so the log-sum-exp's shift matters.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void SoftmaxMatchesTheReference(int n, int dims, int classes)
    {
        _ = dims;
        var random = new Random(n * classes);
        var f = Draw(random, n * classes, 40);
        var labels = Enumerable.Range(0, n).Select(_ => random.Next(classes)).ToArray();
        const double weight = -0.3;
        var expected = DeepGpLayerReference.SoftmaxLogLikelihood(f, labels, classes);
        var expectedDF = Numerics.FiniteDifferenceGradient(values => weight * DeepGpLayerReference.SoftmaxLogLikelihood(values, labels, classes).Sum(), f);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var fB = accelerator.Upload(f);
            using var labelsB = accelerator.Upload(labels);
            using var ell = accelerator.Allocate1D<double>(n);
            using var dF = accelerator.Allocate1D<double>(n * classes);
            kernels.SoftmaxLogLikelihood(fB.View, labelsB.View, weight, ell.View, dF.View, n, classes);
            Numerics.AssertCloseToLargest($"{accelerator.AcceleratorType} ell", expected, ell.GetAsArray1D(), 1e-12);
            Numerics.AssertClose($"{accelerator.AcceleratorType} dF", expectedDF, dF.GetAsArray1D(), 1e-6, 1e-6);
        }
    }

    /// <summary>
    /// The robust-max likelihood (ε = 10⁻³, 20 Gauss–Hermite points): ell against the reference (1e-12 of the largest;
    /// the same products in the same order), the weighted derivatives in μ and σ² against central differences of the
    /// reference (1e-6 relative plus 1e-6, as the softmax's: sums of order 10²). At least two classes (C = 1 has no
    /// rival); means within ±2 and standard deviations 0.2 to 1.2 so that every class's Φ is in play.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void RobustMaxMatchesTheReferenceAndDifferences(int n, int dims, int outputs)
    {
        _ = dims;
        int classes = Math.Max(2, outputs);
        var random = new Random(n * classes + 5);
        var mean = Draw(random, n * classes, 2);
        var variance = Enumerable.Range(0, n * classes).Select(_ => Math.Pow(0.2 + random.NextDouble(), 2)).ToArray();
        var labels = Enumerable.Range(0, n).Select(_ => random.Next(classes)).ToArray();
        var rule = GaussHermite.Rule(20);
        const double epsilon = 1e-3, weight = -0.6;
        double Total(double[] mu, double[] v) => weight * DeepGpLayerReference.RobustMaxExpectedLogLikelihood(mu, v, labels, classes, epsilon, rule).Sum();
        var expected = DeepGpLayerReference.RobustMaxExpectedLogLikelihood(mean, variance, labels, classes, epsilon, rule);
        var expectedDMean = Numerics.FiniteDifferenceGradient(values => Total(values, variance), mean);
        var expectedDVariance = Numerics.FiniteDifferenceGradient(values => Total(mean, values), variance);
        foreach (var kernels in fixture.KernelSets)
        {
            var (ell, dMean, dVariance) = RobustMax(kernels, mean, variance, labels, rule, epsilon, weight, classes);
            Numerics.AssertCloseToLargest($"{kernels.Accelerator.AcceleratorType} ell", expected, ell, 1e-12);
            Numerics.AssertClose($"{kernels.Accelerator.AcceleratorType} dMean", expectedDMean, dMean, 1e-6, 1e-6);
            Numerics.AssertClose($"{kernels.Accelerator.AcceleratorType} dVariance", expectedDVariance, dVariance, 1e-6, 1e-6);
        }
    }

    /// <summary>The robust-max kernel on one accelerator: ell, dMean and dVariance read back.</summary>
    private static (double[] Ell, double[] DMean, double[] DVariance) RobustMax(KernelSet kernels, double[] mean, double[] variance, int[] labels,
        (double[] Nodes, double[] Weights) rule, double epsilon, double weight, int classes)
    {
        var accelerator = kernels.Accelerator;
        int n = labels.Length;
        using var meanB = accelerator.Upload(mean);
        using var varianceB = accelerator.Upload(variance);
        using var labelsB = accelerator.Upload(labels);
        using var quadrature = accelerator.Upload(rule.Nodes.Concat(rule.Weights).ToArray());
        using var ell = accelerator.Allocate1D<double>(n);
        using var dMean = accelerator.Allocate1D<double>(n * classes);
        using var dVariance = accelerator.Allocate1D<double>(n * classes);
        kernels.RobustMaxExpectedLogLikelihood(meanB.View, varianceB.View, labelsB.View, quadrature.View, epsilon, weight, ell.View, dMean.View, dVariance.View,
            n, classes, rule.Nodes.Length);
        return (ell.GetAsArray1D(), dMean.GetAsArray1D(), dVariance.GetAsArray1D());
    }

    /// <summary>A class whose variance is 0 (a deterministic latent value) stands in at the floor: everything stays
    /// finite, its σ² gets no derivative, and ell still matches the reference.</summary>
    [Fact]
    public void RobustMaxTakesAZeroVarianceAtTheFloor()
    {
        const int classes = 3;
        double[] mean = [0.3, -0.1, 0.2], variance = [0.5, 0, 0.8];
        int[] labels = [0];
        var rule = GaussHermite.Rule(20);
        var expected = DeepGpLayerReference.RobustMaxExpectedLogLikelihood(mean, variance, labels, classes, 1e-3, rule);
        foreach (var kernels in fixture.KernelSets)
        {
            var (ell, dMean, dVariance) = RobustMax(kernels, mean, variance, labels, rule, 1e-3, 1, classes);
            Numerics.AssertCloseToLargest($"{kernels.Accelerator.AcceleratorType} ell", expected, ell, 1e-12);
            Assert.All(dMean.Concat(dVariance), value => Assert.True(double.IsFinite(value)));
            Assert.Equal(0, dVariance[1]);
            Assert.NotEqual(0, dVariance[0]);
        }
    }

    /// <summary>With two classes P(f_y > f_c) = Φ((μ_y − μ_c)/√(σ²_y + σ²_c)) exactly: the 20-point rule reaches it to
    /// 1e-6 for comparable spreads (the integrand Φ is smooth in f_y) and far closer when the rival is the wider.</summary>
    [Theory]
    [InlineData(0.0, 1.0, 0.0, 1.0)]
    [InlineData(1.3, 0.5, -0.4, 0.8)]
    [InlineData(-0.7, 0.3, 0.2, 2.0)]
    [InlineData(2.5, 1.5, 0.0, 1.0)]
    public void TwoClassProbabilityMatchesTheClosedForm(double meanLabel, double sdLabel, double meanRival, double sdRival)
    {
        double[] mean = [meanLabel, meanRival], variance = [sdLabel * sdLabel, sdRival * sdRival];
        double quadrature = DeepGpLayerReference.ProbabilityIsLargest(mean, variance, 0, 0, 2, GaussHermite.Rule(20));
        double exact = NormalDistribution.Cdf((meanLabel - meanRival) / Math.Sqrt(variance.Sum()));
        Assert.Equal(exact, quadrature, 1e-6);
    }

    /// <summary>
    /// The Gaussian expected log-likelihood with the noise read on the device: its value per point against the
    /// reference ELBO's data term written out here, and the weighted derivatives in μ, σ² and log s² against central
    /// differences (1e-6 relative plus 1e-6: the differenced sums reach 10³, see the softmax test).
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void GaussianExpectedLogLikelihoodMatchesDifferences(int n, int dims, int outputs)
    {
        _ = dims;
        var random = new Random(n * outputs + 1);
        var (y, mean) = (Draw(random, n * outputs), Draw(random, n * outputs));
        var variance = Draw(random, n * outputs).Select(value => 0.1 + Math.Abs(value)).ToArray();
        double logNoise = Math.Log(0.3);
        const double weight = -0.7;
        double[] Ell(double[] mu, double[] v, double logS) => Enumerable.Range(0, n).Select(point => Enumerable.Range(0, outputs).Sum(o =>
        {
            int at = point * outputs + o;
            return -0.5 * (Math.Log(2 * Math.PI) + logS) - ((y[at] - mu[at]) * (y[at] - mu[at]) + v[at]) / (2 * Math.Exp(logS));
        })).ToArray();
        var expected = Ell(mean, variance, logNoise);
        var expectedDMean = Numerics.FiniteDifferenceGradient(values => weight * Ell(values, variance, logNoise).Sum(), mean);
        var expectedDVariance = Numerics.FiniteDifferenceGradient(values => weight * Ell(mean, values, logNoise).Sum(), variance);
        double expectedDNoise = Numerics.FiniteDifferenceGradient(values => weight * Ell(mean, variance, values[0]).Sum(), [logNoise])[0];
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var yB = accelerator.Upload(y);
            using var meanB = accelerator.Upload(mean);
            using var varianceB = accelerator.Upload(variance);
            using var noiseB = accelerator.Upload(new[] { logNoise });
            using var ell = accelerator.Allocate1D<double>(n);
            using var dMean = accelerator.Allocate1D<double>(n * outputs);
            using var dVariance = accelerator.Allocate1D<double>(n * outputs);
            using var dNoise = accelerator.Allocate1D<double>(n);
            using var dNoiseTotal = accelerator.Upload(new[] { 0.25 });
            kernels.GaussianExpectedLogLikelihood(yB.View, meanB.View, varianceB.View, noiseB.View, weight, ell.View, dMean.View, dVariance.View, dNoise.View, n, outputs);
            kernels.SumInto(dNoise.View, dNoiseTotal.View);
            Numerics.AssertCloseToLargest($"{accelerator.AcceleratorType} ell", expected, ell.GetAsArray1D(), 1e-12);
            Numerics.AssertClose($"{accelerator.AcceleratorType} dMean", expectedDMean, dMean.GetAsArray1D(), 1e-6, 1e-6);
            Numerics.AssertClose($"{accelerator.AcceleratorType} dVariance", expectedDVariance, dVariance.GetAsArray1D(), 1e-6, 1e-6);
            // SumInto adds to what is there (0.25).
            Assert.Equal(expectedDNoise + 0.25, dNoiseTotal.GetAsArray1D()[0], 1e-6 * Math.Abs(expectedDNoise) + 1e-6);
        }
    }

    /// <summary>
    /// The double helpers: gathering rows, adding, keeping lower triangles (exact), and Adam in double against
    /// <see cref="AdamReference"/> over three steps (the same operations in a different order: 1e-14 relative).
    /// </summary>
    [Fact]
    public void DoubleHelpersMatchTheirDefinitions()
    {
        var random = new Random(2);
        const int rows = 9, width = 7, size = 4, batch = 3;
        var source = Draw(random, rows * width);
        int[] indices = [8, 0, 3, 3, 5];
        var matrices = Draw(random, batch * size * size);
        var parameters = Draw(random, 33);
        var gradients = Enumerable.Range(0, 3).Select(_ => Draw(random, 33)).ToArray();
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var sourceB = accelerator.Upload(source);
            using var indexB = accelerator.Upload(indices);
            using var gathered = accelerator.Allocate1D<double>(indices.Length * width);
            kernels.GatherRows(sourceB.View, indexB.View, gathered.View, indices.Length, width);
            Assert.Equal(indices.SelectMany(row => source.Skip(row * width).Take(width)).ToArray(), gathered.GetAsArray1D());
            using var target = accelerator.Upload(source);
            kernels.AddInto(target.View, sourceB.View);
            Assert.Equal(source.Select(value => 2 * value).ToArray(), target.GetAsArray1D());
            using var matrixB = accelerator.Upload(matrices);
            kernels.KeepLowerTriangles(matrixB.View, batch, size);
            Assert.Equal(matrices.Select((value, at) => at % size <= at / size % size ? value : 0).ToArray(), matrixB.GetAsArray1D());

            var (p, m, v) = ((double[])parameters.Clone(), new double[33], new double[33]);
            using var pB = accelerator.Upload(parameters);
            using var mB = accelerator.Allocate1D<double>(33);
            using var vB = accelerator.Allocate1D<double>(33);
            mB.MemSetToZero();
            vB.MemSetToZero();
            for (int step = 1; step <= 3; step++)
            {
                AdamReference.Step(p, gradients[step - 1], m, v, 0.01, 0.9, 0.999, 1e-8, step);
                using var gB = accelerator.Upload(gradients[step - 1]);
                kernels.AdamStep(pB.View, gB.View, mB.View, vB.View, 0.01, step);
            }
            Numerics.AssertClose($"{accelerator.AcceleratorType} Adam", p, pB.GetAsArray1D(), 1e-14, 0);
        }
    }
}
