using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Model.Models.DoubleDef;

/// <summary>
/// The double deep exponential family (Ranganath, Tang, Charlin and Blei 2015, section 4.3) on the device: a count
/// matrix y [N, D] with y_ui ~ Poisson(z_uᵀw_i + ε), z_u the bottom layer of a sparse gamma DEF over rows and w_i that
/// of one over columns (each DEF's layers as <see cref="Def.DefModel"/>'s: p(z_l | z_{l+1}) = Gamma(α, α/μ_l),
/// μ_l = V_{l+1}·z_{l+1} + ε, the top's Gamma(α, α)). Inference is the paper's: mean-field gamma q over every unit
/// of every row and column, with local parameters per row and per column (no encoder), trained by black-box VI —
/// the score-function gradient with each unit's Markov-blanket signal (a bottom row unit's blanket holds its row's
/// training cells, a bottom column unit's its column's) and the leave-one-out baseline over k draws — on the whole
/// matrix each step. As in <see cref="Def.DefModel"/> the weights V are point estimates with the exact gradient for
/// the draws (the paper puts gamma q's on them). The loss is −ELBO per training cell, (Σ_u −log p(y_u | z_u, w) +
/// Σ_u KL_u + Σ_i KL_i)/C with every KL term sampled, averaged over the k draws. Double reference:
/// <see cref="DoubleDefReference"/>.
/// </summary>
public sealed class DoubleDefModel : IDisposable
{
    private readonly KernelSet kernels;
    private readonly Workspace workspace;
    private readonly MatrixShape shape;
    private readonly bool[] observed;

    public DoubleDefModel(KernelSet kernels, CountMatrix data, DoubleDefSettings settings)
    {
        settings.Validate();
        this.kernels = kernels;
        Settings = settings;
        Data = data;
        Layout = new DoubleDefLayout(settings, data.Rows, data.Columns);
        observed = DoubleDefLayout.Observed(data.Rows, data.Columns, settings.HeldOut, settings.SplitSeed);
        TrainingCells = observed.LongCount(cell => cell);
        HeldOutCells = observed.LongLength - TrainingCells;
        if (TrainingCells == 0)
            throw new SettingException($"@HeldOut {settings.HeldOut} leaves none of the matrix's {observed.LongLength} cells to train on");
        shape = new MatrixShape(data.Rows, data.Columns, Layout.Rows.Widths[0], settings.Samples);
        workspace = new Workspace(kernels.Accelerator, Plan());
        Floats(Counts).CopyFromCPU(data.Counts);
        Floats(Observed).CopyFromCPU(observed.Select(cell => cell ? 1f : 0f).ToArray());
        Floats(FloorBuffer).CopyFromCPU(Enumerable.Repeat(DeepExponential.RateFloor, MaxWidth).ToArray());
        Floats(ModelBuffers.Parameters).CopyFromCPU(Layout.Initialise(settings.Seed, DoubleDefLayout.MeanCount(data, observed)));
    }

    public DoubleDefSettings Settings { get; }
    public CountMatrix Data { get; }
    public DoubleDefLayout Layout { get; }
    public long TrainingCells { get; }
    public long HeldOutCells { get; }

    /// <summary>Adam steps taken.</summary>
    public long Step { get; private set; }

    /// <summary>Which cells train (true) and which are held out.</summary>
    public IReadOnlyList<bool> ObservedCells => observed;

    private const string Counts = "ddef.counts", Observed = "ddef.observed", FloorBuffer = "ddef.floor", HeldOutSum = "ddef.held_out_log_sum",
        BiasScratch = "ddef.d_bias", WeightScratch = "ddef.d_weights";

    private int K => Settings.Samples;
    private int MaxWidth => Layout.Sides.Max(side => side.Widths.Max());

    private static string Buffer(DoubleDefSide side, string what, int l = 0) => $"ddef.{side.Name}.{what}{l}";

    private WorkspacePlan Plan()
    {
        var plan = new WorkspacePlan();
        foreach (var name in new[] { ModelBuffers.Parameters, ModelBuffers.Gradients, ModelBuffers.FirstMoment, ModelBuffers.SecondMoment })
            plan.Floats(name, Layout.Count);
        plan.Floats(Counts, (long)Data.Rows * Data.Columns);
        plan.Floats(Observed, (long)Data.Rows * Data.Columns);
        plan.Floats(HeldOutSum, (long)Data.Rows * Data.Columns);
        plan.Floats(FloorBuffer, MaxWidth);
        plan.Floats(BiasScratch, MaxWidth);
        plan.Floats(WeightScratch, Layout.Sides.Max(side => Enumerable.Range(1, side.Layers - 1).Select(side.ThetaLength).DefaultIfEmpty(0).Max()));
        foreach (var side in Layout.Sides)
        {
            long rows = (long)side.Entities * K;
            plan.Floats(Buffer(side, "loss"), rows);
            plan.Floats(Buffer(side, "kl"), rows);
            for (int l = 0; l < side.Layers; l++)
            {
                foreach (var what in new[] { "z", "log_z", "log_q", "log_p", "means", "d_means" })
                    plan.Floats(Buffer(side, what, l), rows * side.Widths[l]);
                plan.Floats(Buffer(side, "score", l), rows * 2 * side.Widths[l]);
                plan.Floats(Buffer(side, "row_log_p", l), rows);
                if (l > 0)
                    plan.Floats(Buffer(side, "weights", l), side.ThetaLength(l));
            }
        }
        return plan;
    }

