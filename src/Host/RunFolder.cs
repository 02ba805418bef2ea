using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Checkpoints;

namespace IlgpuVae.Host;

/// <summary>A trained run opened for the commands that use a model: its options, and its checkpoint loaded
/// into a <see cref="Vae"/> on the chosen accelerator.</summary>
public sealed class RunFolder : IDisposable
{
    private readonly Context context;
    private readonly Accelerator accelerator;
    private readonly KernelSet kernels;

    /// <summary>Pictures need a decoder of images; the Deep VIB's decodes labels.</summary>
    public void RequireImageDecoder()
    {
        if (!Vae.Config.Spec.Has(Model.Models.ModelCapabilities.Images))
            throw new ArgumentException($"{Directory} is a --model {Vae.Config.Spec.Name} run: its decoder draws no images ({Vae.NoImages}; use eval for its test error)");
    }

    /// <summary>Refuses test images of another size than the model's input (a run folder edited by hand, or a
    /// data set that changed since training).</summary>
    public static void RequireInputSize(Model.Data.ImageDataset test, Vae vae)
    {
        if (test.Features != vae.Config.InputSize)
            throw new ArgumentException($"the run's data set has {test.Features} features per image but the model expects {vae.Config.InputSize}");
    }

    public RunFolder(string directory, AcceleratorChoice choice, int maxBatch)
    {
        Directory = directory;
        Options = TrainOptions.ForResume(directory);
        // Every command that opens a run folder uses the model as it is: Adam's state may be left out.
        var checkpoint = Checkpoint.Load(Path.Combine(directory, TrainOptions.CheckpointFolder), optimizerRequired: false);
        Epoch = checkpoint.State.Epoch;
        context = Compute.CreateContext();
        try
        {
            accelerator = Compute.CreateAccelerator(context, choice);
            kernels = new KernelSet(accelerator);
            Vae = new Vae(kernels, checkpoint.State.Model, maxBatch, checkpoint.State.Seed, checkpoint.State.Adam);
            checkpoint.RestoreInto(Vae);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    public string Directory { get; }
    public TrainOptions Options { get; }
    public int Epoch { get; }
    public Vae Vae { get; }
    public Accelerator Accelerator => accelerator;

    public void Dispose()
    {
        Vae.Dispose();
        kernels.Dispose();
        accelerator.Dispose();
        context.Dispose();
    }
}
