using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// Random-draw coordinates shared by every kernel that samples: the (seed, stream, step) of Philox, and where the
/// rows a kernel sees start in the whole minibatch. A data-parallel rank works on a slice of each global minibatch;
/// with <see cref="FirstExample"/> the slice's first position, a kernel's element e of a row draws counter
/// e + FirstExample·(elements per example), the number the one-process run draws for that example. 0 (the usual
/// case) changes nothing.
/// </summary>
public readonly struct DrawKey
{
    public readonly ulong Seed;
    public readonly uint Stream;
    public readonly long Step;
    public readonly long FirstExample;

    public DrawKey(ulong seed, uint stream, long step, long firstExample = 0)
    {
        Seed = seed;
        Stream = stream;
        Step = step;
        FirstExample = firstExample;
    }

    /// <summary>The key of a stream that belongs to the same draw (the second stochastic layer's, the InfoVAE's
    /// prior draws): the stream moved by <paramref name="streamOffset"/>, seed, step and first example kept.</summary>
    public DrawKey Offset(uint streamOffset) => new(Seed, Stream + streamOffset, Step, FirstExample);

    /// <summary>The key for a kernel whose rows of statistics are not examples but each example's
    /// <paramref name="rowsPerExample"/> rows (a second stochastic layer sampled once per z1 row, k per example):
    /// its first "example" is then row FirstExample·rowsPerExample.</summary>
    public DrawKey PerRow(int rowsPerExample) => new(Seed, Stream, Step, FirstExample * rowsPerExample);

    /// <summary>The Philox counter of a kernel's element <paramref name="element"/> when each example owns
    /// <paramref name="perExample"/> consecutive elements (a row's features, or samples·K codes).</summary>
    public long Counter(long element, long perExample) => element + FirstExample * perExample;
}

