namespace IlgpuVae.GpuKernels;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
/// generator. Each draw is a pure function of (key, counter), so kernels hold no generator state, any element can
/// be drawn in any order, and the CPU and GPU produce identical bits. The same code runs on the host and inside
/// kernels.
/// </summary>
public static class Philox
{
    private const uint Multiplier0 = 0xD2511F53;
    private const uint Multiplier1 = 0xCD9E8D57;
    private const uint KeyBump0 = 0x9E3779B9;
    private const uint KeyBump1 = 0xBB67AE85;

    /// <summary>One Philox4x32-10 block: ten rounds over a 128-bit counter with a 64-bit key.</summary>
    public static void Block(
        uint counter0, uint counter1, uint counter2, uint counter3,
        uint key0, uint key1,
        out uint out0, out uint out1, out uint out2, out uint out3)
    {
        uint c0 = counter0, c1 = counter1, c2 = counter2, c3 = counter3;
        uint k0 = key0, k1 = key1;
        // ILGPU 1.5.3 does not unroll loops; ten rounds of a few integer ops are cheap either way.
        for (int round = 0; round < 10; round++)
        {
            ulong product0 = (ulong)Multiplier0 * c0;
            ulong product1 = (ulong)Multiplier1 * c2;
            uint hi0 = (uint)(product0 >> 32), lo0 = (uint)product0;
            uint hi1 = (uint)(product1 >> 32), lo1 = (uint)product1;
            c0 = hi1 ^ c1 ^ k0;
            c1 = lo1;
            c2 = hi0 ^ c3 ^ k1;
            c3 = lo0;
            k0 += KeyBump0;
            k1 += KeyBump1;
        }
        out0 = c0;
        out1 = c1;
        out2 = c2;
        out3 = c3;
    }

    /// <summary>
    /// Maps 32 random bits to a float strictly inside (0, 1), so log(u) is always finite: 23 bits plus a half
    /// step, which a float holds exactly (24 bits plus a half would round the top value up to 1).
    /// </summary>
    public static float ToUnitInterval(uint bits) => ((bits >> 9) + 0.5f) * (1f / 8388608f);

    /// <summary>
    /// A uniform draw in (0, 1) for element <paramref name="element"/> of draw <paramref name="step"/> in stream
    /// <paramref name="stream"/> (streams keep the sampler, the binarizer and evaluation apart).
    /// </summary>
    public static float Uniform(ulong seed, uint stream, long step, long element)
    {
        Block((uint)element, (uint)(element >> 32), (uint)step, stream,
            (uint)seed, (uint)(seed >> 32), out uint bits, out _, out _, out _);
        return ToUnitInterval(bits);
    }

    /// <summary>A standard normal draw by Box–Muller from the first two words of one Philox block.</summary>
    public static float Normal(ulong seed, uint stream, long step, long element)
    {
        Block((uint)element, (uint)(element >> 32), (uint)step, stream,
            (uint)seed, (uint)(seed >> 32), out uint bits0, out uint bits1, out _, out _);
        float u1 = ToUnitInterval(bits0);
        float u2 = ToUnitInterval(bits1);
        float radius = MathF.Sqrt(-2f * MathF.Log(u1));
        return radius * MathF.Cos(2f * MathF.PI * u2);
    }

    /// <summary>The same draw as <see cref="Normal"/> evaluated in double, for the references.</summary>
    public static double NormalDouble(ulong seed, uint stream, long step, long element)
    {
        Block((uint)element, (uint)(element >> 32), (uint)step, stream,
            (uint)seed, (uint)(seed >> 32), out uint bits0, out uint bits1, out _, out _);
        double u1 = ToUnitInterval(bits0);
        double u2 = ToUnitInterval(bits1);
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>
    /// Random streams: each use of randomness has its own, so changing one never shifts another. Within a stream,
    /// draws are keyed by a step index of which the low 32 bits enter the counter; callers keep it below 2³².
    /// </summary>
    public static class Streams
    {
        public const uint Reparameterize = 1;
        public const uint Binarize = 2;
        public const uint EvalReparameterize = 3;
        public const uint EvalBinarize = 4;
        public const uint Shuffle = 5;
        public const uint Initialise = 6;
        public const uint Sample = 7;
        public const uint ImportanceReparameterize = 8;
        public const uint ImportanceBinarize = 9;
        public const uint StaticBinarize = 10;
        public const uint Surgery = 11;
        public const uint HeldOutCells = 12;

        /// <summary>The stream of a second stochastic layer's ε: its first layer's stream plus this, so the two
        /// layers of a step never share a draw.</summary>
        public const uint SecondLayerOffset = 16;

        /// <summary>The InfoVAE's prior draws for MMD: the sampler's stream plus this.</summary>
        public const uint MmdPriorOffset = 32;

        /// <summary>The mutual autoencoder's generated pairs: z ~ N(0, I) from the sampler's stream plus this, and x's
        /// noise (or Bernoulli uniforms) from the sampler's stream plus this and one.</summary>
        public const uint MutualPriorOffset = 48;
        public const uint MutualObservationOffset = 49;

        /// <summary>The hierarchical variational model's ε₂ (z = λ + τ·ε₂): the sampler's stream plus this.</summary>
        public const uint HvmOffset = 64;

        /// <summary>The double deep exponential family's column units: the sampler's stream plus this (its row units
        /// draw from the sampler's stream itself).</summary>
        public const uint DoubleDefColumnOffset = 80;

        /// <summary>The stream offset of stochastic layer <paramref name="layer"/>'s ε in a model of several (the
        /// Ladder VAE's): 0 for z1, <see cref="SecondLayerOffset"/> for z2, and 128 + 16·(l − 3) above, clear of
        /// every other offset whatever the base stream (all base streams are under 16).</summary>
        public static uint LayerOffset(int layer) => layer switch
        {
            1 => 0,
            2 => SecondLayerOffset,
            _ => 128 + 16 * (uint)(layer - 3),
        };
    }
}
