namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The stacked CorEx layer term in double (see <see cref="StackedCorex"/>), written from the densities:
/// −log N(z1; m, e^u) + log N(z1; m_r, e^w), each with its log 2π.</summary>
public static class StackedCorexReference
{
    /// <summary>−log q(z1|z2) + log r1(z1) per row; <paramref name="marginal"/> is r1's [m_r | w].</summary>
    public static double[] LayerReconstruction(double[] z1, double[] stats, double[] marginal, int rows, int latent) =>
        Enumerable.Range(0, rows).Select(row => Enumerable.Range(0, latent).Sum(k =>
            TwoLayerReference.LogNormal(z1[row * latent + k], marginal[k], marginal[latent + k])
            - TwoLayerReference.LogNormal(z1[row * latent + k], stats[row * 2 * latent + k], stats[row * 2 * latent + latent + k]))).ToArray();

    /// <summary>The gradient of scale·Σ_rows of the term by q(z1|z2)'s stats [m | u] (z1 and r1 held: the layer's data).</summary>
    public static double[] LayerReconstructionBackward(double[] z1, double[] stats, int rows, int latent, double scale) =>
        TwoLayerReference.PriorGradient(z1, stats, Enumerable.Repeat(scale, rows).ToArray(), rows, latent).dPriorStats;
}
