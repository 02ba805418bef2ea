namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// A dense layer in double precision: y = act(x·Wᵀ + b), x [batch, inputs], W [outputs, inputs] (the layout of
/// <see cref="GpuKernels.Dense"/>), y [batch, outputs].
/// </summary>
public static class DenseReference
{
    public static double[] PreActivation(double[] x, double[] weights, double[] bias, int batch, int inputs, int outputs)
    {
        var pre = new double[batch * outputs];
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < outputs; o++)
            {
                double sum = bias.Length > 0 ? bias[o] : 0.0;
                for (int i = 0; i < inputs; i++)
                    sum += x[b * inputs + i] * weights[o * inputs + i];
                pre[b * outputs + o] = sum;
            }
        return pre;
    }

    public static double[] Forward(ActivationKind activation, double[] x, double[] weights, double[] bias,
        int batch, int inputs, int outputs) =>
        PreActivation(x, weights, bias, batch, inputs, outputs)
            .Select(value => ActivationReference.Forward(activation, value)).ToArray();

    /// <summary>Gradients of Σ dY ⊙ y with respect to x, W and b.</summary>
    public static (double[] dInput, double[] dWeights, double[] dBias) Backward(ActivationKind activation,
        double[] x, double[] weights, double[] bias, double[] dY, int batch, int inputs, int outputs)
    {
        double[] pre = PreActivation(x, weights, bias, batch, inputs, outputs);
        var dPre = new double[pre.Length];
        for (int index = 0; index < pre.Length; index++)
            dPre[index] = dY[index] * ActivationReference.Derivative(activation, pre[index]);

        var dInput = new double[batch * inputs];
        var dWeights = new double[outputs * inputs];
        var dBias = new double[outputs];
        for (int b = 0; b < batch; b++)
            for (int o = 0; o < outputs; o++)
            {
                double d = dPre[b * outputs + o];
                dBias[o] += d;
                for (int i = 0; i < inputs; i++)
                {
                    dInput[b * inputs + i] += d * weights[o * inputs + i];
                    dWeights[o * inputs + i] += d * x[b * inputs + i];
                }
            }
        return (dInput, dWeights, dBias);
    }

    /// <summary>
    /// The backward pass as the kernels split it. This layer reads x = act_below(u), the output of the layer below
    /// with pre-activation u; given dPre, the gradient at this layer's x·Wᵀ + b, it returns the gradients with
    /// respect to u (dBelow = (dPre·W) ⊙ act_below'(u), the layer below's dPre), W and b.
    /// </summary>
    public static (double[] dBelow, double[] dWeights, double[] dBias) BackwardFromPreActivation(
        ActivationKind belowActivation, double[] belowPre, double[] weights, double[] dPre, int batch, int inputs, int outputs)
    {
        double[] x = belowPre.Select(u => ActivationReference.Forward(belowActivation, u)).ToArray();
        // Through an identity activation dY is dPre, so the plain backward pass gives dInput, dWeights and dBias.
        var (dInput, dWeights, dBias) = Backward(ActivationKind.Identity, x, weights, [], dPre, batch, inputs, outputs);
        var dBelow = new double[dInput.Length];
        for (int index = 0; index < dBelow.Length; index++)
            dBelow[index] = dInput[index] * ActivationReference.Derivative(belowActivation, belowPre[index]);
        return (dBelow, dWeights, dBias);
    }

    /// <summary>Σ_k |a_mk·b_kn| + |bias_n| for each output: the scale against which float rounding of a dot product
    /// is judged (its error is at most about K·2⁻²⁴ of this, and in practice √K times less).</summary>
    public static double[] AbsoluteScale(double[] x, double[] weights, double[] bias, int batch, int inputs, int outputs)
    {
        var absX = x.Select(Math.Abs).ToArray();
        var absW = weights.Select(Math.Abs).ToArray();
        var absB = bias.Select(Math.Abs).ToArray();
        return PreActivation(absX, absW, absB, batch, inputs, outputs);
    }
}
