using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

/// <summary>The regression tables of issue 25: the reader (good tables read exactly, every kind of bad one refused in
/// one line naming where), and the 90/10 splits with their standardisation.</summary>
public sealed class RegressionTableTests
{
    private static RegressionTable Parse(string text) => RegressionTableReader.Parse("t", "table.csv", new StringReader(text));

    [Fact]
    public void ReadsFeaturesAndTheTargetWithOrWithoutHeader()
    {
        var table = Parse("a,b,price\n1,2.5,10\n-3,1e-3,12.25\n");
        Assert.Equal((2, 2), (table.Rows, table.Features));
        Assert.Equal(["a", "b"], table.FeatureNames);
        Assert.Equal("price", table.TargetName);
        Assert.Equal([1, 2.5, -3, 1e-3], table.Inputs);
        Assert.Equal([10, 12.25], table.Targets);
        var bare = Parse("1,2.5,10\n-3,1e-3,12.25\n");
        Assert.Equal(["x1", "x2"], bare.FeatureNames);
        Assert.Equal("y", bare.TargetName);
        Assert.Equal(table.Inputs, bare.Inputs);
    }

    [Theory]
    [InlineData("", "no data rows")]
    [InlineData("a,y\n", "no data rows")]
    [InlineData("a,y\n1\n", "line 2: 1 field; a regression table needs at least one feature and the target")]
    [InlineData("a,b,y\n1,2,3\n4,5\n", "line 3: 2 fields, but line 2 has 3")]
    [InlineData("a,b,y\n1,,3\n", "line 2, column 2: the cell is empty; a regression table has no missing values")]
    [InlineData("a,b,y\n1,2,3\n4,five,6\n", "line 3, column 2: 'five' is not a number")]
    [InlineData("a,b,y\n1,2,NaN\n", "line 2, column 3: NaN; values must be finite")]
    [InlineData("a,b,price\n1,2,7\n3,4,7\n", "the target column ('price', the last) is 7 on every row")]
    public void BadTablesAreRefusedInOneLine(string text, string expected)
    {
        var error = Assert.Throws<DataFormatException>(() => Parse(text));
        Assert.StartsWith("table.csv: ", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    /// <summary>
    /// Twenty 90/10 splits of 53 rows: each test part holds ⌈5.3⌉ = 6 rows, train and test are disjoint and cover
    /// every row, the same index gives the same split and the splits differ; the standardised training part has
    /// mean 0 and standard deviation 1 in every column (a constant feature is only centred), and the test part is
    /// scaled by the training part's statistics.
    /// </summary>
    [Fact]
    public void SplitsAreDisjointReproducibleAndStandardisedByTheirTrainingRows()
    {
        var random = new Random(7);
        const int rows = 53;
        var inputs = new double[rows * 3];
        for (int r = 0; r < rows; r++)
        {
            inputs[r * 3] = random.NextDouble() * 100;
            inputs[r * 3 + 1] = 4.5; // constant
            inputs[r * 3 + 2] = random.NextDouble() - 7;
        }
        var table = new RegressionTable("t", ["a", "b", "c"], "y", rows, 3, inputs, Enumerable.Range(0, rows).Select(r => r * 0.5 + random.NextDouble()).ToArray());
        var tests = new HashSet<string>();
        for (int index = 0; index < 20; index++)
        {
            var split = table.Split(index);
            Assert.Equal(6, split.TestRows.Length);
            Assert.Equal(Enumerable.Range(0, rows), split.TrainRows.Concat(split.TestRows).Order());
            Assert.Equal(split.TestRows, table.Split(index).TestRows);
            tests.Add(string.Join(",", split.TestRows));
            var (trainInputs, trainTargets) = split.Standardised(split.TrainRows);
            for (int f = 0; f < 3; f++)
            {
                var column = Enumerable.Range(0, split.TrainRows.Length).Select(r => trainInputs[r * 3 + f]).ToArray();
                Assert.Equal(0, column.Average(), 1e-12);
                Assert.Equal(f == 1 ? 0 : 1, Math.Sqrt(column.Sum(v => v * v) / column.Length), 1e-12);
            }
            Assert.Equal(0, trainTargets.Average(), 1e-12);
            var (testInputs, testTargets) = split.Standardised(split.TestRows);
            Assert.Equal((table.Inputs[split.TestRows[0] * 3] - split.FeatureMeans[0]) / split.FeatureScales[0], testInputs[0], 1e-12);
            Assert.Equal((table.Targets[split.TestRows[^1]] - split.TargetMean) / split.TargetScale, testTargets[^1], 1e-12);
        }
        Assert.Equal(20, tests.Count);
    }
}
