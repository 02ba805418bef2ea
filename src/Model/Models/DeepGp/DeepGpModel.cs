using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model.Core;

namespace IlgpuVae.Model.Models.DeepGp;

/// <summary>
/// Inputs [N, D] with real targets [N, O] (Gaussian likelihood) or class labels in 0..O−1 (softmax, robust-max), in double.
/// </summary>
public sealed record DeepGpData(int Rows, int Features, double[] Inputs, double[]? Targets, int[]? Labels, int Outputs)
{
    public static DeepGpData Regression(double[] inputs, double[] targets, int rows, int features) =>
        new(rows, features, inputs, targets, null, targets.Length / Math.Max(rows, 1));

    public static DeepGpData Classification(double[] inputs, int[] labels, int rows, int features, int classes) =>
        new(rows, features, inputs, null, labels, classes);
}

/// <summary>
/// The deep Gaussian process with doubly stochastic variational inference (Salimbeni and Deisenroth 2017) on the
/// device, in double. Each layer is a sparse variational GP with an RBF/ARD kernel, M inducing inputs Z and
/// q(u_o) per output (whitened by default, u = Lv with q(v) = N(m_o, L_S,o L_S,oᵀ); or N(m_o, L_S,o L_S,oᵀ) itself, the
/// form SCIENCE.md writes: <see cref="DeepGpSettings.Whitened"/>), the outputs sharing the kernel and Z;
/// inner layers add a fixed linear mean function. One reparameterized sample per point passes from each layer to the
/// next; the last layer's Gaussian likelihood is taken in closed form under its marginals, the robust-max by
/// Gauss–Hermite quadrature under them, the softmax by its sample.
/// The loss is −ELBO per training point on a minibatch of B: −(1/B) Σ_batch E[log p(y | f^L)] + (1/N) Σ_l KL_l, its
/// gradient by each kernel's reverse mode in turn (see SparseGpTests, which assembles one layer the same way).
/// Double reference: <see cref="DeepGpReference"/>.
/// </summary>
public sealed class DeepGpModel : IDisposable
{
    private readonly KernelSet kernels;
    private readonly Workspace workspace;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> failures, batchIndices, labels, batchLabels;

    /// <summary>The robust-max likelihood's Gauss–Hermite nodes, then weights (one of each when unused).</summary>
    private readonly MemoryBuffer1D<double, Stride1D.Dense> quadrature;
    private readonly int capacity;
    private readonly double[][] meanWeights;
    private int[]? uploadedBatch;

    /// <summary>Whether the batch buffers hold <see cref="uploadedBatch"/>'s rows (a prediction overwrites them).</summary>
    private bool batchGathered;

    public DeepGpModel(KernelSet kernels, DeepGpSettings settings, DeepGpData data, double[]? parameters = null, double[][]? meanWeights = null)
    {
        this.kernels = kernels;
        Settings = settings;
        Data = data;
        Layout = new DeepGpLayout(settings, data.Features, data.Outputs);
        if ((settings.Likelihood == DeepGpLikelihood.Gaussian) != (data.Targets is not null))
            throw new ArgumentException("the Gaussian likelihood needs real targets, the softmax and robust-max class labels");
        if (settings.Likelihood == DeepGpLikelihood.RobustMax && data.Outputs < 2)
            throw new SettingException($"the robust-max likelihood needs at least two classes (the labels have {data.Outputs})");
        capacity = Math.Min(settings.BatchSize, data.Rows);
        double[] start;
        (start, this.meanWeights) = parameters is null || meanWeights is null ? Layout.Initialise(data.Inputs, data.Rows) : (parameters, meanWeights);
        if (start.Length != Layout.Count)
            throw new ArgumentException($"the parameters hold {start.Length} values; this model has {Layout.Count}");
        workspace = new Workspace(kernels.Accelerator, Plan());
        var accelerator = kernels.Accelerator;
        failures = accelerator.Allocate1D<int>(Layout.Layers.Count);
        batchIndices = accelerator.Allocate1D<int>(capacity);
        labels = accelerator.Allocate1D<int>(Math.Max(1, data.Labels?.Length ?? 1));
        batchLabels = accelerator.Allocate1D<int>(capacity);
        var (nodes, weights) = settings.Likelihood == DeepGpLikelihood.RobustMax ? GaussHermite.Rule(settings.QuadraturePoints) : ([0.0], [0.0]);
        quadrature = accelerator.Allocate1D(nodes.Concat(weights).ToArray());
        if (data.Labels is not null)
            labels.CopyFromCPU(data.Labels);
        Doubles(Inputs).CopyFromCPU(data.Inputs);
        if (data.Targets is not null)
            Doubles(Targets).CopyFromCPU(data.Targets);
        for (int l = 0; l < this.meanWeights.Length; l++)
            Doubles(Name(l, "w")).CopyFromCPU(this.meanWeights[l]);
        Doubles(Parameters).CopyFromCPU(start);
    }