    private ArrayView<float> Floats(string name) => workspace.Floats(name).View;
    private ArrayView<float> View(DoubleDefSide side, string what, int l = 0) => Floats(Buffer(side, what, l));
    private ArrayView<float> Flat(string buffer, long offset, long length) => Floats(buffer).SubView(offset, length);
    private ArrayView<float> Table(string buffer, DoubleDefSide side) => Flat(buffer, side.TableOffset, side.TableLength);
    private ArrayView<float> Theta(string buffer, DoubleDefSide side, int l) => Flat(buffer, side.ThetaOffsets[l], side.ThetaLength(l));

    /// <summary>The draw keys of a step: the rows' from <paramref name="stream"/>, the columns' from it moved by
    /// <see cref="Philox.Streams.DoubleDefColumnOffset"/>.</summary>
    public (DrawKey Rows, DrawKey Columns) Keys(uint stream, long step)
    {
        var rows = new DrawKey(Settings.Seed, stream, step);
        return (rows, rows.Offset(Philox.Streams.DoubleDefColumnOffset));
    }

    /// <summary>One side's draws of every layer, then top down its parents' means and prior terms; KL per draw row.</summary>
    private void Forward(DoubleDefSide side, DrawKey key)
    {
        int rows = side.Entities * K;
        var table = Table(ModelBuffers.Parameters, side);
        for (int l = 0; l < side.Layers; l++)
            kernels.GammaPosteriorSample(table, View(side, "z", l), View(side, "log_z", l), View(side, "log_q", l), View(side, "score", l),
                side.Shape(l, K), key);
        for (int l = side.Layers - 1; l >= 0; l--)
        {
            bool top = l == side.Layers - 1;
            if (!top)
            {
                kernels.SoftplusWeights(Theta(ModelBuffers.Parameters, side, l + 1), View(side, "weights", l + 1));
                kernels.DenseForward(ActivationKind.Identity, View(side, "z", l + 1), View(side, "weights", l + 1), Floats(FloorBuffer).SubView(0, side.Widths[l]),
                    View(side, "means", l), rows, side.Widths[l + 1], side.Widths[l]);
            }
            kernels.GammaLayerTerms(View(side, "z", l), View(side, "log_z", l), View(side, "log_q", l), top ? kernels.None : View(side, "means", l),
                View(side, "log_p", l), top ? kernels.None : View(side, "d_means", l), View(side, "row_log_p", l), View(side, "kl"), side.Widths[l],
                (float)Settings.Alpha, first: top);
        }
    }

    /// <summary>Both sides' draws and the Poisson terms summed per row and per column (training cells only).</summary>
    private void Forward(uint stream, long step)
    {
        var (rowKey, columnKey) = Keys(stream, step);
        Forward(Layout.Rows, rowKey);
        Forward(Layout.Columns, columnKey);
        var (z, w) = (View(Layout.Rows, "z"), View(Layout.Columns, "z"));
        kernels.RowNegativeLogLikelihood(z, w, Floats(Counts), Floats(Observed), View(Layout.Rows, "loss"), shape);
        kernels.ColumnNegativeLogLikelihood(z, w, Floats(Counts), Floats(Observed), View(Layout.Columns, "loss"), shape);
    }

    /// <summary>One side's gradient: q's table by the score-function estimate (the bottom layer's signal −loss of
    /// its entity's cells, each layer above it log p of the layer below), θ_l exact for the draws.</summary>
    private void Backward(DoubleDefSide side, float scale)
    {
        int rows = side.Entities * K;
        var dTable = Table(ModelBuffers.Gradients, side);
        for (int l = 0; l < side.Layers; l++)
            kernels.GammaScoreGradient(View(side, "score", l), View(side, "log_p", l), View(side, "log_q", l),
                l == 0 ? View(side, "loss") : View(side, "row_log_p", l - 1), View(side, "loss"), View(side, "kl"), dTable, side.Shape(l, K),
                GammaEstimator.Full, 1f, l == 0 ? -1f : 1f, scale);
        for (int l = 1; l < side.Layers; l++)
        {
            var dWeights = Floats(WeightScratch).SubView(0, side.ThetaLength(l));
            kernels.DenseBackward(View(side, "z", l), View(side, "weights", l), View(side, "d_means", l - 1), kernels.None, ActivationKind.Identity, dWeights,
                Floats(BiasScratch).SubView(0, side.Widths[l - 1]), rows, side.Widths[l], side.Widths[l - 1]);
            kernels.SoftplusWeightGradient(Theta(ModelBuffers.Parameters, side, l), dWeights, Theta(ModelBuffers.Gradients, side, l), -scale);
        }
    }

