namespace IlgpuVae.GpuKernels.Reference;

/// <summary>Activations in double precision, written for clarity, against which the kernels are checked.</summary>
public static class ActivationReference
{
    public static double Forward(ActivationKind kind, double x) => kind switch
    {
        ActivationKind.Identity => x,
        ActivationKind.Relu => Math.Max(x, 0.0),
        ActivationKind.Tanh => Math.Tanh(x),
        ActivationKind.Sigmoid => StableMath.Sigmoid(x),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>dy/dx at pre-activation x (not from the output, so the kernel's output form is checked too).</summary>
    public static double Derivative(ActivationKind kind, double x) => kind switch
    {
        ActivationKind.Identity => 1.0,
        ActivationKind.Relu => x > 0 ? 1.0 : 0.0,
        ActivationKind.Tanh => 1.0 - Math.Tanh(x) * Math.Tanh(x),
        ActivationKind.Sigmoid => StableMath.Sigmoid(x) * (1.0 - StableMath.Sigmoid(x)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
