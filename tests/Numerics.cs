using System.Globalization;
using System.Text;
using ILGPU;
using ILGPU.Runtime;

namespace IlgpuVae.Tests;

/// <summary>Comparison helpers: relative + absolute tolerance, and the worst element named on failure.</summary>
public static class Numerics
{
    /// <summary>
    /// Passes when |actual − expected| ≤ absolute + relative·scale for every element, where scale is |expected|
    /// or, where given, a per-element magnitude (for dot products, Σ|a·b|, which bounds their rounding error).
    /// </summary>
    public static void AssertClose(string what, IReadOnlyList<double> expected, IReadOnlyList<float> actual,
        double relative, double absolute, IReadOnlyList<double>? scale = null) =>
        AssertClose(what, expected, actual.Select(value => (double)value).ToArray(), relative, absolute, scale);

    /// <summary>As the float overload, for double outputs, compared in double (not rounded to float first).</summary>
    public static void AssertClose(string what, IReadOnlyList<double> expected, IReadOnlyList<double> actual,
        double relative, double absolute, IReadOnlyList<double>? scale = null)
    {
        Assert.Equal(expected.Count, actual.Count);
        double worstExcess = double.NegativeInfinity;
        int worst = -1;
        for (int i = 0; i < expected.Count; i++)
        {
            double magnitude = scale?[i] ?? Math.Abs(expected[i]);
            double allowed = absolute + relative * magnitude;
            double error = Math.Abs(actual[i] - expected[i]);
            if (double.IsNaN(actual[i]) || double.IsNaN(error))
                error = double.PositiveInfinity;
            double excess = error / allowed;
            if (excess > worstExcess)
            {
                worstExcess = excess;
                worst = i;
            }
        }
        if (worst >= 0 && worstExcess > 1)
        {
            var message = new StringBuilder();
            message.Append(CultureInfo.InvariantCulture,
                $"{what}: worst element {worst} of {expected.Count}: expected {expected[worst]:R}, got {actual[worst]:R}, ");
            message.Append(CultureInfo.InvariantCulture,
                $"error {Math.Abs(actual[worst] - expected[worst]):E3} is {worstExcess:F2}× the tolerance (abs {absolute:E1} + rel {relative:E1})");
            Assert.Fail(message.ToString());
        }
    }

    /// <summary>Double outputs that follow the same operations in double on both sides (the deep GP's kernels against
    /// their references): every element within <paramref name="ofLargest"/> of the expected values' largest
    /// magnitude.</summary>
    public static void AssertCloseToLargest(string what, double[] expected, double[] actual, double ofLargest)
    {
        Assert.Equal(expected.Length, actual.Length);
        double allowed = ofLargest * Math.Max(expected.Max(Math.Abs), 1e-300);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= allowed, $"{what}: element {i} expected {expected[i]:R}, got {actual[i]:R}");
    }

    /// <summary>Uniform values in [low, high) from a seeded generator (test data only).</summary>
    public static float[] Uniform(Random random, int count, double low = -1, double high = 1) =>
        Enumerable.Range(0, count).Select(_ => (float)(low + (high - low) * random.NextDouble())).ToArray();

    public static double[] ToDouble(float[] values) => values.Select(value => (double)value).ToArray();

    public static MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(this Accelerator accelerator, T[] values)
        where T : unmanaged =>
        values.Length == 0 ? accelerator.Allocate1D<T>(1) : accelerator.Allocate1D(values);

    /// <summary>Central differences of f at x, in double: the independent check of every backward pass.</summary>
    public static double[] FiniteDifferenceGradient(Func<double[], double> f, double[] x, double step = 1e-6)
    {
        var gradient = new double[x.Length];
        var probe = (double[])x.Clone();
        for (int i = 0; i < x.Length; i++)
        {
            double original = probe[i];
            probe[i] = original + step;
            double up = f(probe);
            probe[i] = original - step;
            double down = f(probe);
            probe[i] = original;
            gradient[i] = (up - down) / (2 * step);
        }
        return gradient;
    }
}
