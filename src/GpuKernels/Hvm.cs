using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// The hierarchical variational model (Ranganath, Tran and Blei 2016) with Gaussian mean-field factors: the
/// variational prior q(λ|x) is the planar-flow posterior of <see cref="PlanarFlow"/> (λ = f_L ∘ … ∘ f_1(λ_0),
/// λ_0 = μ + σ·ε₁), z = λ + τ·ε₂ draws q(z|λ) = N(λ, diag τ²) with τ² learned, and the auxiliary r(λ|z) =
/// N(a(z), diag b²(z)) comes from a network on z. Per row, the hierarchical ELBO's sampled KL term is
/// log q(λ|x) + log q(z|λ) − log r(λ|z) − log p(z) = flowKl − ½Σλ² + ½Σz² − ½Σ(log τ² + ε₂²) + ½Σ(log b² + (λ − a)²/b²),
/// where flowKl = log q(λ|x) − log N(λ; 0, I) is what the flow kernels compute (every 2π term cancels). log w =
/// −rec − it is an importance weight over the pair (z, λ) whose target p(x, z)·r(λ|z) integrates to p(x), so L_k
/// of these weights is a lower bound on log p(x). The backward kernels weight each row's term by
/// w = klWeight / samples, as the flow's do.
/// r may instead be an inverse flow (the HVM paper's alternative): r's network writes [a | log b² | (u, w, b) per
/// step] and r(λ|z) = N(y; a, b²)·|det ∂y/∂λ| with y = g_J ∘ … ∘ g_1(λ) through planar steps g_j, so its density
/// needs only the steps' forward direction; −log r is then ½Σ(log b² + (y − a)²/b²) − Σ_j log|det_j| (+ the 2π term
/// that cancels), computed per row by <see cref="HvmInverseFlowForward"/> as the r term.
/// </summary>
public static class Hvm
{
    /// <summary>z = λ + exp(½ log τ²)·ε₂ per element, ε₂ from Philox keyed by <paramref name="key"/> and the element.</summary>
    public static void HvmSample(this KernelSet kernels, ArrayView<float> lambda, ArrayView<float> logTau, ArrayView<float> z,
        ArrayView<float> epsilon, int latent, int samples, DrawKey key) =>
        kernels.Launch(SampleKernel, (int)lambda.Length, lambda, logTau, z, epsilon, latent, samples, key);

    public static void HvmKl(this KernelSet kernels, ArrayView<float> flowKl, ArrayView<float> lambda, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> logTau, ArrayView<float> rStats, ArrayView<float> klPerRow, int rows, int latent) =>
        kernels.Launch(KlKernel, rows, flowKl, lambda, z, epsilon, logTau, rStats, klPerRow, latent);

    /// <summary>w·d/d r's stats [rows, 2K] of ½Σ(log b² + (λ − a)²/b²): [−(λ − a)/b² | ½(1 − (λ − a)²/b²)].</summary>
    public static void HvmAuxiliaryGradient(this KernelSet kernels, ArrayView<float> lambda, ArrayView<float> rStats, ArrayView<float> dRStats,
        int rows, int latent, float weight) =>
        kernels.Launch(AuxiliaryGradientKernel, rows, lambda, rStats, dRStats, latent, weight);

    /// <summary>d/dλ of Σ dz·z + w·(the row's term − flowKl): g + w(λ − a)/b² − wλ with g = dz + w·z, into
    /// <paramref name="dLambda"/>; <paramref name="dZ"/> holds the decoder's and r's gradients of z.</summary>
    public static void HvmLambdaGradient(this KernelSet kernels, ArrayView<float> lambda, ArrayView<float> z, ArrayView<float> rStats,
        ArrayView<float> dZ, ArrayView<float> dLambda, int latent, float weight) =>
        kernels.Launch(LambdaGradientKernel, (int)lambda.Length, lambda, z, rStats, dZ, dLambda, latent, weight);

    /// <summary>d/d log τ² [K]: Σ_rows (dz + w·z)·½τε₂ − ½w (one thread per dimension, the rows in order).</summary>
    public static void HvmTauGradient(this KernelSet kernels, ArrayView<float> z, ArrayView<float> epsilon, ArrayView<float> logTau,
        ArrayView<float> dZ, ArrayView<float> dLogTau, int rows, int latent, float weight) =>
        kernels.Launch(TauGradientKernel, latent, z, epsilon, logTau, dZ, dLogTau, rows, latent, weight);

