using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>The widths a planar-flow posterior works with: K latent dimensions, L flow steps, s samples per example.</summary>
public readonly struct FlowShape
{
    public readonly int Latent, Length, Samples;

    public FlowShape(int latent, int length, int samples)
    {
        Latent = latent;
        Length = length;
        Samples = samples;
    }

    /// <summary>Columns of the encoder's output: [μ | log σ² | (u_j, w_j, b_j) for each step j].</summary>
    public int StatsWidth => 2 * Latent + Length * (2 * Latent + 1);

    /// <summary>Where step j's u starts in a stats row (w follows, then b).</summary>
    public int StepOffset(int step) => 2 * Latent + step * (2 * Latent + 1);
}

/// <summary>
/// The planar normalizing flow of Rezende and Mohamed (2015) on a Gaussian posterior, amortised: the encoder writes
/// [μ | log σ² | u_1, w_1, b_1, …, u_L, w_L, b_L] per example. z_0 = μ + σ·ε, then for each step
/// z_j = z_{j−1} + û_j·tanh(w_jᵀz_{j−1} + b_j), with û = u + (m(wᵀu) − wᵀu)·w/‖w‖² and m(x) = −1 + softplus(x),
/// which keeps ûᵀw ≥ −1 so the step is invertible; log|det ∂z_j/∂z_{j−1}| = log|1 + (1 − tanh²(a))·ûᵀw|.
/// The KL term is sampled at z_L: log q(z_L|x) − log p(z_L) = −½Σ(ε² + log σ²) + ½Σz_L² − Σ_j log|det_j| (the 2π
/// terms cancel), so log w = −rec − that (<see cref="ImportanceWeights.SampledKlLogWeights"/>). The forward pass keeps z_0 … z_{L−1} of each row for the backward pass.
/// </summary>
public static class PlanarFlow
{
    /// <summary>1e-12 keeps û finite if an encoder ever writes w = 0 (the reference adds the same).</summary>
    public const float NormFloor = 1e-12f;