/// <summary>
/// The Gaussian encoder's sampler fused with its KL term. The encoder's last layer writes stats [batch, 2K]:
/// μ in columns 0..K-1 and v = log σ² in columns K..2K-1. With s samples per example, z has batch·s rows in
/// example-major order (row r = b·s + i draws from stats row b = r / s); s = 1 is the ordinary VAE.
/// Forward:  ε ~ N(0, I) from Philox keyed by (seed, stream, step, r·K + k); z = μ + exp(v/2)·ε;
///           kl[r] = ½ Σ_k (exp v + μ² − 1 − v) (the analytic KL of row r's example, repeated for each sample).
/// Backward: with the objective rec + klWeight·Σ_b kl[b] (klWeight = β/batch when the loss is a batch mean),
///           dμ = Σ_i dz_i + klWeight·μ and dv = Σ_i dz_i·½·exp(v/2)·ε_i + klWeight·½(exp v − 1).
/// </summary>
public static class Reparameterize
{
    /// <summary>z rows = examples·samples, sample i of example b in row b·samples + i.</summary>
    public static void ReparameterizeForward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> klPerRow, int rows, int latent, DrawKey key, int samples = 1) =>
        kernels.Launch(ForwardKernel, rows, stats, z, epsilon, klPerRow, latent, samples, key);

    /// <summary>The KL weight is klWeight·klWeightFactor[0] (a device float; 1 when none is given).</summary>
    public static void ReparameterizeBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> epsilon, ArrayView<float> dZ,
        ArrayView<float> dStats, int examples, int latent, float klWeight, int samples = 1, ArrayView<float>? klWeightFactor = null) =>
        kernels.Launch(BackwardKernel, examples, stats, epsilon, dZ, dStats, klWeightFactor ?? kernels.Unit, latent, samples, klWeight);

    /// <summary>The backward pass through a sampler with an N(0, I) prior and weighted rows: the IWAE's, and the
    /// two-layer model's at z2 (see <see cref="WeightedBackwardKernel"/>).</summary>
    public static void ImportanceBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon, ArrayView<float> dZ,
        ArrayView<float> normalizedWeights, ArrayView<float> dStats, int examples, int latent, int samples, float scale) =>
        kernels.Launch(WeightedBackwardKernel, examples, stats, z, epsilon, dZ, kernels.None, kernels.None, normalizedWeights, dStats,
            new SamplerShape(latent, samples, gaussianPrior: false, otherGradient: false), scale);

    /// <summary>The two-layer model's z1 sampler: z1 feeds the decoder, q(z2|z1) and p(z1|z2), so its gradient
    /// adds the two networks' and the learned prior's (see <see cref="WeightedBackwardKernel"/>). In the Ladder
    /// VAE nothing but the decoder reads z1: pass <see cref="KernelSet.None"/> as dZ1FromEncoder2.</summary>
    public static void FirstLayerBackward(this KernelSet kernels, ArrayView<float> stats1, ArrayView<float> z1, ArrayView<float> epsilon1, ArrayView<float> priorStats,
        ArrayView<float> dZ1FromDecoder, ArrayView<float> dZ1FromEncoder2, ArrayView<float> rowWeights, ArrayView<float> dStats1,
        int examples, int latent, int samples, float scale) =>
        kernels.Launch(WeightedBackwardKernel, examples, stats1, z1, epsilon1, dZ1FromDecoder, dZ1FromEncoder2, priorStats,
            rowWeights, dStats1, new SamplerShape(latent, samples, gaussianPrior: true, otherGradient: dZ1FromEncoder2.Length > 0), scale);

    /// <summary>One thread per z row: K is small (20–100), and the row's KL sum stays in one register.</summary>
    [Kernel]
    public static void ForwardKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> z,
        ArrayView<float> epsilon,
        ArrayView<float> klPerRow,
        int latent,
        int samples,
        DrawKey key)
    {
        float kl = 0f;
        int statsRow = row / samples * 2 * latent;
        for (int k = 0; k < latent; k++)
        {
            float mu = stats[statsRow + k];
            float logVariance = stats[statsRow + latent + k];
            int index = row * latent + k;
            float eps = Philox.Normal(key.Seed, key.Stream, key.Step, key.Counter(index, (long)samples * latent));
            float variance = MathF.Exp(logVariance);
            z[index] = mu + MathF.Sqrt(variance) * eps;
            epsilon[index] = eps;
            kl += variance + mu * mu - 1f - logVariance;
        }
        klPerRow[row] = 0.5f * kl;
    }

    /// <summary>One thread per example (stats row), like the forward pass (a thread per element costs more than
    /// its work on the CPU accelerator); sums over the example's s samples and writes both halves of its row of
    /// dStats, so no two threads write one element.</summary>
    [Kernel]
    public static void BackwardKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> epsilon,
        ArrayView<float> dZ,
        ArrayView<float> dStats,
        ArrayView<float> klWeightFactor,
        int latent,
        int samples,
        float klWeight)
    {
        // The factor is written on the device (target-rate training's sign(R − σ)); 1 otherwise.
        klWeight *= klWeightFactor[0];
        for (int k = 0; k < latent; k++)
        {
            int muIndex = row * 2 * latent + k;
            int logVarianceIndex = muIndex + latent;
            float mu = stats[muIndex];
            float variance = MathF.Exp(stats[logVarianceIndex]);
            float sigma = MathF.Sqrt(variance);
            float dMu = 0f, dLogVariance = 0f;
            for (int i = 0; i < samples; i++)
            {
                int element = (row * samples + i) * latent + k;
                float dz = dZ[element];
                dMu += dz;
                dLogVariance += dz * 0.5f * sigma * epsilon[element];
            }
            dStats[muIndex] = dMu + klWeight * mu;
            dStats[logVarianceIndex] = dLogVariance + klWeight * 0.5f * (variance - 1f);
        }
    }

    /// <summary>
    /// The backward pass through a Gaussian sampler z = μ + σε whose rows are weighted (one thread per example):
    /// the IWAE's, and the two-layer model's at z2 and z1. Row r's objective term is c_r·(… − log q(z|·) − log p(z))
    /// with c_r = scale·w_r; dZ (plus dZOther, when a second network also reads z) holds what reaches z from
    /// downstream. The prior p(z) adds c_r·z for N(0, I), or c_r·(z − m)·e^(−u) for the two-layer model's
    /// p(z1|z2) = N(m, e^u) with [m | u] in priorStats (one row per z row); −log q adds −½·c_r to dv directly
    /// (ε fixed). So with g_i = dz_i + prior term: dμ = Σ_i g_i and dv = Σ_i g_i·½σε_i − ½·scale·Σ_i w_i.
    /// </summary>
    [Kernel]
    public static void WeightedBackwardKernel(
        Index1D row,
        ArrayView<float> stats,
        ArrayView<float> z,
        ArrayView<float> epsilon,
        ArrayView<float> dZ,
        ArrayView<float> dZOther,
        ArrayView<float> priorStats,
        ArrayView<float> rowWeights,
        ArrayView<float> dStats,
        SamplerShape shape,
        float scale)
    {
        int latent = shape.Latent, samples = shape.Samples;
        float weightSum = 0f;
        for (int i = 0; i < samples; i++)
            weightSum += rowWeights[row * samples + i];
        for (int k = 0; k < latent; k++)
        {
            int muIndex = row * 2 * latent + k;
            int logVarianceIndex = muIndex + latent;
            float sigma = MathF.Exp(0.5f * stats[logVarianceIndex]);
            float dMu = 0f, dLogVariance = 0f;
            for (int i = 0; i < samples; i++)
            {
                int sample = row * samples + i;
                int element = sample * latent + k;
                float code = z[element];
                float priorPull = code;
                if (shape.GaussianPrior != 0)
                {
                    int meanIndex = sample * 2 * latent + k;
                    priorPull = (code - priorStats[meanIndex]) * MathF.Exp(-priorStats[meanIndex + latent]);
                }
                float g = dZ[element] + scale * rowWeights[sample] * priorPull;
                if (shape.OtherGradient != 0)
                    g += dZOther[element];
                dMu += g;
                dLogVariance += g * 0.5f * sigma * epsilon[element];
            }
            dStats[muIndex] = dMu;
            dStats[logVarianceIndex] = dLogVariance - 0.5f * scale * weightSum;
        }
    }
}

/// <summary>What <see cref="Reparameterize.WeightedBackwardKernel"/> works on: K, the samples per example, whether
/// the prior is a learned N(m, e^u) (else N(0, I)), and whether a second gradient of z is added.</summary>
public readonly struct SamplerShape
{
    public readonly int Latent, Samples, GaussianPrior, OtherGradient;

    public SamplerShape(int latent, int samples, bool gaussianPrior, bool otherGradient)
    {
        Latent = latent;
        Samples = samples;
        GaussianPrior = gaussianPrior ? 1 : 0;
        OtherGradient = otherGradient ? 1 : 0;
    }
}