    /// <summary>y = g(λ) into <paramref name="flowed"/> (each step's input kept in <paramref name="states"/>) and the
    /// row's r term ½Σ(log b² + (y − a)²/b²) − Σ log|det_j|; r's stats rows are <paramref name="shape"/>'s.</summary>
    public static void HvmInverseFlowForward(this KernelSet kernels, ArrayView<float> lambda, ArrayView<float> rStats, ArrayView<float> flowed,
        ArrayView<float> states, ArrayView<float> rTerm, int rows, FlowShape shape) =>
        kernels.Launch(InverseFlowForwardKernel, rows, lambda, rStats, flowed, states, rTerm, shape);

    /// <summary>The KL term with r's given per row: flowKl + ½Σ(−λ² + z² − log τ² − ε₂²) + rTerm.</summary>
    public static void HvmKlWithAuxiliaryTerm(this KernelSet kernels, ArrayView<float> flowKl, ArrayView<float> lambda, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> logTau, ArrayView<float> rTerm, ArrayView<float> klPerRow, int rows, int latent) =>
        kernels.Launch(KlWithAuxiliaryTermKernel, rows, flowKl, lambda, z, epsilon, logTau, rTerm, klPerRow, latent);

    /// <summary>w·d rTerm/d r's stats (written, flow steps included) and w·d rTerm/dλ (into <paramref name="dLambdaFromR"/>).</summary>
    public static void HvmInverseFlowBackward(this KernelSet kernels, ArrayView<float> rStats, ArrayView<float> states, ArrayView<float> flowed,
        ArrayView<float> dRStats, ArrayView<float> dLambdaFromR, int rows, FlowShape shape, float weight) =>
        kernels.Launch(InverseFlowBackwardKernel, rows, rStats, states, flowed, dRStats, dLambdaFromR, shape, weight);

    /// <summary>d/dλ as <see cref="HvmLambdaGradient"/> with r's share given: g + dλ_r − wλ with g = dz + w·z.</summary>
    public static void HvmLambdaGradientWithAuxiliary(this KernelSet kernels, ArrayView<float> lambda, ArrayView<float> z, ArrayView<float> dLambdaFromR,
        ArrayView<float> dZ, ArrayView<float> dLambda, float weight) =>
        kernels.Launch(LambdaGradientWithAuxiliaryKernel, (int)lambda.Length, lambda, z, dLambdaFromR, dZ, dLambda, weight);

    /// <summary>
    /// The HVM with Bernoulli mean-field factors q(z_k|λ_k) = Bernoulli(σ(λ_k)): <paramref name="klPerRow"/> holds
    /// log q(z|λ) − log p(z) (<see cref="BinaryLatent.BinaryKl"/> of the drawn z against the learned prior) and gains
    /// the rest of the hierarchical ELBO's sampled term, flowKl − ½Σλ² + rTerm, i.e. log q(λ|x) − log r(λ|z)
    /// (the 2π terms cancel), which is also written to <paramref name="sharedKl"/>: the part of every unit's
    /// score-function signal. One thread per row, dimensions in order.
    /// </summary>
    public static void HvmBernoulliKl(this KernelSet kernels, ArrayView<float> flowKl, ArrayView<float> lambda, ArrayView<float> rTerm,
        ArrayView<float> klPerRow, ArrayView<float> sharedKl, int rows, int latent) =>
        kernels.Launch(BernoulliKlKernel, rows, flowKl, lambda, rTerm, klPerRow, sharedKl, latent);

