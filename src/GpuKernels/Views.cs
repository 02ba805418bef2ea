using ILGPU;

namespace IlgpuVae.GpuKernels;

/// <summary>
/// How VCCA cuts each image into two views: view 1 is the left <see cref="LeftColumns"/> columns of every image
/// row, view 2 the remaining right columns. Each view is stored row-major by image row, so a view is itself a
/// narrower image.
/// </summary>
public readonly struct ViewShape
{
    public readonly int Features, Width, LeftColumns;

    public ViewShape(int features, int width, int leftColumns)
    {
        Features = features;
        Width = width;
        LeftColumns = leftColumns;
    }

    public int Height => Features / Width;
    public int RightColumns => Width - LeftColumns;
    public int View1Size => Height * LeftColumns;
    public int View2Size => Height * RightColumns;

    /// <summary>Whether element e of whole-image rows [rows, Features] lies in view 1 (left of the cut).</summary>
    public bool InFirstView(int element) => element % Features % Width < LeftColumns;

    /// <summary>Element e's index in the rows of its own view.</summary>
    public int IndexInView(int element)
    {
        int row = element / Features;
        int pixel = element - row * Features;
        int imageRow = pixel / Width;
        int column = pixel - imageRow * Width;
        return column < LeftColumns
            ? row * View1Size + imageRow * LeftColumns + column
            : row * View2Size + imageRow * RightColumns + column - LeftColumns;
    }
}

/// <summary>
/// <see cref="Columns"/> columns of <see cref="Rows"/> rows: in the source, rows are <see cref="SourceWidth"/> wide
/// and the block starts at column <see cref="SourceColumn"/>; in the target, <see cref="TargetWidth"/> and
/// <see cref="TargetColumn"/>.
/// </summary>
public readonly struct ColumnBlock
{
    public readonly int Rows, Columns, SourceWidth, SourceColumn, TargetWidth, TargetColumn;

    public ColumnBlock(int rows, int columns, int sourceWidth, int sourceColumn, int targetWidth, int targetColumn)
    {
        if (rows < 0 || columns < 1 || sourceColumn < 0 || targetColumn < 0 || sourceColumn + columns > sourceWidth || targetColumn + columns > targetWidth)
            throw new ArgumentOutOfRangeException(nameof(columns),
                $"a block of {columns} columns at {sourceColumn} of {sourceWidth} to {targetColumn} of {targetWidth} does not fit its rows");
        Rows = rows;
        Columns = columns;
        SourceWidth = sourceWidth;
        SourceColumn = sourceColumn;
        TargetWidth = targetWidth;
        TargetColumn = targetColumn;
    }

    /// <summary>The same block the other way, target to source: where a copy's gradient goes back.</summary>
    public ColumnBlock Reversed() => new(Rows, Columns, TargetWidth, TargetColumn, SourceWidth, SourceColumn);
}

/// <summary>
/// Moving between whole images [rows, features] and their two views [rows, view1] and [rows, view2] (VCCA). The
/// split is a permutation of each row, so join is its inverse and also its adjoint: the backward pass of a split
/// is a join and that of a join a split. Element-wise kernels over contiguous chunks, like the gather.
/// </summary>
public static class Views
{
    /// <summary>VCCA: images [rows, features] into their left and right views.</summary>
    public static void SplitViews(this KernelSet kernels, ArrayView<float> full, ArrayView<float> view1, ArrayView<float> view2, int rows, ViewShape shape)
    {
        var chunking = kernels.ChunkingFor(rows * shape.Features);
        kernels.Launch(SplitKernel, chunking.Threads, full, view1, view2, shape, chunking);
    }

    /// <summary>VCCA: the two views back into whole images [rows, features].</summary>
    public static void JoinViews(this KernelSet kernels, ArrayView<float> view1, ArrayView<float> view2, ArrayView<float> full, int rows, ViewShape shape)
    {
        var chunking = kernels.ChunkingFor(rows * shape.Features);
        kernels.Launch(JoinKernel, chunking.Threads, view1, view2, full, shape, chunking);
    }

