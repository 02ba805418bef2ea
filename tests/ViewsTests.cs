using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.Tests;

/// <summary>VCCA's view kernels against the pixel-by-pixel reference. They only move floats, so every comparison
/// is exact; the add kernel's float sum of two floats is the correctly rounded double sum, so it is exact too.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ViewsTests(AcceleratorFixture fixture)
{
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        // rows, width, height, left columns
        { 1, 2, 1, 1 },
        { 7, 7, 3, 4 },
        { 33, 28, 28, 14 },
        { 3, 5, 4, 0 },
        { 2, 1, 7, 1 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void SplitAndJoinMatchTheReferenceAndInvertEachOther(int rows, int width, int height, int left)
    {
        var shape = new ViewShape(width * height, width, left);
        var random = new Random(rows * 31 + width);
        float[] full = Numerics.Uniform(random, rows * shape.Features);
        var (view1, view2) = ViewReference.Split(Numerics.ToDouble(full), rows, shape);
        Assert.Equal(rows * shape.View1Size, view1.Length);
        Assert.Equal(rows * shape.View2Size, view2.Length);
        foreach (var kernels in fixture.KernelSets)
        {
            var accelerator = kernels.Accelerator;
            using var fullBuffer = accelerator.Upload(full);
            // One float more than needed, so an empty view is still a real buffer.
            using var view1Buffer = accelerator.Allocate1D<float>(view1.Length + 1);
            using var view2Buffer = accelerator.Allocate1D<float>(view2.Length + 1);
            using var joined = accelerator.Allocate1D<float>(full.Length);
            kernels.SplitViews(fullBuffer.View, view1Buffer.View, view2Buffer.View, rows, shape);
            kernels.JoinViews(view1Buffer.View, view2Buffer.View, joined.View, rows, shape);
            string what = $"{accelerator.AcceleratorType} {rows}×{height}×{width} left {left}";
            Assert.True(Exact(view1).SequenceEqual(view1Buffer.GetAsArray1D()[..view1.Length]), $"{what}: view 1 differs");
            Assert.True(Exact(view2).SequenceEqual(view2Buffer.GetAsArray1D()[..view2.Length]), $"{what}: view 2 differs");
            Assert.True(Exact(ViewReference.Join(view1, view2, rows, shape)).SequenceEqual(joined.GetAsArray1D()), $"{what}: join differs");
            Assert.Equal(full, joined.GetAsArray1D());
        }
    }

    /// <summary>The reference's doubles, which hold floats or correctly rounded float sums, as floats.</summary>
    private static float[] Exact(double[] values) => values.Select(value => (float)value).ToArray();

    /// <summary>A copy moves floats, so it is compared exactly; target cells outside the block must keep their values.</summary>
    [Theory]
    [InlineData(1, 1, 1, 0, 1, 0)]
    [InlineData(7, 2, 6, 4, 402, 400)]
    [InlineData(33, 7, 33, 0, 40, 33)]
    [InlineData(129, 400, 402, 0, 400, 0)]
    [InlineData(5, 3, 3, 0, 784, 390)]
    public void CopyColumnsMovesTheBlockAndKeepsTheRest(int rows, int columns, int sourceWidth, int sourceColumn, int targetWidth, int targetColumn)
    {
        var block = new ColumnBlock(rows, columns, sourceWidth, sourceColumn, targetWidth, targetColumn);
        var random = new Random(rows * 7 + columns);
        float[] source = Numerics.Uniform(random, rows * sourceWidth), target = Numerics.Uniform(random, rows * targetWidth);
        var expected = Exact(ViewReference.CopyColumns(Numerics.ToDouble(source), Numerics.ToDouble(target), block));
        foreach (var kernels in fixture.KernelSets)
        {
            using var sourceBuffer = kernels.Accelerator.Upload(source);
            using var targetBuffer = kernels.Accelerator.Upload(target);
            kernels.CopyColumns(sourceBuffer.View, targetBuffer.View, block);
            Assert.Equal(expected, targetBuffer.GetAsArray1D());
        }
    }

    /// <summary>The add of two floats is correctly rounded, so the float result is the double sum rounded: exact.</summary>
    [Theory]
    [InlineData(1, 1, 1, 0, 1, 0)]
    [InlineData(7, 3, 8, 5, 11, 2)]
    [InlineData(33, 20, 25, 0, 26, 0)]
    public void AddColumnsAddsTheBlockAndKeepsTheRest(int rows, int columns, int sourceWidth, int sourceColumn, int targetWidth, int targetColumn)
    {
        var block = new ColumnBlock(rows, columns, sourceWidth, sourceColumn, targetWidth, targetColumn);
        var random = new Random(rows * 5 + columns);
        float[] source = Numerics.Uniform(random, rows * sourceWidth), target = Numerics.Uniform(random, rows * targetWidth);
        var expected = Exact(ViewReference.AddColumns(Numerics.ToDouble(source), Numerics.ToDouble(target), block));
        foreach (var kernels in fixture.KernelSets)
        {
            using var sourceBuffer = kernels.Accelerator.Upload(source);
            using var targetBuffer = kernels.Accelerator.Upload(target);
            kernels.AddColumns(sourceBuffer.View, targetBuffer.View, block);
            Assert.Equal(expected, targetBuffer.GetAsArray1D());
        }
    }

    [Fact]
    public void ABlockThatDoesNotFitItsRowsIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ColumnBlock(3, 4, 5, 2, 10, 0));

    [Theory]
    [InlineData(1)]
    [InlineData(33)]
    [InlineData(7850)]
    public void AddSumsElementByElement(int count)
    {
        var random = new Random(count);
        float[] target = Numerics.Uniform(random, count), addend = Numerics.Uniform(random, count);
        foreach (var kernels in fixture.KernelSets)
        {
            using var targetBuffer = kernels.Accelerator.Upload(target);
            using var addendBuffer = kernels.Accelerator.Upload(addend);
            kernels.Add(targetBuffer.View, addendBuffer.View);
            var expected = Exact(target.Select((value, i) => (double)value + addend[i]).ToArray());
            Assert.Equal(expected, targetBuffer.GetAsArray1D());
        }
    }
}
