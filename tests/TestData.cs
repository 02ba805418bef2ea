namespace IlgpuVae.Tests;

/// <summary>Small data sets written for the command-line tests.</summary>
internal static class TestData
{
    /// <summary>
    /// A folder "data" under <paramref name="directory"/> with random <paramref name="height"/>×<paramref name="width"/>
    /// images (the training set's drawn first, from <c>new Random(seed)</c>) and zero labels, in the four MNIST file
    /// names; returns its path.
    /// </summary>
    public static string WriteMnistFormat(string directory, int train, int test, int height, int width, int seed)
    {
        var data = Path.Combine(directory, "data");
        Directory.CreateDirectory(data);
        var random = new Random(seed);
        byte[] Images(int count)
        {
            var bytes = new byte[count * height * width];
            random.NextBytes(bytes);
            return IdxReaderTests.Idx([count, height, width], bytes);
        }
        File.WriteAllBytes(Path.Combine(data, "train-images-idx3-ubyte"), Images(train));
        File.WriteAllBytes(Path.Combine(data, "train-labels-idx1-ubyte"), IdxReaderTests.Idx([train], new byte[train]));
        File.WriteAllBytes(Path.Combine(data, "t10k-images-idx3-ubyte"), Images(test));
        File.WriteAllBytes(Path.Combine(data, "t10k-labels-idx1-ubyte"), IdxReaderTests.Idx([test], new byte[test]));
        return data;
    }
}
