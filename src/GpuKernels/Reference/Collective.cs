namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The collective kernels' arithmetic in double.</summary>
public static class CollectiveReference
{
    /// <summary>Each value times the factor, in double, then rounded once to float: the product of two floats is
    /// exact in double, so this is the correctly rounded float product the kernel must give bit for bit.</summary>
    public static float[] Scale(float[] values, float factor)
    {
        var scaled = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
            scaled[i] = (float)((double)values[i] * factor);
        return scaled;
    }
}
