using StbImageWriteSharp;

namespace IlgpuVae.Host;

/// <summary>Greyscale image grids as PNG (StbImageWriteSharp, a managed port of stb_image_write).</summary>
public static class Images
{
    private const int Gap = 2;

    /// <summary>
    /// Writes <paramref name="tiles"/> (each height×width values in [0, 1], row-major) as a grid of
    /// <paramref name="columns"/> columns with a 2-pixel black gap, to a PNG file (atomically).
    /// </summary>
    public static void WriteGrid(string path, IReadOnlyList<float[]> tiles, int height, int width, int columns)
    {
        if (tiles.Count == 0)
            throw new ArgumentException("no images to write");
        int rows = (tiles.Count + columns - 1) / columns;
        int imageWidth = columns * (width + Gap) + Gap, imageHeight = rows * (height + Gap) + Gap;
        var pixels = new byte[imageWidth * imageHeight];
        for (int t = 0; t < tiles.Count; t++)
        {
            int top = Gap + t / columns * (height + Gap), left = Gap + t % columns * (width + Gap);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    float value = tiles[t][y * width + x];
                    pixels[(top + y) * imageWidth + left + x] = (byte)Math.Round(255 * Math.Clamp(float.IsFinite(value) ? value : 0f, 0f, 1f));
                }
        }
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
            Directory.CreateDirectory(folder);
        Model.Checkpoints.AtomicFile.Write(path, stream =>
            new ImageWriter().WritePng(pixels, imageWidth, imageHeight, ColorComponents.Grey, stream));
    }
}
