using System.Globalization;
using CsvHelper;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

/// <summary>The encode command: q(z|x) of every image of a data set split, with its label, as CSV.</summary>
public static class Encode
{
    public static string Run(string runDirectory, string split, string? outPath, AcceleratorChoice choice, TextWriter output)
    {
        using var run = new RunFolder(runDirectory, choice, maxBatch: 256);
        var vae = run.Vae;
        var sets = DataSets.Load(run.Options.Data, output);
        var images = split switch
        {
            "test" => sets.Test,
            "train" => sets.Train,
            _ => throw new ArgumentException($"--split must be test or train (got {split})"),
        };
        if (images.Features != vae.Config.InputSize)
            throw new ArgumentException($"the data set has {images.Features} features per image but the model expects {vae.Config.InputSize}");
        using var data = new DeviceDataset(run.Accelerator, images);
        int latent = vae.Config.TopLatent;
        // An autoencoder's code has no variance: its file has the code columns alone.
        bool hasVariance = vae.Config.Spec.Has(ModelCapabilities.Posterior);
        string path = outPath ?? Path.Combine(runDirectory, $"codes-{split}.csv");
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            using var csv = new CsvWriter(writer, CultureInfo.InvariantCulture);
            csv.WriteField("index");
            csv.WriteField("label");
            // A model of several latent layers names each column by its layer (mu_z3_0, logvar_h_y_1).
            var groups = vae.Config.Spec.LatentGroups(vae.Config);
            string Unit(int u) => groups.FirstOrDefault(group => u >= group.First && u < group.First + group.Width) is { } group
                ? $"{group.Name}_{u - group.First}" : u.ToString(CultureInfo.InvariantCulture);
            for (int u = 0; u < latent; u++)
                csv.WriteField($"mu_{Unit(u)}");
            for (int u = 0; u < latent && hasVariance; u++)
                csv.WriteField($"logvar_{Unit(u)}");
            csv.NextRecord();
            for (int first = 0; first < images.Count; first += vae.MaxBatch)
            {
                int batch = Math.Min(vae.MaxBatch, images.Count - first);
                var (mu, logVariance) = vae.Encode(data, first, batch);
                for (int b = 0; b < batch; b++)
                {
                    csv.WriteField(first + b);
                    csv.WriteField(images.Labels[first + b]);
                    for (int u = 0; u < latent; u++)
                        csv.WriteField(mu[b * latent + u]);
                    for (int u = 0; u < latent && hasVariance; u++)
                        csv.WriteField(logVariance[b * latent + u]);
                    csv.NextRecord();
                }
            }
        });
        output.WriteLine($"{images.Count} {split} images encoded (μ and log σ² of q(z|x), {latent} each, with labels): {path}");
        return path;
    }
}
