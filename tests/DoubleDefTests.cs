using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Models.DoubleDef;

namespace IlgpuVae.Tests;

/// <summary>
/// The double deep exponential family (issue 24): the Poisson matrix kernels against their double references at odd
/// shapes, the whole model's loss and gradient estimate against <see cref="DoubleDefReference"/>, and the estimator,
/// averaged over many draws, against the exact gradient of an ELBO small enough to write in closed form.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class DoubleDefTests(AcceleratorFixture fixture, ITestOutputHelper output)
{
    /// <summary>(rows N, columns D, bottom units K, samples k).</summary>
    public static TheoryData<int, int, int, int> MatrixShapes => new()
    {
        { 1, 1, 1, 1 }, { 7, 5, 3, 2 }, { 33, 7, 1, 4 }, { 3, 784, 7, 2 }, { 20, 33, 20, 3 },
    };

    private static (float[] Z, float[] W, float[] Counts, bool[] Observed) RandomMatrix(int rows, int columns, int units, int samples)
    {
        var random = new Random(rows * 7919 + columns * 31 + units * 7 + samples);
        var z = Numerics.Uniform(random, rows * samples * units, 0, 2);
        var w = Numerics.Uniform(random, columns * samples * units, 0, 2);
        // Some draws at the smallest value a draw takes, so that a rate falls to the floor ε.
        for (int i = 0; i < z.Length; i += 5)
            z[i] = DeepExponential.SmallestDraw;
        var counts = Enumerable.Range(0, rows * columns).Select(_ => (float)(random.NextDouble() < 0.4 ? 0 : random.Next(1, random.NextDouble() < 0.1 ? 400 : 12)))
            .ToArray();
        var observed = Enumerable.Range(0, rows * columns).Select(_ => random.NextDouble() >= 0.3).ToArray();
        return (z, w, counts, observed);
    }

    /// <summary>
    /// The row and column sums of −log p and the held-out cells' log-sum, for one call and a second one that
    /// accumulates. Each cell's term is r − y log r + log y! in float (rates of ≤ 20 products, counts up to 400, where
    /// log y! ≈ 2000 is held by float to 1.2e-4); a sum of D (or N) of them is held to 1e-5 of the sum of their
    /// magnitudes plus 1e-3, and the held-out log-sum, one cell's k terms, to 1e-5 relative and 2e-3 absolute.
    /// </summary>
    [Theory]
    [MemberData(nameof(MatrixShapes))]
    public void KernelsMatchTheirReferences(int rows, int columns, int units, int samples)
    {
        var (z, w, counts, observed) = RandomMatrix(rows, columns, units, samples);
        var shape = new MatrixShape(rows, columns, units, samples);
        var (zd, wd, countsd) = (Numerics.ToDouble(z), Numerics.ToDouble(w), Numerics.ToDouble(counts));
        var (rowLoss, columnLoss) = PoissonMatrixReference.NegativeLogLikelihood(zd, wd, countsd, observed, shape);
        // Each sum's scale: Σ |term| over the cells it adds.
        var rowScale = new double[rows * samples];
        var columnScale = new double[columns * samples];
        for (int u = 0; u < rows; u++)
            for (int i = 0; i < columns; i++)
                for (int s = 0; s < samples && observed[u * columns + i]; s++)
                {
                    double rate = PoissonMatrixReference.Rate(zd, wd, u * samples + s, i * samples + s, units), y = countsd[u * columns + i];
                    double magnitude = rate + Math.Abs(y * Math.Log(rate)) + DistributionReference.LogGamma(y + 1);
                    rowScale[u * samples + s] += magnitude;
                    columnScale[i * samples + s] += magnitude;
                }
        var first = PoissonMatrixReference.HeldOutLogSum(zd, wd, countsd, observed, shape);
        // The second call's draws: the same rows' draws, the columns' scaled by 1.5.
        var w2 = w.Select(value => value * 1.5f).ToArray();
        var second = PoissonMatrixReference.HeldOutLogSum(zd, Numerics.ToDouble(w2), countsd, observed, shape);
        var accumulated = first.Zip(second, (a, b) => double.IsNaN(a) ? double.NaN : Math.Max(a, b) + Math.Log(Math.Exp(a - Math.Max(a, b)) + Math.Exp(b - Math.Max(a, b))))
            .ToArray();
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            string label = $"{accelerator.AcceleratorType} N={rows} D={columns} K={units} k={samples}";
            using var zBuffer = accelerator.Upload(z);
            using var wBuffer = accelerator.Upload(w);
            using var w2Buffer = accelerator.Upload(w2);
            using var countBuffer = accelerator.Upload(counts);
            using var observedBuffer = accelerator.Upload(observed.Select(cell => cell ? 1f : 0f).ToArray());
            using var rowBuffer = accelerator.Allocate1D<float>(rows * samples);
            using var columnBuffer = accelerator.Allocate1D<float>(columns * samples);
            // Training cells keep what the buffer held: NaN marks them.
            using var logSum = accelerator.Upload(Enumerable.Repeat(float.NaN, rows * columns).ToArray());
            kernels.RowNegativeLogLikelihood(zBuffer.View, wBuffer.View, countBuffer.View, observedBuffer.View, rowBuffer.View, shape);
            kernels.ColumnNegativeLogLikelihood(zBuffer.View, wBuffer.View, countBuffer.View, observedBuffer.View, columnBuffer.View, shape);
            kernels.HeldOutLogLikelihood(zBuffer.View, wBuffer.View, countBuffer.View, observedBuffer.View, logSum.View, shape, first: true);
            var afterFirst = logSum.GetAsArray1D();
            kernels.HeldOutLogLikelihood(zBuffer.View, w2Buffer.View, countBuffer.View, observedBuffer.View, logSum.View, shape, first: false);
            Numerics.AssertClose(label + " row sums", rowLoss, rowBuffer.GetAsArray1D(), 1e-5, 1e-3, rowScale);
            Numerics.AssertClose(label + " column sums", columnLoss, columnBuffer.GetAsArray1D(), 1e-5, 1e-3, columnScale);
            AssertHeldOut(label + " held-out log-sum", first, afterFirst);
            AssertHeldOut(label + " held-out log-sum, accumulated", accumulated, logSum.GetAsArray1D());
        }
    }

    /// <summary>Small double DEFs: (rows, columns, row layers, column layers, k, held-out fraction, α).</summary>
    public static TheoryData<int, int, string, string, int, double, double> Models => new()
    {
        { 5, 7, "gamma:3,gamma:2", "gamma:3", 3, 0.3, 0.3 },
        { 1, 1, "gamma:1", "gamma:1", 2, 0, 0.1 },
        { 9, 6, "gamma:4,gamma:3,gamma:2", "gamma:4,gamma:2", 4, 0.2, 0.1 },
    };

    private static CountMatrix RandomCounts(int rows, int columns)
    {
        var random = new Random(rows * 31 + columns);
        return new CountMatrix("test", rows, columns, Enumerable.Range(0, rows * columns).Select(_ => (float)random.Next(0, 16)).ToArray());
    }

    /// <summary>
    /// The device model's loss and gradient estimate against the double reference for the same draws, at the start and
    /// after three Adam steps (which also checks that a step moves every parameter the reference's gradient reaches).
    /// Both sum products of float draws and logs; the score-function part multiplies a score by a centred signal
    /// of up to a few hundred nats, whose float rounding (about 1e-4 absolute) is carried into the gradient: held to
    /// 1e-3 relative plus 1e-4 of the gradient's largest element. The loss to 1e-5 relative.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void ModelMatchesTheReference(int rows, int columns, string rowLayers, string columnLayers, int samples, double heldOut, double alpha)
    {
        var settings = new DoubleDefSettings
        {
            RowLayers = rowLayers, ColumnLayers = columnLayers, Samples = samples, HeldOut = heldOut, Alpha = alpha, LearningRate = 0.05, Seed = 3,
        };
        var data = RandomCounts(rows, columns);
        foreach (var kernels in fixture.KernelSets)
        {
            using var model = new DoubleDefModel(kernels, data, settings);
            var observed = model.ObservedCells.ToArray();
            for (int round = 0; round < 2; round++)
            {
                string label = $"{kernels.Accelerator.AcceleratorType} {rowLayers} × {columnLayers} after {model.Step} steps";
                var parameters = model.Parameters;
                var (expectedLoss, expectedGradient) = DoubleDefReference.LossAndGradient(settings, data, observed, Numerics.ToDouble(parameters),
                    Philox.Streams.Reparameterize, model.Step);
                var loss = model.LossAndGradient(Philox.Streams.Reparameterize, model.Step);
                Numerics.AssertClose(label + " loss", [expectedLoss.Reconstruction, expectedLoss.RowKl, expectedLoss.ColumnKl],
                    [loss.Reconstruction, loss.RowKl, loss.ColumnKl], 1e-5, 1e-6);
                double largest = expectedGradient.Max(Math.Abs);
                Assert.True(largest > 0, label + ": the gradient is zero");
                Numerics.AssertClose(label + " gradient", expectedGradient, model.Gradient, 1e-3, 1e-4 * largest);
                for (int step = 0; step < 3; step++)
                    model.TrainStep();
                var moved = model.Parameters;
                for (int i = 0; i < moved.Length; i++)
                    Assert.True(moved[i] != parameters[i], $"{label}: parameter {i} did not move in three steps");
            }
        }
    }

    /// <summary>The held-out baselines against a direct computation: column means, and the independence model with
    /// each row's and column's mean count over its training cells (to 1e-12 relative: the same sums in double).</summary>
    [Fact]
    public void BaselinesMatchADirectComputation()
    {
        var data = RandomCounts(13, 6);
        var settings = new DoubleDefSettings { RowLayers = "gamma:2", ColumnLayers = "gamma:2", HeldOut = 0.3 };
        using var model = new DoubleDefModel(fixture.KernelSets[0], data, settings);
        var observed = model.ObservedCells;
        var cells = Enumerable.Range(0, 13 * 6).Select(c => (Row: c / 6, Column: c % 6, Count: (double)data.Counts[c], Observed: observed[c])).ToArray();
        var training = cells.Where(cell => cell.Observed).ToArray();
        var heldOut = cells.Where(cell => !cell.Observed).ToArray();
        Assert.NotEmpty(heldOut);
        double ColumnMean(int i) => training.Where(cell => cell.Column == i).Average(cell => cell.Count);
        double RowMean(int u) => training.Where(cell => cell.Row == u).Average(cell => cell.Count);
        double grand = training.Average(cell => cell.Count);
        double columnMeans = heldOut.Average(cell => DistributionReference.PoissonLogDensity(cell.Count, ColumnMean(cell.Column) + DeepExponential.RateFloor));
        double independence = heldOut.Average(cell =>
            DistributionReference.PoissonLogDensity(cell.Count, RowMean(cell.Row) * ColumnMean(cell.Column) / grand + DeepExponential.RateFloor));
        var (actualColumnMeans, actualIndependence) = model.Baselines();
        Assert.Equal(columnMeans, actualColumnMeans, 1e-12 * Math.Abs(columnMeans));
        Assert.Equal(independence, actualIndependence, 1e-12 * Math.Abs(independence));
    }

    /// <summary>The closed-form test model: 2 × 2 counts, rows with two gamma layers of one unit (z0 under z1 through
    /// one weight v), columns with one layer of one unit (w), every cell observed.</summary>
    private static readonly float[] TestCounts = [3, 0, 1, 5];
    private const double TestAlpha = 0.7;

    private static DoubleDefSettings TestSettings(int samples) => new()
    {
        RowLayers = "gamma:1,gamma:1", ColumnLayers = "gamma:1", Samples = samples, HeldOut = 0, Alpha = TestAlpha, Seed = 5,
    };

    /// <summary>
    /// The model's ELBO in closed form from gamma moments: for z ~ Gamma(a, b), b = a/m, E z = m, E log z = ψ(a) − log b,
    /// E 1/z = b/(a − 1) and E log q(z) = a log b − log Γ(a) + (a − 1)(ψ(a) − log b) − a. The kernels' ε = 1e-6 in
    /// every rate and mean is left out: with shapes near 2.5 it moves the ELBO by about ε·E[1/(zw)] ≈ 3e-6 a cell.
    /// Parameters in the model's flat order: the rows' table [ρa_z0 ρa_z1 ρm_z0 ρm_z1] × 2 rows, θ, then the
    /// columns' table [ρa_w ρm_w] × 2 columns.
    /// </summary>
    private static double ClosedFormElbo(double[] p)
    {
        static double A(double rho) => DeepExponentialReference.Shape(rho);
        static double M(double rho) => DeepExponentialReference.Mean(rho);
        static double ELog(double a, double m) => DistributionReference.Digamma(a) - Math.Log(a / m);
        static double ELogQ(double a, double m) => a * Math.Log(a / m) - DistributionReference.LogGamma(a) + (a - 1) * ELog(a, m) - a;
        double alpha = TestAlpha, constant = alpha * Math.Log(alpha) - DistributionReference.LogGamma(alpha);
        double v = StableMath.Softplus(p[8]);
        double elbo = 0;
        var rowLog = new double[2];
        var rowMean = new double[2];
        for (int u = 0; u < 2; u++)
        {
            double a0 = A(p[u * 4]), a1 = A(p[u * 4 + 1]), m0 = M(p[u * 4 + 2]), m1 = M(p[u * 4 + 3]);
            // Top: Gamma(α, α). Below: Gamma(α, α/(v z1)).
            elbo += constant + (alpha - 1) * ELog(a1, m1) - alpha * m1 - ELogQ(a1, m1);
            double eLogParent = Math.Log(v) + ELog(a1, m1), eInverseParent = a1 / m1 / (a1 - 1) / v;
            elbo += constant - alpha * eLogParent + (alpha - 1) * ELog(a0, m0) - alpha * m0 * eInverseParent - ELogQ(a0, m0);
            rowLog[u] = ELog(a0, m0);
            rowMean[u] = m0;
        }
        for (int i = 0; i < 2; i++)
        {
            double a = A(p[9 + i * 2]), m = M(p[9 + i * 2 + 1]);
            elbo += constant + (alpha - 1) * ELog(a, m) - alpha * m - ELogQ(a, m);
            for (int u = 0; u < 2; u++)
            {
                double y = TestCounts[u * 2 + i];
                elbo += y * (rowLog[u] + ELog(a, m)) - rowMean[u] * m - DistributionReference.LogGamma(y + 1);
            }
        }
        return elbo;
    }

    /// <summary>
    /// Unbiasedness: the reference's gradient estimate (the device model matches it above), averaged over 20 000
    /// independent draws, against −∇ELBO/C of the closed form (central differences), every parameter within 4.5
    /// standard errors, for k = 2 and 4 and each combination of the estimator's devices (without Rao-Blackwellization
    /// every unit's signal is the whole −ELBO sample). Shapes near 2.5 keep E[1/z] finite (the closed form needs
    /// a > 1). The exact gradient's distance from 0 in standard errors is printed, so the test's power is on record,
    /// and each estimate's variance per draw: docs/MODELS.md's table.
    /// </summary>
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void GradientEstimateIsUnbiased(int samples)
    {
        var settings = TestSettings(samples);
        var data = new CountMatrix("closed form", 2, 2, TestCounts);
        var observed = new bool[4];
        Array.Fill(observed, true);
        double shapeRho = Math.Log(Math.Exp(2.5) - 1);
        // [ρa_z0 ρa_z1 ρm_z0 ρm_z1] per row, θ, [ρa_w ρm_w] per column: shapes 2.2–2.8, means 0.6–2.
        double[] parameters =
        [
            shapeRho, shapeRho + 0.3, 0.4, -0.2,
            shapeRho - 0.3, shapeRho, 1.2, 0.3,
            0.2,
            shapeRho + 0.2, 0.8,
            shapeRho - 0.1, -0.1,
        ];
        Assert.Equal(new DoubleDefLayout(settings, 2, 2).Count, parameters.Length);
        var exact = Numerics.FiniteDifferenceGradient(ClosedFormElbo, parameters, 1e-5).Select(g => -g / 4).ToArray();
        string[] names = ["ρa z0 row 0", "ρa z1 row 0", "ρm z0 row 0", "ρm z1 row 0", "ρa z0 row 1", "ρa z1 row 1", "ρm z0 row 1", "ρm z1 row 1", "θ",
            "ρa w col 0", "ρm w col 0", "ρa w col 1", "ρm w col 1"];
        const int draws = 20_000;
        var failures = new List<string>();
        foreach (var (raoBlackwell, leaveOneOut) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            var estimator = new GammaEstimator(raoBlackwell, leaveOneOut);
            var sum = new double[parameters.Length];
            var squares = new double[parameters.Length];
            for (int draw = 0; draw < draws; draw++)
            {
                var (_, gradient) = DoubleDefReference.LossAndGradient(settings, data, observed, parameters, Philox.Streams.Reparameterize, draw, estimator);
                for (int i = 0; i < gradient.Length; i++)
                {
                    sum[i] += gradient[i];
                    squares[i] += gradient[i] * gradient[i];
                }
            }
            string devices = (raoBlackwell, leaveOneOut) switch
            {
                (false, false) => "none", (true, false) => "Rao-Blackwellized", (false, true) => "leave-one-out baseline", _ => "both",
            };
            var variances = new double[parameters.Length];
            for (int i = 0; i < parameters.Length; i++)
            {
                double mean = sum[i] / draws;
                variances[i] = squares[i] / draws - mean * mean;
                double error = Math.Sqrt(variances[i] / draws), off = (mean - exact[i]) / error;
                output.WriteLine($"k={samples} {devices,-22} {names[i],-12} exact {exact[i],10:F5}  estimate {mean,10:F5}  off {off,6:F2} SE  exact/SE {exact[i] / error,7:F1}");
                if (Math.Abs(off) > 4.5)
                    failures.Add($"{devices} {names[i]}: {off:F1} SE off");
            }
            // A row of the variance table: ×1e3, the parameters in the order named, then the sum.
            output.WriteLine($"| {samples} | {devices} | {string.Join(" | ", variances.Select(v => (1e3 * v).ToString("G3", System.Globalization.CultureInfo.InvariantCulture)))} | {(1e3 * variances.Sum()).ToString("G4", System.Globalization.CultureInfo.InvariantCulture)} |");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    private static void AssertHeldOut(string what, double[] expected, float[] actual)
    {
        for (int cell = 0; cell < expected.Length; cell++)
            if (double.IsNaN(expected[cell]))
                Assert.True(float.IsNaN(actual[cell]), $"{what}: training cell {cell} was written ({actual[cell]})");
        var held = Enumerable.Range(0, expected.Length).Where(cell => !double.IsNaN(expected[cell])).ToArray();
        Numerics.AssertClose(what, held.Select(cell => expected[cell]).ToArray(), held.Select(cell => actual[cell]).ToArray(), 1e-5, 2e-3);
    }
}