    public DeepGpSettings Settings { get; }
    public DeepGpData Data { get; }
    public DeepGpLayout Layout { get; }

    /// <summary>Adam steps taken.</summary>
    public long Step { get; private set; }

    /// <summary>The inner layers' fixed linear mean weights.</summary>
    public IReadOnlyList<double[]> MeanWeights => meanWeights;

    private const string Parameters = "dgp.parameters", Gradients = "dgp.gradients", FirstMoment = "dgp.adam_m", SecondMoment = "dgp.adam_v",
        Inputs = "dgp.inputs", Targets = "dgp.targets", BatchInputs = "dgp.x", BatchTargets = "dgp.y", Ell = "dgp.ell", NoiseShares = "dgp.d_noise";

    private static string Name(int layer, string what) => $"dgp.{layer}.{what}";

    private int M => Settings.Inducing;
    private int LayerCount => Layout.Layers.Count;
    private bool Gaussian => Settings.Likelihood == DeepGpLikelihood.Gaussian;

    private WorkspacePlan Plan()
    {
        var plan = new WorkspacePlan();
        foreach (var name in new[] { Parameters, Gradients, FirstMoment, SecondMoment })
            plan.Doubles(name, Layout.Count);
        plan.Doubles(Inputs, (long)Data.Rows * Data.Features);
        plan.Doubles(Targets, Data.Targets is null ? 1 : (long)Data.Rows * Data.Outputs);
        plan.Doubles(BatchInputs, (long)capacity * Data.Features);
        plan.Doubles(BatchTargets, (long)capacity * Data.Outputs);
        plan.Doubles(Ell, capacity);
        plan.Doubles(NoiseShares, capacity);
        long square = (long)M * M, cross = (long)M * capacity;
        foreach (var layer in Layout.Layers)
        {
            int l = layer.Index, o = layer.OutputWidth, din = layer.InputWidth;
            foreach (var what in new[] { "kzz", "l", "d_l", "d_kzz", "work" })
                plan.Doubles(Name(l, what), square);
            foreach (var what in new[] { "kzx", "t", "a", "d_a", "d_kzx", "d_t", "d_kzx_solve" })
                plan.Doubles(Name(l, what), cross);
            plan.Doubles(Name(l, "b"), o * cross);
            foreach (var what in new[] { "mean", "var", "f", "eps", "d_mean", "d_var", "d_f" })
                plan.Doubles(Name(l, what), (long)capacity * o);
            plan.Doubles(Name(l, "d_x"), (long)capacity * din);
            foreach (var what in new[] { "v", "d_v", "d_factors" })
                plan.Doubles(Name(l, what), o * square);
            foreach (var what in new[] { "w_solve", "d_w", "d_means" })
                plan.Doubles(Name(l, what), (long)o * M);
            plan.Doubles(Name(l, "log_det"), 1);
            plan.Doubles(Name(l, "d_log_det"), 1);
            plan.Doubles(Name(l, "kl"), o);
            plan.Doubles(Name(l, "d_z1"), (long)M * din);
            plan.Doubles(Name(l, "d_z2"), (long)M * din);
            plan.Doubles(Name(l, "d_hyper"), din + 1);
            if (layer.Inner)
                plan.Doubles(Name(l, "w"), (long)din * o);
        }
        return plan;
    }

