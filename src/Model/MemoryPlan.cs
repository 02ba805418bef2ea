using ILGPU.Runtime;

namespace IlgpuVae.Model;

/// <summary>
/// What a model and its data need on the device, checked before anything is allocated, so that a batch too
/// large for the accelerator is refused with the memory it needs and a batch size that fits, instead of an
/// allocation failure deep in a launch.
/// </summary>
public static class MemoryPlan
{
    /// <summary>Bytes for parameters, gradients and Adam's two moments.</summary>
    public static long ModelBytes(VaeConfig config) => 4L * 4 * new ParameterLayout(config).Count;

    /// <summary>Bytes per example of batch (see the buffers of <see cref="Vae"/>): the input; per z sample (k of
    /// them) z, ε, dz, five per-row terms and, with two stochastic layers, z2, ε2, dz2 and a second dz1; for VCCA
    /// the two views, the joined output and its gradient, and the second decoder's dz; for the Ladder VAE the
    /// merged stats and their gradient per sample and the top hidden layer's second gradient per example; every
    /// layer's output and its gradient (and, batch-normalised, its product), once per example in the encoder (the
    /// Ladder VAE's both bottom-up stages) and once per sample after it.</summary>
    public static long BytesPerExample(VaeConfig config)
    {
        var layout = new ParameterLayout(config);
        bool ladder = config.Model == ModelKind.Ladder;
        int perExampleLayers = ladder ? layout.Encoder2End : layout.EncoderLayerCount;
        long LayerFloats(DenseSlice layer) => (layer.BatchNorm ? 3L : 2L) * layer.Outputs;
        long perSample = 3L * config.Latent + 5 + (config.StochasticLayers == 2 ? 3L * config.Latent2 + config.Latent + 2 : 0)
                         + (config.Model == ModelKind.Vcca ? 2L * config.InputSize + config.Latent : 0)
                         + (ladder ? 4L * config.Latent : 0)
                         + layout.Layers.Skip(perExampleLayers).Sum(LayerFloats);
        long perExample = (config.Model == ModelKind.Vcca ? 2L : 1L) * config.InputSize + 1 + (ladder ? config.Hidden[^1] : 0)
                          + layout.Layers.Take(perExampleLayers).Sum(LayerFloats);
        return 4L * (perExample + config.Samples * perSample);
    }

    public static long Needed(VaeConfig config, int batch, long dataBytes) =>
        ModelBytes(config) + batch * BytesPerExample(config) + dataBytes;

    /// <summary>What the accelerator offers: its memory for GPUs; for the CPU accelerator (which reports no
    /// limit), the memory this process may use.</summary>
    public static long Available(Accelerator accelerator) =>
        accelerator.AcceleratorType == AcceleratorType.CPU
            ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes
            : accelerator.MemorySize;

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> saying what is needed and which --batch-size fits when the plan
    /// exceeds 90% of <paramref name="availableBytes"/> (the rest is left for the runtime and the driver), or
    /// when a batch is too large for the kernels' 32-bit element indices.
    /// </summary>
    public static void Check(VaeConfig config, int batch, long dataBytes, long availableBytes, string acceleratorName)
    {
        int widest = Math.Max(config.InputSize, new ParameterLayout(config).Layers.Max(layer => layer.Outputs));
        long indexLimit = int.MaxValue / widest / config.Samples; // k rows per example after the encoder
        long budget = availableBytes / 10 * 9;
        long needed = Needed(config, batch, dataBytes);
        if (needed <= budget && batch <= indexLimit)
            return;
        long fits = Math.Min(indexLimit, (budget - ModelBytes(config) - dataBytes) / BytesPerExample(config));
        const long MiB = 1 << 20;
        string advice = fits >= 1
            ? $"use --batch-size {Math.Min(fits, int.MaxValue)} or less"
            : "the model and data set alone do not fit: use a smaller model or --train-limit";
        if (batch > indexLimit)
            throw new ArgumentException($"batch {batch} × {widest} values exceeds the kernels' 32-bit indices; {advice}");
        throw new ArgumentException(
            $"batch {batch} needs {needed / MiB} MiB on {acceleratorName} (model and optimiser {ModelBytes(config) / MiB} MiB, " +
            $"data {dataBytes / MiB} MiB, {BytesPerExample(config)} bytes per example) but {availableBytes / MiB} MiB is available; {advice}");
    }
}
