using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>The widths a planar-flow posterior works with: K latent dimensions, L flow steps, s samples per example,
/// and the base Gaussian's blocks: 2 for [μ | log σ²], 3 for a rank-one base [μ | log d | u] (see <see cref="RankOne"/>).</summary>
public readonly struct FlowShape
{
    public readonly int Latent, Length, Samples, BaseBlocks;

    public FlowShape(int latent, int length, int samples, int baseBlocks = 2)
    {
        Latent = latent;
        Length = length;
        Samples = samples;
        BaseBlocks = baseBlocks;
    }

    /// <summary>Columns of the encoder's output: [μ | log σ² (or log d | u) | (u_j, w_j, b_j) for each step j].</summary>
    public int StatsWidth => BaseBlocks * Latent + Length * (2 * Latent + 1);

    /// <summary>Where step j's u starts in a stats row (w follows, then b).</summary>
    public int StepOffset(int step) => BaseBlocks * Latent + step * (2 * Latent + 1);
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

    /// <summary>
    /// One step on the row of <paramref name="values"/> at <paramref name="codes"/>, in place, with the step's (u, w, b)
    /// at <paramref name="u"/> of <paramref name="stats"/>; the step's input is kept at <paramref name="state"/> of
    /// <paramref name="states"/>. Returns log|det| of the step. (Kernels of the posterior and of the HVM's inverse
    /// flow share it.)
    /// </summary>
    public static float StepForward(ArrayView<float> stats, int u, ArrayView<float> values, int codes, ArrayView<float> states, int state, int latent)
    {
        int w = u + latent;
        float b = stats[w + latent], wu = 0f, ww = 0f, wz = 0f;
        for (int k = 0; k < latent; k++)
        {
            float code = values[codes + k];
            states[state + k] = code;
            wu += stats[w + k] * stats[u + k];
            ww += stats[w + k] * stats[w + k];
            wz += stats[w + k] * code;
        }
        float r = (Softplus(wu) - 1f - wu) / (ww + NormFloor);
        float h = MathF.Tanh(wz + b);
        float hatUW = wu + r * ww;
        for (int k = 0; k < latent; k++)
            values[codes + k] += (stats[u + k] + r * stats[w + k]) * h;
        return MathF.Log(MathF.Abs(1f + (1f - h * h) * hatUW));
    }

    /// <summary>
    /// One step's backward pass for a loss that holds the step's output through g (the row of <paramref name="g"/>
    /// at <paramref name="codes"/>, replaced by the gradient of the step's input) and −c·log|det| of the step: adds
    /// to the step's (u, w, b) in <paramref name="dStats"/> (laid out as the stats). See <see cref="BackwardKernel"/>.
    /// </summary>
    public static void StepBackward(ArrayView<float> stats, int u, ArrayView<float> states, int state, ArrayView<float> g, int codes,
        ArrayView<float> dStats, int latent, float c)
    {
        int w = u + latent;
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
            gHatU += g[codes + k] * (stats[u + k] + r * stats[w + k]);
            gW += g[codes + k] * stats[w + k];
        }
        float byPsi = -c / (1f + slope * hatUW);
        float byA = gHatU * slope - 2f * h * slope * byPsi * hatUW;
        float byHatUW = byPsi * slope;
        // D = (∂/∂û)ᵀw = h·gᵀw + (∂/∂ψ)h'·‖w‖².
        float d = h * gW + byHatUW * ww, mSlope = Sigmoid(wu) - 1f;
        for (int k = 0; k < latent; k++)
        {
            float uk = stats[u + k], wk = stats[w + k], hatU = uk + r * wk, gk = g[codes + k];
            float byHatU = gk * h + byHatUW * wk;
            dStats[u + k] += byHatU + d * mSlope / norm * wk;
            dStats[w + k] += byHatUW * hatU + byA * states[state + k] + r * byHatU
                + d * (mSlope * uk / norm - 2f * (m - wu) * wk / (norm * norm));
            g[codes + k] = gk + byA * wk;
        }
        dStats[w + latent] += byA;
    }

    /// <summary>One thread per z row: z_0 from the base (diagonal, or rank-one with baseTerm = εᵀε + log|C|), the
    /// steps, and the sampled KL.</summary>
    [Kernel]
    public static void ForwardKernel(Index1D row, ArrayView<float> stats, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> states, ArrayView<float> klPerRow, FlowShape shape, DrawKey key)
    {
        int latent = shape.Latent, statsRow = row / shape.Samples * shape.StatsWidth, codes = row * latent;
        float baseTerm = 0f, logDeterminants = 0f;
        if (shape.BaseBlocks == 3)
        {
            for (int k = 0; k < latent; k++)
                epsilon[codes + k] = Philox.Normal(key.Seed, key.Stream, key.Step, key.Counter(codes + k, (long)shape.Samples * latent));
            baseTerm = RankOne.Draw(stats, statsRow, epsilon, z, codes, latent);
        }
        else
            for (int k = 0; k < latent; k++)
            {
                float eps = Philox.Normal(key.Seed, key.Stream, key.Step, key.Counter(codes + k, (long)shape.Samples * latent));
                float logVariance = stats[statsRow + latent + k];
                epsilon[codes + k] = eps;
                z[codes + k] = stats[statsRow + k] + MathF.Exp(0.5f * logVariance) * eps;
                baseTerm += eps * eps + logVariance;
            }
        for (int step = 0; step < shape.Length; step++)
            logDeterminants += StepForward(stats, statsRow + shape.StepOffset(step), z, codes, states, (row * shape.Length + step) * latent, latent);
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
    /// ∂/∂μ = g and ∂/∂log σ² = ½gσε − ½c (log q_0 with ε fixed); a rank-one base takes g through its sampler and
    /// c·log q_0 through log|C| (<see cref="RankOne.AddBaseGradient"/>).
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
                StepBackward(stats, statsRow + shape.StepOffset(step), states, (row * shape.Length + step) * latent, dZ, codes, dStats, latent, c);
            if (shape.BaseBlocks == 3)
                RankOne.AddBaseGradient(stats, epsilon, dZ, dStats, statsRow, codes, latent, c);
            else
                for (int k = 0; k < latent; k++)
                {
                    float g = dZ[codes + k];
                    dStats[statsRow + k] += g;
                    dStats[statsRow + latent + k] += 0.5f * g * MathF.Exp(0.5f * stats[statsRow + latent + k]) * epsilon[codes + k] - 0.5f * c;
                }
        }
    }
}