    /// <summary>The loss of the draws in the buffers (after <see cref="TrainStep"/>, that step's, before its update):
    /// −ELBO per training cell and its parts, averaged over the k draws. Waits for the device.</summary>
    public DoubleDefLoss Loss()
    {
        double Sum(string buffer) => workspace.Floats(buffer).GetAsArray1D().Sum(value => (double)value);
        double cells = TrainingCells * (double)K;
        return new DoubleDefLoss(Sum(Buffer(Layout.Rows, "loss")) / cells, Sum(Buffer(Layout.Rows, "kl")) / cells, Sum(Buffer(Layout.Columns, "kl")) / cells);
    }

    /// <summary>The loss and the gradient estimate at the current parameters for the draws of (stream, step), without
    /// stepping: the gradient is left in the gradient buffer.</summary>
    public DoubleDefLoss LossAndGradient(uint stream, long step)
    {
        ForwardAndBackward(stream, step);
        return Loss();
    }

    /// <summary>The draws of (stream, step), their terms, and the gradient estimate into the gradient buffer.</summary>
    private void ForwardAndBackward(uint stream, long step)
    {
        Forward(stream, step);
        float scale = (float)(1.0 / (TrainingCells * (double)K));
        Backward(Layout.Rows, scale);
        Backward(Layout.Columns, scale);
    }

    /// <summary>One Adam step on the whole matrix, its draws keyed by the step. Nothing is read back (the host does
    /// not wait): <see cref="Loss"/> reads the step's loss when wanted.</summary>
    public void TrainStep()
    {
        ForwardAndBackward(Philox.Streams.Reparameterize, Step);
        Step++;
        kernels.AdamStep(Floats(ModelBuffers.Parameters), Floats(ModelBuffers.Gradients), Floats(ModelBuffers.FirstMoment), Floats(ModelBuffers.SecondMoment),
            new AdamParameters((float)Settings.LearningRate, 0.9f, 0.999f, 1e-8f, Step));
    }

    /// <summary>
    /// The model scored with <paramref name="draws"/> × k fresh draws (the evaluation stream): the training cells'
    /// −ELBO per cell, averaged over the draws, and the held-out cells' predictive log-likelihood per cell,
    /// log (1/S) Σ_s p(y_ui | z_s, w_s) by Monte Carlo over S = draws·k samples of q (NaN when no cell is held out).
    /// </summary>
    public DoubleDefScore Evaluate(int draws)
    {
        double reconstruction = 0, rowKl = 0, columnKl = 0;
        var (z, w) = (View(Layout.Rows, "z"), View(Layout.Columns, "z"));
        for (int draw = 0; draw < draws; draw++)
        {
            Forward(Philox.Streams.EvalReparameterize, draw);
            if (HeldOutCells > 0)
                kernels.HeldOutLogLikelihood(z, w, Floats(Counts), Floats(Observed), Floats(HeldOutSum), shape, first: draw == 0);
            var loss = Loss();
            reconstruction += loss.Reconstruction / draws;
            rowKl += loss.RowKl / draws;
            columnKl += loss.ColumnKl / draws;
        }
        double heldOut = double.NaN;
        if (HeldOutCells > 0)
        {
            var logSum = workspace.Floats(HeldOutSum).GetAsArray1D();
            double total = 0, logSamples = Math.Log((double)draws * K);
            for (long cell = 0; cell < logSum.LongLength; cell++)
                if (!observed[cell])
                    total += logSum[cell] - logSamples;
            heldOut = total / HeldOutCells;
        }
        return new DoubleDefScore(new DoubleDefLoss(reconstruction, rowKl, columnKl), heldOut, draws * K);
    }

    /// <summary>The flat buffers a checkpoint holds: the parameters and Adam's two moments.</summary>
    public float[] Parameters => workspace.Floats(ModelBuffers.Parameters).GetAsArray1D();
    public float[] Gradient => workspace.Floats(ModelBuffers.Gradients).GetAsArray1D();
    public float[] FirstMoment => workspace.Floats(ModelBuffers.FirstMoment).GetAsArray1D();
    public float[] SecondMoment => workspace.Floats(ModelBuffers.SecondMoment).GetAsArray1D();

