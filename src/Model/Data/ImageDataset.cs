using IlgpuVae.GpuKernels;

namespace IlgpuVae.Model.Data;

/// <summary>Images as bytes (count × features, row-major) with their labels.</summary>
public sealed record ImageDataset(string Name, byte[] Images, byte[] Labels, int Count, int Height, int Width)
{
    public int Features => Height * Width;

    /// <summary>
    /// Images from floats in [0, 1] (count × height·width, row-major), stored as the grey levels 0..255 that every
    /// data set here holds (round(255·v): a step of 1/255), with optional labels. Anything outside [0, 1] is refused.
    /// </summary>
    public static ImageDataset FromFloats(string name, float[] pixels, int count, int height, int width, byte[]? labels = null)
    {
        if (count < 1 || height < 1 || width < 1)
            throw new ArgumentException($"{name}: count, height and width must each be at least 1 (got {count}, {height}, {width})");
        if (pixels.Length != (long)count * height * width)
            throw new ArgumentException($"{name}: {count} images of {height}×{width} are {(long)count * height * width} values (got {pixels.Length})");
        if (labels is not null && labels.Length != count)
            throw new ArgumentException($"{name}: give one label per image ({count}; got {labels.Length})");
        var images = new byte[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            float value = pixels[i];
            if (!(value >= 0 && value <= 1))
                throw new ArgumentException($"{name}: value {i} (image {i / (height * width)}) is {value}; pixels must lie in [0, 1]");
            images[i] = (byte)Math.Round(255 * value);
        }
        return new ImageDataset(name, images, labels ?? new byte[count], count, height, width);
    }

    /// <summary>The first <paramref name="count"/> examples, for quick runs and tests.</summary>
    public ImageDataset Take(int count)
    {
        count = Math.Min(count, Count);
        return this with
        {
            Images = Images.AsSpan(0, count * Features).ToArray(),
            Labels = Labels.AsSpan(0, count).ToArray(),
            Count = count,
        };
    }

    /// <summary>
    /// Static binarization: each pixel drawn once as Bernoulli(grey level) and stored as 0 or 255, so every epoch
    /// sees the same binary images. The draw of pixel j of example n is Philox (seed, StaticBinarize, part, n·D + j);
    /// <paramref name="part"/> separates the training set (0) from the test set (1).
    /// </summary>
    public ImageDataset BinarizeOnce(ulong seed, long part)
    {
        var binary = new byte[Images.Length];
        for (int i = 0; i < binary.Length; i++)
            binary[i] = Philox.Uniform(seed, Philox.Streams.StaticBinarize, part, i) < Images[i] / 255f ? (byte)255 : (byte)0;
        return this with { Images = binary };
    }

    /// <summary>Reads an images file and a labels file and checks that they belong together.</summary>
    public static ImageDataset FromIdx(string name, string imagesPath, string labelsPath)
    {
        var images = IdxReader.Read(imagesPath);
        if (images.Dimensions.Length != 3)
            throw new DataFormatException(imagesPath, $"an images file must have 3 dimensions (count, rows, columns); this one has {images.Dimensions.Length}", 3);
        var labels = IdxReader.Read(labelsPath);
        if (labels.Dimensions.Length != 1)
            throw new DataFormatException(labelsPath, $"a labels file must have 1 dimension (count); this one has {labels.Dimensions.Length}", 3);
        if (labels.Count != images.Count)
            throw new DataFormatException(labelsPath, $"holds {labels.Count} labels but {Path.GetFileName(imagesPath)} holds {images.Count} images; the two files do not belong together", 4);
        return new ImageDataset(name, images.Data, labels.Data, images.Count, images.Dimensions[1], images.Dimensions[2]);
    }
}

/// <summary>The train and test halves of an MNIST-format data set in one folder.</summary>
public sealed record MnistFormatData(ImageDataset Train, ImageDataset Test)
{
    public static readonly string[] FileStems =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>Finds a stem in a folder as it is or with .gz; null when absent.</summary>
    public static string? Find(string directory, string stem)
    {
        foreach (var candidate in new[] { stem, stem + ".gz", stem.Replace("-idx", ".idx"), stem.Replace("-idx", ".idx") + ".gz" })
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path))
                return path;
        }
        return null;
    }

    /// <summary>The stems missing from a folder (empty when all four are there).</summary>
    public static IReadOnlyList<string> Missing(string directory) =>
        FileStems.Where(stem => Find(directory, stem) is null).ToList();

    public static MnistFormatData Load(string name, string directory)
    {
        var missing = Missing(directory);
        if (missing.Count > 0)
            throw new DataFormatException(Path.Combine(directory, missing[0]), $"file not found (the folder needs {string.Join(", ", FileStems)}, raw or .gz)");
        string Locate(string stem) => Find(directory, stem)!;
        var train = ImageDataset.FromIdx(name, Locate(FileStems[0]), Locate(FileStems[1]));
        var test = ImageDataset.FromIdx(name, Locate(FileStems[2]), Locate(FileStems[3]));
        if (train.Height != test.Height || train.Width != test.Width)
            throw new DataFormatException(Locate(FileStems[2]), $"test images are {test.Height}×{test.Width} but training images are {train.Height}×{train.Width}");
        return new MnistFormatData(train, test);
    }
}
