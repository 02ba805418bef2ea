using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Model.Checkpoints;

/// <summary>A named float32 tensor.</summary>
public sealed record Tensor(string Name, int[] Shape, float[] Data)
{
    public long ElementCount => Shape.Aggregate(1L, (product, size) => product * size);
}

/// <summary>A named float64 tensor (the deep GP keeps its parameters in double).</summary>
public sealed record DoubleTensor(string Name, int[] Shape, double[] Data)
{
    public long ElementCount => Shape.Aggregate(1L, (product, size) => product * size);
}

/// <summary>
/// The safetensors format (as written by Hugging Face's safetensors library): an 8-byte little-endian header
/// length N, N bytes of JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
/// relative to the end of the header) plus an optional "__metadata__" map of strings, then the raw little-endian
/// data. No NuGet package reads or writes it; the format is small enough to implement against its specification,
/// and a test reads our files with an independent reader. F32 tensors, and F64 for the models that train in double.
/// </summary>
public static class SafeTensors
{
    /// <summary>Header size limit of the reference implementation (100 MB); a larger value means a corrupt file.</summary>
    private const long MaxHeaderBytes = 100_000_000;

    public static void Write(string path, IReadOnlyList<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors, [], metadata);

    /// <summary>F32 tensors, then F64 ones, in one file.</summary>
    public static void Write(string path, IReadOnlyList<Tensor> tensors, IReadOnlyList<DoubleTensor> doubles, IReadOnlyDictionary<string, string>? metadata)
    {
        var entries = tensors.Select(tensor => (tensor.Name, tensor.Shape, Length: (long)tensor.Data.Length, tensor.ElementCount, Type: "F32", Size: 4))
            .Concat(doubles.Select(tensor => (tensor.Name, tensor.Shape, Length: (long)tensor.Data.Length, tensor.ElementCount, Type: "F64", Size: 8))).ToList();
        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var tensor in entries)
            {
                if (tensor.ElementCount != tensor.Length)
                    throw new ArgumentException($"tensor {tensor.Name}: shape [{string.Join(",", tensor.Shape)}] does not hold {tensor.Length} values");
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", tensor.Type);
                json.WriteStartArray("shape");
                foreach (int size in tensor.Shape)
                    json.WriteNumberValue(size);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += tensor.Size * tensor.Length;
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        // The specification pads the header with spaces to a multiple of 8 bytes, so the data is aligned.
        while (header.Length % 8 != 0)
            header.WriteByte((byte)' ');

        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            header.Position = 0;
            header.CopyTo(stream);
            foreach (var tensor in tensors)
            {
                var bytes = new byte[4 * tensor.Data.Length];
                for (int i = 0; i < tensor.Data.Length; i++)
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), tensor.Data[i]);
                stream.Write(bytes);
            }
            foreach (var tensor in doubles)
            {
                var bytes = new byte[8 * tensor.Data.Length];
                for (int i = 0; i < tensor.Data.Length; i++)
                    BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(8 * i), tensor.Data[i]);
                stream.Write(bytes);
            }
        });
    }

    /// <summary>Reads every tensor, checking the header, each dtype and shape, and that the offsets tile the
    /// data exactly; any problem is a <see cref="DataFormatException"/> naming the file and the place.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        var (tensors, doubles, metadata) = ReadAll(path);
        if (doubles.Count > 0)
            throw new DataFormatException(path, $"tensor {doubles.Keys.First()} has dtype F64; this checkpoint is of a model that trains in double (the deep GP)", 8);
        return (tensors, metadata);
    }

    /// <summary>As <see cref="Read"/>, with the F64 tensors too.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, DoubleTensor> Doubles, Dictionary<string, string> Metadata) ReadAll(string path)
    {
        if (!File.Exists(path))
            throw new DataFormatException(path, "file not found");
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8)
            throw new DataFormatException(path, $"file is {bytes.Length} bytes long, too short for a safetensors header length (8 bytes)", 0);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > MaxHeaderBytes || (long)headerLength > bytes.Length - 8)
            throw new DataFormatException(path, $"header length {headerLength} is larger than the file ({bytes.Length} bytes); the file is truncated or not safetensors", 0);
        long dataStart = 8 + (long)headerLength;

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        }
        catch (JsonException exception)
        {
            throw new DataFormatException(path, $"header is not valid JSON ({exception.Message})", 8, exception);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(path, "header is not a JSON object", 8);
            var tensors = new Dictionary<string, Tensor>();
            var doubles = new Dictionary<string, DoubleTensor>();
            var metadata = new Dictionary<string, string>();
            var extents = new List<(long Begin, long End, string Name)>();
            try
            {
                foreach (var property in document.RootElement.EnumerateObject())
                {
                    if (property.Name == "__metadata__")
                    {
                        foreach (var entry in property.Value.EnumerateObject())
                            metadata[entry.Name] = entry.Value.GetString() ?? "";
                        continue;
                    }
                    var (shape, data) = ReadTensor(path, bytes, dataStart, property, extents);
                    if (data is float[] floats)
                        tensors[property.Name] = new Tensor(property.Name, shape, floats);
                    else
                        doubles[property.Name] = new DoubleTensor(property.Name, shape, (double[])data);
                }
            }
            catch (InvalidOperationException exception)
            {
                // Text that is not UTF-8, or metadata values that are not strings.
                throw new DataFormatException(path, $"header is not a valid safetensors header ({exception.Message})", 8, exception);
            }
            extents.Sort();
            long expected = 0;
            foreach (var (begin, end, name) in extents)
            {
                if (begin != expected)
                    throw new DataFormatException(path, $"tensor {name} starts at data byte {begin}, expected {expected}: the data offsets leave a gap or overlap", dataStart + begin);
                expected = end;
            }
            if (dataStart + expected != bytes.Length)
                throw new DataFormatException(path, $"the tensors cover {expected} bytes of data but the file holds {bytes.Length - dataStart}", dataStart + expected);
            return (tensors, doubles, metadata);
        }
    }

    private static (int[] Shape, Array Data) ReadTensor(string path, byte[] bytes, long dataStart, JsonProperty property, List<(long, long, string)> extents)
    {
        string name = property.Name;
        try
        {
            var value = property.Value;
            string dtype = value.GetProperty("dtype").GetString() ?? "";
            if (dtype is not ("F32" or "F64"))
                throw new DataFormatException(path, $"tensor {name} has dtype {dtype}; only F32 and F64 are supported", 8);
            int size = dtype == "F32" ? 4 : 8;
            int[] shape = value.GetProperty("shape").EnumerateArray().Select(size => size.GetInt32()).ToArray();
            if (shape.Any(size => size < 0))
                throw new DataFormatException(path, $"tensor {name} has a negative dimension", 8);
            var offsets = value.GetProperty("data_offsets").EnumerateArray().Select(offset => offset.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || dataStart + offsets[1] > bytes.Length)
                throw new DataFormatException(path, $"tensor {name} has data offsets [{string.Join(",", offsets)}] outside the file's {bytes.Length - dataStart} data bytes", 8);
            long count = shape.Aggregate(1L, (product, size) => product * size);
            if (offsets[1] - offsets[0] != size * count)
                throw new DataFormatException(path, $"tensor {name} of shape [{string.Join(",", shape)}] needs {size * count} bytes but its offsets span {offsets[1] - offsets[0]}", 8);
            extents.Add((offsets[0], offsets[1], name));
            var span = bytes.AsSpan((int)(dataStart + offsets[0]));
            if (size == 4)
            {
                var data = new float[count];
                for (long i = 0; i < count; i++)
                    data[i] = BinaryPrimitives.ReadSingleLittleEndian(span.Slice((int)(4 * i), 4));
                return (shape, data);
            }
            var values = new double[count];
            for (long i = 0; i < count; i++)
                values[i] = BinaryPrimitives.ReadDoubleLittleEndian(span.Slice((int)(8 * i), 8));
            return (shape, values);
        }
        catch (Exception exception) when (exception is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new DataFormatException(path, $"tensor {name}: header entry needs dtype, shape and data_offsets ({exception.Message})", 8, exception);
        }
    }
}

/// <summary>Writes a file through a temporary file in the same folder, flushed to disk, then renamed over the
/// target, so a crash leaves either the old file or the new one, never half of one.</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            write(stream);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    public static void WriteText(string path, string text) =>
        Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text)));
}