    public static void PlanarFlowForward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> states, ArrayView<float> klPerRow, int rows, FlowShape shape, DrawKey key) =>
        kernels.Launch(ForwardKernel, rows, stats, z, epsilon, states, klPerRow, shape, key);

    /// <summary>dStats of each example from its rows' dz (used as scratch: it is overwritten), the sampled KL of
    /// each row weighted by klWeight / samples.</summary>
    public static void PlanarFlowBackward(this KernelSet kernels, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> states, ArrayView<float> dZ, ArrayView<float> dStats, int examples, FlowShape shape, float klWeight) =>
        kernels.Launch(BackwardKernel, examples, stats, z, epsilon, states, dZ, dStats, shape, klWeight);

    private static float Softplus(float x) => MathF.Max(x, 0f) + MathF.Log(1f + MathF.Exp(-MathF.Abs(x)));

    private static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    [Kernel]
    public static void ForwardKernel(Index1D row, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> states, ArrayView<float> klPerRow, FlowShape shape, DrawKey key)
    {
        int latent = shape.Latent, statsRow = row / shape.Samples * shape.StatsWidth, codes = row * latent;
        float baseTerm = 0f, logDeterminants = 0f;
        for (int k = 0; k < latent; k++)
        {
            float eps = Philox.Normal(key.Seed, key.Stream, key.Step, codes + k);
            float logVariance = stats[statsRow + latent + k];
            epsilon[codes + k] = eps;
            z[codes + k] = stats[statsRow + k] + MathF.Exp(0.5f * logVariance) * eps;
            baseTerm += eps * eps + logVariance;
        }
        for (int step = 0; step < shape.Length; step++)
        {
            int u = statsRow + shape.StepOffset(step), w = u + latent;
            float b = stats[w + latent], wu = 0f, ww = 0f, wz = 0f;
            for (int k = 0; k < latent; k++)
            {
                float code = z[codes + k];
                states[(row * shape.Length + step) * latent + k] = code;
                wu += stats[w + k] * stats[u + k];
                ww += stats[w + k] * stats[w + k];
                wz += stats[w + k] * code;
            }
            float r = (Softplus(wu) - 1f - wu) / (ww + NormFloor);
            float h = MathF.Tanh(wz + b);
            float hatUW = wu + r * ww;
            logDeterminants += MathF.Log(MathF.Abs(1f + (1f - h * h) * hatUW));
            for (int k = 0; k < latent; k++)
                z[codes + k] += (stats[u + k] + r * stats[w + k]) * h;
        }
        float zSquares = 0f;
        for (int k = 0; k < latent; k++)
            zSquares += z[codes + k] * z[codes + k];
        klPerRow[row] = 0.5f * (zSquares - baseTerm) - logDeterminants;
    }

    /// <summary>
    /// One thread per example, its samples in turn, each from g = dz + c·z_L (c = klWeight/samples: the prior's
    /// −log p(z_L) = ½Σz² + const) back through the steps, last first. At step j (a = wᵀz + b, h = tanh a,
    /// h' = 1 − h², ψ = h'·ûᵀw, the KL's −c·log|1 + ψ|): G = gᵀû, ∂/∂ψ = −c/(1 + ψ), ∂/∂a = G·h' − 2hh'·(∂/∂ψ)·ûᵀw,
    /// ∂/∂û = g·h + (∂/∂ψ)h'·w, ∂/∂w = (∂/∂ψ)h'·û + (∂/∂a)·z_{j−1}, ∂/∂b = ∂/∂a, and z_{j−1} gets g + (∂/∂a)·w; û's
    /// own map gives ∂/∂u = ∂/∂û + D·(m′ − 1)/‖w‖²·w and ∂/∂w += r·∂/∂û + D·((m′ − 1)·u/‖w‖² − 2(m − s)·w/‖w‖⁴) with
    /// D = (∂/∂û)ᵀw, s = wᵀu, m = −1 + softplus(s), m′ = sigmoid(s), r = (m − s)/‖w‖². At z_0 = μ + σε:
    /// ∂/∂μ = g and ∂/∂log σ² = ½gσε − ½c (log q_0 with ε fixed).
    /// </summary>
    [Kernel]
    public static void BackwardKernel(Index1D example, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> states, ArrayView<float> dZ, ArrayView<float> dStats, FlowShape shape, float klWeight)
    {
        int latent = shape.Latent, width = shape.StatsWidth, statsRow = example * width;
        float c = klWeight / shape.Samples;
        for (int column = 0; column < width; column++)
            dStats[statsRow + column] = 0f;
        for (int i = 0; i < shape.Samples; i++)
        {
            int row = example * shape.Samples + i, codes = row * latent;
            for (int k = 0; k < latent; k++)
                dZ[codes + k] += c * z[codes + k];
            for (int step = shape.Length - 1; step >= 0; step--)
            {
                int u = statsRow + shape.StepOffset(step), w = u + latent, state = (row * shape.Length + step) * latent;
                float b = stats[w + latent], wu = 0f, ww = 0f, wz = 0f, gHatU = 0f, gW = 0f;
                for (int k = 0; k < latent; k++)
                {
                    wu += stats[w + k] * stats[u + k];
                    ww += stats[w + k] * stats[w + k];
                    wz += stats[w + k] * states[state + k];
                }
                float norm = ww + NormFloor, m = Softplus(wu) - 1f, r = (m - wu) / norm;
                float h = MathF.Tanh(wz + b), slope = 1f - h * h, hatUW = wu + r * ww;
                for (int k = 0; k < latent; k++)
                {
                    gHatU += dZ[codes + k] * (stats[u + k] + r * stats[w + k]);
                    gW += dZ[codes + k] * stats[w + k];
                }
                float byPsi = -c / (1f + slope * hatUW);
                float byA = gHatU * slope - 2f * h * slope * byPsi * hatUW;
                float byHatUW = byPsi * slope;
                // D = (∂/∂û)ᵀw = h·gᵀw + (∂/∂ψ)h'·‖w‖².
                float d = h * gW + byHatUW * ww, mSlope = Sigmoid(wu) - 1f;
                for (int k = 0; k < latent; k++)
                {
                    float uk = stats[u + k], wk = stats[w + k], hatU = uk + r * wk, g = dZ[codes + k];
                    float byHatU = g * h + byHatUW * wk;
                    dStats[u + k] += byHatU + d * mSlope / norm * wk;
                    dStats[w + k] += byHatUW * hatU + byA * states[state + k] + r * byHatU
                        + d * (mSlope * uk / norm - 2f * (m - wu) * wk / (norm * norm));
                    dZ[codes + k] = g + byA * wk;
                }
                dStats[w + latent] += byA;
            }
            for (int k = 0; k < latent; k++)
            {
                float g = dZ[codes + k];
                dStats[statsRow + k] += g;
                dStats[statsRow + latent + k] += 0.5f * g * MathF.Exp(0.5f * stats[statsRow + latent + k]) * epsilon[codes + k] - 0.5f * c;
            }
        }
    }
}
