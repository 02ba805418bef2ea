using ILGPU.Runtime;
using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model;

/// <summary>
/// What a model and its data need on the device, checked before anything is allocated, so that a batch too
/// large for the accelerator is refused with the memory it needs and a batch size that fits, instead of an
/// allocation failure deep in a launch.
/// </summary>
public static class MemoryPlan
{
    /// <summary>Bytes that do not grow with the batch: parameters, gradients and Adam's two moments, and the few
    /// per-layer and per-run buffers beside them (see <see cref="Vae.Plan"/>).</summary>
    public static long ModelBytes(VaeConfig config, AdamSettings? adam = null) => Vae.Plan(config, 0, adam).Bytes;

    /// <summary>Bytes per example of batch: the growth of the model's workspace (<see cref="Vae.Plan"/>) from one
    /// batch size to the next, since every buffer that grows holds a fixed number of values per example (or per
    /// sample, k of them).</summary>
    public static long BytesPerExample(VaeConfig config, AdamSettings? adam = null) =>
        Vae.Plan(config, 1, adam).Bytes - Vae.Plan(config, 0, adam).Bytes;

    /// <summary>The model's whole workspace for batches of <paramref name="batch"/>, and the data set.</summary>
    public static long Needed(VaeConfig config, int batch, long dataBytes, AdamSettings? adam = null) =>
        Vae.Plan(config, batch, adam).Bytes + dataBytes;

    /// <summary>What the accelerator offers: its memory for GPUs; for the CPU accelerator (which reports no
    /// limit), the memory this process may use.</summary>
    public static long Available(Accelerator accelerator) =>
        accelerator.AcceleratorType == AcceleratorType.CPU
            ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes
            : accelerator.MemorySize;

    /// <summary>
    /// Throws a <see cref="SettingException"/> saying what is needed and which batch size fits when the plan
    /// exceeds 90% of <paramref name="availableBytes"/> (the rest is left for the runtime and the driver), or
    /// when a batch is too large for the kernels' 32-bit element indices.
    /// </summary>
    public static void Check(VaeConfig config, int batch, long dataBytes, long availableBytes, string acceleratorName,
        AdamSettings? adam = null)
    {
        int widest = Math.Max(config.InputSize, new ParameterLayout(config).Layers.Max(layer => layer.Outputs));
        long indexLimit = int.MaxValue / widest / config.Samples; // k rows per example after the encoder
        long budget = availableBytes / 10 * 9;
        long needed = Needed(config, batch, dataBytes, adam);
        if (needed <= budget && batch <= indexLimit)
            return;
        long fits = Math.Min(indexLimit, (budget - ModelBytes(config, adam) - dataBytes) / BytesPerExample(config, adam));
        const long MiB = 1 << 20;
        string advice = fits >= 1
            ? $"use @BatchSize {Math.Min(fits, int.MaxValue)} or less"
            : "the model and data set alone do not fit: use a smaller model or @TrainLimit";
        if (batch > indexLimit)
            throw new SettingException($"batch {batch} × {widest} values exceeds the kernels' 32-bit indices; {advice}");
        throw new SettingException(
            $"batch {batch} needs {needed / MiB} MiB on {acceleratorName} (model and optimiser {ModelBytes(config, adam) / MiB} MiB, " +
            $"data {dataBytes / MiB} MiB, {BytesPerExample(config, adam)} bytes per example) but {availableBytes / MiB} MiB is available; {advice}");
    }
}