    /// <summary>
    /// The loss's gradient of λ with Bernoulli factors, per element: the pathwise part at the drawn z,
    /// w·(z − σ(λ) − λ) + dλ_r (from log q(z|λ), log N(λ; 0, I) and r; the flow's backward pass adds the rest of
    /// log q(λ|x)), plus the score-function part through z_k's draw, −scale·s_k·(z_k − σ(λ_k)) with
    /// z_k − σ(λ_k) = ∂ log q(z_k|λ_k)/∂λ_k (scale 1/rows). Its signal is Rao-Blackwellized: s_k = centred[row] −
    /// β·(log q(z_k|λ_k) − log p(z_k)), where centred is −(rec + β·(log q(λ|x) − log r(λ|z))) less NVIL's baseline and
    /// running mean; the other units' own terms are independent of z_k given λ, so leaving them out changes the
    /// expectation by nothing. log q(λ|x) is independent of z too, but it stays: −log r(λ|z) swings with λ by several
    /// nats, and log q(λ|x) swings with it (r approximates q's λ given z), so the pair is what varies little.
    /// </summary>
    public static void HvmBernoulliLambdaGradient(this KernelSet kernels, ArrayView<float> lambda, ArrayView<float> z, ArrayView<float> priorLogits,
        ArrayView<float> dLambdaFromR, ArrayView<float> centred, ArrayView<float> dLambda, int latent, float beta, float weight, float scale) =>
        kernels.Launch(BernoulliLambdaGradientKernel, (int)lambda.Length, lambda, z, priorLogits, dLambdaFromR, centred, dLambda, latent, beta, weight, scale);

