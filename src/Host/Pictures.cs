using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Data;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

/// <summary>The sample and reconstruct commands: PNG grids from a trained run.</summary>
public static class Pictures
{
    /// <summary>Decodes <paramref name="count"/> codes drawn from the prior N(0, I) (Philox, keyed by
    /// <paramref name="seed"/>) and writes their means as a square-ish grid.</summary>
    public static string Sample(string runDirectory, int count, ulong seed, string? outPath, AcceleratorChoice choice, TextWriter output)
    {
        if (count < 1)
            throw new ArgumentException($"--count must be at least 1 (got {count})");
        using var run = new RunFolder(runDirectory, choice, count);
        run.RequireImageDecoder();
        string path = outPath ?? Path.Combine(runDirectory, "samples.png");
        WriteSamples(run.Vae, count, seed, path);
        output.WriteLine($"{count} samples from the prior, decoded by the model after epoch {run.Epoch}: {path}");
        return path;
    }

    /// <summary>The grid of <see cref="Sample"/> from a model in memory (count ≤ its MaxBatch).</summary>
    public static void WriteSamples(Vae vae, int count, ulong seed, string path)
    {
        var means = vae.Decode(vae.PriorCodes(count, seed));
        var (height, width) = ImageShape(vae.Config);
        var tiles = Enumerable.Range(0, count).Select(i => means.AsSpan(i * vae.Config.InputSize, vae.Config.InputSize).ToArray()).ToList();
        Images.WriteGrid(path, tiles, height, width, (int)Math.Ceiling(Math.Sqrt(count)));
    }

    /// <summary><see cref="WriteLayerComponents"/> for a trained run, its units ordered by their use on the test images.</summary>
    public static string Components(string runDirectory, string? outPath, AcceleratorChoice choice, TextWriter output)
    {
        using var run = new RunFolder(runDirectory, choice, 128);
        var test = DataSets.Load(run.Options.Data, output).Test;
        string path = outPath ?? Path.Combine(runDirectory, "components.png");
        WriteLayerComponents(run.Vae, run.Accelerator, test, path);
        output.WriteLine($"each layer's units of the model after epoch {run.Epoch}, most used first: {path}");
        return path;
    }

    /// <summary>The units per row of <see cref="WriteLayerComponents"/>'s grid, and the test images whose posterior
    /// means order them.</summary>
    private const int ComponentColumns = 20, UsageImages = 1000;

    /// <summary>
    /// A DEF's learned components as images (see <see cref="Vae.LayerComponents"/>): every unit of each layer, bottom
    /// layer first, each layer starting a new row of <see cref="ComponentColumns"/>, its units in order of their mean
    /// posterior mean over the first <see cref="UsageImages"/> test images (most used first: a sparse model leaves
    /// many units at their initial noise), each image scaled by its own largest rate (white) so that a unit's shape
    /// shows whatever its size.
    /// </summary>
    public static void WriteLayerComponents(Vae vae, Accelerator accelerator, ImageDataset test, string path)
    {
        var layers = vae.LayerComponents() ?? throw new ArgumentException($"model {vae.Config.Spec.Name} has no components to draw (the DEF has)");
        double[][]? usage;
        using (var data = new DeviceDataset(accelerator, test))
            usage = Evaluation.LayerActivity(vae, data, Math.Min(UsageImages, test.Count))?.Means;
        int pixels = vae.Config.InputSize;
        var tiles = new List<float[]>();
        for (int l = 0; l < layers.Count; l++)
        {
            foreach (int unit in Enumerable.Range(0, layers[l].Length / pixels).OrderByDescending(unit => usage?[l][unit] ?? 0))
            {
                var image = layers[l].AsSpan(unit * pixels, pixels).ToArray();
                float largest = image.Max();
                tiles.Add(largest > 0 ? image.Select(rate => rate / largest).ToArray() : image);
            }
            while (tiles.Count % ComponentColumns != 0)
                tiles.Add(new float[pixels]);
        }
        var (height, width) = ImageShape(vae.Config);
        Images.WriteGrid(path, tiles, height, width, ComponentColumns);
    }