    private ArrayView<double> Doubles(string name) => workspace.Doubles(name).View;
    private ArrayView<double> View(int layer, string what) => Doubles(Name(layer, what));
    private ArrayView<double> View(int layer, string what, long length) => Doubles(Name(layer, what)).SubView(0, length);
    private ArrayView<double> Slice(string buffer, long offset, long length) => Doubles(buffer).SubView(offset, length);
    private ArrayView<double> Z(string buffer, GpLayer layer) => Slice(buffer, layer.InducingInputs, (long)M * layer.InputWidth);
    private ArrayView<double> Hyper(string buffer, GpLayer layer) => Slice(buffer, layer.Hyper, layer.InputWidth + 1);
    private ArrayView<double> Means(string buffer, GpLayer layer) => Slice(buffer, layer.Means, (long)layer.OutputWidth * M);
    private ArrayView<double> Factors(string buffer, GpLayer layer) => Slice(buffer, layer.Factors, (long)layer.OutputWidth * M * M);

    /// <summary>The input of layer l for n points: the batch's inputs, or the layer below's sample.</summary>
    private ArrayView<double> LayerInput(int layer, int n) => layer == 0 ? Doubles(BatchInputs).SubView(0, (long)n * Data.Features)
        : View(layer - 1, "f", (long)n * Layout.Layers[layer - 1].OutputWidth);

    /// <summary>The draw key of one pass: layer l's ε from the stream moved by <see cref="Philox.Streams.LayerOffset"/>(l + 1).</summary>
    private static DrawKey LayerKey(DrawKey key, int layer) => key.Offset(Philox.Streams.LayerOffset(layer + 1));

    /// <summary>
    /// The forward pass for the first n rows of the batch buffers: every layer's marginals (and its sample where the
    /// next layer or the softmax reads one); with <paramref name="withKl"/> each layer's KL per output. A factorisation
    /// that fails is a <see cref="SettingException"/> naming the layer.
    /// </summary>
    private void Forward(int n, DrawKey key, bool withKl)
    {
        foreach (var layer in Layout.Layers)
        {
            int l = layer.Index, o = layer.OutputWidth, din = layer.InputWidth;
            var z = Z(Parameters, layer);
            var hyper = Hyper(Parameters, layer);
            var x = LayerInput(l, n);
            kernels.Rbf(z, z, hyper, View(l, "kzz"), 1, M, M, din);
            kernels.Cholesky(View(l, "kzz"), View(l, "l"), failures.View.SubView(l, 1), 1, M, Settings.Jitter);
            kernels.Rbf(z, x, hyper, View(l, "kzx"), 1, M, n, din);
            kernels.TriangularSolve(View(l, "l"), View(l, "kzx"), View(l, "t"), 1, M, n, transpose: false);
            if (!Settings.Whitened)
                kernels.TriangularSolve(View(l, "l"), View(l, "t"), View(l, "a"), 1, M, n, transpose: true);
            var (projection, cross) = Projection(l);
            kernels.CovarianceProjection(projection, Factors(Parameters, layer), View(l, "b"), n, M, o);
            kernels.Marginals(projection, cross, Means(Parameters, layer), View(l, "b"), hyper, din, View(l, "mean"), View(l, "var"), n, M, o);
            if (layer.Inner)
                kernels.LinearMean(x, View(l, "w"), View(l, "mean"), n, din, o);
            if (layer.Inner || !Settings.LikelihoodReadsMarginals)
                kernels.SampleMarginals(View(l, "mean"), View(l, "var"), View(l, "f"), View(l, "eps"), n * o, o, LayerKey(key, l));
            if (withKl && Settings.Whitened)
                kernels.PosteriorKl(Factors(Parameters, layer), Means(Parameters, layer), View(l, "log_det"), Factors(Parameters, layer), View(l, "kl"), M, o);
            else if (withKl)
            {
                kernels.TriangularSolve(View(l, "l"), Factors(Parameters, layer), View(l, "v"), o, M, M, transpose: false, perFactor: o);
                kernels.TriangularSolve(View(l, "l"), Means(Parameters, layer), View(l, "w_solve"), o, M, 1, transpose: false, perFactor: o);
                kernels.LogDeterminant(View(l, "l"), View(l, "log_det"), 1, M);
                kernels.PosteriorKl(View(l, "v"), View(l, "w_solve"), View(l, "log_det"), Factors(Parameters, layer), View(l, "kl"), M, o);
            }
        }
        CheckFactorisations();
    }