    /// <summary>target += addend over addend's length.</summary>
    public static void Add(this KernelSet kernels, ArrayView<float> target, ArrayView<float> addend)
    {
        var chunking = kernels.ChunkingFor((int)addend.Length);
        kernels.Launch(AddKernel, chunking.Threads, target, addend, chunking);
    }

    /// <summary>
    /// Copies a block of columns from one row-major table to another of the same rows (see <see cref="ColumnBlock"/>).
    /// Where one layer reads several tensors side by side (the VLAE's decoder rung reads [z̃ | z_l]) this joins them,
    /// and the same copy the other way splits the gradient; each target column is written by one block, so a copy
    /// never needs to add.
    /// </summary>
    public static void CopyColumns(this KernelSet kernels, ArrayView<float> source, ArrayView<float> target, ColumnBlock block)
    {
        var chunking = kernels.ChunkingFor(block.Rows * block.Columns);
        kernels.Launch(CopyColumnsKernel, chunking.Threads, source, target, block, chunking);
    }

    /// <summary>The same block added into the target instead of copied: where two readers of one column block (VCCA-private's
    /// two decoders both read z) send their gradients back to it.</summary>
    public static void AddColumns(this KernelSet kernels, ArrayView<float> source, ArrayView<float> target, ColumnBlock block)
    {
        var chunking = kernels.ChunkingFor(block.Rows * block.Columns);
        kernels.Launch(AddColumnsKernel, chunking.Threads, source, target, block, chunking);
    }

    /// <summary>As <see cref="CopyColumnsKernel"/>, adding.</summary>
    [Kernel]
    public static void AddColumnsKernel(Index1D thread, ArrayView<float> source, ArrayView<float> target, ColumnBlock block,
        Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
        {
            int row = element / block.Columns;
            int column = element - row * block.Columns;
            target[row * block.TargetWidth + block.TargetColumn + column] += source[row * block.SourceWidth + block.SourceColumn + column];
        }
    }

    /// <summary>Element e of the block: row e / Columns, column e % Columns, read from the source's place of it.</summary>
    [Kernel]
    public static void CopyColumnsKernel(Index1D thread, ArrayView<float> source, ArrayView<float> target, ColumnBlock block,
        Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
        {
            int row = element / block.Columns;
            int column = element - row * block.Columns;
            target[row * block.TargetWidth + block.TargetColumn + column] = source[row * block.SourceWidth + block.SourceColumn + column];
        }
    }

    /// <summary>full element e = (row, pixel) → its place in view 1 or view 2.</summary>
    [Kernel]
    public static void SplitKernel(Index1D thread, ArrayView<float> full, ArrayView<float> view1, ArrayView<float> view2,
        ViewShape shape, Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
        {
            if (shape.InFirstView(element))
                view1[shape.IndexInView(element)] = full[element];
            else
                view2[shape.IndexInView(element)] = full[element];
        }
    }

    /// <summary>The inverse of <see cref="SplitKernel"/>: each full element read from its view.</summary>
    [Kernel]
    public static void JoinKernel(Index1D thread, ArrayView<float> view1, ArrayView<float> view2, ArrayView<float> full,
        ViewShape shape, Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
            full[element] = shape.InFirstView(element) ? view1[shape.IndexInView(element)] : view2[shape.IndexInView(element)];
    }

    /// <summary>target += addend, element by element: where two branches of a network read one tensor (VCCA's two
    /// decoders read z), their gradients meet here.</summary>
    [Kernel]
    public static void AddKernel(Index1D thread, ArrayView<float> target, ArrayView<float> addend, Chunking chunking)
    {
        int end = chunking.End(thread);
        for (int element = chunking.Start(thread); element < end; element++)
            target[element] += addend[element];
    }
}
