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

    /// <summary>The gradient of scale·Σ_rows of the term by q's stats [m | u], by z1 and by r1's [m_r | w].</summary>
    public static (double[] DStats, double[] DZ1, double[] DMarginal) LayerReconstructionBackward(double[] z1, double[] stats, double[] marginal,
        int rows, int latent, double scale)
    {
        // −log q: the prior-network gradient of the two-layer model; +log r1: the same with r1 repeated per row, negated.
        var (dStats, dZ1) = TwoLayerReference.PriorGradient(z1, stats, Enumerable.Repeat(scale, rows).ToArray(), rows, latent);
        var repeatedMarginal = ImportanceReference.RepeatRows(marginal, 1, 2 * latent, rows);
        var (dRepeatedMarginal, dZ1FromMarginal) = TwoLayerReference.PriorGradient(z1, repeatedMarginal, Enumerable.Repeat(-scale, rows).ToArray(), rows, latent);
        var dMarginal = ImportanceReference.SumRepeatedRows(dRepeatedMarginal, 1, 2 * latent, rows);
        return (dStats, dZ1.Select((value, i) => value + dZ1FromMarginal[i]).ToArray(), dMarginal);
    }
}
