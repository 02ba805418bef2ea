namespace IlgpuVae.GpuKernels.Reference;

/// <summary>VCCA's two views of an image in double precision, written pixel by pixel with (image row, column)
/// loops rather than the kernels' flat index arithmetic.</summary>
public static class ViewReference
{
    public static (double[] View1, double[] View2) Split(double[] full, int rows, ViewShape shape)
    {
        var view1 = new List<double>();
        var view2 = new List<double>();
        for (int row = 0; row < rows; row++)
            for (int imageRow = 0; imageRow < shape.Height; imageRow++)
                for (int column = 0; column < shape.Width; column++)
                {
                    double value = full[row * shape.Features + imageRow * shape.Width + column];
                    (column < shape.LeftColumns ? view1 : view2).Add(value);
                }
        return (view1.ToArray(), view2.ToArray());
    }

    public static double[] Join(double[] view1, double[] view2, int rows, ViewShape shape)
    {
        var full = new double[rows * shape.Features];
        int next1 = 0, next2 = 0;
        for (int row = 0; row < rows; row++)
            for (int imageRow = 0; imageRow < shape.Height; imageRow++)
                for (int column = 0; column < shape.Width; column++)
                    full[row * shape.Features + imageRow * shape.Width + column] =
                        column < shape.LeftColumns ? view1[next1++] : view2[next2++];
        return full;
    }

    /// <summary>The column copy, cell by cell: target[r, TargetColumn + c] = source[r, SourceColumn + c]; the rest of
    /// the target is kept.</summary>
    public static double[] CopyColumns(double[] source, double[] target, ColumnBlock block)
    {
        var result = (double[])target.Clone();
        for (int row = 0; row < block.Rows; row++)
            for (int column = 0; column < block.Columns; column++)
                result[row * block.TargetWidth + block.TargetColumn + column] = source[row * block.SourceWidth + block.SourceColumn + column];
        return result;
    }

    /// <summary>The column add: target[r, TargetColumn + c] += source[r, SourceColumn + c].</summary>
    public static double[] AddColumns(double[] source, double[] target, ColumnBlock block)
    {
        var result = (double[])target.Clone();
        for (int row = 0; row < block.Rows; row++)
            for (int column = 0; column < block.Columns; column++)
                result[row * block.TargetWidth + block.TargetColumn + column] += source[row * block.SourceWidth + block.SourceColumn + column];
        return result;
    }
}
