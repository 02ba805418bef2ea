using System.Buffers.Binary;
using System.IO.Compression;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

public sealed class IdxReaderTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("ilgpuvae-idx-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    public static byte[] Idx(int[] dimensions, byte[] data, byte type = 0x08)
    {
        var bytes = new byte[4 + 4 * dimensions.Length + data.Length];
        bytes[2] = type;
        bytes[3] = (byte)dimensions.Length;
        for (int d = 0; d < dimensions.Length; d++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dimensions[d]);
        data.CopyTo(bytes, 4 + 4 * dimensions.Length);
        return bytes;
    }

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void ReadsRawAndGzipFiles()
    {
        var data = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)i).ToArray();
        var raw = Idx([2, 3, 4], data);
        var array = IdxReader.Read(Write("raw", raw));
        Assert.Equal([2, 3, 4], array.Dimensions);
        Assert.Equal(data, array.Data);
        Assert.Equal(12, array.ItemSize);

        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            gzip.Write(raw);
        Assert.Equal(data, IdxReader.Read(Write("file.gz", compressed.ToArray())).Data);
    }

    public static TheoryData<string, byte[], string> BadFiles => new()
    {
        { "empty", [], "too short" },
        { "three bytes", [0, 0, 8], "too short" },
        { "wrong magic", [0x50, 0x4B, 3, 4, 0, 0, 0, 1, 7], "magic number" },
        { "float type", Idx([1], [0, 0, 0, 0], type: 0x0D), "element type" },
        { "no dimensions", [0, 0, 8, 0], "dimensions" },
        { "header cut", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0], "inside the header" },
        { "zero size", Idx([0, 28, 28], []), "size 0" },
        { "absurd size", Idx([int.MaxValue, 28, 28], [1, 2, 3]), "corrupt" },
        { "truncated data", Idx([2, 2, 2], [1, 2, 3]), "truncated" },
        { "extra data", Idx([1, 2], [1, 2, 3]), "but 3 follow" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void RejectsBadFilesWithFileAndProblem(string name, byte[] bytes, string expected)
    {
        var path = Write(name.Replace(' ', '-'), bytes);
        var error = Assert.Throws<DataFormatException>(() => IdxReader.Read(path));
        Assert.StartsWith(path + ":", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void RejectsCorruptGzipAndMissingFiles()
    {
        var path = Write("cut.gz", [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2]);
        Assert.Contains("truncated .gz", Assert.Throws<DataFormatException>(() => IdxReader.Read(path)).Message);
        var missing = Path.Combine(directory, "absent");
        Assert.Contains("not found", Assert.Throws<DataFormatException>(() => IdxReader.Read(missing)).Message);
    }

    [Fact]
    public void ImagesAndLabelsMustAgree()
    {
        var images = Write("images", Idx([3, 2, 2], new byte[12]));
        var labels = Write("labels", Idx([2], new byte[2]));
        var error = Assert.Throws<DataFormatException>(() => ImageDataset.FromIdx("x", images, labels));
        Assert.Contains("do not belong together", error.Message);
        var flat = Write("flat", Idx([3, 4], new byte[12]));
        Assert.Contains("3 dimensions", Assert.Throws<DataFormatException>(() => ImageDataset.FromIdx("x", flat, labels)).Message);
    }
}
