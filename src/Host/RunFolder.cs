using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Library;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

/// <summary>A trained run opened for the commands that use a model: its options, and its checkpoint loaded
/// through the library (<see cref="VaeModel.Load"/>) on the chosen accelerator.</summary>
public sealed class RunFolder : IDisposable
{
    /// <summary>Pictures need a decoder of images; the Deep VIB's decodes labels.</summary>
    public void RequireImageDecoder()
    {
        if (!Vae.Config.Spec.Has(ModelCapabilities.Images))
            throw new ArgumentException($"{Directory} is a --model {Vae.Config.Spec.Name} run: its decoder draws no images ({Vae.NoImages}; use eval for its test error)");
    }

    /// <summary>Refuses test images of another size than the model's input (a run folder edited by hand, or a
    /// data set that changed since training).</summary>
    public static void RequireInputSize(ImageDataset test, Vae vae)
    {
        if (test.Features != vae.Config.InputSize)
            throw new ArgumentException($"the run's data set has {test.Features} features per image but the model expects {vae.Config.InputSize}");
    }

    /// <param name="options">The run's config.json when the caller has read it already.</param>
    public RunFolder(string directory, AcceleratorChoice choice, int maxBatch, Model.Distributed.Communicator? ranks = null, TrainOptions? options = null)
    {
        Directory = directory;
        Options = options ?? TrainOptions.ForResume(directory);
        // Every command that opens a run folder uses the model as it is: Adam's state may be left out.
        Model = VaeModel.Load(Path.Combine(directory, TrainOptions.CheckpointFolder), Options.Settings(), choice, maxBatch, ranks);
    }

    public string Directory { get; }
    public TrainOptions Options { get; }

    /// <summary>The run's model, through the library.</summary>
    public VaeModel Model { get; }

    /// <summary>Epochs the checkpoint holds.</summary>
    public int Epoch => Model.EpochsDone;
    public Vae Vae => Model.Vae;
    public Accelerator Accelerator => Model.Accelerator;

    public void Dispose() => Model.Dispose();
}