    /// <summary>
    /// Two fixed baselines for the held-out cells, mean Poisson log-likelihood per cell (NaN with none held out), from
    /// the training cells alone: each column's mean count as every cell's rate, and the independence (rank-one) model
    /// r_ui = R_u·C_i/T with R_u, C_i and T the training cells' row, column and grand totals rescaled by the share of
    /// each row's and column's cells observed. Rates are floored at ε as the model's are.
    /// </summary>
    public (double ColumnMeans, double Independence) Baselines() => baselines ??= HeldOutBaselines();

    /// <summary>The data and the split are fixed for the model's life: <see cref="Baselines"/> computes them once.</summary>
    private (double ColumnMeans, double Independence)? baselines;

    private (double ColumnMeans, double Independence) HeldOutBaselines()
    {
        int rows = Data.Rows, columns = Data.Columns;
        var rowSum = new double[rows];
        var rowCells = new double[rows];
        var columnSum = new double[columns];
        var columnCells = new double[columns];
        for (int u = 0; u < rows; u++)
            for (int i = 0; i < columns; i++)
                if (observed[(long)u * columns + i])
                {
                    double y = Data[u, i];
                    rowSum[u] += y;
                    rowCells[u]++;
                    columnSum[i] += y;
                    columnCells[i]++;
                }
        if (HeldOutCells == 0)
            return (double.NaN, double.NaN);
        // Per-cell means: a row's (or column's) total over the cells it has, times the number of cells it would have.
        var rowRate = rowSum.Select((sum, u) => rowCells[u] > 0 ? sum / rowCells[u] : 0).ToArray();
        var columnRate = columnSum.Select((sum, i) => columnCells[i] > 0 ? sum / columnCells[i] : 0).ToArray();
        double grand = rowSum.Sum() / TrainingCells;
        double columnMeans = 0, independence = 0;
        for (int u = 0; u < rows; u++)
            for (int i = 0; i < columns; i++)
                if (!observed[(long)u * columns + i])
                {
                    double y = Data[u, i];
                    columnMeans += PoissonLogDensity(y, columnRate[i] + DeepExponential.RateFloor);
                    independence += PoissonLogDensity(y, (grand > 0 ? rowRate[u] * columnRate[i] / grand : 0) + DeepExponential.RateFloor);
                }
        return (columnMeans / HeldOutCells, independence / HeldOutCells);
    }

    private static double PoissonLogDensity(double count, double rate) => GpuKernels.Reference.DistributionReference.PoissonLogDensity(count, rate);

    /// <summary>E_q of every unit of one side, per layer [entities, K_l]: q's means softplus(ρ_m) + 1e-6.</summary>
    /// <param name="parameters">The flat parameters as <see cref="Parameters"/> read them, when the caller has them
    /// already (one copy from the device for both sides); null reads them.</param>
    public double[][] PosteriorMeans(DoubleDefSide side, float[]? parameters = null)
    {
        parameters ??= Parameters;
        return Enumerable.Range(0, side.Layers).Select(l =>
        {
            var means = new double[side.Entities * side.Widths[l]];
            for (int e = 0; e < side.Entities; e++)
                for (int j = 0; j < side.Widths[l]; j++)
                    means[e * side.Widths[l] + j] = DeepExponential.Mean(parameters[side.TableOffset + (long)e * 2 * side.TotalUnits + side.TotalUnits + side.Offsets[l] + j]);
            return means;
        }).ToArray();
    }

    /// <summary>Puts a checkpoint's state back: parameters, Adam's moments (null: zeros) and the steps taken.</summary>
    public void Restore(float[] parameters, float[]? firstMoment, float[]? secondMoment, long step)
    {
        if (parameters.LongLength != Layout.Count)
            throw new ArgumentException($"the checkpoint holds {parameters.LongLength} parameters but this double DEF has {Layout.Count}");
        Floats(ModelBuffers.Parameters).CopyFromCPU(parameters);
        Floats(ModelBuffers.FirstMoment).CopyFromCPU(firstMoment ?? new float[Layout.Count]);
        Floats(ModelBuffers.SecondMoment).CopyFromCPU(secondMoment ?? new float[Layout.Count]);
        Step = step;
    }

    public void Dispose() => workspace.Dispose();
}

/// <summary>−ELBO per training cell, averaged over draws: the Poisson terms, and the rows' and columns' KL terms.</summary>
public readonly record struct DoubleDefLoss(double Reconstruction, double RowKl, double ColumnKl)
{
    public double NegativeElbo => Reconstruction + RowKl + ColumnKl;
}

/// <summary>An evaluation: the training cells' loss and the held-out cells' predictive log-likelihood per cell,
/// from <see cref="Samples"/> draws of q.</summary>
public readonly record struct DoubleDefScore(DoubleDefLoss Training, double HeldOutLogLikelihood, int Samples);
