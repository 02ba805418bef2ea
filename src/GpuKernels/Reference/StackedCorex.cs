namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The stacked CorEx layer term in double (see <see cref="StackedCorex"/>), written as the density:
/// −log N(z1; m, e^u) with its log 2π, which the kernels leave out.</summary>
public static class StackedCorexReference
{
    /// <summary>−log q(z1|z2) per row.</summary>
    public static double[] LayerReconstruction(double[] z1, double[] stats, int rows, int latent) =>
        Enumerable.Range(0, rows).Select(row => -Enumerable.Range(0, latent).Sum(k =>
            TwoLayerReference.LogNormal(z1[row * latent + k], stats[row * 2 * latent + k], stats[row * 2 * latent + latent + k]))).ToArray();

    /// <summary>The gradient of scale·Σ_rows −log q(z1|z2) by the stats [m | u] and by z1.</summary>
    public static (double[] DStats, double[] DZ1) LayerReconstructionBackward(double[] z1, double[] stats, int rows, int latent, double scale) =>
        TwoLayerReference.PriorGradient(z1, stats, Enumerable.Repeat(scale, rows).ToArray(), rows, latent);
}
