namespace IlgpuVae.GpuKernels.Reference;

/// <summary>
/// The planar flow posterior in double, one stats row [μ | log σ² | (u, w, b) per step] per z row (or a rank-one
/// base [μ | log d | u], built as matrices by <see cref="RankOneReference"/>), written step by
/// step with vectors: the forward pass (z_L and the sampled KL term) as the paper writes it, and the backward pass
/// by the chain rule through each step (see <see cref="PlanarFlow.BackwardKernel"/>).
/// </summary>
public static class PlanarFlowReference
{
    private static double Softplus(double x) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));

    private static double Dot(double[] a, double[] b) => a.Select((value, i) => value * b[i]).Sum();

    /// <summary>Step j's u, w and b of a stats row, and û = u + (m(wᵀu) − wᵀu)·w/‖w‖².</summary>
    private static (double[] U, double[] W, double B, double[] HatU) Step(double[] stats, int at, FlowShape shape, int step)
    {
        int latent = shape.Latent, offset = at + shape.StepOffset(step);
        var u = stats[offset..(offset + latent)];
        var w = stats[(offset + latent)..(offset + 2 * latent)];
        double wu = Dot(w, u), r = (Softplus(wu) - 1 - wu) / (Dot(w, w) + PlanarFlow.NormFloor);
        return (u, w, stats[offset + 2 * latent], u.Select((value, k) => value + r * w[k]).ToArray());
    }

    /// <summary>The steps of the stats row at <paramref name="at"/> applied to <paramref name="code"/>: the output,
    /// each step's input, and Σ_j log|det ∂z_j/∂z_{j−1}|.</summary>
    public static (double[] Output, List<double[]> Inputs, double LogDeterminant) Flow(double[] stats, int at, FlowShape shape, double[] code)
    {
        var inputs = new List<double[]>();
        double logDeterminants = 0;
        for (int step = 0; step < shape.Length; step++)
        {
            inputs.Add(code);
            var (_, w, b, hatU) = Step(stats, at, shape, step);
            double h = Math.Tanh(Dot(w, code) + b);
            logDeterminants += Math.Log(Math.Abs(1 + (1 - h * h) * Dot(hatU, w)));
            code = code.Select((value, k) => value + hatU[k] * h).ToArray();
        }
        return (code, inputs, logDeterminants);
    }

    /// <summary>
    /// Back through the steps, last first, for a loss that holds the flow's output through <paramref name="g"/> (its
    /// gradient there) and −c·Σ_j log|det_j|: adds each step's (u, w, b) gradient into <paramref name="dStats"/>
    /// (laid out as the stats) and returns the gradient of the flow's input.
    /// </summary>
    public static double[] FlowBackward(double[] stats, int at, FlowShape shape, List<double[]> inputs, double[] g, double[] dStats, double c)
    {
        int latent = shape.Latent;
        for (int step = shape.Length - 1; step >= 0; step--)
        {
            var (u, w, b, hatU) = Step(stats, at, shape, step);
            var input = inputs[step];
            double h = Math.Tanh(Dot(w, input) + b), slope = 1 - h * h, hatUW = Dot(hatU, w);
            double byPsi = -c / (1 + slope * hatUW);
            double byA = Dot(g, hatU) * slope - 2 * h * slope * byPsi * hatUW;
            var byHatU = g.Select((value, k) => value * h + byPsi * slope * w[k]).ToArray();
            var byW = Enumerable.Range(0, latent).Select(k => byPsi * slope * hatU[k] + byA * input[k]).ToArray();
            // û = u + r·w with r = (m(s) − s)/‖w‖², s = wᵀu.
            double s = Dot(w, u), norm = Dot(w, w) + PlanarFlow.NormFloor, m = Softplus(s) - 1, r = (m - s) / norm;
            double mSlope = 1 / (1 + Math.Exp(-s)) - 1, d = Dot(byHatU, w);
            int offset = at + shape.StepOffset(step);
            for (int k = 0; k < latent; k++)
            {
                dStats[offset + k] += byHatU[k] + d * mSlope / norm * w[k];
                dStats[offset + latent + k] += byW[k] + r * byHatU[k] + d * (mSlope * u[k] / norm - 2 * (m - s) * w[k] / (norm * norm));
            }
            dStats[offset + 2 * latent] += byA;
            g = g.Select((value, k) => value + byA * w[k]).ToArray();
        }
        return g;
    }

    /// <summary>A rank-one base's [μ | log d | u], the first 3K columns of the stats row at <paramref name="at"/>.</summary>
    private static double[] RankOneBase(double[] stats, int at, FlowShape shape) => stats[at..(at + 3 * shape.Latent)];

    /// <summary>z_0 = μ + σε (or μ + Rε for a rank-one base) and log q_0(z_0) less its 2π terms (log|C| from C's
    /// Cholesky factor for a rank-one base).</summary>
    private static (double[] Code, double LogQ0) Base(double[] stats, int at, FlowShape shape, double[] eps)
    {
        int latent = shape.Latent;
        if (shape.BaseBlocks == 3)
        {
            var row = RankOneBase(stats, at, shape);
            var code = RankOneReference.Forward(row, eps, 1, latent).Z;
            var (c, _) = RankOneReference.Matrices(row, 0, latent);
            return (code, -0.5 * (eps.Sum(value => value * value) + RankOneReference.LogDeterminant(c)));
        }
        var logVariance = stats[(at + latent)..(at + 2 * latent)];
        return (Enumerable.Range(0, latent).Select(k => stats[at + k] + Math.Exp(logVariance[k] / 2) * eps[k]).ToArray(),
            -0.5 * Enumerable.Range(0, latent).Sum(k => eps[k] * eps[k] + logVariance[k]));
    }

    /// <summary>z_L per row and its KL term log q(z_L|x) − log p(z_L) (2π terms cancelled).</summary>
    public static (double[] Z, double[] Kl) Forward(double[] stats, double[] epsilon, int rows, FlowShape shape)
    {
        int latent = shape.Latent;
        var z = new double[rows * latent];
        var kl = new double[rows];
        for (int row = 0; row < rows; row++)
        {
            int at = row * shape.StatsWidth;
            var eps = epsilon[(row * latent)..((row + 1) * latent)];
            var (code, logQ0) = Base(stats, at, shape, eps);
            (code, _, double logDeterminants) = Flow(stats, at, shape, code);
            code.CopyTo(z, row * latent);
            kl[row] = logQ0 - logDeterminants + 0.5 * code.Sum(value => value * value);
        }
        return (z, kl);
    }

    /// <summary>d loss / d stats per row for loss = Σ dZ·z_L + klWeight·Σ KL (per row).</summary>
    public static double[] Backward(double[] stats, double[] epsilon, double[] dZ, int rows, FlowShape shape, double klWeight)
    {
        int latent = shape.Latent;
        var dStats = new double[rows * shape.StatsWidth];
        for (int row = 0; row < rows; row++)
        {
            int at = row * shape.StatsWidth;
            var eps = epsilon[(row * latent)..((row + 1) * latent)];
            var (code, _) = Base(stats, at, shape, eps);
            var (output, inputs, _) = Flow(stats, at, shape, code);
            var g = Enumerable.Range(0, latent).Select(k => dZ[row * latent + k] + klWeight * output[k]).ToArray();
            g = FlowBackward(stats, at, shape, inputs, g, dStats, klWeight);
            if (shape.BaseBlocks == 3)
            {
                // g through the rank-one sampler, and klWeight·log q_0 (ε fixed) through log|C|: the importance-weighted
                // rank-one backward pass of one row weighing klWeight, with no N(0, I) term (log p is at z_L).
                var dBase = RankOneReference.WeightedBackward(RankOneBase(stats, at, shape), code, eps, g, [klWeight], 1, latent, 1, standardPrior: false);
                for (int column = 0; column < 3 * latent; column++)
                    dStats[at + column] += dBase[column];
                continue;
            }
            var logVariance = stats[(at + latent)..(at + 2 * latent)];
            for (int k = 0; k < latent; k++)
            {
                dStats[at + k] += g[k];
                dStats[at + latent + k] += 0.5 * g[k] * Math.Exp(logVariance[k] / 2) * eps[k] - 0.5 * klWeight;
            }
        }
        return dStats;
    }
}
