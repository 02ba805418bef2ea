using IlgpuVae.GpuKernels;
using IlgpuVae.Model;

namespace IlgpuVae.Tests;

public sealed class PhiloxTests
{
    // Known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors): counter, key → output.
    [Theory]
    [InlineData(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void MatchesPublishedVectors(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint e0, uint e1, uint e2, uint e3)
    {
        Philox.Block(c0, c1, c2, c3, k0, k1, out uint o0, out uint o1, out uint o2, out uint o3);
        Assert.Equal([e0, e1, e2, e3], new[] { o0, o1, o2, o3 });
    }

    [Fact]
    public void NormalDrawsHaveUnitMomentsAndFloatMatchesDouble()
    {
        const int count = 200_000;
        double sum = 0, sumSquares = 0, worstDifference = 0;
        for (int i = 0; i < count; i++)
        {
            float value = Philox.Normal(42, Philox.Streams.Reparameterize, 3, i);
            double exact = Philox.NormalDouble(42, Philox.Streams.Reparameterize, 3, i);
            worstDifference = Math.Max(worstDifference, Math.Abs(value - exact));
            sum += value;
            sumSquares += value * value;
        }
        double mean = sum / count, variance = sumSquares / count - mean * mean;
        // Standard errors at n = 200 000: mean 0.0022, variance 0.0032; 5 standard errors each.
        Assert.InRange(mean, -0.011, 0.011);
        Assert.InRange(variance, 1 - 0.016, 1 + 0.016);
        // The float draw is the double draw rounded: log and cos in float lose a few ulps of values below ~6.
        Assert.True(worstDifference < 1e-5, $"float and double normal draws differ by {worstDifference}");
    }

    [Fact]
    public void UniformStaysInsideTheOpenUnitInterval()
    {
        Assert.True(Philox.ToUnitInterval(0) > 0f);
        Assert.True(Philox.ToUnitInterval(uint.MaxValue) < 1f);
    }

    [Fact]
    public void ShuffleIsAPermutationFixedBySeedAndEpoch()
    {
        var first = Shuffle.Permutation(1000, 7, 0);
        Assert.Equal(Enumerable.Range(0, 1000), first.Order());
        Assert.Equal(first, Shuffle.Permutation(1000, 7, 0));
        Assert.NotEqual(first, Shuffle.Permutation(1000, 7, 1));
        Assert.NotEqual(first, Shuffle.Permutation(1000, 8, 0));
    }
}