    /// <summary>
    /// A learned prior's components as images: each component's mean μ_c decoded, in order; for the VampPrior, each
    /// pseudo-input u_c followed by the decoded mean of q(z|u_c), in pairs of columns. The first 100 components.
    /// </summary>
    public static void WritePriorComponents(Vae vae, string path)
    {
        var config = vae.Config;
        var components = vae.PriorComponents() ?? throw new ArgumentException("the model's prior is N(0, I): it has no learned components to draw");
        var pseudoInputs = vae.PseudoInputs();
        int latent = config.Latent, count = Math.Min(100, config.ModelPriorComponents);
        var means = new float[count * latent];
        for (int c = 0; c < count; c++)
            Array.Copy(components, c * 2 * latent, means, c * latent, latent);
        var decoded = new List<float[]>();
        for (int first = 0; first < count; first += vae.MaxBatch)
        {
            int rows = Math.Min(vae.MaxBatch, count - first);
            var images = vae.Decode(means.AsSpan(first * latent, rows * latent).ToArray());
            decoded.AddRange(Enumerable.Range(0, rows).Select(i => images.AsSpan(i * config.InputSize, config.InputSize).ToArray()));
        }
        var tiles = pseudoInputs is null ? decoded
            : decoded.SelectMany((image, c) => new[] { pseudoInputs.AsSpan(c * config.InputSize, config.InputSize).ToArray(), image }).ToList();
        var (height, width) = ImageShape(config);
        int columns = pseudoInputs is null ? (int)Math.Ceiling(Math.Sqrt(count)) : 2 * (int)Math.Ceiling(Math.Sqrt(count));
        Images.WriteGrid(path, tiles, height, width, columns);
    }

