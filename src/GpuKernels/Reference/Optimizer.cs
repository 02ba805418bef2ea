namespace IlgpuVae.GpuKernels.Reference;

/// <summary>Adam in double precision, element by element, as PyTorch writes it.</summary>
public static class AdamReference
{
    public static void Step(double[] parameters, double[] gradients, double[] firstMoment, double[] secondMoment,
        double learningRate, double beta1, double beta2, double epsilon, long step)
    {
        double biasCorrection1 = 1 - Math.Pow(beta1, step);
        double biasCorrection2 = 1 - Math.Pow(beta2, step);
        for (int i = 0; i < parameters.Length; i++)
        {
            firstMoment[i] = beta1 * firstMoment[i] + (1 - beta1) * gradients[i];
            secondMoment[i] = beta2 * secondMoment[i] + (1 - beta2) * gradients[i] * gradients[i];
            double mHat = firstMoment[i] / biasCorrection1;
            double vHat = secondMoment[i] / biasCorrection2;
            parameters[i] -= learningRate * mHat / (Math.Sqrt(vHat) + epsilon);
        }
    }
}

/// <summary>Gradient-norm clipping in double precision, as PyTorch's clip_grad_norm_ writes it.</summary>
public static class ClippingReference
{
    /// <summary>The gradients times min(1, maxNorm / (‖g‖ + 1e-6)), and ‖g‖.</summary>
    public static (double[] Clipped, double Norm) Clip(double[] gradients, double maxNorm)
    {
        double norm = Math.Sqrt(gradients.Sum(g => g * g));
        double scale = Math.Min(1, maxNorm / (norm + 1e-6));
        return (gradients.Select(g => g * scale).ToArray(), norm);
    }
}

/// <summary>The minibatch gather in double precision.</summary>
public static class MinibatchReference
{
    public static double[] Gather(byte[] data, int[] order, int first, int batch, int features, bool binarize, DrawKey key)
    {
        var x = new double[batch * features];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < features; j++)
            {
                int element = b * features + j;
                double grey = data[(long)order[first + b] * features + j] / 255.0;
                // The threshold draw is the kernel's own float Philox value: both sides must see the same bits.
                // Example b is example FirstExample + b of the whole minibatch: its draws are that example's.
                long counter = (key.FirstExample + b) * features + j;
                x[element] = binarize
                    ? (Philox.Uniform(key.Seed, key.Stream, key.Step, counter) < (float)grey ? 1.0 : 0.0)
                    : grey;
            }
        return x;
    }
}
