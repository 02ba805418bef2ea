namespace IlgpuVae.GpuKernels.Reference;

/// <summary>The deep GP layer's additions to the sparse GP (see <see cref="DeepGpLayer"/>) in double, written for clarity.</summary>
public static class DeepGpLayerReference
{
    /// <summary>x·w for x [N, D] and w [D, O].</summary>
    public static double[] LinearMean(double[] x, double[] w, int n, int dims, int outputs)
    {
        var mean = new double[n * outputs];
        for (int point = 0; point < n; point++)
            for (int o = 0; o < outputs; o++)
                for (int d = 0; d < dims; d++)
                    mean[point * outputs + o] += x[point * dims + d] * w[d * outputs + o];
        return mean;
    }

    /// <summary>dMean·wᵀ, the linear mean's derivative in x.</summary>
    public static double[] LinearMeanBackward(double[] dMean, double[] w, int n, int dims, int outputs)
    {
        var dX = new double[n * dims];
        for (int point = 0; point < n; point++)
            for (int d = 0; d < dims; d++)
                for (int o = 0; o < outputs; o++)
                    dX[point * dims + d] += dMean[point * outputs + o] * w[d * outputs + o];
        return dX;
    }

    /// <summary>The standard normal draw of element <paramref name="element"/> of rows of <paramref name="outputs"/>
    /// under <paramref name="key"/> (its first point counted in), as the sampler draws it.</summary>
    public static double Epsilon(DrawKey key, long element, int outputs) => Philox.NormalDouble(key.Seed, key.Stream, key.Step, key.Counter(element, outputs));

    /// <summary>f = μ + √σ²·ε element by element of [N, O] (σ² at or below the floor counts as 0).</summary>
    public static double[] Sample(double[] mean, double[] variance, DrawKey key, int outputs) =>
        mean.Select((mu, at) => mu + (variance[at] > DeepGpLayer.VarianceFloor ? Math.Sqrt(variance[at]) : 0) * Epsilon(key, at, outputs)).ToArray();

    /// <summary>ell[n] = log softmax(f_n)[y_n] for logits f [N, C].</summary>
    public static double[] SoftmaxLogLikelihood(double[] f, int[] labels, int classes) =>
        labels.Select((label, point) =>
        {
            var row = f.AsSpan(point * classes, classes).ToArray();
            double largest = row.Max();
            return row[label] - largest - Math.Log(row.Sum(value => Math.Exp(value - largest)));
        }).ToArray();

    /// <summary>P(f_c is the largest of the C values) for independent f_k ~ N(μ_k, σ²_k) (row <paramref name="point"/>
    /// of mean and variance [N, C], σ² floored at <see cref="DeepGpLayer.VarianceFloor"/>): E_{f_c}[Π_{k≠c} Φ((f_c −
    /// μ_k)/σ_k)] by the Gauss–Hermite <paramref name="rule"/> with f_c = μ_c + √2·σ_c·t.</summary>
    public static double ProbabilityIsLargest(double[] mean, double[] variance, int point, int candidate, int classes, (double[] Nodes, double[] Weights) rule)
    {
        double Sd(int k) => Math.Sqrt(Math.Max(variance[point * classes + k], DeepGpLayer.VarianceFloor));
        double probability = 0;
        for (int h = 0; h < rule.Nodes.Length; h++)
        {
            double value = mean[point * classes + candidate] + Math.Sqrt(2) * Sd(candidate) * rule.Nodes[h];
            double product = 1;
            for (int k = 0; k < classes; k++)
                if (k != candidate)
                    product *= NormalDistribution.Cdf((value - mean[point * classes + k]) / Sd(k));
            probability += rule.Weights[h] / Math.Sqrt(Math.PI) * product;
        }
        return probability;
    }

    /// <summary>The robust-max likelihood's expected log density per point: with P = P(f_y is the largest),
    /// E[log p(y | f)] = P·log(1 − ε) + (1 − P)·log(ε/(C − 1)).</summary>
    public static double[] RobustMaxExpectedLogLikelihood(double[] mean, double[] variance, int[] labels, int classes, double epsilon,
        (double[] Nodes, double[] Weights) rule) =>
        labels.Select((label, point) =>
        {
            double probability = ProbabilityIsLargest(mean, variance, point, label, classes, rule);
            return probability * Math.Log(1 - epsilon) + (1 - probability) * Math.Log(epsilon / (classes - 1));
        }).ToArray();
}
