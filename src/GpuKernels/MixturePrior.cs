using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>The widths a mixture prior works with: K latent dimensions, C components, s samples per example.</summary>
public readonly struct MixtureShape
{
    public readonly int Latent, Components, Samples;

    public MixtureShape(int latent, int components, int samples)
    {
        Latent = latent;
        Components = components;
        Samples = samples;
    }

    /// <summary>Columns of a stats row, the encoder's and each component's: [μ | log σ²].</summary>
    public int StatsWidth => 2 * Latent;
}

/// <summary>
/// A diagonal Gaussian q(z|x) = N(μ, σ²) against a learned multimodal prior p(z) = (1/C) Σ_c N(z; μ_c, σ_c²): the
/// mixture of Gaussians or the VampPrior (Tomczak and Welling 2018), whose components are q(z|u_c) of learned
/// pseudo-inputs. The components arrive as stats rows [μ_c | log σ_c²] from whatever network makes them. There is
/// no closed form for the KL term, so it is sampled at z = μ + σ·ε: log q(z|x) − log p(z) =
/// −½Σ(ε² + log σ²) − logsumexp_c(−½Σ(log σ_c² + (z − μ_c)²/σ_c²)) + log C (the 2π terms cancel), and log w for
/// L_k is −rec − that. The forward pass keeps each row's responsibilities r_c = p(c|z) for the backward passes.
/// </summary>
public static class MixturePrior
{
    public static void MixturePriorForward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> components,
        ArrayView<float> z, ArrayView<float> epsilon, ArrayView<float> klPerRow, ArrayView<float> responsibilities, int rows,
        MixtureShape shape, DrawKey key) =>
        kernels.Launch(ForwardKernel, rows, stats, components, z, epsilon, klPerRow, responsibilities, shape, key);

    /// <summary>dStats of each example from its rows' dz and the sampled KL of each row weighted by
    /// klWeight / samples, or, with <paramref name="rowWeights"/> given, by klWeight·rowWeights[row] (the
    /// importance-weighted bound's w̃, klWeight then its scale).</summary>
    public static void MixturePriorBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> components,
        ArrayView<float> z, ArrayView<float> epsilon, ArrayView<float> responsibilities, ArrayView<float> dZ,
        ArrayView<float> dStats, int examples, MixtureShape shape, float klWeight, ArrayView<float>? rowWeights = null) =>
        kernels.Launch(BackwardKernel, examples, stats, components, z, epsilon, responsibilities, dZ, dStats, shape, klWeight,
            rowWeights ?? kernels.None);

    /// <summary>d/d[μ_c | log σ_c²] of the same weighted KL terms, summed over all <paramref name="rows"/> rows (one
    /// thread per component column, each summing the rows in order, so the result is the same on every run).</summary>
    public static void MixturePriorComponentsBackward(this KernelSet kernels, ArrayView<float> components, ArrayView<float> z,
        ArrayView<float> responsibilities, ArrayView<float> dComponents, int rows, MixtureShape shape, float klWeight,
        ArrayView<float>? rowWeights = null) =>
        kernels.Launch(ComponentsBackwardKernel, shape.Components * shape.StatsWidth, components, z, responsibilities,
            dComponents, rows, shape, klWeight, rowWeights ?? kernels.None);

    /// <summary>Row <paramref name="row"/>'s weight: klWeight / samples, or klWeight·rowWeights[row] when they are given.</summary>
    private static float RowWeight(ArrayView<float> rowWeights, int row, float klWeight, int samples) =>
        rowWeights.Length > 0 ? klWeight * rowWeights[row] : klWeight / samples;

    /// <summary>
    /// One thread per z row: ε and z as the plain Gaussian sampler draws them (the same Philox counters), then
    /// each component's log density up to the shared constant, their log-sum-exp with the largest factored out, the
    /// KL term and the responsibilities exp(ℓ_c − logsumexp).
    /// </summary>
    [Kernel]
    public static void ForwardKernel(Index1D row, ArrayView<float> stats, ArrayView<float> components, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> klPerRow, ArrayView<float> responsibilities, MixtureShape shape, DrawKey key)
    {
        int latent = shape.Latent, statsRow = row / shape.Samples * shape.StatsWidth, codes = row * latent;
        int weights = row * shape.Components;
        float logQ = 0f;
        for (int k = 0; k < latent; k++)
        {
            float eps = Philox.Normal(key.Seed, key.Stream, key.Step, key.Counter(codes + k, (long)shape.Samples * latent));
            float logVariance = stats[statsRow + latent + k];
            epsilon[codes + k] = eps;
            z[codes + k] = stats[statsRow + k] + MathF.Exp(0.5f * logVariance) * eps;
            logQ -= 0.5f * (eps * eps + logVariance);
        }
        float largest = float.NegativeInfinity;
        for (int c = 0; c < shape.Components; c++)
        {
            float logDensity = ComponentLogDensity(components, z, codes, c, shape);
            responsibilities[weights + c] = logDensity;
            largest = MathF.Max(largest, logDensity);
        }
        float total = 0f;
        for (int c = 0; c < shape.Components; c++)
            total += MathF.Exp(responsibilities[weights + c] - largest);
        float logSum = largest + MathF.Log(total);
        for (int c = 0; c < shape.Components; c++)
            responsibilities[weights + c] = MathF.Exp(responsibilities[weights + c] - logSum);
        klPerRow[row] = logQ - logSum + MathF.Log(shape.Components);
    }

    /// <summary>−½Σ(log σ_c² + (z − μ_c)²/σ_c²) of component c at the z row starting at <paramref name="codes"/>.</summary>
    private static float ComponentLogDensity(ArrayView<float> components, ArrayView<float> z, int codes, int c, MixtureShape shape)
    {
        int latent = shape.Latent, at = c * shape.StatsWidth;
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float logVariance = components[at + latent + k], difference = z[codes + k] - components[at + k];
            sum += logVariance + difference * difference * MathF.Exp(-logVariance);
        }
        return -0.5f * sum;
    }

    /// <summary>
    /// One thread per example, its samples in turn: g = dz + c·Σ_c r_c (z − μ_c)/σ_c² (c = klWeight/samples: the
    /// gradient of −c·log p(z)), then at z = μ + σε, ∂/∂μ = g and ∂/∂log σ² = ½gσε − ½c (log q with ε fixed).
    /// </summary>
    [Kernel]
    public static void BackwardKernel(Index1D example, ArrayView<float> stats, ArrayView<float> components, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> responsibilities, ArrayView<float> dZ, ArrayView<float> dStats,
        MixtureShape shape, float klWeight, ArrayView<float> rowWeights)
    {
        int latent = shape.Latent, statsRow = example * shape.StatsWidth;
        for (int k = 0; k < latent; k++)
        {
            float sigma = MathF.Exp(0.5f * stats[statsRow + latent + k]), dMu = 0f, dLogVariance = 0f;
            for (int i = 0; i < shape.Samples; i++)
            {
                int row = example * shape.Samples + i, code = row * latent + k;
                float weight = RowWeight(rowWeights, row, klWeight, shape.Samples);
                float pull = 0f;
                for (int c = 0; c < shape.Components; c++)
                {
                    int at = c * shape.StatsWidth;
                    pull += responsibilities[row * shape.Components + c] * (z[code] - components[at + k]) * MathF.Exp(-components[at + latent + k]);
                }
                float g = dZ[code] + weight * pull;
                dMu += g;
                dLogVariance += 0.5f * g * sigma * epsilon[code] - 0.5f * weight;
            }
            dStats[statsRow + k] = dMu;
            dStats[statsRow + latent + k] = dLogVariance;
        }
    }

    /// <summary>
    /// One thread per component column: for μ_c, −c·Σ_rows r_c (z − μ_c)/σ_c²; for log σ_c², c·Σ_rows r_c·½(1 −
    /// (z − μ_c)²/σ_c²), the gradients of −c·log p(z) with c = klWeight/samples.
    /// </summary>
    [Kernel]
    public static void ComponentsBackwardKernel(Index1D index, ArrayView<float> components, ArrayView<float> z,
        ArrayView<float> responsibilities, ArrayView<float> dComponents, int rows, MixtureShape shape, float klWeight,
        ArrayView<float> rowWeights)
    {
        int latent = shape.Latent, c = index / shape.StatsWidth, column = index % shape.StatsWidth;
        int k = column % latent, at = c * shape.StatsWidth;
        bool isMean = column < latent;
        float mean = components[at + k], precision = MathF.Exp(-components[at + latent + k]), sum = 0f;
        for (int row = 0; row < rows; row++)
        {
            float difference = z[row * latent + k] - mean, responsibility = responsibilities[row * shape.Components + c];
            float term = isMean
                ? -responsibility * difference * precision
                : 0.5f * responsibility * (1f - difference * difference * precision);
            // The ELBO's rows share one weight, applied once to the sum as before; the IWAE's each have their own.
            sum += rowWeights.Length > 0 ? klWeight * rowWeights[row] * term : term;
        }
        dComponents[index] = rowWeights.Length > 0 ? sum : klWeight / shape.Samples * sum;
    }
}