    /// <summary>
    /// What the marginals read as A and as K_ZX: whitened, T = L⁻¹K_ZX for both (μ = Tᵀm, σ² = σ_f² − Σ T² + ‖L_SᵀT‖²);
    /// otherwise A = K⁻¹K_ZX and K_ZX itself.
    /// </summary>
    private (ArrayView<double> Projection, ArrayView<double> Cross) Projection(int l) =>
        Settings.Whitened ? (View(l, "t"), View(l, "t")) : (View(l, "a"), View(l, "kzx"));

    private void CheckFactorisations()
    {
        var pivots = failures.GetAsArray1D();
        for (int l = 0; l < pivots.Length; l++)
            if (pivots[l] >= 0)
                throw new SettingException($"layer {l + 1} of the deep GP: K_ZZ + {Settings.Jitter:G3}·I is not positive definite (pivot {pivots[l] + 1} of {M}) at step {Step + 1}; its inducing inputs have (nearly) met or its lengthscales grown long: raise @Jitter, lower @LearningRate or use fewer @Inducing points (the last checkpoint is kept)");
    }

    /// <summary>The likelihood's terms for the first n batch rows: ell per point, and the derivatives of
    /// weight·Σ ell into the last layer's dMean and dVariance (and the noise's shares).</summary>
    private void Likelihood(int n, double weight)
    {
        var last = Layout.Layers[^1];
        int l = last.Index, o = last.OutputWidth;
        if (Gaussian)
            kernels.GaussianExpectedLogLikelihood(Doubles(BatchTargets), View(l, "mean"), View(l, "var"), Slice(Parameters, Layout.LogNoise, 1), weight,
                Doubles(Ell), View(l, "d_mean"), View(l, "d_var"), Doubles(NoiseShares), n, o);
        else if (Settings.Likelihood == DeepGpLikelihood.RobustMax)
            kernels.RobustMaxExpectedLogLikelihood(View(l, "mean"), View(l, "var"), batchLabels.View, quadrature.View, Settings.RobustMaxEpsilon, weight,
                Doubles(Ell), View(l, "d_mean"), View(l, "d_var"), n, o, Settings.QuadraturePoints);
        else
        {
            kernels.SoftmaxLogLikelihood(View(l, "f"), batchLabels.View, weight, Doubles(Ell), View(l, "d_f"), n, o);
            kernels.SampleMarginalsBackward(View(l, "var"), View(l, "eps"), View(l, "d_f"), View(l, "d_mean"), View(l, "d_var"), n * o);
        }
    }

