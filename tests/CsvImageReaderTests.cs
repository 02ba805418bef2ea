using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

/// <summary>The CSV reader: good files read exactly, and each kind of bad file refused with its line and column.</summary>
public sealed class CsvImageReaderTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("ilgpuvae-csv-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private static ImageDataset Parse(string text) => CsvImageReader.Parse("t", "data.csv", new StringReader(text));

    private static DataFormatException Refused(string text) =>
        Assert.Throws<DataFormatException>(() => Parse(text));

    [Fact]
    public void ReadsLabelsAndPixelsWithOrWithoutHeader()
    {
        const string body = "3,0,255,17,4\n7,1,2,3,4\n";
        foreach (var text in new[] { body, "label,p1,p2,p3,p4\n" + body, body + "\n\n", body.Replace("\n", "\r\n") })
        {
            var data = Parse(text);
            Assert.Equal(2, data.Count);
            Assert.Equal((2, 2), (data.Height, data.Width));
            Assert.Equal(new byte[] { 3, 7 }, data.Labels);
            Assert.Equal(new byte[] { 0, 255, 17, 4, 1, 2, 3, 4 }, data.Images);
        }
    }

    [Fact]
    public void NonSquarePixelCountsAreOneRow()
    {
        var data = Parse("1,1,2,3\n");
        Assert.Equal((1, 3), (data.Height, data.Width));
    }

    [Theory]
    [InlineData("", "no data rows")]
    [InlineData("label,a,b\n", "no data rows")]
    [InlineData("1\n", "line 1: 1 field")]
    [InlineData("1,2,3\n4,5\n", "line 2: 2 fields, but line 1 has 3")]
    [InlineData("1,2,3\n4,5,6,7\n", "line 2: 4 fields")]
    [InlineData("label,a,b\n1,2,3\n4,x,6\n", "line 3, column 2: pixel 'x' is not a number")]
    [InlineData("1,2,NaN\n", "line 1, column 3: pixel is NaN")]
    [InlineData("1,2,Infinity\n", "line 1, column 3: pixel is Infinity")]
    [InlineData("1,2,0.5\n", "line 1, column 3: pixel 0.5 is not a whole number")]
    [InlineData("1,2,256\n", "line 1, column 3: pixel 256 is outside 0-255")]
    [InlineData("-1,2,3\n", "line 1, column 1: label -1 is outside 0-255")]
    [InlineData("1,2,3\nlabel,a,b\n", "line 2, column 1: label 'label' is not a number")]
    [InlineData("1,2,3\n4,5\"x,6\n", "line 2")]
    public void BadFilesNameTheLineAndTheProblem(string text, string expected)
    {
        var error = Refused(text);
        Assert.StartsWith("data.csv: ", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void FolderNeedsBothFilesOfTheSameWidth()
    {
        File.WriteAllText(Path.Combine(directory, "train.csv"), "1,2,3,4,5\n");
        var missing = Assert.Throws<DataFormatException>(() => CsvImageReader.LoadFolder("t", directory));
        Assert.Contains("test.csv: file not found", missing.Message);

        File.WriteAllText(Path.Combine(directory, "test.csv"), "1,2,3\n");
        var mismatch = Assert.Throws<DataFormatException>(() => CsvImageReader.LoadFolder("t", directory));
        Assert.Contains("rows hold 2 pixels but train.csv's hold 4", mismatch.Message);

        File.WriteAllText(Path.Combine(directory, "test.csv"), "label,a,b,c,d\n9,5,6,7,8\n");
        var data = CsvImageReader.LoadFolder("t", directory);
        Assert.Equal(new byte[] { 9 }, data.Test.Labels);
        Assert.Equal(new byte[] { 5, 6, 7, 8 }, data.Test.Images);
    }
}
