using ILGPU;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Core;

/// <summary>
/// One pass over examples order[First .. First+Batch) of <see cref="Data"/> with <see cref="Samples"/> z per
/// example, drawing from <see cref="Key"/>: a training step (its KL weight, and whether it adds to the training
/// totals) or an evaluation batch (β, adding to the evaluation totals).
/// </summary>
public readonly record struct Pass(DeviceDataset Data, int First, int Batch, int Samples, DrawKey Key, double KlWeight,
    ArrayView<double> Totals, bool Accumulate)
{
    /// <summary>Latent rows: examples × samples, example-major.</summary>
    public int Rows => Batch * Samples;
}