    /// <summary>The reverse mode of −(1/B)Σ ell + (1/N)Σ KL into the gradient buffer (zeroed first), given the
    /// likelihood's derivatives in the last layer's dMean and dVariance.</summary>
    private void Backward(int n)
    {
        Doubles(Gradients).MemSetToZero();
        if (Gaussian)
            kernels.SumInto(Doubles(NoiseShares).SubView(0, n), Slice(Gradients, Layout.LogNoise, 1));
        double klWeight = 1.0 / Data.Rows;
        for (int l = LayerCount - 1; l >= 0; l--)
        {
            var layer = Layout.Layers[l];
            int o = layer.OutputWidth, din = layer.InputWidth;
            var (z, hyper, means, factors) = (Z(Parameters, layer), Hyper(Parameters, layer), Means(Parameters, layer), Factors(Parameters, layer));
            var (dZ, dHyper, dMeans, dFactors) = (Z(Gradients, layer), Hyper(Gradients, layer), Means(Gradients, layer), Factors(Gradients, layer));
            var x = LayerInput(l, n);
            long cross = (long)M * n;
            var dMean = View(l, "d_mean", (long)n * o);
            var dVariance = View(l, "d_var", (long)n * o);

            // The marginals: into their projection and cross term, m and L_S; the variances' direct share of σ_f².
            var (projection, crossTerm) = Projection(l);
            // The layer's m and L_S gradients are still zero here: the marginals' shares are written into them.
            kernels.MarginalsBackward(projection, crossTerm, means, factors, View(l, "b"), dMean, dVariance, View(l, "d_a"), View(l, "d_kzx"),
                dMeans, dFactors, n, M, o);
            kernels.SignalVarianceGradient(dVariance, hyper, dHyper, din, n * o);

            View(l, "d_l").MemSetToZero();
            if (Settings.Whitened)
            {
                // T = L⁻¹K_ZX is both the projection and the cross term: T̄ = Ā + K̄, then into K_ZX and the factor.
                kernels.AddInto(View(l, "d_a", cross), View(l, "d_kzx", cross));
                kernels.TriangularSolveBackward(View(l, "l"), View(l, "t"), View(l, "d_a"), View(l, "d_kzx"), View(l, "d_l"), 1, M, n, transpose: false);

                // The whitened KL, weighted 1/N, reads m and L_S alone.
                kernels.PosteriorKlBackward(factors, means, factors, klWeight, View(l, "d_v"), View(l, "d_w"), dFactors, View(l, "d_log_det"), M, o);
                kernels.AddInto(dFactors, View(l, "d_v"));
                kernels.AddInto(dMeans, View(l, "d_w"));
            }
            else
            {
                // A = L⁻ᵀL⁻¹K_ZX: into K_ZX and the factor.
                kernels.TriangularSolveBackward(View(l, "l"), View(l, "a"), View(l, "d_a"), View(l, "d_t"), View(l, "d_l"), 1, M, n, transpose: true);
                kernels.TriangularSolveBackward(View(l, "l"), View(l, "t"), View(l, "d_t"), View(l, "d_kzx_solve"), View(l, "d_l"), 1, M, n, transpose: false);
                kernels.AddInto(View(l, "d_kzx", cross), View(l, "d_kzx_solve", cross));

                // The KL, weighted 1/N: into L_S's diagonal, V = L⁻¹L_S, w = L⁻¹m and log det K.
                kernels.PosteriorKlBackward(View(l, "v"), View(l, "w_solve"), factors, klWeight, View(l, "d_v"), View(l, "d_w"), dFactors, View(l, "d_log_det"), M, o);
                kernels.TriangularSolveBackward(View(l, "l"), View(l, "v"), View(l, "d_v"), View(l, "d_factors"), View(l, "d_l"), o, M, M, transpose: false, perFactor: o);
                kernels.AddInto(dFactors, View(l, "d_factors"));
                kernels.TriangularSolveBackward(View(l, "l"), View(l, "w_solve"), View(l, "d_w"), View(l, "d_means"), View(l, "d_l"), o, M, 1, transpose: false, perFactor: o);
                kernels.AddInto(dMeans, View(l, "d_means"));
                kernels.LogDeterminantBackward(View(l, "l"), View(l, "d_log_det"), View(l, "d_l"), 1, M);
            }
            kernels.KeepLowerTriangles(dFactors, o, M);

            // The factorisation, then the two kernel matrices: into Z, the hyperparameters and the layer's input.
            kernels.CholeskyBackward(View(l, "l"), View(l, "d_l"), View(l, "d_kzz"), View(l, "work"), 1, M);
            // Z's gradient is still zero here: K_ZZ's first share is written into it.
            kernels.RbfBackward(z, z, hyper, View(l, "kzz"), View(l, "d_kzz"), dZ, View(l, "d_z2"), View(l, "d_hyper"), 1, M, M, din);
            kernels.AddInto(dZ, View(l, "d_z2"));
            kernels.AddInto(dHyper, View(l, "d_hyper"));
            var dX = View(l, "d_x", (long)n * din);
            // The first layer's input is the data: its gradient is not wanted.
            kernels.RbfBackward(z, x, hyper, View(l, "kzx"), View(l, "d_kzx"), View(l, "d_z1"), dX, View(l, "d_hyper"), 1, M, n, din, zGradient: l > 0);
            kernels.AddInto(dZ, View(l, "d_z1"));
            kernels.AddInto(dHyper, View(l, "d_hyper"));
            if (l == 0)
                break;
            if (layer.Inner)
                kernels.LinearMeanBackward(dMean, View(l, "w"), dX, n, din, o);
            // dX is the layer below's dF: through its sample into its marginals.
            int below = l - 1, width = Layout.Layers[below].OutputWidth;
            kernels.SampleMarginalsBackward(View(below, "var"), View(below, "eps"), dX, View(below, "d_mean"), View(below, "d_var"), n * width);
        }
    }