    [Kernel]
    public static void BernoulliKlKernel(Index1D row, ArrayView<float> flowKl, ArrayView<float> lambda, ArrayView<float> rTerm,
        ArrayView<float> klPerRow, ArrayView<float> sharedKl, int latent)
    {
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float l = lambda[row * latent + k];
            sum += l * l;
        }
        float shared = flowKl[row] - 0.5f * sum + rTerm[row];
        sharedKl[row] = shared;
        klPerRow[row] += shared;
    }

    [Kernel]
    public static void BernoulliLambdaGradientKernel(Index1D element, ArrayView<float> lambda, ArrayView<float> z, ArrayView<float> priorLogits,
        ArrayView<float> dLambdaFromR, ArrayView<float> centred, ArrayView<float> dLambda, int latent, float beta, float weight, float scale)
    {
        float l = lambda[element], code = z[element], score = code - BinaryLatent.Probability(l);
        float own = Distributions.BernoulliLogDensity(code, l) - Distributions.BernoulliLogDensity(code, priorLogits[element % latent]);
        float signal = centred[element / latent] - beta * own;
        dLambda[element] = weight * (score - l) + dLambdaFromR[element] - scale * signal * score;
    }

    [Kernel]
    public static void InverseFlowForwardKernel(Index1D row, ArrayView<float> lambda, ArrayView<float> rStats, ArrayView<float> flowed,
        ArrayView<float> states, ArrayView<float> rTerm, FlowShape shape)
    {
        int latent = shape.Latent, statsRow = row * shape.StatsWidth, codes = row * latent;
        for (int k = 0; k < latent; k++)
            flowed[codes + k] = lambda[codes + k];
        float logDeterminants = 0f;
        for (int step = 0; step < shape.Length; step++)
            logDeterminants += PlanarFlow.StepForward(rStats, statsRow + shape.StepOffset(step), flowed, codes, states, (row * shape.Length + step) * latent, latent);
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            float logB = rStats[statsRow + latent + k], gap = flowed[codes + k] - rStats[statsRow + k];
            sum += logB + gap * gap * MathF.Exp(-logB);
        }
        rTerm[row] = 0.5f * sum - logDeterminants;
    }

    [Kernel]
    public static void KlWithAuxiliaryTermKernel(Index1D row, ArrayView<float> flowKl, ArrayView<float> lambda, ArrayView<float> z,
        ArrayView<float> epsilon, ArrayView<float> logTau, ArrayView<float> rTerm, ArrayView<float> klPerRow, int latent)
    {
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            int at = row * latent + k;
            float l = lambda[at], code = z[at], eps = epsilon[at];
            sum += -l * l + code * code - logTau[k] - eps * eps;
        }
        klPerRow[row] = flowKl[row] + 0.5f * sum + rTerm[row];
    }

    /// <summary>One thread per row: the base Gaussian's gradients at y, then back through r's steps, last first,
    /// with −w·log|det_j| (<see cref="PlanarFlow.StepBackward"/>), carrying y's gradient down to λ.</summary>
    [Kernel]
    public static void InverseFlowBackwardKernel(Index1D row, ArrayView<float> rStats, ArrayView<float> states, ArrayView<float> flowed,
        ArrayView<float> dRStats, ArrayView<float> dLambdaFromR, FlowShape shape, float weight)
    {
        int latent = shape.Latent, statsRow = row * shape.StatsWidth, codes = row * latent;
        for (int column = 2 * latent; column < shape.StatsWidth; column++)
            dRStats[statsRow + column] = 0f;
        for (int k = 0; k < latent; k++)
        {
            float precision = MathF.Exp(-rStats[statsRow + latent + k]), gap = flowed[codes + k] - rStats[statsRow + k];
            dRStats[statsRow + k] = -weight * gap * precision;
            dRStats[statsRow + latent + k] = 0.5f * weight * (1f - gap * gap * precision);
            dLambdaFromR[codes + k] = weight * gap * precision;
        }
        for (int step = shape.Length - 1; step >= 0; step--)
            PlanarFlow.StepBackward(rStats, statsRow + shape.StepOffset(step), states, (row * shape.Length + step) * latent, dLambdaFromR, codes,
                dRStats, latent, weight);
    }

    [Kernel]
    public static void LambdaGradientWithAuxiliaryKernel(Index1D element, ArrayView<float> lambda, ArrayView<float> z, ArrayView<float> dLambdaFromR,
        ArrayView<float> dZ, ArrayView<float> dLambda, float weight) =>
        dLambda[element] = dZ[element] + weight * z[element] + dLambdaFromR[element] - weight * lambda[element];

    [Kernel]
    public static void SampleKernel(Index1D element, ArrayView<float> lambda, ArrayView<float> logTau, ArrayView<float> z,
        ArrayView<float> epsilon, int latent, int samples, DrawKey key)
    {
        float eps = Philox.Normal(key.Seed, key.Stream, key.Step, key.Counter(element, (long)samples * latent));
        epsilon[element] = eps;
        z[element] = lambda[element] + MathF.Exp(0.5f * logTau[element % latent]) * eps;
    }

    [Kernel]
    public static void KlKernel(Index1D row, ArrayView<float> flowKl, ArrayView<float> lambda, ArrayView<float> z, ArrayView<float> epsilon,
        ArrayView<float> logTau, ArrayView<float> rStats, ArrayView<float> klPerRow, int latent)
    {
        float sum = 0f;
        for (int k = 0; k < latent; k++)
        {
            int at = row * latent + k, stats = row * 2 * latent;
            float l = lambda[at], code = z[at], eps = epsilon[at], logB = rStats[stats + latent + k], gap = l - rStats[stats + k];
            sum += -l * l + code * code - logTau[k] - eps * eps + logB + gap * gap * MathF.Exp(-logB);
        }
        klPerRow[row] = flowKl[row] + 0.5f * sum;
    }

    [Kernel]
    public static void AuxiliaryGradientKernel(Index1D row, ArrayView<float> lambda, ArrayView<float> rStats, ArrayView<float> dRStats,
        int latent, float weight)
    {
        for (int k = 0; k < latent; k++)
        {
            int stats = row * 2 * latent;
            float precision = MathF.Exp(-rStats[stats + latent + k]), gap = lambda[row * latent + k] - rStats[stats + k];
            dRStats[stats + k] = -weight * gap * precision;
            dRStats[stats + latent + k] = 0.5f * weight * (1f - gap * gap * precision);
        }
    }

    [Kernel]
    public static void LambdaGradientKernel(Index1D element, ArrayView<float> lambda, ArrayView<float> z, ArrayView<float> rStats,
        ArrayView<float> dZ, ArrayView<float> dLambda, int latent, float weight)
    {
        int row = element / latent, k = element % latent, stats = row * 2 * latent;
        float gap = lambda[element] - rStats[stats + k];
        dLambda[element] = dZ[element] + weight * z[element] + weight * gap * MathF.Exp(-rStats[stats + latent + k]) - weight * lambda[element];
    }

    [Kernel]
    public static void TauGradientKernel(Index1D k, ArrayView<float> z, ArrayView<float> epsilon, ArrayView<float> logTau,
        ArrayView<float> dZ, ArrayView<float> dLogTau, int rows, int latent, float weight)
    {
        float tau = MathF.Exp(0.5f * logTau[k]), sum = 0f;
        for (int row = 0; row < rows; row++)
        {
            int at = row * latent + k;
            sum += (dZ[at] + weight * z[at]) * 0.5f * tau * epsilon[at] - 0.5f * weight;
        }
        dLogTau[k] = sum;
    }
}
