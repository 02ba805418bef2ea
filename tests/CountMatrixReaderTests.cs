using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

/// <summary>The count-matrix reader: good files read exactly, and each kind of bad file refused with its line and column.</summary>
public sealed class CountMatrixReaderTests
{
    private static CountMatrix Parse(string text) => CountMatrixReader.Parse("t", "counts.csv", new StringReader(text));

    [Fact]
    public void ReadsCountsWithOrWithoutHeader()
    {
        const string body = "0,5,16777216\n3,0,1\n";
        foreach (var text in new[] { body, "a,b,c\n" + body, body + "\n\n", body.Replace("\n", "\r\n") })
        {
            var data = Parse(text);
            Assert.Equal((2, 3), (data.Rows, data.Columns));
            Assert.Equal(new float[] { 0, 5, 16777216, 3, 0, 1 }, data.Counts);
            Assert.Equal(16777216f, data[0, 2]);
        }
    }

    [Theory]
    [InlineData("", "no data rows")]
    [InlineData("a,b\n", "no data rows")]
    [InlineData("1,2,3\n4,5\n", "line 2: 2 fields, but line 1 has 3")]
    [InlineData("a,b,c\n1,2,3\n4,x,6\n", "line 3, column 2: 'x' is not a number")]
    [InlineData("1,,3\n", "line 1, column 2: the cell is empty")]
    [InlineData("1,2,NaN\n", "line 1, column 3: NaN; counts must be finite")]
    [InlineData("1,2,0.5\n", "line 1, column 3: 0.5 is not a whole number")]
    [InlineData("1,-2,3\n", "line 1, column 2: -2 is negative")]
    [InlineData("1,16777217,3\n", "line 1, column 2: 16777217 is above 16777216")]
    [InlineData("1,2,3\n4,5\"x,6\n", "line 2")]
    public void BadFilesNameTheLineAndTheProblem(string text, string expected)
    {
        var error = Assert.Throws<DataFormatException>(() => Parse(text));
        Assert.StartsWith("counts.csv: ", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }
}