    /// <summary>The batch of a step: every training row in order when the batch holds them all, else the next
    /// <see cref="DeepGpSettings.BatchSize"/> rows of a Philox permutation of the rows per epoch.</summary>
    public int[] BatchRows(long step)
    {
        if (capacity == Data.Rows)
            return Enumerable.Range(0, Data.Rows).ToArray();
        long perEpoch = Data.Rows / capacity;
        int epoch = (int)((step - 1) / perEpoch), at = (int)((step - 1) % perEpoch) * capacity;
        // One permutation per epoch, kept (MNIST's 60 000 rows take a few milliseconds to shuffle).
        if (permutation is null || permutation.Value.Epoch != epoch)
            permutation = (epoch, Shuffle.Permutation(Data.Rows, Settings.Seed, epoch));
        return permutation.Value.Rows[at..(at + capacity)];
    }

    private (int Epoch, int[] Rows)? permutation;

    private void LoadBatch(int[] rows)
    {
        if (uploadedBatch is not null && batchGathered && rows.AsSpan().SequenceEqual(uploadedBatch))
            return;
        if (uploadedBatch is null || !rows.AsSpan().SequenceEqual(uploadedBatch))
        {
            batchIndices.View.SubView(0, rows.Length).CopyFromCPU(rows);
            uploadedBatch = rows;
        }
        batchGathered = true;
        kernels.GatherRows(Doubles(Inputs), batchIndices.View, Doubles(BatchInputs), rows.Length, Data.Features);
        if (Gaussian)
            kernels.GatherRows(Doubles(Targets), batchIndices.View, Doubles(BatchTargets), rows.Length, Data.Outputs);
        else
            kernels.GatherIntegers(labels.View, batchIndices.View, batchLabels.View, rows.Length);
    }

    /// <summary>The training draws of step t (counted from 1).</summary>
    public DrawKey TrainingKey(long step) => new(Settings.Seed, Philox.Streams.Reparameterize, step);

    /// <summary>The loss and gradient at the current parameters for the batch and draws of step t, with nothing
    /// changed; the gradient is left in the gradient buffer.</summary>
    public double LossAndGradient(long step)
    {
        var rows = BatchRows(step);
        LoadBatch(rows);
        Forward(rows.Length, TrainingKey(step), withKl: true);
        Likelihood(rows.Length, -1.0 / rows.Length);
        Backward(rows.Length);
        return LastLoss(rows.Length);
    }

    /// <summary>−ELBO per training point at the current parameters for the batch and draws of step t (no gradient).</summary>
    public double Loss(long step)
    {
        var rows = BatchRows(step);
        LoadBatch(rows);
        Forward(rows.Length, TrainingKey(step), withKl: true);
        Likelihood(rows.Length, -1.0 / rows.Length);
        return LastLoss(rows.Length);
    }

    /// <summary>One Adam step on the next batch (at <paramref name="learningRate"/>, the settings' when not given).
    /// Reads back only the factorisations' pivots.</summary>
    public void TrainStep(double? learningRate = null)
    {
        long step = Step + 1;
        var rows = BatchRows(step);
        LoadBatch(rows);
        Forward(rows.Length, TrainingKey(step), withKl: true);
        Likelihood(rows.Length, -1.0 / rows.Length);
        Backward(rows.Length);
        kernels.AdamStep(Doubles(Parameters), Doubles(Gradients), Doubles(FirstMoment), Doubles(SecondMoment), learningRate ?? Settings.LearningRate, step);
        Step = step;
        lastBatch = rows.Length;
    }

    private int lastBatch;

    /// <summary>−ELBO per training point of the last step's batch and draws, before its update.</summary>
    public double LastLoss() => LastLoss(lastBatch);

