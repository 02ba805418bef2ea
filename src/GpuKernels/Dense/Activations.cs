namespace IlgpuVae.GpuKernels;

/// <summary>
/// An element-wise activation used as a generic struct parameter, so ILGPU specialises each kernel
/// for one activation with no branch in the inner loop.
/// </summary>
public interface IActivation
{
    float Forward(float preActivation);

    /// <summary>
    /// dy/dpre expressed through the output y: every activation we support has a derivative that is a
    /// function of its output, so the backward pass needs only the stored output, not the pre-activation.
    /// </summary>
    float DerivativeFromOutput(float output);
}

public enum ActivationKind
{
    Identity,
    Relu,
    Tanh,
    Sigmoid,
}

public readonly struct IdentityActivation : IActivation
{
    public float Forward(float preActivation) => preActivation;
    public float DerivativeFromOutput(float output) => 1f;
}

public readonly struct ReluActivation : IActivation
{
    public float Forward(float preActivation) => preActivation > 0f ? preActivation : 0f;
    public float DerivativeFromOutput(float output) => output > 0f ? 1f : 0f;
}

public readonly struct TanhActivation : IActivation
{
    // Written through exp rather than MathF.Tanh: on PTX, MathF.Tanh becomes tanh.approx.f32 (relative error
    // up to 2^-11), while exp becomes ex2.approx (about 2^-22), so this form keeps CPU and CUDA within float
    // rounding of each other.
    public float Forward(float preActivation)
    {
        float magnitude = preActivation < 0f ? -preActivation : preActivation;
        // For |x| > 15, tanh(x) rounds to ±1 in float; clamping also keeps exp from overflowing.
        if (magnitude > 15f)
            magnitude = 15f;
        float e = MathF.Exp(-2f * magnitude);
        float t = (1f - e) / (1f + e);
        return preActivation < 0f ? -t : t;
    }

    public float DerivativeFromOutput(float output) => 1f - output * output;
}

public readonly struct SigmoidActivation : IActivation
{
    public float Forward(float preActivation) => StableMath.Sigmoid(preActivation);
    public float DerivativeFromOutput(float output) => output * (1f - output);
}

/// <summary>Numerically stable forms shared by kernels (float) and references (double).</summary>
public static class StableMath
{
    /// <summary>
    /// Gradient terms smaller than this (2^-64) are set to exactly zero where they arise: the IWAE's normalised
    /// weights, the likelihood gradients and the softmax gradient. Below 2^-126 a float is subnormal, and x86
    /// CPUs take a microcode assist on every operation with a subnormal operand (a dot product over subnormal
    /// inputs ran 60× slower on our 2-core machine). The IWAE with k = 50 makes such terms in bulk once its
    /// posterior sharpens (a sample 90 nats below the best has w̃ = e^-90, and every gradient of its row inherits
    /// that): after 400 steps its decoder's backward products ran 3–4× slower than at the start. Zeroing changes
    /// nothing that float keeps: a term under 2^-64 is below half an ulp of any sum whose magnitude is over
    /// 2^-40 (the heaviest sample's w̃ is at least 1/k), and it moves an Adam step by the order of 2^-64 / ε. GPUs run
    /// subnormals at full speed; the same rule runs there, so no accelerator keeps a term another one drops.
    /// </summary>
    public const float NegligibleGradient = 5.421011E-20f;

    /// <summary>0 for a magnitude under <see cref="NegligibleGradient"/>, else the value unchanged.</summary>
    public static float FlushNegligible(float value) =>
        value < NegligibleGradient && value > -NegligibleGradient ? 0f : value;

    public static float Sigmoid(float x)
    {
        if (x >= 0f)
            return 1f / (1f + MathF.Exp(-x));
        float e = MathF.Exp(x);
        return e / (1f + e);
    }

    /// <summary>softplus(x) = log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), which never overflows.</summary>
    public static float Softplus(float x)
    {
        float magnitude = x < 0f ? -x : x;
        float positivePart = x > 0f ? x : 0f;
        return positivePart + MathF.Log(1f + MathF.Exp(-magnitude));
    }

    /// <summary>softplus(x) to float's relative precision also far below 0, where <see cref="Softplus"/>'s log(1 + e^x)
    /// keeps only absolute precision (about 1e-3 relative at x = −9): enough where the softplus is added to larger
    /// terms, not where it is itself a small weight or mean (the deep exponential family's).</summary>
    public static float PreciseSoftplus(float x) => x > 0f ? x + LogOnePlus(MathF.Exp(-x)) : LogOnePlus(MathF.Exp(x));

    /// <summary>log(1 + u) accurate for small u without a log1p instruction (Goldberg's correction: the rounding
    /// of 1 + u is divided back out).</summary>
    public static float LogOnePlus(float u)
    {
        float w = 1f + u;
        return w == 1f ? u : MathF.Log(w) * (u / (w - 1f));
    }

    /// <summary>log softplus(x) = log log(1 + e^x), the log-variance of a variance written as softplus(x): exact
    /// to float for large x, and x − e^x/2 (the series' first two terms, error O(e^(2x))) far below 0, where
    /// softplus(x) ≈ e^x would underflow.</summary>
    public static float LogSoftplus(float x)
    {
        if (x < -20f)
            return x - 0.5f * MathF.Exp(x);
        float softplus = x > 0f ? x + LogOnePlus(MathF.Exp(-x)) : LogOnePlus(MathF.Exp(x));
        return MathF.Log(softplus);
    }

    /// <summary>d log softplus(x) / dx = sigmoid(x) / softplus(x), 1 − e^x/2 far below 0.</summary>
    public static float LogSoftplusDerivative(float x)
    {
        if (x < -20f)
            return 1f - 0.5f * MathF.Exp(x);
        float softplus = x > 0f ? x + LogOnePlus(MathF.Exp(-x)) : LogOnePlus(MathF.Exp(x));
        return Sigmoid(x) / softplus;
    }

    public static double Sigmoid(double x) =>
        x >= 0 ? 1.0 / (1.0 + Math.Exp(-x)) : Math.Exp(x) / (1.0 + Math.Exp(x));

    public static double Softplus(double x) => Math.Max(x, 0.0) + Math.Log(1.0 + Math.Exp(-Math.Abs(x)));
}
