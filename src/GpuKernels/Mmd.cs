using ILGPU;

namespace IlgpuVae.GpuKernels;

public enum MmdKernelKind
{
    /// <summary>k(a, b) = exp(−‖a − b‖² / s), s = 2K (a Gaussian of variance K: the bandwidth grows with the
    /// dimension, as distances between N(0, I) samples do).</summary>
    Gaussian,
    /// <summary>k(a, b) = s / (s + ‖a − b‖²), s = 2K (Tolstikhin et al.'s inverse multiquadric, C = 2·K·σ², σ = 1).</summary>
    InverseMultiquadric,
}

public readonly struct MmdParameters
{
    public readonly int Latent, Rows, Kind;
    /// <summary>s of the kernel (see <see cref="MmdKernelKind"/>).</summary>
    public readonly float Scale;
    /// <summary>λ, the weight of MMD² in the objective, and β, the KL term's.</summary>
    public readonly float Lambda, Beta;

    public MmdParameters(int latent, int rows, MmdKernelKind kind, float lambda, float beta)
    {
        Latent = latent;
        Rows = rows;
        Kind = (int)kind;
        Scale = 2f * latent;
        Lambda = lambda;
        Beta = beta;
    }
}

/// <summary>
/// InfoVAE / MMD-VAE (Zhao et al. 2019): the objective rec + β·KL + λ·MMD²(q(z), p(z)), with MMD² estimated on
/// the batch's B codes z against B draws p from N(0, I) by the (biased) V-statistic
/// MMD² = (1/B²) Σ_ij [k(z_i, z_j) + k(p_i, p_j) − 2 k(z_i, p_j)].
/// Row i's share is r_i = (1/B²) Σ_j [k(z_i, z_j) + k(p_i, p_j) − 2 k(z_i, p_j)] (so Σ_i r_i = MMD²), and
/// ∂MMD²/∂z_i = (4/B²) Σ_j [k'(‖z_i − z_j‖²)(z_i − z_j) − k'(‖z_i − p_j‖²)(z_i − p_j)], k' = dk/d(‖·‖²).
/// One thread per row; B² pairs of K values (B ≤ a few hundred) is little work next to the dense layers.
/// </summary>
public static class Mmd
{
    /// <summary>Each row's share of MMD² and its InfoVAE objective.</summary>
    public static void MmdForward(this KernelSet kernels, ArrayView<float> z, ArrayView<float> prior, ArrayView<float> reconstructionPerRow,
        ArrayView<float> klPerRow, ArrayView<float> mmdPerRow, ArrayView<float> objectivePerRow, MmdParameters parameters) =>
        kernels.Launch(ForwardKernel, parameters.Rows, z, prior, reconstructionPerRow, klPerRow, mmdPerRow, objectivePerRow, parameters);

    /// <summary>Adds scale·∂MMD²/∂z to dZ.</summary>
    public static void MmdBackward(this KernelSet kernels, ArrayView<float> z, ArrayView<float> prior, ArrayView<float> dZ,
        MmdParameters parameters, float scale) =>
        kernels.Launch(BackwardKernel, parameters.Rows, z, prior, dZ, parameters, scale);

    /// <summary>N(0, I) draws, element e from Philox (key, e).</summary>
    public static void PriorSample(this KernelSet kernels, ArrayView<float> prior, DrawKey key) =>
        kernels.Launch(PriorSampleKernel, (int)prior.Length, prior, key);

    public static float Similarity(float squaredDistance, MmdParameters parameters) =>
        parameters.Kind == (int)MmdKernelKind.Gaussian
            ? MathF.Exp(-squaredDistance / parameters.Scale)
            : parameters.Scale / (parameters.Scale + squaredDistance);

    /// <summary>dk / d(‖a − b‖²).</summary>
    public static float Slope(float squaredDistance, MmdParameters parameters)
    {
        if (parameters.Kind == (int)MmdKernelKind.Gaussian)
            return -MathF.Exp(-squaredDistance / parameters.Scale) / parameters.Scale;
        float denominator = parameters.Scale + squaredDistance;
        return -parameters.Scale / (denominator * denominator);
    }

    private static float SquaredDistance(ArrayView<float> a, int rowA, ArrayView<float> b, int rowB, int latent)
    {
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float difference = a[rowA * latent + k] - b[rowB * latent + k];
            sum += difference * difference;
        }
        return sum;
    }

    /// <summary>Row i's share of MMD², and the row's objective rec + β·KL + λ·B·r_i (whose batch mean is
    /// the objective: the mean of λ·B·r_i is λ·MMD²).</summary>
    [Kernel]
    public static void ForwardKernel(
        Index1D row,
        ArrayView<float> z,
        ArrayView<float> prior,
        ArrayView<float> reconstructionPerRow,
        ArrayView<float> klPerRow,
        ArrayView<float> mmdPerRow,
        ArrayView<float> objectivePerRow,
        MmdParameters parameters)
    {
        float sum = 0f;
        for (int j = 0; j < parameters.Rows; j++)
        {
            sum += Similarity(SquaredDistance(z, row, z, j, parameters.Latent), parameters)
                   + Similarity(SquaredDistance(prior, row, prior, j, parameters.Latent), parameters)
                   - 2f * Similarity(SquaredDistance(z, row, prior, j, parameters.Latent), parameters);
        }
        float share = sum / ((float)parameters.Rows * parameters.Rows);
        mmdPerRow[row] = share;
        objectivePerRow[row] = reconstructionPerRow[row] + parameters.Beta * klPerRow[row]
                               + parameters.Lambda * parameters.Rows * share;
    }

    /// <summary>Adds scale·∂MMD²/∂z_i to dZ's row i (scale = λ for the objective above).</summary>
    [Kernel]
    public static void BackwardKernel(
        Index1D row,
        ArrayView<float> z,
        ArrayView<float> prior,
        ArrayView<float> dZ,
        MmdParameters parameters,
        float scale)
    {
        int latent = parameters.Latent;
        float factor = scale * 4f / ((float)parameters.Rows * parameters.Rows);
        for (int k = 0; k < latent; k++)
        {
            float code = z[row * latent + k];
            float gradient = 0f;
            for (int j = 0; j < parameters.Rows; j++)
            {
                gradient += Slope(SquaredDistance(z, row, z, j, latent), parameters) * (code - z[j * latent + k])
                            - Slope(SquaredDistance(z, row, prior, j, latent), parameters) * (code - prior[j * latent + k]);
            }
            dZ[row * latent + k] += factor * gradient;
        }
    }

    /// <summary>Fills prior with N(0, I) draws keyed like the sampler's ε (one stream of its own).</summary>
    [Kernel]
    public static void PriorSampleKernel(Index1D element, ArrayView<float> prior, DrawKey key) =>
        prior[element] = Philox.Normal(key.Seed, key.Stream, key.Step, element);
}