    private double LastLoss(int n)
    {
        double ell = workspace.Doubles(Ell).View.SubView(0, n).GetAsArray1D().Sum() / n;
        double kl = Layout.Layers.Sum(layer => workspace.Doubles(Name(layer.Index, "kl")).GetAsArray1D().Sum());
        return -ell + kl / Data.Rows;
    }

    /// <summary>The KL terms Σ_o KL(q(u_o) ‖ p(u_o)) of each layer at the last forward pass that took them.</summary>
    public double[] LayerKl() => Layout.Layers.Select(layer => workspace.Doubles(Name(layer.Index, "kl")).GetAsArray1D().Sum()).ToArray();

    public double[] ParameterValues => workspace.Doubles(Parameters).GetAsArray1D();
    public double[] Gradient => workspace.Doubles(Gradients).GetAsArray1D();
    public double[] FirstMomentValues => workspace.Doubles(FirstMoment).GetAsArray1D();
    public double[] SecondMomentValues => workspace.Doubles(SecondMoment).GetAsArray1D();

    /// <summary>Puts a checkpoint's state back: parameters, Adam's moments (null: zeros) and the steps taken.</summary>
    public void Restore(double[] parameters, double[]? firstMoment, double[]? secondMoment, long step)
    {
        workspace.Doubles(Parameters).CopyFromCPU(parameters);
        workspace.Doubles(FirstMoment).CopyFromCPU(firstMoment ?? new double[Layout.Count]);
        workspace.Doubles(SecondMoment).CopyFromCPU(secondMoment ?? new double[Layout.Count]);
        Step = step;
    }

    /// <summary>The noise variance of the Gaussian likelihood (NaN under the softmax, which has none).</summary>
    public double NoiseVariance() => Gaussian ? Math.Exp(workspace.Doubles(Parameters).View.SubView(Layout.LogNoise, 1).GetAsArray1D()[0]) : double.NaN;

    /// <summary>
    /// The last layer's predictive draws at inputs [rows, D] from <paramref name="samples"/> passes (pass s keyed by
    /// (seed, <paramref name="stream"/>, s)): per pass the marginal mean and variance [rows, O] under the Gaussian
    /// and robust-max likelihoods (each pass samples the layers below), or the sampled logits [rows, O] and no variance
    /// under the softmax. Chunks of the batch size, each drawing what one pass over all the rows would; after each,
    /// <paramref name="rowsDone"/> is told how many rows are done.
    /// </summary>
    public (double[][] Mean, double[][]? Variance) Predict(double[] inputs, int rows, int samples, uint stream = Philox.Streams.EvalReparameterize,
        Action<int>? rowsDone = null)
    {
        var last = Layout.Layers[^1];
        int o = last.OutputWidth;
        var means = Enumerable.Range(0, samples).Select(_ => new double[(long)rows * o]).ToArray();
        bool marginals = Settings.LikelihoodReadsMarginals;
        var variances = marginals ? Enumerable.Range(0, samples).Select(_ => new double[(long)rows * o]).ToArray() : null;
        batchGathered = false;
        for (int first = 0; first < rows; first += capacity)
        {
            int n = Math.Min(capacity, rows - first);
            Doubles(BatchInputs).SubView(0, (long)n * Data.Features).CopyFromCPU(inputs.AsSpan((int)((long)first * Data.Features), n * Data.Features).ToArray());
            for (int s = 0; s < samples; s++)
            {
                Forward(n, new DrawKey(Settings.Seed, stream, s, first), withKl: false);
                View(last.Index, marginals ? "mean" : "f", (long)n * o).CopyToCPU(means[s].AsSpan((int)((long)first * o), n * o));
                if (variances is not null)
                    View(last.Index, "var", (long)n * o).CopyToCPU(variances[s].AsSpan((int)((long)first * o), n * o));
            }
            rowsDone?.Invoke(first + n);
        }
        return (means, variances);
    }

    public void Dispose()
    {
        workspace.Dispose();
        failures.Dispose();
        batchIndices.Dispose();
        labels.Dispose();
        batchLabels.Dispose();
        quadrature.Dispose();
    }
}