    /// <summary>The first <paramref name="count"/> test images, each followed by its reconstruction from the
    /// encoder's mean μ (no sampling noise), in pairs of columns.</summary>
    public static string Reconstruct(string runDirectory, int count, string? outPath, AcceleratorChoice choice, TextWriter output)
    {
        if (count < 1)
            throw new ArgumentException($"--count must be at least 1 (got {count})");
        using var run = new RunFolder(runDirectory, choice, count);
        run.RequireImageDecoder();
        var test = DataSets.Load(run.Options.Data, output).Test;
        count = Math.Min(count, test.Count);
        string path = outPath ?? Path.Combine(runDirectory, "reconstructions.png");
        WriteReconstructions(run.Vae, run.Accelerator, test, count, path);
        output.WriteLine($"{count} test images (left of each pair) and their reconstructions from μ (right): {path}");
        if (run.Vae.Config.PredictsSecondView)
        {
            string crossPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "cross-view.png");
            WriteCrossView(run.Vae, run.Accelerator, test, count, crossPath);
            output.WriteLine($"VCCA: each test image, its left half beside the right half predicted from the left alone, and both halves decoded: {crossPath}");
        }
        return path;
    }

    /// <summary>The grid of <see cref="Reconstruct"/> from a model in memory (count ≤ its MaxBatch).</summary>
    public static void WriteReconstructions(Vae vae, Accelerator accelerator, ImageDataset test, int count, string path)
    {
        RunFolder.RequireInputSize(test, vae);
        using var data = new DeviceDataset(accelerator, test.Take(count));
        var (mu, _) = vae.Encode(data, 0, count);
        var means = vae.Decode(mu);
        var tiles = new List<float[]>();
        for (int i = 0; i < count; i++)
        {
            tiles.Add(Grey(test, i));
            tiles.Add(means.AsSpan(i * test.Features, test.Features).ToArray());
        }
        Images.WriteGrid(path, tiles, test.Height, test.Width, 2 * (int)Math.Ceiling(Math.Sqrt(count)));
    }

    /// <summary>
    /// VCCA's cross-view reconstruction: for each of the first <paramref name="count"/> test images, the image
    /// itself, then its left view beside the right view decoded from z = μ(left view) alone (the model never sees
    /// the right half), then both views decoded. Three columns per image.
    /// </summary>
    public static void WriteCrossView(Vae vae, Accelerator accelerator, ImageDataset test, int count, string path)
    {
        if (!vae.Config.PredictsSecondView)
            throw new ArgumentException($"cross-view pictures need a model that infers z from the first view alone (train --model {ModelCatalog.NamesWith(ModelCapabilities.TwoViews)} with --encoder-views 1)");
        RunFolder.RequireInputSize(test, vae);
        using var data = new DeviceDataset(accelerator, test.Take(count));
        var (mu, _) = vae.Encode(data, 0, count);
        var means = vae.Decode(mu);
        var views = vae.Config.Views;
        var tiles = new List<float[]>();
        for (int i = 0; i < count; i++)
        {
            var original = Grey(test, i);
            var decoded = means.AsSpan(i * test.Features, test.Features).ToArray();
            // The true left columns, the predicted right columns.
            var crossed = original.Select((value, pixel) => pixel % views.Width < views.LeftColumns ? value : decoded[pixel]).ToArray();
            tiles.Add(original);
            tiles.Add(crossed);
            tiles.Add(decoded);
        }
        Images.WriteGrid(path, tiles, test.Height, test.Width, 3 * Math.Max(1, (int)Math.Ceiling(Math.Sqrt(count) / 1.5)));
    }

    /// <summary>
    /// Walks the latent space between consecutive test images: for pairs (0, 1), (2, 3), …, decodes
    /// (1 − t)·μ_a + t·μ_b for <paramref name="steps"/> values of t from 0 to 1, one row per pair, with the two
    /// originals at the ends of the row.
    /// </summary>
    public static string Interpolate(string runDirectory, int pairs, int steps, string? outPath, AcceleratorChoice choice, TextWriter output)
    {
        if (pairs < 1 || steps < 2)
            throw new ArgumentException($"--pairs must be at least 1 and --steps at least 2 (got {pairs} and {steps})");
        using var run = new RunFolder(runDirectory, choice, Math.Max(2 * pairs, pairs * steps));
        run.RequireImageDecoder();
        var vae = run.Vae;
        var test = DataSets.Load(run.Options.Data, output).Test;
        RunFolder.RequireInputSize(test, vae);
        pairs = Math.Min(pairs, test.Count / 2);
        using var data = new DeviceDataset(run.Accelerator, test.Take(2 * pairs));
        var (mu, _) = vae.Encode(data, 0, 2 * pairs);
        int latent = vae.Config.TopLatent;
        var codes = new float[pairs * steps * latent];
        for (int p = 0; p < pairs; p++)
            for (int s = 0; s < steps; s++)
            {
                float t = s / (float)(steps - 1);
                for (int u = 0; u < latent; u++)
                    codes[(p * steps + s) * latent + u] = (1 - t) * mu[2 * p * latent + u] + t * mu[(2 * p + 1) * latent + u];
            }
        var means = vae.Decode(codes);
        var tiles = new List<float[]>();
        for (int p = 0; p < pairs; p++)
        {
            tiles.Add(Grey(test, 2 * p));
            for (int s = 0; s < steps; s++)
                tiles.Add(means.AsSpan((p * steps + s) * test.Features, test.Features).ToArray());
            tiles.Add(Grey(test, 2 * p + 1));
        }
        string path = outPath ?? Path.Combine(runDirectory, "interpolations.png");
        Images.WriteGrid(path, tiles, test.Height, test.Width, steps + 2);
        output.WriteLine($"{pairs} walks of {steps} steps between the means of consecutive test images (originals at the ends): {path}");
        return path;
    }

    /// <summary>
    /// For a model with a 2-D latent space: the decoded manifold (a grid × grid walk over z ∈ [−3, 3]², top row at
    /// z₂ = 3) as latent-manifold.png, and the test images' posterior means coloured by label as latent-codes.png.
    /// </summary>
    public static (string Manifold, string Codes) LatentMap(string runDirectory, int grid, AcceleratorChoice choice, TextWriter output)
    {
        if (grid < 2)
            throw new ArgumentException($"--grid must be at least 2 (got {grid})");
        using var run = new RunFolder(runDirectory, choice, Math.Max(256, grid * grid));
        run.RequireImageDecoder();
        var vae = run.Vae;
        if (vae.Config.TopLatent != 2)
            throw new ArgumentException($"latent-map needs a model with 2 latent dimensions; this one has {vae.Config.TopLatent} (train with --latent 2, or --latent2 2 with two stochastic layers)");
        var codes = new float[grid * grid * 2];
        for (int row = 0; row < grid; row++)
            for (int column = 0; column < grid; column++)
            {
                int index = row * grid + column;
                codes[2 * index] = -3f + 6f * column / (grid - 1);
                codes[2 * index + 1] = 3f - 6f * row / (grid - 1);
            }
        var means = vae.Decode(codes);
        var (height, width) = ImageShape(vae.Config);
        var tiles = Enumerable.Range(0, grid * grid).Select(i => means.AsSpan(i * vae.Config.InputSize, vae.Config.InputSize).ToArray()).ToList();
        string manifold = Path.Combine(runDirectory, "latent-manifold.png");
        Images.WriteGrid(manifold, tiles, height, width, grid);

        var test = DataSets.Load(run.Options.Data, output).Test;
        RunFolder.RequireInputSize(test, vae);
        using var data = new DeviceDataset(run.Accelerator, test);
        var mu = new float[test.Count * 2];
        for (int first = 0; first < test.Count; first += vae.MaxBatch)
        {
            int batch = Math.Min(vae.MaxBatch, test.Count - first);
            vae.Encode(data, first, batch).Mu.CopyTo(mu, first * 2);
        }
        string codesPath = Path.Combine(runDirectory, "latent-codes.png");
        Plots.WriteLatentCodes(codesPath, mu, test.Labels, Path.GetFileName(Path.GetFullPath(runDirectory)));
        output.WriteLine($"decoded manifold over [-3, 3]² ({grid}×{grid}): {manifold}");
        output.WriteLine($"posterior means of {test.Count} test images by label: {codesPath}");
        return (manifold, codesPath);
    }

    /// <summary>
    /// For a model whose codes are several latent layers (the VLAE's, top first; VCCA-private's z, h_x and h_y):
    /// layers.png, one panel per layer,
    /// each varying that layer's first two dimensions (its only one: a single row) over a
    /// <paramref name="steps"/> × <paramref name="steps"/> grid of [−2, 2] while the other layers keep one prior draw,
    /// as the VLAE paper's MNIST figure does. A blank row separates the panels.
    /// </summary>
    public static string Traverse(string runDirectory, int steps, ulong seed, string? outPath, AcceleratorChoice choice, TextWriter output)
    {
        if (steps < 2)
            throw new ArgumentException($"--steps must be at least 2 (got {steps})");
        using var run = new RunFolder(runDirectory, choice, steps * steps);
        run.RequireImageDecoder();
        string path = outPath ?? Path.Combine(runDirectory, "layers.png");
        WriteLayerTraversals(run.Vae, steps, seed, path);
        var groups = run.Vae.Config.Spec.LatentGroups(run.Vae.Config);
        output.WriteLine($"each of {string.Join(", ", groups.Select(group => group.Name))} varied over [-2, 2] (one panel each, in that order) with the others held at one prior draw: {path}");
        return path;
    }

    /// <summary>The panels of <see cref="Traverse"/> from a model in memory.</summary>
    public static void WriteLayerTraversals(Vae vae, int steps, ulong seed, string path)
    {
        var config = vae.Config;
        var groups = config.Spec.LatentGroups(config);
        if (groups.Count < 2)
            throw new ArgumentException("layer traversals need a model with several latent layers (train --model vlae, or --model vcca --private-latent P)");
        int latent = config.TopLatent;
        var held = vae.PriorCodes(1, seed);
        var (height, width) = ImageShape(config);
        var tiles = new List<float[]>();
        foreach (var group in groups)
        {
            if (tiles.Count > 0)
                tiles.AddRange(Enumerable.Range(0, steps).Select(_ => new float[config.InputSize]));
            int rows = group.Width >= 2 ? steps : 1;
            var codes = new float[rows * steps * latent];
            for (int row = 0; row < rows; row++)
                for (int column = 0; column < steps; column++)
                {
                    int index = row * steps + column;
                    held.CopyTo(codes, index * latent);
                    codes[index * latent + group.First] = -2f + 4f * column / (steps - 1);
                    if (group.Width >= 2)
                        codes[index * latent + group.First + 1] = 2f - 4f * row / (steps - 1);
                }
            for (int first = 0; first < rows * steps; first += vae.MaxBatch)
            {
                int count = Math.Min(vae.MaxBatch, rows * steps - first);
                var means = vae.Decode(codes.AsSpan(first * latent, count * latent).ToArray());
                tiles.AddRange(Enumerable.Range(0, count).Select(i => means.AsSpan(i * config.InputSize, config.InputSize).ToArray()));
            }
        }
        Images.WriteGrid(path, tiles, height, width, steps);
    }

    /// <summary>Test image <paramref name="index"/> as grey levels in [0, 1], as the pictures draw originals.</summary>
    private static float[] Grey(ImageDataset test, int index) =>
        test.Images.AsSpan(index * test.Features, test.Features).ToArray().Select(b => b / 255f).ToArray();

    /// <summary>Square images (MNIST's 28×28) where the input size is a square, else one row.</summary>
    private static (int Height, int Width) ImageShape(VaeConfig config)
    {
        // The data set's own row width where training recorded it (or a square's side), else one row.
        int width = config.RowWidth;
        return width > 0 && config.InputSize % width == 0 ? (config.InputSize / width, width) : (1, config.InputSize);
    }
}
