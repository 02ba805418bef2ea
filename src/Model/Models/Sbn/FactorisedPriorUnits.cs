using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Latents;

namespace IlgpuVae.Model.Models.Sbn;

/// <summary>
/// Binary units under a learned factorised prior p(h) = Π Bernoulli(σ(c_j)), whose logits c are one layer's output
/// on the single row [1] (the sigmoid belief network's top layer, the Bernoulli HVM's z): that row, the prior's
/// forward pass, its exact gradient and backward pass, and draws of codes from it.
/// </summary>
public abstract class FactorisedPriorUnits : BinaryUnitsLatent
{
    protected FactorisedPriorUnits(ModelParts parts, string modelName, bool normaliseSignal = true) : base(parts, modelName, normaliseSignal) =>
        // The prior's layer reads the single row [1].
        Floats(LearnedPrior.OneHotRows, 1).CopyFromCPU(new[] { 1f });

    /// <summary>The layer whose output on [1] is c.</summary>
    protected abstract int PriorLayer { get; }

    private ArrayView<float> OneRow => Floats(LearnedPrior.OneHotRows, 1);

    /// <summary>c, after <see cref="PriorForward"/>.</summary>
    protected ArrayView<float> PriorLogits => Stack.Output(PriorLayer, 1);

    /// <summary>c = the prior layer's output on [1].</summary>
    protected void PriorForward() => Stack.Forward(PriorLayer, PriorLayer + 1, OneRow, 1);

    /// <summary>c's exact gradient for the drawn <paramref name="codes"/> ([rows, width] under the prior), weighted
    /// by <paramref name="weight"/> (β/rows), then the prior layer's backward pass.</summary>
    protected void PriorBackward(ArrayView<float> codes, int rows, float weight)
    {
        Kernels.BinaryPriorGradient(PriorLogits, codes, Stack.Gradient(PriorLayer, 1), rows, weight);
        Stack.Backward(PriorLayer, PriorLayer + 1, 1, OneRow, Kernels.None);
    }

    /// <summary><paramref name="count"/> codes h ~ p(h): element i is 1 when Philox (seed, Sample, 0, i) &lt; σ(c_j).</summary>
    public float[] PriorCodes(int count, ulong seed)
    {
        PriorForward();
        Kernels.Synchronize();
        var priorLogits = ArrayViewExtensions.GetAsArray1D<float>(PriorLogits);
        int units = priorLogits.Length;
        var codes = new float[count * units];
        for (int i = 0; i < codes.Length; i++)
            codes[i] = Philox.Uniform(seed, Philox.Streams.Sample, 0, i) < BinaryLatent.Probability(priorLogits[i % units]) ? 1f : 0f;
        return codes;
    }
}
