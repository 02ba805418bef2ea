using System.Buffers.Binary;
using System.IO.Compression;

namespace IlgpuVae.Model.Data;

/// <summary>An IDX file of unsigned bytes: its dimensions and its data, row-major.</summary>
public sealed record IdxArray(int[] Dimensions, byte[] Data)
{
    public int Count => Dimensions[0];
    public int ItemSize => Dimensions.Skip(1).Aggregate(1, (product, d) => product * d);
}

/// <summary>
/// Reads IDX files (the MNIST format: two zero bytes, a type code, the number of dimensions, big-endian 32-bit
/// sizes, then the data), raw or gzip-compressed, and validates each part before trusting it: the magic number,
/// the type (only unsigned bytes are used by image data sets), the dimension count and sizes, and that the data
/// is exactly as long as the header says. Sizes are checked before anything is allocated.
/// </summary>
public static class IdxReader
{
    private const byte UnsignedByteType = 0x08;

    /// <summary>The largest payload we accept (1 GiB): far above any image data set this tool reads, and it keeps
    /// a corrupt header from asking for an absurd allocation.</summary>
    public const long MaxPayloadBytes = 1L << 30;

    public static IdxArray Read(string path)
    {
        if (!File.Exists(path))
            throw new DataFormatException(path, "file not found");
        byte[] bytes;
        bool compressed;
        try
        {
            bytes = File.ReadAllBytes(path);
            compressed = bytes.Length >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B;
            if (compressed)
                bytes = Gunzip(path, bytes);
        }
        catch (IOException exception) when (exception is not FileNotFoundException)
        {
            throw new DataFormatException(path, $"cannot read: {exception.Message}", inner: exception);
        }
        try
        {
            return Parse(path, bytes);
        }
        catch (DataFormatException exception) when (compressed)
        {
            // .NET's GZipStream stops quietly at the end of a truncated stream, so a cut .gz file shows up here.
            throw new DataFormatException(path, exception.Problem + " (offsets count the gzip-decompressed data; a truncated .gz file looks like this)", exception.Offset);
        }
    }

    private static byte[] Gunzip(string path, byte[] compressed)
    {
        try
        {
            using var input = new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[1 << 16];
            int read;
            while ((read = input.Read(buffer, 0, buffer.Length)) > 0)
            {
                output.Write(buffer, 0, read);
                if (output.Length > MaxPayloadBytes + 1024)
                    throw new DataFormatException(path, $"decompresses to more than {MaxPayloadBytes} bytes; not an image data set");
            }
            return output.ToArray();
        }
        catch (InvalidDataException exception)
        {
            throw new DataFormatException(path, $"gzip data is corrupt or truncated ({exception.Message}); fetch the file again", inner: exception);
        }
    }

    /// <summary>Parses IDX bytes already in memory; <paramref name="path"/> names them in errors.</summary>
    public static IdxArray Parse(string path, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 4)
            throw new DataFormatException(path, $"file is {bytes.Length} bytes long, too short for an IDX header (4 bytes of magic number); is it empty or truncated?", 0);
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new DataFormatException(path, $"not an IDX file: the magic number must start with two zero bytes, found 0x{bytes[0]:X2} 0x{bytes[1]:X2}", 0);
        if (bytes[2] != UnsignedByteType)
            throw new DataFormatException(path, $"IDX element type 0x{bytes[2]:X2} is not supported; image and label files use unsigned bytes (0x08)", 2);
        int dimensionCount = bytes[3];
        if (dimensionCount < 1 || dimensionCount > 4)
            throw new DataFormatException(path, $"IDX header declares {dimensionCount} dimensions; expected 1 to 4", 3);
        int headerLength = 4 + 4 * dimensionCount;
        if (bytes.Length < headerLength)
            throw new DataFormatException(path, $"file ends at byte {bytes.Length} inside the header, which needs {headerLength} bytes for {dimensionCount} dimensions; the file is truncated", bytes.Length);

        var dimensions = new int[dimensionCount];
        long payload = 1;
        for (int d = 0; d < dimensionCount; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(4 + 4 * d, 4));
            if (size == 0 || size > int.MaxValue)
                throw new DataFormatException(path, $"dimension {d} has size {size}; sizes must be between 1 and {int.MaxValue}", 4 + 4 * d);
            payload *= size;
            if (payload > MaxPayloadBytes)
                throw new DataFormatException(path, $"header declares more than {MaxPayloadBytes} bytes of data ({string.Join("×", dimensions.Take(d))}×{size}…); the header is corrupt", 4 + 4 * d);
            dimensions[d] = (int)size;
        }

        long actual = bytes.Length - headerLength;
        if (actual < payload)
            throw new DataFormatException(path, $"header declares {payload} bytes of data ({string.Join("×", dimensions)}) but only {actual} follow; the file is truncated", bytes.Length);
        if (actual > payload)
            throw new DataFormatException(path, $"header declares {payload} bytes of data ({string.Join("×", dimensions)}) but {actual} follow; the file is corrupt or not this data set", headerLength + payload);
        return new IdxArray(dimensions, bytes.Slice(headerLength).ToArray());
    }
}
