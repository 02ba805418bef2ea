using ILGPU;
using ILGPU.Runtime;
using IlgpuVae.GpuKernels.Reference;

namespace IlgpuVae.GpuKernels.Verification;

/// <summary>One kernel at one shape against its double-precision reference.</summary>
/// <param name="WorstRatio">The worst element's error divided by its allowed error (≤ 1 passes).</param>
public sealed record CheckResult(string Kernel, string Shape, double WorstRatio, double WorstError)
{
    public bool Passed => WorstRatio <= 1;
}

/// <summary>
/// Runs every kernel on one accelerator against its reference at several shapes, as `ilgpu-vae check` does to
/// validate a machine. Tolerances are those of the test suite (relative to the magnitude of each result, or of
/// Σ|a·b| for dot products, plus a small absolute term), so a pass here means what a passing test means.
/// </summary>
public sealed class KernelCheck(KernelSet kernels)
{
    private const double DotRelative = 2e-5, DotAbsolute = 1e-6, ElementRelative = 2e-5, ElementAbsolute = 2e-5;
    private static readonly (int Batch, int Inputs, int Outputs)[] DenseShapes = [(1, 1, 1), (7, 33, 7), (33, 784, 20), (128, 400, 784), (127, 785, 401)];

    public IEnumerable<CheckResult> Run()
    {
        var variants = Enum.GetValues<DenseVariant>().Where(variant => variant != DenseVariant.GpuTiled || kernels.SupportsTiled);
        var original = kernels.DenseKernels;
        try
        {
            foreach (var variant in variants)
            {
                kernels.DenseKernels = variant;
                foreach (var (batch, inputs, outputs) in DenseShapes)
                    foreach (var result in Dense(variant, batch, inputs, outputs))
                        yield return result;
            }
        }
        finally
        {
            kernels.DenseKernels = original;
        }
        foreach (var (batch, latent) in new[] { (1, 1), (33, 20), (128, 100) })
            foreach (var result in Reparameterize(batch, latent))
                yield return result;
        foreach (var likelihood in new[] { LikelihoodKind.Bernoulli, LikelihoodKind.Gaussian })
            foreach (var (batch, features) in new[] { (1, 7), (33, 784) })
                yield return Reconstruction(likelihood, batch, features);
        foreach (int count in new[] { 1, 33, 100_003 })
            yield return Adam(count);
        foreach (int count in new[] { 7, 314_000 })
            yield return GradientNorm(count);
        foreach (var (examples, samples) in new[] { (7, 5), (20, 50), (2, 5000) })
            foreach (var result in ImportanceBound(examples, samples))
                yield return result;
        foreach (var kind in Enum.GetValues<MmdKernelKind>())
            foreach (var result in MaximumMeanDiscrepancy(kind, 128, 20))
                yield return result;
        foreach (var result in CrossEntropy(128, 10))
            yield return result;
        foreach (bool binarize in new[] { false, true })
            yield return Gather(binarize);
        foreach (var result in LadderMerge(128, 32, 5))
            yield return result;
        foreach (var result in LadderSoftplusVariance(640, 32))
            yield return result;
        yield return LadderLogWeights(33, 5, [64, 32, 16]);
        foreach (var (rows, columns) in new[] { (7, 3), (640, 400) })
            foreach (var result in BatchNormalisation(rows, columns))
                yield return result;
        yield return TwoViews(128, 28);
        yield return ColumnCopy(new ColumnBlock(128, 2, 6, 2, 402, 400));
        foreach (var (examples, latent, samples) in new[] { (7, 1, 1), (128, 20, 1), (33, 20, 5) })
            foreach (var result in RankOneCovariance(examples, latent, samples))
                yield return result;
        yield return WeightPriorGradient(313_600, 2.0);
        yield return GradientShare(652_824, 64f / 128);
        foreach (var result in DistributionDensities(784))
            yield return result;
        yield return ScoreGradient(128, 200);
        foreach (var (examples, samples) in new[] { (128, 1), (33, 5) })
            foreach (var result in BinaryUnits(examples, 200, samples))
                yield return result;
        foreach (var result in AutoregressiveUnits(128, 200))
            yield return result;
        foreach (var result in AutoregressivePixels(33, 784, 2))
            yield return result;
        foreach (var (examples, samples) in new[] { (128, 1), (33, 4) })
            foreach (var result in GammaUnits(examples, 100, 55, samples))
                yield return result;
        foreach (var result in GaussianProcessAlgebra(2, 100, 128, 8))
            yield return result;
        foreach (var result in DeepGpLayerTerms(1000, 13, 30))
            yield return result;
        foreach (var (rows, columns, units, samples) in new[] { (128, 784, 20, 4), (33, 7, 1, 2) })
            foreach (var result in PoissonMatrixTerms(rows, columns, units, samples))
                yield return result;
        foreach (var kind in new[] { DefUnitKind.Poisson, DefUnitKind.Bernoulli })
            foreach (var (examples, samples) in new[] { (128, 1), (33, 4) })
                foreach (var result in DiscreteDefUnits(kind, examples, 200, 40, samples))
                    yield return result;
        foreach (var (examples, latent, length, samples) in new[] { (7, 1, 1, 1), (128, 20, 4, 1), (33, 20, 2, 5) })
            foreach (var result in PlanarFlowSteps(examples, latent, length, samples))
                yield return result;
        foreach (var result in PlanarFlowSteps(33, 20, 2, 5, baseBlocks: 3))
            yield return result;
        foreach (var (examples, latent, components, samples) in new[] { (7, 1, 1, 1), (128, 20, 10, 1), (33, 20, 50, 5) })
            foreach (var result in MixturePriorTerms(examples, latent, components, samples))
                yield return result;
        foreach (var (examples, latent, samples, anchors) in new[] { (7, 1, 1, 0), (128, 20, 1, 4), (33, 20, 5, 20) })
            foreach (var result in FactorizedMarginalTerms(examples, latent, samples, anchors))
                yield return result;
        foreach (var (rows, latent) in new[] { (7, 1), (128, 20), (165, 20) })
            foreach (var result in HierarchicalTerms(rows, latent))
                yield return result;
        foreach (var result in InverseFlowAuxiliary(128, 20, 4))
            yield return result;
        foreach (var result in BernoulliHierarchicalTerms(128, 200))
            yield return result;
        foreach (var result in StackedCorexLayer(640, 20))
            yield return result;
        yield return TwoLayerRankOneLogWeights(33, 20, 10, 5);
        foreach (var (examples, latent, samples) in new[] { (7, 1, 1), (128, 20, 1), (33, 20, 5) })
            foreach (var result in FactorizedMarginalTerms(examples, latent, samples, 0, rankOne: true))
                yield return result;
        foreach (var result in LadderMerge(128, 32, 5, rankOne: true))
            yield return result;
    }

    /// <summary>The hierarchical variational model's z, KL term and gradients (the flow's own are checked above).</summary>
    private IEnumerable<CheckResult> HierarchicalTerms(int rows, int latent)
    {
        const float weight = 0.3f;
        var random = new Random(rows * latent);
        var lambda = Uniform(random, rows * latent, -1.5, 1.5);
        var logTau = Uniform(random, latent, -1, 1);
        var rStats = Uniform(random, rows * 2 * latent, -1, 1);
        var flowKl = Uniform(random, rows, -3, 3);
        var dZ = Uniform(random, rows * latent, -1, 1);
        var accelerator = kernels.Accelerator;
        using var lambdaBuffer = accelerator.Allocate1D(ToFloat(lambda));
        using var logTauBuffer = accelerator.Allocate1D(ToFloat(logTau));
        using var rStatsBuffer = accelerator.Allocate1D(ToFloat(rStats));
        using var flowKlBuffer = accelerator.Allocate1D(ToFloat(flowKl));
        using var dZBuffer = accelerator.Allocate1D(ToFloat(dZ));
        using var z = accelerator.Allocate1D<float>(rows * latent);
        using var epsilon = accelerator.Allocate1D<float>(rows * latent);
        using var kl = accelerator.Allocate1D<float>(rows);
        using var dLambda = accelerator.Allocate1D<float>(rows * latent);
        using var dLogTau = accelerator.Allocate1D<float>(latent);
        using var dRStats = accelerator.Allocate1D<float>(rows * 2 * latent);
        kernels.HvmSample(lambdaBuffer.View, logTauBuffer.View, z.View, epsilon.View, latent, 1, new DrawKey(2, Philox.Streams.Reparameterize + Philox.Streams.HvmOffset, 1));
        kernels.HvmKl(flowKlBuffer.View, lambdaBuffer.View, z.View, epsilon.View, logTauBuffer.View, rStatsBuffer.View, kl.View, rows, latent);
        kernels.HvmAuxiliaryGradient(lambdaBuffer.View, rStatsBuffer.View, dRStats.View, rows, latent, weight);
        kernels.HvmTauGradient(z.View, epsilon.View, logTauBuffer.View, dZBuffer.View, dLogTau.View, rows, latent, weight);
        kernels.HvmLambdaGradient(lambdaBuffer.View, z.View, rStatsBuffer.View, dZBuffer.View, dLambda.View, latent, weight);
        var eps = ToDouble(epsilon.GetAsArray1D());
        var expectedZ = HvmReference.Sample(lambda, logTau, eps, latent);
        var (expectedDLambda, expectedDLogTau, expectedDRStats) = HvmReference.Backward(lambda, expectedZ, eps, logTau, rStats, dZ, rows, latent, weight);
        string label = $"{rows}x{latent}";
        // As in the tests: 5e-5 for K-term sums; log τ²'s gradient sums every row.
        yield return Compare("hierarchical model z", label, expectedZ, z.GetAsArray1D(), 5e-5, 5e-5);
        yield return Compare("hierarchical model KL", label, HvmReference.Kl(flowKl, lambda, expectedZ, logTau, rStats, rows, latent), kl.GetAsArray1D(), 5e-5, 5e-5 * latent);
        yield return Compare("hierarchical model r gradient", label, expectedDRStats, dRStats.GetAsArray1D(), 5e-5, 5e-5 * expectedDRStats.Max(Math.Abs));
        yield return Compare("hierarchical model τ gradient", label, expectedDLogTau, dLogTau.GetAsArray1D(), 5e-5, 5e-5 * expectedDLogTau.Max(Math.Abs));
        yield return Compare("hierarchical model λ gradient", label, expectedDLambda, dLambda.GetAsArray1D(), 5e-5, 5e-5 * expectedDLambda.Max(Math.Abs));
    }

    /// <summary>The hierarchical model's r(λ|z) as an inverse flow: its term −log r, and the gradients of w times it
    /// by r's stats and by λ.</summary>
    private IEnumerable<CheckResult> InverseFlowAuxiliary(int rows, int latent, int steps)
    {
        const float weight = 0.3f;
        var shape = new FlowShape(latent, steps, 1);
        var random = new Random(rows * latent + steps);
        var lambda = Uniform(random, rows * latent, -1.5, 1.5);
        var rStats = Uniform(random, rows * shape.StatsWidth, -1, 1);
        var accelerator = kernels.Accelerator;
        using var lambdaBuffer = accelerator.Allocate1D(ToFloat(lambda));
        using var rStatsBuffer = accelerator.Allocate1D(ToFloat(rStats));
        using var flowed = accelerator.Allocate1D<float>(rows * latent);
        using var states = accelerator.Allocate1D<float>(rows * steps * latent);
        using var rTerm = accelerator.Allocate1D<float>(rows);
        using var dRStats = accelerator.Allocate1D<float>(rows * shape.StatsWidth);
        using var dLambda = accelerator.Allocate1D<float>(rows * latent);
        kernels.HvmInverseFlowForward(lambdaBuffer.View, rStatsBuffer.View, flowed.View, states.View, rTerm.View, rows, shape);
        kernels.HvmInverseFlowBackward(rStatsBuffer.View, states.View, flowed.View, dRStats.View, dLambda.View, rows, shape, weight);
        var expectedTerm = HvmReference.AuxiliaryLogDensity(lambda, rStats, rows, shape).Select(logR => -logR - 0.5 * latent * Math.Log(2 * Math.PI)).ToArray();
        var (expectedDLambda, expectedDRStats) = HvmReference.AuxiliaryBackward(lambda, rStats, rows, shape, weight);
        string label = $"{rows}x{latent} {steps} steps";
        // As in the tests: 5e-5 for sums of K terms and J log-determinants.
        yield return Compare("hierarchical model inverse-flow r", label, expectedTerm, rTerm.GetAsArray1D(), 5e-5, 5e-5 * latent);
        yield return Compare("inverse-flow r gradient (r)", label, expectedDRStats, dRStats.GetAsArray1D(), 5e-5, 5e-5 * expectedDRStats.Max(Math.Abs));
        yield return Compare("inverse-flow r gradient (λ)", label, expectedDLambda, dLambda.GetAsArray1D(), 5e-5, 5e-5 * expectedDLambda.Max(Math.Abs));
    }

    /// <summary>The Bernoulli HVM's KL term (after the binary sampler's log q − log p and a Gaussian r's term) and its
    /// λ gradient, pathwise and score-function.</summary>
    private IEnumerable<CheckResult> BernoulliHierarchicalTerms(int rows, int latent)
    {
        const float weight = 0.3f, scale = 0.125f, beta = 0.8f;
        var shape = new FlowShape(latent, 0, 1);
        var random = new Random(rows + latent);
        var lambda = Uniform(random, rows * latent, -2, 2);
        var priorLogits = Uniform(random, latent, -1, 1);
        var rStats = Uniform(random, rows * 2 * latent, -1, 1);
        var flowKl = Uniform(random, rows, -3, 3);
        var dLambdaFromR = Uniform(random, rows * latent, -1, 1);
        var centred = Uniform(random, rows, -4, 4);
        var accelerator = kernels.Accelerator;
        using var lambdaBuffer = accelerator.Allocate1D(ToFloat(lambda));
        using var priorBuffer = accelerator.Allocate1D(ToFloat(priorLogits));
        using var rStatsBuffer = accelerator.Allocate1D(ToFloat(rStats));
        using var flowKlBuffer = accelerator.Allocate1D(ToFloat(flowKl));
        using var fromRBuffer = accelerator.Allocate1D(ToFloat(dLambdaFromR));
        using var centredBuffer = accelerator.Allocate1D(ToFloat(centred));
        using var z = accelerator.Allocate1D<float>(rows * latent);
        using var logQ = accelerator.Allocate1D<float>(rows);
        using var kl = accelerator.Allocate1D<float>(rows);
        using var flowed = accelerator.Allocate1D<float>(rows * latent);
        using var states = accelerator.Allocate1D<float>(1);
        using var rTerm = accelerator.Allocate1D<float>(rows);
        using var shared = accelerator.Allocate1D<float>(rows);
        using var dLambda = accelerator.Allocate1D<float>(rows * latent);
        kernels.BinaryLatentSample(lambdaBuffer.View, z.View, logQ.View, latent, 1, new DrawKey(2, Philox.Streams.Reparameterize + Philox.Streams.HvmOffset, 1));
        kernels.BinaryKl(z.View, logQ.View, priorBuffer.View, kl.View, latent, priorPerRow: false);
        kernels.HvmInverseFlowForward(lambdaBuffer.View, rStatsBuffer.View, flowed.View, states.View, rTerm.View, rows, shape);
        kernels.HvmBernoulliKl(flowKlBuffer.View, lambdaBuffer.View, rTerm.View, kl.View, shared.View, rows, latent);
        kernels.HvmBernoulliLambdaGradient(lambdaBuffer.View, z.View, priorBuffer.View, fromRBuffer.View, centredBuffer.View, dLambda.View, latent, beta, weight, scale);
        var drawn = ToDouble(z.GetAsArray1D());
        var (expectedKl, expectedShared) = HvmReference.BernoulliKl(flowKl, lambda, drawn, priorLogits, HvmReference.AuxiliaryLogDensity(lambda, rStats, rows, shape), rows, latent);
        var expectedDLambda = HvmReference.BernoulliLambdaGradient(lambda, drawn, priorLogits, dLambdaFromR, centred, latent, beta, weight, scale);
        string label = $"{rows}x{latent}";
        // As in the tests: 5e-5 for K-term sums.
        yield return Compare("Bernoulli HVM KL", label, expectedKl, kl.GetAsArray1D(), 5e-5, 5e-5 * latent);
        yield return Compare("Bernoulli HVM shared KL", label, expectedShared, shared.GetAsArray1D(), 5e-5, 5e-5 * latent);
        yield return Compare("Bernoulli HVM λ gradient", label, expectedDLambda, dLambda.GetAsArray1D(), 5e-5, 5e-5 * expectedDLambda.Max(Math.Abs));
    }

    /// <summary>The two-layer model's log w with both q's rank-one, against the reference's full densities.</summary>
    private CheckResult TwoLayerRankOneLogWeights(int batch, int k1, int k2, int samples)
    {
        int rows = batch * samples;
        var random = new Random(batch * k1 + k2);
        // log d in [−1, 1] and small u: C well conditioned for the reference's Cholesky.
        double[] RankOneStats(int count, int width) => Enumerable.Range(0, count * 3 * width)
            .Select(i => i % (3 * width) < 2 * width ? 2 * random.NextDouble() - 1 : random.NextDouble() - 0.5).ToArray();
        var stats1 = RankOneStats(batch, k1);
        var stats2 = RankOneStats(rows, k2);
        var epsilon1 = Uniform(random, rows * k1, -2, 2);
        var epsilon2 = Uniform(random, rows * k2, -2, 2);
        var priorStats = Uniform(random, rows * 2 * k1, -1.5, 1.5);
        var reconstruction = Uniform(random, rows, 50, 150);
        var repeated1 = ImportanceReference.RepeatRows(stats1, batch, 3 * k1, samples);
        // z as the kernels read it, in float.
        var z1 = RankOneReference.Forward(repeated1, epsilon1, rows, k1).Z.Select(value => (double)(float)value).ToArray();
        var z2 = RankOneReference.Forward(stats2, epsilon2, rows, k2).Z.Select(value => (double)(float)value).ToArray();
        var logQ1 = RankOneReference.LogDensity(repeated1, z1, rows, k1);
        var logQ2 = RankOneReference.LogDensity(stats2, z2, rows, k2);
        var expected = Enumerable.Range(0, rows).Select(r => -reconstruction[r] - logQ1[r] - logQ2[r]
            + Enumerable.Range(0, k1).Sum(k => TwoLayerReference.LogNormal(z1[r * k1 + k], priorStats[r * 2 * k1 + k], priorStats[r * 2 * k1 + k1 + k]))
            + Enumerable.Range(0, k2).Sum(k => TwoLayerReference.LogNormal(z2[r * k2 + k], 0, 0))).ToArray();
        var accelerator = kernels.Accelerator;
        using var stats1Buffer = accelerator.Allocate1D(ToFloat(stats1));
        using var z1Buffer = accelerator.Allocate1D(ToFloat(z1));
        using var epsilon1Buffer = accelerator.Allocate1D(ToFloat(epsilon1));
        using var stats2Buffer = accelerator.Allocate1D(ToFloat(stats2));
        using var z2Buffer = accelerator.Allocate1D(ToFloat(z2));
        using var epsilon2Buffer = accelerator.Allocate1D(ToFloat(epsilon2));
        using var priorBuffer = accelerator.Allocate1D(ToFloat(priorStats));
        using var recBuffer = accelerator.Allocate1D(ToFloat(reconstruction));
        using var logWeights = accelerator.Allocate1D<float>(rows);
        using var kl = accelerator.Allocate1D<float>(rows);
        kernels.TwoLayerRankOneLogWeights(stats1Buffer.View, z1Buffer.View, epsilon1Buffer.View, stats2Buffer.View, z2Buffer.View, epsilon2Buffer.View,
            priorBuffer.View, recBuffer.View, logWeights.View, kl.View, rows, new LatentWidths(k1, k2, samples));
        // As in the tests: 1e-6 of 150 + 60·(k1 + k2).
        return Compare("two-layer rank-one log w", $"{batch}x({k1},{k2})x{samples}", expected, logWeights.GetAsArray1D(), 1e-6, 1e-6 * (150 + 60.0 * (k1 + k2)));
    }

    /// <summary>Stacked CorEx's −log q(z1|z2) + log r1(z1) per row and its gradient to q(z1|z2)'s stats.</summary>
    private IEnumerable<CheckResult> StackedCorexLayer(int rows, int latent)
    {
        const double scale = 0.3;
        var random = new Random(rows + latent);
        var z1 = Uniform(random, rows * latent, -2, 2);
        var stats = Uniform(random, rows * 2 * latent, -1.5, 1.5);
        var marginal = Uniform(random, 2 * latent, -1, 1);
        var accelerator = kernels.Accelerator;
        using var z1Buffer = accelerator.Allocate1D(ToFloat(z1));
        using var statsBuffer = accelerator.Allocate1D(ToFloat(stats));
        using var marginalBuffer = accelerator.Allocate1D(ToFloat(marginal));
        using var term = accelerator.Allocate1D<float>(rows);
        using var dStats = accelerator.Allocate1D<float>(rows * 2 * latent);
        using var equalWeights = accelerator.Allocate1D(Enumerable.Repeat(1f, rows).ToArray());
        kernels.LayerReconstruction(z1Buffer.View, statsBuffer.View, marginalBuffer.View, term.View, rows, latent);
        kernels.PriorStatsGradient(z1Buffer.View, statsBuffer.View, equalWeights.View, dStats.View, rows, latent, (float)scale);
        string shape = $"{rows}x{latent}";
        // As in the tests: sums of 2K terms, 1e-5 relative.
        yield return Compare("stacked CorEx z1 term", shape, StackedCorexReference.LayerReconstruction(z1, stats, marginal, rows, latent), term.GetAsArray1D(), 1e-5, 1e-5 * latent);
        yield return Compare("stacked CorEx gradient (q(z1|z2))", shape, StackedCorexReference.LayerReconstructionBackward(z1, stats, rows, latent, scale),
            dStats.GetAsArray1D(), 1e-5, 1e-6);
    }

    /// <summary>CorEx's KL against a learned factorized marginal: z, the KL, log w and both backward passes; with
    /// <paramref name="rankOne"/>, a rank-one q (the rank-one sampler, then its KL against r; no anchors).</summary>
    private IEnumerable<CheckResult> FactorizedMarginalTerms(int examples, int latent, int samples, int anchors, bool rankOne = false)
    {
        const float anchorScale = 0.4f, klWeight = 0.3f;
        var shape = new MarginalShape(latent, samples, anchors, anchorScale);
        int rows = examples * samples, width = (rankOne ? 3 : 2) * latent;
        var random = new Random(rows + latent + anchors);
        var stats = Uniform(random, examples * width, -1, 1);
        var marginal = Uniform(random, 2 * latent, -1.5, 1.5);
        var dZ = Uniform(random, rows * latent, -1, 1);
        var reconstruction = Uniform(random, rows, 50, 150);
        var accelerator = kernels.Accelerator;
        using var statsBuffer = accelerator.Allocate1D(ToFloat(stats));
        using var marginalBuffer = accelerator.Allocate1D(ToFloat(marginal));
        using var z = accelerator.Allocate1D<float>(rows * latent);
        using var epsilon = accelerator.Allocate1D<float>(rows * latent);
        using var kl = accelerator.Allocate1D<float>(rows);
        using var dZBuffer = accelerator.Allocate1D(ToFloat(dZ));
        using var dStats = accelerator.Allocate1D<float>(examples * width);
        using var dMarginal = accelerator.Allocate1D<float>(2 * latent);
        using var reconstructionBuffer = accelerator.Allocate1D(ToFloat(reconstruction));
        using var logWeights = accelerator.Allocate1D<float>(rows);
        var key = new DrawKey(2, Philox.Streams.Reparameterize, 1);
        if (rankOne)
        {
            kernels.RankOneForward(statsBuffer.View, z.View, epsilon.View, kl.View, rows, latent, key, samples);
            kernels.RankOneMarginalKl(statsBuffer.View, marginalBuffer.View, kl.View, rows, latent, samples);
            kernels.RankOneMarginalLogWeights(statsBuffer.View, marginalBuffer.View, z.View, epsilon.View, reconstructionBuffer.View, logWeights.View, rows, latent, samples);
            kernels.RankOneBackward(statsBuffer.View, epsilon.View, dZBuffer.View, dStats.View, examples, latent, 0f, samples);
            kernels.RankOneMarginalKlBackward(statsBuffer.View, marginalBuffer.View, dStats.View, examples, latent, klWeight);
            kernels.RankOneMarginalBackward(statsBuffer.View, marginalBuffer.View, dMarginal.View, examples, latent, klWeight);
        }
        else
        {
            kernels.FactorizedPriorForward(statsBuffer.View, marginalBuffer.View, z.View, epsilon.View, kl.View, rows, shape, key);
            kernels.FactorizedPriorLogWeights(statsBuffer.View, marginalBuffer.View, z.View, epsilon.View, reconstructionBuffer.View, logWeights.View, rows, shape);
            kernels.FactorizedPriorBackward(statsBuffer.View, marginalBuffer.View, epsilon.View, dZBuffer.View, dStats.View, examples, shape, klWeight);
            kernels.FactorizedMarginalBackward(statsBuffer.View, marginalBuffer.View, dMarginal.View, examples, shape, klWeight);
        }
        var eps = ToDouble(epsilon.GetAsArray1D());
        var repeated = ImportanceReference.RepeatRows(stats, examples, width, samples);
        var (expectedZ, expectedKl) = rankOne
            ? RankOneMarginalReference.Forward(repeated, marginal, eps, rows, latent)
            : FactorizedPriorReference.Forward(repeated, marginal, eps, rows, latent);
        var (dRepeated, expectedDMarginal) = rankOne
            ? RankOneMarginalReference.Backward(repeated, marginal, eps, dZ, rows, latent, klWeight / samples)
            : FactorizedPriorReference.Backward(repeated, marginal, eps, dZ, rows, latent, FactorizedPriorReference.Weights(latent, anchors, anchorScale), klWeight / samples);
        var expectedLogWeights = rankOne
            ? RankOneMarginalReference.LogWeights(repeated, marginal, expectedZ, reconstruction, rows, latent)
            : FactorizedPriorReference.LogWeights(repeated, marginal, expectedZ, reconstruction, rows, latent);
        var expectedDStats = ImportanceReference.SumRepeatedRows(dRepeated, examples, width, samples);
        string label = $"{examples}x{latent}x{samples}" + (rankOne ? "" : $", {anchors} anchors");
        string name = rankOne ? "rank-one vs factorized marginal" : "factorized marginal";
        // As in the tests: 5e-5 for K-term sums; the marginal's gradient sums every example.
        yield return Compare($"{name} z", label, expectedZ, z.GetAsArray1D(), 5e-5, 5e-5);
        yield return Compare($"{name} KL", label, expectedKl, kl.GetAsArray1D(), 5e-5, 5e-5 * latent);
        yield return Compare($"{name} log w", label, expectedLogWeights, logWeights.GetAsArray1D(), 1e-5, 1e-4);
        yield return Compare($"{name} backward", label, expectedDStats, dStats.GetAsArray1D(), 5e-5, 5e-5 * expectedDStats.Max(Math.Abs));
        yield return Compare($"{name} backward (r)", label, expectedDMarginal, dMarginal.GetAsArray1D(), 5e-5, 5e-5 * expectedDMarginal.Max(Math.Abs));
    }

    /// <summary>The mixture prior's sampled KL, and its backward passes to the encoder's stats and the components.</summary>
    private IEnumerable<CheckResult> MixturePriorTerms(int examples, int latent, int count, int samples)
    {
        var shape = new MixtureShape(latent, count, samples);
        int rows = examples * samples;
        var random = new Random(rows + latent * count);
        var stats = Uniform(random, examples * 2 * latent, -1, 1);
        var components = Uniform(random, count * 2 * latent, -1.5, 1.5);
        var dZ = Uniform(random, rows * latent, -1, 1);
        const float klWeight = 0.3f;
        var accelerator = kernels.Accelerator;
        using var statsBuffer = accelerator.Allocate1D(ToFloat(stats));
        using var componentsBuffer = accelerator.Allocate1D(ToFloat(components));
        using var z = accelerator.Allocate1D<float>(rows * latent);
        using var epsilon = accelerator.Allocate1D<float>(rows * latent);
        using var kl = accelerator.Allocate1D<float>(rows);
        using var responsibilities = accelerator.Allocate1D<float>(rows * count);
        using var dZBuffer = accelerator.Allocate1D(ToFloat(dZ));
        using var dStats = accelerator.Allocate1D<float>(examples * 2 * latent);
        using var dComponents = accelerator.Allocate1D<float>(count * 2 * latent);
        kernels.MixturePriorForward(statsBuffer.View, componentsBuffer.View, z.View, epsilon.View, kl.View, responsibilities.View, rows, shape,
            new DrawKey(2, Philox.Streams.Reparameterize, 1));
        kernels.MixturePriorBackward(statsBuffer.View, componentsBuffer.View, z.View, epsilon.View, responsibilities.View, dZBuffer.View,
            dStats.View, examples, shape, klWeight);
        kernels.MixturePriorComponentsBackward(componentsBuffer.View, z.View, responsibilities.View, dComponents.View, rows, shape, klWeight);
        var eps = ToDouble(epsilon.GetAsArray1D());
        var repeated = ImportanceReference.RepeatRows(stats, examples, 2 * latent, samples);
        var (expectedZ, expectedKl) = MixturePriorReference.Forward(repeated, components, eps, rows, latent, count);
        var (dRepeated, expectedDComponents) = MixturePriorReference.Backward(repeated, components, eps, dZ, rows, latent, count, klWeight / samples);
        var expectedDStats = ImportanceReference.SumRepeatedRows(dRepeated, examples, 2 * latent, samples);
        string label = $"{examples}x{latent}x{count}x{samples}";
        // As in the tests: 5e-5 for K-term sums and a C-term log-sum-exp; the component gradients sum every row.
        yield return Compare("mixture prior z", label, expectedZ, z.GetAsArray1D(), 5e-5, 5e-5);
        yield return Compare("mixture prior KL", label, expectedKl, kl.GetAsArray1D(), 5e-5, 5e-5 * latent);
        yield return Compare("mixture prior backward", label, expectedDStats, dStats.GetAsArray1D(), 5e-5, 5e-5 * expectedDStats.Max(Math.Abs));
        yield return Compare("mixture prior components backward", label, expectedDComponents, dComponents.GetAsArray1D(), 5e-5,
            5e-5 * expectedDComponents.Max(Math.Abs));
    }

    /// <summary>The planar flow posterior: z after the steps, the sampled KL and the backward pass.</summary>
    private IEnumerable<CheckResult> PlanarFlowSteps(int examples, int latent, int length, int samples, int baseBlocks = 2)
    {
        var shape = new FlowShape(latent, length, samples, baseBlocks);
        int rows = examples * samples;
        var random = new Random(rows + latent * length);
        var stats = Uniform(random, examples * shape.StatsWidth, -1, 1);
        var dZ = Uniform(random, rows * latent, -1, 1);
        const float klWeight = 0.4f;
        var accelerator = kernels.Accelerator;
        using var statsBuffer = accelerator.Allocate1D(ToFloat(stats));
        using var z = accelerator.Allocate1D<float>(rows * latent);
        using var epsilon = accelerator.Allocate1D<float>(rows * latent);
        using var states = accelerator.Allocate1D<float>(rows * length * latent);
        using var kl = accelerator.Allocate1D<float>(rows);
        using var dZBuffer = accelerator.Allocate1D(ToFloat(dZ));
        using var dStats = accelerator.Allocate1D<float>(examples * shape.StatsWidth);
        kernels.PlanarFlowForward(statsBuffer.View, z.View, epsilon.View, states.View, kl.View, rows, shape, new DrawKey(2, Philox.Streams.Reparameterize, 1));
        kernels.PlanarFlowBackward(statsBuffer.View, z.View, epsilon.View, states.View, dZBuffer.View, dStats.View, examples, shape, klWeight);
        var eps = ToDouble(epsilon.GetAsArray1D());
        var repeated = ImportanceReference.RepeatRows(stats, examples, shape.StatsWidth, samples);
        var (expectedZ, expectedKl) = PlanarFlowReference.Forward(repeated, eps, rows, shape);
        var expectedDStats = ImportanceReference.SumRepeatedRows(PlanarFlowReference.Backward(repeated, eps, dZ, rows, shape, klWeight / samples),
            examples, shape.StatsWidth, samples);
        string label = $"{examples}x{latent}x{length}x{samples}" + (baseBlocks == 3 ? ", rank-one base" : "");
        // As in the tests: 5e-5 through the sequential steps.
        yield return Compare("planar flow z", label, expectedZ, z.GetAsArray1D(), 5e-5, 5e-5);
        yield return Compare("planar flow KL", label, expectedKl, kl.GetAsArray1D(), 5e-5, 5e-5 * latent);
        yield return Compare("planar flow backward", label, expectedDStats, dStats.GetAsArray1D(), 5e-5, 5e-5 * expectedDStats.Max(Math.Abs));
    }

    /// <summary>The weight prior's g + θ/κ over a decoder's worth of weights.</summary>
    private CheckResult WeightPriorGradient(int count, double kappa)
    {
        var random = new Random(count);
        var parameters = Uniform(random, count, -1, 1);
        var gradients = Uniform(random, count, -1, 1);
        float inverse = (float)(1 / kappa);
        var accelerator = kernels.Accelerator;
        using var parameterBuffer = accelerator.Allocate1D(ToFloat(parameters));
        using var gradientBuffer = accelerator.Allocate1D(ToFloat(gradients));
        kernels.AddWeightPriorGradient(parameterBuffer.View, gradientBuffer.View, inverse);
        // As in the tests: two float roundings per element.
        return Compare("weight prior gradient", count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            gradients.Select((g, i) => g + inverse * parameters[i]).ToArray(), gradientBuffer.GetAsArray1D(), 1e-6, 1e-7);
    }

    /// <summary>A data-parallel rank's gradient scaled by its share of the minibatch (the default model's gradient
    /// length); the float product is correctly rounded, so it must match the double reference exactly.</summary>
    private CheckResult GradientShare(int count, float share)
    {
        var values = ToFloat(Uniform(new Random(count), count, -1, 1));
        using var buffer = kernels.Accelerator.Allocate1D(values);
        kernels.ScaleInPlace(buffer.View, share);
        return Compare("gradient × share", count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Reference.CollectiveReference.Scale(values, share).Select(value => (double)value).ToArray(), buffer.GetAsArray1D(), 0, 0);
    }

    /// <summary>DARN's autoregressive units: the masked logits of given units and W's gradient from their scores,
    /// against the double references (1e-5 of the summed terms' sizes, as in the tests).</summary>
    private IEnumerable<CheckResult> AutoregressiveUnits(int rows, int units)
    {
        var random = new Random(rows * units);
        var context = Uniform(random, rows * units, -2, 2);
        var weights = Uniform(random, units * units, -2 / Math.Sqrt(units), 2 / Math.Sqrt(units));
        var h = context.Select(_ => random.Next(2) == 0 ? 0.0 : 1.0).ToArray();
        var accelerator = kernels.Accelerator;
        using var contextBuffer = accelerator.Allocate1D(ToFloat(context));
        using var weightBuffer = accelerator.Allocate1D(ToFloat(weights));
        using var hBuffer = accelerator.Allocate1D(ToFloat(h));
        using var logits = accelerator.Allocate1D<float>(rows * units);
        using var logDensity = accelerator.Allocate1D<float>(rows * units);
        using var dLogits = accelerator.Allocate1D<float>(rows * units);
        using var dWeights = accelerator.Allocate1D<float>(units * units);
        kernels.AutoregressiveLogits(contextBuffer.View, weightBuffer.View, hBuffer.View, logits.View, units);
        kernels.BernoulliLogDensity(hBuffer.View, logits.View, logDensity.View, dLogits.View);
        kernels.AutoregressiveWeightGradient(dLogits.View, hBuffer.View, dWeights.View, rows, units);
        string shape = $"{rows}x{units}";
        var expected = Reference.AutoregressiveReference.Logits(context, weights, h, rows, units);
        var sizes = Reference.AutoregressiveReference.Logits(context.Select(Math.Abs).ToArray(), weights.Select(Math.Abs).ToArray(), h, rows, units);
        yield return Compare("autoregressive logits", shape, expected, logits.GetAsArray1D(), 1e-5, 1e-6, sizes);
        var score = expected.Select((logit, i) => Reference.DistributionReference.BernoulliScore(h[i], logit)).ToArray();
        yield return Compare("autoregressive dW", shape, Reference.AutoregressiveReference.WeightGradient(score, h, rows, units), dWeights.GetAsArray1D(),
            0, 1e-5 * rows);
    }

    /// <summary>DARN's autoregressive decoder: 784 binary pixels observed once per example and read by its k rows, the
    /// logits of f + A·x and A's gradient from per-row logit gradients, against the double references (the
    /// tolerances of AutoregressiveTests).</summary>
    private IEnumerable<CheckResult> AutoregressivePixels(int examples, int pixels, int samples)
    {
        int rows = examples * samples;
        var random = new Random(examples * pixels + samples);
        var context = Uniform(random, rows * pixels, -2, 2);
        var weights = Uniform(random, pixels * pixels, -2 / Math.Sqrt(pixels), 2 / Math.Sqrt(pixels));
        var x = Enumerable.Range(0, examples * pixels).Select(_ => random.Next(2) == 0 ? 0.0 : 1.0).ToArray();
        var dLogits = Uniform(random, rows * pixels, -1, 1);
        var accelerator = kernels.Accelerator;
        using var contextBuffer = accelerator.Allocate1D(ToFloat(context));
        using var weightBuffer = accelerator.Allocate1D(ToFloat(weights));
        using var xBuffer = accelerator.Allocate1D(ToFloat(x));
        using var logits = accelerator.Allocate1D<float>(rows * pixels);
        using var dLogitBuffer = accelerator.Allocate1D(ToFloat(dLogits));
        using var dWeights = accelerator.Allocate1D<float>(pixels * pixels);
        kernels.AutoregressiveLogits(contextBuffer.View, weightBuffer.View, xBuffer.View, logits.View, pixels, samples);
        kernels.AutoregressiveWeightGradient(dLogitBuffer.View, xBuffer.View, dWeights.View, rows, pixels, samples);
        string shape = $"{examples}x{pixels} k={samples}";
        var sizes = Reference.AutoregressiveReference.Logits(context.Select(Math.Abs).ToArray(), weights.Select(Math.Abs).ToArray(), x, rows, pixels, samples);
        yield return Compare("autoregressive pixel logits", shape, Reference.AutoregressiveReference.Logits(context, weights, x, rows, pixels, samples),
            logits.GetAsArray1D(), 1e-5, 1e-6, sizes);
        var gradientSizes = Reference.AutoregressiveReference.WeightGradient(dLogits.Select(Math.Abs).ToArray(), x, rows, pixels, samples);
        yield return Compare("autoregressive pixel dA", shape, Reference.AutoregressiveReference.WeightGradient(dLogits, x, rows, pixels, samples),
            dWeights.GetAsArray1D(), 1e-5, 1e-6, gradientSizes);
    }

    /// <summary>The score-function estimator's centring (baseline, running mean, normalisation) and Bernoulli score
    /// gradient at a batch of 128 examples of 200 units, against the double references.</summary>
    private CheckResult ScoreGradient(int batch, int units)
    {
        var random = new Random(batch + units);
        var signal = Uniform(random, batch, -120, -80);
        var baseline = Uniform(random, batch, -100, -90);
        var logits = Uniform(random, batch * units, -5, 5);
        var h = logits.Select(_ => random.Next(2) == 0 ? 0.0 : 1.0).ToArray();
        var accelerator = kernels.Accelerator;
        using var signalBuffer = accelerator.Allocate1D(ToFloat(signal));
        using var baselineBuffer = accelerator.Allocate1D(ToFloat(baseline));
        using var moments = accelerator.Allocate1D(new[] { -3f, 30f });
        using var centred = accelerator.Allocate1D<float>(batch);
        using var hBuffer = accelerator.Allocate1D(ToFloat(h));
        using var logitBuffer = accelerator.Allocate1D(ToFloat(logits));
        using var dLogits = accelerator.Allocate1D<float>(batch * units);
        kernels.CenterLearningSignal(signalBuffer.View, baselineBuffer.View, moments.View, centred.View, new SignalCentring(true, true, true));
        kernels.BernoulliScoreGradient(hBuffer.View, logitBuffer.View, centred.View, dLogits.View, units, 1f / batch);
        var expectedCentred = Reference.ScoreFunctionReference.Center(signal, baseline, -3, 30, true, true, true);
        return Compare("score-function gradient", $"{batch}x{units}",
            Reference.ScoreFunctionReference.BernoulliScoreGradient(h, logits, expectedCentred, units, 1.0 / batch), dLogits.GetAsArray1D(), 1e-5, 1e-7);
    }

    /// <summary>The sigmoid belief network's binary layer: the sampler's bits and KL terms, NVIL's signal with every
    /// device on, and the posterior's and prior's gradients, against the double references from the same uniforms
    /// (the tolerances of BinaryLatentTests; a bit that differs makes its row's KL differ by O(1)).</summary>
    private IEnumerable<CheckResult> BinaryUnits(int batch, int units, int samples)
    {
        int rows = batch * samples;
        var random = new Random(batch * units + samples);
        var logits = Uniform(random, batch * units, -5, 5);
        var priorLogits = Uniform(random, units, -3, 3);
        var reconstruction = Uniform(random, rows, 60, 160);
        var baseline = Uniform(random, batch, -130, -90);
        var key = new DrawKey(7, Philox.Streams.Reparameterize, 2);
        var (h, kl) = Reference.BinaryLatentReference.Sample(logits, priorLogits, Reference.BinaryLatentReference.Uniforms(key, rows, units, samples),
            rows, units, samples);
        var accelerator = kernels.Accelerator;
        using var logitBuffer = accelerator.Allocate1D(ToFloat(logits));
        using var priorBuffer = accelerator.Allocate1D(ToFloat(priorLogits));
        using var hBuffer = accelerator.Allocate1D<float>(rows * units);
        using var klBuffer = accelerator.Allocate1D<float>(rows);
        using var logQ = accelerator.Allocate1D<float>(rows);
        using var reconstructionBuffer = accelerator.Allocate1D(ToFloat(reconstruction));
        using var baselineBuffer = accelerator.Allocate1D(ToFloat(baseline));
        using var moments = accelerator.Allocate1D(new[] { -12.5f, 30f });
        using var centred = accelerator.Allocate1D<float>(rows);
        using var left = accelerator.Allocate1D<float>(rows);
        using var dBaseline = accelerator.Allocate1D<float>(batch);
        using var dLogits = accelerator.Allocate1D<float>(batch * units);
        using var dPrior = accelerator.Allocate1D<float>(units);
        kernels.BinaryLatentSample(logitBuffer.View, hBuffer.View, logQ.View, units, samples, key);
        kernels.BinaryKl(hBuffer.View, logQ.View, priorBuffer.View, klBuffer.View, units, priorPerRow: false);
        kernels.NvilSignal(reconstructionBuffer.View, klBuffer.View, baselineBuffer.View, moments.View, centred.View, left.View, dBaseline.View, samples, 0.7f,
            new SignalCentring(true, true, true), 1f / rows);
        kernels.BinaryPosteriorGradient(logitBuffer.View, hBuffer.View, centred.View, dLogits.View, units, samples, 1f / rows);
        kernels.BinaryPriorGradient(priorBuffer.View, hBuffer.View, dPrior.View, rows, 0.7f / rows);
        string shape = $"{batch}x{units} k={samples}";
        yield return Compare("binary units h", shape, h, hBuffer.GetAsArray1D(), 0, 0);
        var deviceKl = klBuffer.GetAsArray1D();
        yield return Compare("binary units KL", shape, kl, deviceKl, 1e-5, 2e-6 * units);
        var expected = Reference.BinaryLatentReference.NvilSignal(reconstruction, kl, baseline, -12.5, 30, samples, 0.7, true, true, true, 1.0 / rows);
        yield return Compare("NVIL centred signal", shape, expected.Centred, centred.GetAsArray1D(), 1e-5, 1e-4);
        yield return Compare("NVIL baseline gradient", shape, expected.DBaseline, dBaseline.GetAsArray1D(), 1e-5, 1e-4);
        yield return Compare("binary posterior gradient", shape,
            Reference.BinaryLatentReference.PosteriorGradient(logits, h, expected.Centred, units, samples, 1.0 / rows), dLogits.GetAsArray1D(), 1e-4, 1e-6);
        yield return Compare("binary prior gradient", shape, Reference.BinaryLatentReference.PriorGradient(priorLogits, h, rows, 0.7 / rows),
            dPrior.GetAsArray1D(), 1e-5, 1e-6 * rows);
        // DARN's: log q of logits a row each (the posterior gradient's per-row logits reused), and their per-example sums.
        var rowLogits = Uniform(random, rows * units, -4, 4);
        using var rowLogitBuffer = accelerator.Allocate1D(ToFloat(rowLogits));
        using var rowDensity = accelerator.Allocate1D<float>(rows);
        using var summed = accelerator.Allocate1D<float>(batch * units);
        kernels.BinaryRowLogDensity(hBuffer.View, rowLogitBuffer.View, rowDensity.View, units);
        kernels.SumSamples(rowLogitBuffer.View, summed.View, units, samples);
        yield return Compare("binary log density per row", shape, Reference.BinaryLatentReference.RowLogDensity(h, rowLogits, units), rowDensity.GetAsArray1D(),
            1e-5, 2e-6 * units);
        yield return Compare("sum over samples", shape, Reference.BinaryLatentReference.SumSamples(rowLogits, units, samples), summed.GetAsArray1D(), 1e-6, 1e-6 * samples);
    }

    /// <summary>The deep exponential family's gamma layer (its units after 55 others of the model's): the draws, log q
    /// and the score, the layer's prior terms, the Bernoulli–Poisson and Poisson terms on 784 pixels and the score-function gradient,
    /// against the double references from the same Philox key (the tolerances of DeepExponentialTests).</summary>
    /// <summary>
    /// The deep GP's double-precision linear algebra on <paramref name="batch"/> matrices of <paramref name="size"/>:
    /// the Cholesky factor (with jitter), both triangular solves and their reverse modes, the log-determinant and its
    /// reverse mode, the factorisation's reverse mode, and the RBF/ARD kernel between <paramref name="points"/> inputs
    /// and the <paramref name="size"/> inducing points in <paramref name="dims"/> dimensions with its reverse mode, and a
    /// layer's marginals for three outputs with theirs.
    /// Reference and kernel are both double and follow the same operations: 1e-10 of each output's largest value.
    /// </summary>
    private IEnumerable<CheckResult> GaussianProcessAlgebra(int batch, int size, int points, int dims)
    {
        var random = new Random(size + points);
        double[] Values(int count, double scale) => Enumerable.Range(0, count).Select(_ => (random.NextDouble() * 2 - 1) * scale).ToArray();
        var a = Reference.LinearAlgebraReference.SymmetricPositiveDefinite(Values(batch * size * size, 1), batch, size);
        const int columns = 4;
        var (rhs, dX, dLogDet, dLIn) = (Values(batch * size * columns, 1), Values(batch * size * columns, 1), Values(batch, 1), Values(a.Length, 1));
        var (l, _) = Reference.LinearAlgebraReference.Cholesky(a, batch, size, 1e-6);
        var accelerator = kernels.Accelerator;
        string label = $"{batch}x{size}x{size}";
        using var aBuffer = accelerator.Allocate1D(a);
        using var lBuffer = accelerator.Allocate1D<double>(a.Length);
        using var failures = accelerator.Allocate1D<int>(batch);
        kernels.Cholesky(aBuffer.View, lBuffer.View, failures.View, batch, size, 1e-6);
        yield return CompareDouble("Cholesky factor (double)", label, l, lBuffer.GetAsArray1D());
        using var rhsBuffer = accelerator.Allocate1D(rhs);
        using var xBuffer = accelerator.Allocate1D<double>(rhs.Length);
        using var dXBuffer = accelerator.Allocate1D(dX);
        using var dRhsBuffer = accelerator.Allocate1D<double>(rhs.Length);
        using var dLBuffer = accelerator.Allocate1D<double>(a.Length);
        foreach (bool transpose in new[] { false, true })
        {
            string which = transpose ? "Lᵀ" : "L";
            var x = Reference.LinearAlgebraReference.Solve(l, rhs, batch, size, columns, transpose);
            var (dRhs, dL) = Reference.LinearAlgebraReference.SolveBackward(l, x, dX, batch, size, columns, transpose);
            kernels.TriangularSolve(lBuffer.View, rhsBuffer.View, xBuffer.View, batch, size, columns, transpose);
            yield return CompareDouble($"triangular solve with {which} (double)", label, x, xBuffer.GetAsArray1D());
            dLBuffer.MemSetToZero();
            kernels.TriangularSolveBackward(lBuffer.View, xBuffer.View, dXBuffer.View, dRhsBuffer.View, dLBuffer.View, batch, size, columns, transpose);
            yield return CompareDouble($"triangular solve with {which} backward (double)", label, dRhs.Concat(dL).ToArray(),
                dRhsBuffer.GetAsArray1D().Concat(dLBuffer.GetAsArray1D()).ToArray());
        }
        using var logDet = accelerator.Allocate1D<double>(batch);
        using var dLogDetBuffer = accelerator.Allocate1D(dLogDet);
        kernels.LogDeterminant(lBuffer.View, logDet.View, batch, size);
        dLBuffer.MemSetToZero();
        kernels.LogDeterminantBackward(lBuffer.View, dLogDetBuffer.View, dLBuffer.View, batch, size);
        yield return CompareDouble("log-determinant and its backward (double)", label,
            Reference.LinearAlgebraReference.LogDeterminant(l, batch, size).Concat(Reference.LinearAlgebraReference.LogDeterminantBackward(l, dLogDet, batch, size)).ToArray(),
            logDet.GetAsArray1D().Concat(dLBuffer.GetAsArray1D()).ToArray());
        using var dLInBuffer = accelerator.Allocate1D(dLIn);
        using var dA = accelerator.Allocate1D<double>(a.Length);
        using var work = accelerator.Allocate1D<double>(a.Length);
        kernels.CholeskyBackward(lBuffer.View, dLInBuffer.View, dA.View, work.View, batch, size);
        var lowerDL = dLIn.Select((value, at) => at % size <= at / size % size ? value : 0).ToArray();
        yield return CompareDouble("Cholesky backward (double)", label, Reference.LinearAlgebraReference.CholeskyBackward(l, lowerDL, batch, size), dA.GetAsArray1D());

        var (xs, zs, hyper, dK) = (Values(batch * points * dims, 2), Values(batch * size * dims, 2), Values(batch * (dims + 1), 0.5), Values(batch * points * size, 1));
        var kExpected = Reference.LinearAlgebraReference.Rbf(xs, zs, hyper, batch, points, size, dims);
        var (dXs, dZs, dHyper) = Reference.LinearAlgebraReference.RbfBackward(xs, zs, hyper, dK, batch, points, size, dims);
        using var xsBuffer = accelerator.Allocate1D(xs);
        using var zsBuffer = accelerator.Allocate1D(zs);
        using var hyperBuffer = accelerator.Allocate1D(hyper);
        using var kBuffer = accelerator.Allocate1D<double>(kExpected.Length);
        using var dKBuffer = accelerator.Allocate1D(dK);
        using var dXsBuffer = accelerator.Allocate1D<double>(xs.Length);
        using var dZsBuffer = accelerator.Allocate1D<double>(zs.Length);
        using var dHyperBuffer = accelerator.Allocate1D<double>(hyper.Length);
        kernels.Rbf(xsBuffer.View, zsBuffer.View, hyperBuffer.View, kBuffer.View, batch, points, size, dims);
        string rbfLabel = $"{batch}x{points}x{size} D={dims}";
        yield return CompareDouble("RBF/ARD kernel (double)", rbfLabel, kExpected, kBuffer.GetAsArray1D());
        kernels.RbfBackward(xsBuffer.View, zsBuffer.View, hyperBuffer.View, kBuffer.View, dKBuffer.View, dXsBuffer.View, dZsBuffer.View, dHyperBuffer.View, batch, points, size, dims);
        yield return CompareDouble("RBF/ARD kernel backward (double)", rbfLabel, dXs.Concat(dZs).Concat(dHyper).ToArray(),
            dXsBuffer.GetAsArray1D().Concat(dZsBuffer.GetAsArray1D()).Concat(dHyperBuffer.GetAsArray1D()).ToArray());

        // A layer's marginals for 3 outputs from the projection A and K_ZX [M, N], and their reverse mode.
        const int outputs = 3;
        var (projection, kZX, m) = (Values(size * points, 1), Values(size * points, 1), Values(outputs * size, 1));
        var lS = Values(outputs * size * size, 1).Select((value, at) => at % size <= at / size % size ? value / size : 0).ToArray();
        var (dMean, dVariance) = (Values(points * outputs, 1), Values(points * outputs, 1));
        var (mean, variance) = Reference.GaussianProcessReference.MarginalsFromProjection(projection, kZX, m, lS, 1.3, points, size, outputs);
        var (dProjection, dKZX, dM, dLS) = Reference.GaussianProcessReference.MarginalsBackward(projection, kZX, m, lS, dMean, dVariance, points, size, outputs);
        using var projectionBuffer = accelerator.Allocate1D(projection);
        using var kZXBuffer = accelerator.Allocate1D(kZX);
        using var mBuffer = accelerator.Allocate1D(m);
        using var lSBuffer = accelerator.Allocate1D(lS);
        using var b = accelerator.Allocate1D<double>(outputs * size * points);
        using var meanBuffer = accelerator.Allocate1D<double>(points * outputs);
        using var varianceBuffer = accelerator.Allocate1D<double>(points * outputs);
        using var signalBuffer = accelerator.Allocate1D(new[] { Math.Log(1.3) });
        kernels.CovarianceProjection(projectionBuffer.View, lSBuffer.View, b.View, points, size, outputs);
        kernels.Marginals(projectionBuffer.View, kZXBuffer.View, mBuffer.View, b.View, signalBuffer.View, 0, meanBuffer.View, varianceBuffer.View, points, size, outputs);
        string marginalLabel = $"{points}x{size} O={outputs}";
        yield return CompareDouble("sparse GP marginals (double)", marginalLabel, mean.Concat(variance).ToArray(),
            meanBuffer.GetAsArray1D().Concat(varianceBuffer.GetAsArray1D()).ToArray());
        using var dMeanBuffer = accelerator.Allocate1D(dMean);
        using var dVarianceBuffer = accelerator.Allocate1D(dVariance);
        using var dProjectionBuffer = accelerator.Allocate1D<double>(projection.Length);
        using var dKZXBuffer = accelerator.Allocate1D<double>(projection.Length);
        using var dMBuffer = accelerator.Allocate1D<double>(m.Length);
        using var dLSBuffer = accelerator.Allocate1D<double>(lS.Length);
        kernels.MarginalsBackward(projectionBuffer.View, kZXBuffer.View, mBuffer.View, lSBuffer.View, b.View, dMeanBuffer.View, dVarianceBuffer.View,
            dProjectionBuffer.View, dKZXBuffer.View, dMBuffer.View, dLSBuffer.View, points, size, outputs);
        yield return CompareDouble("sparse GP marginals backward (double)", marginalLabel, dProjection.Concat(dKZX).Concat(dM).Concat(dLS).ToArray(),
            dProjectionBuffer.GetAsArray1D().Concat(dKZXBuffer.GetAsArray1D()).Concat(dMBuffer.GetAsArray1D()).Concat(dLSBuffer.GetAsArray1D()).ToArray());
    }

    /// <summary>
    /// The deep GP's layer additions at a minibatch of the UCI kind (points × 13 features into 30 outputs) and the double
    /// Adam: the linear mean and its reverse mode, the marginal sample (the same Philox draws) and its reverse mode,
    /// the softmax and Gaussian likelihoods with their derivatives, all in double against the references.
    /// </summary>
    private IEnumerable<CheckResult> DeepGpLayerTerms(int points, int dims, int outputs)
    {
        var random = new Random(points + dims);
        double[] Values(int count, double scale) => Enumerable.Range(0, count).Select(_ => (random.NextDouble() * 2 - 1) * scale).ToArray();
        var accelerator = kernels.Accelerator;
        string label = $"{points}x{dims}->{outputs}";
        var (x, w, dMean) = (Values(points * dims, 2), Values(dims * outputs, 1), Values(points * outputs, 1));
        using var xBuffer = accelerator.Allocate1D(x);
        using var wBuffer = accelerator.Allocate1D(w);
        using var meanBuffer = accelerator.Allocate1D<double>(points * outputs);
        using var dMeanBuffer = accelerator.Allocate1D(dMean);
        using var dXBuffer = accelerator.Allocate1D<double>(points * dims);
        meanBuffer.MemSetToZero();
        dXBuffer.MemSetToZero();
        kernels.LinearMean(xBuffer.View, wBuffer.View, meanBuffer.View, points, dims, outputs);
        kernels.LinearMeanBackward(dMeanBuffer.View, wBuffer.View, dXBuffer.View, points, dims, outputs);
        yield return CompareDouble("deep GP linear mean and backward (double)", label,
            Reference.DeepGpLayerReference.LinearMean(x, w, points, dims, outputs).Concat(Reference.DeepGpLayerReference.LinearMeanBackward(dMean, w, points, dims, outputs)).ToArray(),
            meanBuffer.GetAsArray1D().Concat(dXBuffer.GetAsArray1D()).ToArray());

        int count = points * outputs;
        var (mean, dF) = (Values(count, 1), Values(count, 1));
        var variance = Values(count, 1).Select(value => Math.Abs(value) + 1e-3).ToArray();
        var key = new DrawKey(5, Philox.Streams.Reparameterize, 9, firstExample: 3);
        using var mean2 = accelerator.Allocate1D(mean);
        using var varianceBuffer = accelerator.Allocate1D(variance);
        using var f = accelerator.Allocate1D<double>(count);
        using var epsilon = accelerator.Allocate1D<double>(count);
        using var dFBuffer = accelerator.Allocate1D(dF);
        using var dMeanOut = accelerator.Allocate1D<double>(count);
        using var dVarianceOut = accelerator.Allocate1D<double>(count);
        kernels.SampleMarginals(mean2.View, varianceBuffer.View, f.View, epsilon.View, count, outputs, key);
        kernels.SampleMarginalsBackward(varianceBuffer.View, epsilon.View, dFBuffer.View, dMeanOut.View, dVarianceOut.View, count);
        var eps = Enumerable.Range(0, count).Select(at => Reference.DeepGpLayerReference.Epsilon(key, at, outputs)).ToArray();
        yield return CompareDouble("deep GP marginal sample and backward (double)", label,
            Reference.DeepGpLayerReference.Sample(mean, variance, key, outputs).Concat(dF).Concat(dF.Select((value, at) => value * eps[at] / (2 * Math.Sqrt(variance[at])))).ToArray(),
            f.GetAsArray1D().Concat(dMeanOut.GetAsArray1D()).Concat(dVarianceOut.GetAsArray1D()).ToArray());

        var labels = Enumerable.Range(0, points).Select(_ => random.Next(outputs)).ToArray();
        var logits = Values(count, 10);
        using var labelBuffer = accelerator.Allocate1D(labels);
        using var logitBuffer = accelerator.Allocate1D(logits);
        using var ell = accelerator.Allocate1D<double>(points);
        using var dLogits = accelerator.Allocate1D<double>(count);
        kernels.SoftmaxLogLikelihood(logitBuffer.View, labelBuffer.View, -0.5, ell.View, dLogits.View, points, outputs);
        var expectedDLogits = new double[count];
        for (int n = 0; n < points; n++)
        {
            double largest = Enumerable.Range(0, outputs).Max(c => logits[n * outputs + c]);
            double sum = Enumerable.Range(0, outputs).Sum(c => Math.Exp(logits[n * outputs + c] - largest));
            for (int c = 0; c < outputs; c++)
                expectedDLogits[n * outputs + c] = -0.5 * ((c == labels[n] ? 1 : 0) - Math.Exp(logits[n * outputs + c] - largest) / sum);
        }
        yield return CompareDouble("deep GP softmax likelihood and derivative (double)", label,
            Reference.DeepGpLayerReference.SoftmaxLogLikelihood(logits, labels, outputs).Concat(expectedDLogits).ToArray(),
            ell.GetAsArray1D().Concat(dLogits.GetAsArray1D()).ToArray());

        // The robust-max likelihood over the outputs as classes, under the marginals above (20 Gauss–Hermite points).
        var rule = GaussHermite.Rule(20);
        using var quadrature = accelerator.Allocate1D(rule.Nodes.Concat(rule.Weights).ToArray());
        kernels.RobustMaxExpectedLogLikelihood(mean2.View, varianceBuffer.View, labelBuffer.View, quadrature.View, 1e-3, -0.5, ell.View, dMeanOut.View,
            dVarianceOut.View, points, outputs, rule.Nodes.Length);
        yield return CompareDouble("deep GP robust-max expected log-likelihood (double)", label,
            Reference.DeepGpLayerReference.RobustMaxExpectedLogLikelihood(mean, variance, labels, outputs, 1e-3, rule), ell.GetAsArray1D());

        var y = Values(count, 1);
        double logNoise = Math.Log(0.3);
        using var yBuffer = accelerator.Allocate1D(y);
        using var noiseBuffer = accelerator.Allocate1D(new[] { logNoise });
        using var dNoise = accelerator.Allocate1D<double>(points);
        kernels.GaussianExpectedLogLikelihood(yBuffer.View, mean2.View, varianceBuffer.View, noiseBuffer.View, -0.5, ell.View, dMeanOut.View, dVarianceOut.View,
            dNoise.View, points, outputs);
        double noise = Math.Exp(logNoise);
        var expectedEll = Enumerable.Range(0, points).Select(n => Enumerable.Range(0, outputs).Sum(o =>
        {
            int at = n * outputs + o;
            return -0.5 * (Math.Log(2 * Math.PI) + logNoise) - ((y[at] - mean[at]) * (y[at] - mean[at]) + variance[at]) / (2 * noise);
        })).ToArray();
        var expectedDMean = Enumerable.Range(0, count).Select(at => -0.5 * (y[at] - mean[at]) / noise).ToArray();
        yield return CompareDouble("deep GP Gaussian expected log-likelihood (double)", label, expectedEll.Concat(expectedDMean).ToArray(),
            ell.GetAsArray1D().Concat(dMeanOut.GetAsArray1D()).ToArray());

        const int parameterCount = 100_003;
        var (parameters, gradient) = (Values(parameterCount, 1), Values(parameterCount, 0.1));
        using var p = accelerator.Allocate1D(parameters);
        using var g = accelerator.Allocate1D(gradient);
        using var m = accelerator.Allocate1D<double>(parameterCount);
        using var v = accelerator.Allocate1D<double>(parameterCount);
        m.MemSetToZero();
        v.MemSetToZero();
        kernels.AdamStep(p.View, g.View, m.View, v.View, 1e-3, 1);
        var expected = (double[])parameters.Clone();
        AdamReference.Step(expected, gradient, new double[parameterCount], new double[parameterCount], 1e-3, 0.9, 0.999, 1e-8, 1);
        yield return CompareDouble("Adam step (double)", parameterCount.ToString(System.Globalization.CultureInfo.InvariantCulture), expected, p.GetAsArray1D());
    }

    /// <summary>Double outputs held to 1e-10 of their largest magnitude.</summary>
    private static CheckResult CompareDouble(string kernel, string shape, double[] expected, double[] actual)
    {
        double allowed = 1e-10 * Math.Max(expected.Max(Math.Abs), 1e-300), worstError = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Math.Abs(actual[i] - expected[i]);
            if (!double.IsFinite(error))
                return new CheckResult(kernel, shape, double.PositiveInfinity, double.PositiveInfinity);
            worstError = Math.Max(worstError, error);
        }
        return new CheckResult(kernel, shape, worstError / allowed, worstError);
    }

    /// <summary>The double DEF's Poisson terms: row and column sums over the training cells and the held-out log-sum
    /// (tolerances as in DoubleDefTests: sums to 1e-5 of Σ|term| plus 1e-3; the log-sum to 1e-5 relative, 2e-3 absolute).</summary>
    private IEnumerable<CheckResult> PoissonMatrixTerms(int rows, int columns, int units, int samples)
    {
        var shape = new MatrixShape(rows, columns, units, samples);
        var random = new Random(rows + columns * 3 + units);
        var z = Uniform(random, rows * samples * units, 0, 2);
        var w = Uniform(random, columns * samples * units, 0, 2);
        var counts = Enumerable.Range(0, rows * columns).Select(_ => random.NextDouble() < 0.5 ? 0.0 : random.Next(1, 30)).ToArray();
        var observed = Enumerable.Range(0, rows * columns).Select(_ => random.NextDouble() >= 0.1).ToArray();
        var (rowLoss, columnLoss) = Reference.PoissonMatrixReference.NegativeLogLikelihood(z, w, counts, observed, shape);
        var logSum = Reference.PoissonMatrixReference.HeldOutLogSum(z, w, counts, observed, shape);
        var rowScale = new double[rows * samples];
        var columnScale = new double[columns * samples];
        for (int u = 0; u < rows; u++)
            for (int i = 0; i < columns; i++)
                for (int s = 0; s < samples && observed[u * columns + i]; s++)
                {
                    double rate = Reference.PoissonMatrixReference.Rate(z, w, u * samples + s, i * samples + s, units), y = counts[u * columns + i];
                    double magnitude = rate + Math.Abs(y * Math.Log(rate)) + Reference.DistributionReference.LogGamma(y + 1);
                    rowScale[u * samples + s] += magnitude;
                    columnScale[i * samples + s] += magnitude;
                }
        var accelerator = kernels.Accelerator;
        using var zBuffer = accelerator.Allocate1D(ToFloat(z));
        using var wBuffer = accelerator.Allocate1D(ToFloat(w));
        using var countBuffer = accelerator.Allocate1D(ToFloat(counts));
        using var observedBuffer = accelerator.Allocate1D(observed.Select(cell => cell ? 1f : 0f).ToArray());
        using var rowBuffer = accelerator.Allocate1D<float>(rows * samples);
        using var columnBuffer = accelerator.Allocate1D<float>(columns * samples);
        using var logSumBuffer = accelerator.Allocate1D<float>(rows * columns);
        kernels.RowNegativeLogLikelihood(zBuffer.View, wBuffer.View, countBuffer.View, observedBuffer.View, rowBuffer.View, shape);
        kernels.ColumnNegativeLogLikelihood(zBuffer.View, wBuffer.View, countBuffer.View, observedBuffer.View, columnBuffer.View, shape);
        kernels.HeldOutLogLikelihood(zBuffer.View, wBuffer.View, countBuffer.View, observedBuffer.View, logSumBuffer.View, shape, first: true);
        string label = $"{rows}x{columns} K={units} k={samples}";
        yield return Compare("Poisson matrix row sums", label, rowLoss, rowBuffer.GetAsArray1D(), 1e-5, 1e-3, rowScale);
        yield return Compare("Poisson matrix column sums", label, columnLoss, columnBuffer.GetAsArray1D(), 1e-5, 1e-3, columnScale);
        var held = Enumerable.Range(0, rows * columns).Where(cell => !observed[cell]).ToArray();
        var actualLogSum = logSumBuffer.GetAsArray1D();
        yield return Compare("Poisson matrix held-out log-sum", label, held.Select(cell => logSum[cell]).ToArray(), held.Select(cell => actualLogSum[cell]).ToArray(),
            1e-5, 2e-3);
    }

    private IEnumerable<CheckResult> GammaUnits(int batch, int units, int before, int samples)
    {
        int rows = batch * samples, total = before + units, pixels = 784;
        var shape = new GammaLayerShape(units, before, total, samples);
        var random = new Random(batch * units + samples);
        var statistics = Uniform(random, batch * 2 * total, -3, 3);
        var means = Uniform(random, rows * units, 0.05, 4);
        var rates = Enumerable.Range(0, rows * pixels).Select(_ => Math.Exp(random.NextDouble() * Math.Log(4e7)) * 1e-6).ToArray();
        var target = Enumerable.Range(0, batch * pixels).Select(_ => random.NextDouble() < 0.2 ? 1.0 : 0.0).ToArray();
        var key = new DrawKey(9, Philox.Streams.Reparameterize, 5);
        var expected = Reference.DeepExponentialReference.Sample(statistics, shape, rows, key);
        var terms = Reference.DeepExponentialReference.LayerTerms(expected.Z, expected.LogZ, expected.LogQ, means, units, 0.1);
        var (logits, reconstruction, dRates) = Reference.DeepExponentialReference.BernoulliRateLoss(target, rates, pixels, samples, 1.0 / rows);
        var dStatistics = new double[batch * 2 * total];
        Reference.DeepExponentialReference.ScoreGradient(expected.Score, terms.LogPrior, expected.LogQ, reconstruction, reconstruction, terms.Kl, dStatistics,
            shape, raoBlackwell: true, leaveOneOut: true, 1, -1, 1.0 / rows);
        var accelerator = kernels.Accelerator;
        using var statisticsBuffer = accelerator.Allocate1D(ToFloat(statistics));
        using var z = accelerator.Allocate1D<float>(rows * units);
        using var logZ = accelerator.Allocate1D<float>(rows * units);
        using var logQ = accelerator.Allocate1D<float>(rows * units);
        using var score = accelerator.Allocate1D<float>(rows * 2 * units);
        kernels.GammaPosteriorSample(statisticsBuffer.View, z.View, logZ.View, logQ.View, score.View, shape, key);
        string label = $"{batch}x{units} k={samples}";
        yield return Compare("gamma draws z", label, expected.Z, z.GetAsArray1D(), 1e-4, 0);
        yield return Compare("gamma draws log z", label, expected.LogZ, logZ.GetAsArray1D(), 1e-4, 2e-3);
        yield return Compare("gamma log q", label, expected.LogQ, logQ.GetAsArray1D(), 1e-4, 2e-3);
        yield return Compare("gamma score", label, expected.Score, score.GetAsArray1D(), 1e-4, 2e-3);
        // The next kernels read the reference's draws, so that each is compared alone.
        using var zIn = accelerator.Allocate1D(ToFloat(expected.Z));
        using var logZIn = accelerator.Allocate1D(ToFloat(expected.LogZ));
        using var logQIn = accelerator.Allocate1D(ToFloat(expected.LogQ));
        using var scoreIn = accelerator.Allocate1D(ToFloat(expected.Score));
        using var meanBuffer = accelerator.Allocate1D(ToFloat(means));
        using var logP = accelerator.Allocate1D<float>(rows * units);
        using var dMeans = accelerator.Allocate1D<float>(rows * units);
        using var rowLogP = accelerator.Allocate1D<float>(rows);
        using var kl = accelerator.Allocate1D<float>(rows);
        kernels.GammaLayerTerms(zIn.View, logZIn.View, logQIn.View, meanBuffer.View, logP.View, dMeans.View, rowLogP.View, kl.View, units, 0.1f, first: true);
        yield return Compare("gamma layer log p", label, terms.LogPrior, logP.GetAsArray1D(), 1e-5, 2e-3);
        yield return Compare("gamma layer ∂ log p/∂μ", label, terms.DMeans, dMeans.GetAsArray1D(), 1e-5, 1e-6);
        yield return Compare("gamma layer KL per row", label, terms.Kl, kl.GetAsArray1D(), 1e-5, 2e-3 * units);
        using var targetBuffer = accelerator.Allocate1D(ToFloat(target));
        using var rateBuffer = accelerator.Allocate1D(ToFloat(rates));
        using var logitBuffer = accelerator.Allocate1D<float>(rows * pixels);
        using var reconstructionBuffer = accelerator.Allocate1D<float>(rows);
        using var dRateBuffer = accelerator.Allocate1D<float>(rows * pixels);
        kernels.BernoulliRateLoss(targetBuffer.View, rateBuffer.View, logitBuffer.View, reconstructionBuffer.View, dRateBuffer.View, pixels, samples, 1f / rows);
        yield return Compare("Bernoulli–Poisson logits", label, logits, logitBuffer.GetAsArray1D(), 1e-5, 1e-6);
        yield return Compare("Bernoulli–Poisson −log p", label, reconstruction, reconstructionBuffer.GetAsArray1D(), 5e-5, 1e-4);
        yield return Compare("Bernoulli–Poisson ∂/∂r", label, dRates, dRateBuffer.GetAsArray1D(), 1e-5, 1e-9);
        var grey = Enumerable.Range(0, batch * pixels).Select(_ => random.Next(256) / 255.0).ToArray();
        var (greyMeans, counts, dCountRates) = Reference.DeepExponentialReference.PoissonRateLoss(grey, rates, pixels, samples, 1.0 / rows);
        using var greyBuffer = accelerator.Allocate1D(ToFloat(grey));
        kernels.PoissonRateLoss(greyBuffer.View, rateBuffer.View, logitBuffer.View, reconstructionBuffer.View, dRateBuffer.View, pixels, samples, 1f / rows);
        yield return Compare("Poisson counts' means", label, greyMeans, logitBuffer.GetAsArray1D(), 1e-6, 1e-12);
        yield return Compare("Poisson counts −log p", label, counts, reconstructionBuffer.GetAsArray1D(), 5e-5, 1e-3 * pixels);
        yield return Compare("Poisson counts ∂/∂r", label, dCountRates, dRateBuffer.GetAsArray1D(), 1e-5, 2e-7 / rows);
        using var logPIn = accelerator.Allocate1D(ToFloat(terms.LogPrior));
        using var klIn = accelerator.Allocate1D(ToFloat(terms.Kl));
        using var reconstructionIn = accelerator.Allocate1D(ToFloat(reconstruction));
        using var dStatisticsBuffer = accelerator.Allocate1D<float>(batch * 2 * total);
        // The layer writes its own columns alone.
        dStatisticsBuffer.MemSetToZero();
        kernels.GammaScoreGradient(scoreIn.View, logPIn.View, logQIn.View, reconstructionIn.View, reconstructionIn.View, klIn.View, dStatisticsBuffer.View, shape,
            GammaEstimator.Full, 1f, -1f, 1f / rows);
        yield return Compare("gamma score-function gradient", label, dStatistics, dStatisticsBuffer.GetAsArray1D(), 1e-4, 1e-3);
    }

    /// <summary>The deep exponential family's Poisson or sigmoid-belief-net layer (its units after 40 others): the draws,
    /// log q, the score, and the layer's prior terms under parents and at the top, against the double references from
    /// the same Philox key (the tolerances of DeepExponentialTests).</summary>
    private IEnumerable<CheckResult> DiscreteDefUnits(DefUnitKind kind, int batch, int units, int before, int samples)
    {
        int rows = batch * samples, total = before + units;
        var shape = new GammaLayerShape(units, before, total, samples);
        var random = new Random(batch * units + samples + (int)kind);
        var statistics = Uniform(random, batch * 2 * total, -4, 4);
        var parents = kind == DefUnitKind.Poisson ? Uniform(random, rows * units, 0.05, 6) : Uniform(random, rows * units, -6, 6);
        var key = new DrawKey(10, Philox.Streams.Reparameterize, 6);
        var expected = Reference.DeepExponentialReference.SampleDiscrete(kind, statistics, shape, rows, key);
        var terms = Reference.DeepExponentialReference.DiscreteLayerTerms(kind, expected.Z, expected.LogQ, parents, units);
        var top = Reference.DeepExponentialReference.DiscreteLayerTerms(kind, expected.Z, expected.LogQ, null, units);
        var accelerator = kernels.Accelerator;
        using var statisticsBuffer = accelerator.Allocate1D(ToFloat(statistics));
        using var z = accelerator.Allocate1D<float>(rows * units);
        using var logZ = accelerator.Allocate1D<float>(rows * units);
        using var logQ = accelerator.Allocate1D<float>(rows * units);
        using var score = accelerator.Allocate1D<float>(rows * 2 * units);
        kernels.DiscretePosteriorSample(kind, statisticsBuffer.View, z.View, logZ.View, logQ.View, score.View, shape, key);
        string name = kind == DefUnitKind.Poisson ? "Poisson" : "sbn", label = $"{batch}x{units} k={samples}";
        yield return Compare($"{name} units z", label, expected.Z, z.GetAsArray1D(), 0, 0);
        yield return Compare($"{name} units log q", label, expected.LogQ, logQ.GetAsArray1D(), 1e-5, 1e-5);
        yield return Compare($"{name} units score", label, expected.Score, score.GetAsArray1D(), 1e-5, 1e-6);
        using var zIn = accelerator.Allocate1D(ToFloat(expected.Z));
        using var logQIn = accelerator.Allocate1D(ToFloat(expected.LogQ));
        using var parentBuffer = accelerator.Allocate1D(ToFloat(parents));
        using var logP = accelerator.Allocate1D<float>(rows * units);
        using var dParents = accelerator.Allocate1D<float>(rows * units);
        using var rowLogP = accelerator.Allocate1D<float>(rows);
        using var kl = accelerator.Allocate1D<float>(rows);
        kernels.DiscreteLayerTerms(kind, zIn.View, logQIn.View, parentBuffer.View, logP.View, dParents.View, rowLogP.View, kl.View, units, first: true);
        yield return Compare($"{name} layer log p", label, terms.LogPrior, logP.GetAsArray1D(), 1e-5, 1e-5);
        yield return Compare($"{name} layer ∂ log p/∂ parent", label, terms.DParents, dParents.GetAsArray1D(), 1e-5, 1e-6);
        yield return Compare($"{name} layer KL per row", label, terms.Kl, kl.GetAsArray1D(), 1e-5, 1e-5 * units);
        kernels.DiscreteLayerTerms(kind, zIn.View, logQIn.View, kernels.None, logP.View, kernels.None, rowLogP.View, kl.View, units, first: true);
        yield return Compare($"{name} top layer log p per row", label, top.RowLogPrior, rowLogP.GetAsArray1D(), 1e-5, 1e-5 * units);
    }

    /// <summary>log Γ and ψ on x from 1e-3 to 1e3, and the gamma log density with its two scores, against the double
    /// references (the tolerances of DistributionTests: 4e-6 of the value plus its largest terms' size).</summary>
    private IEnumerable<CheckResult> DistributionDensities(int count)
    {
        var random = new Random(count);
        var x = ToFloat(Enumerable.Range(0, count).Select(_ => Math.Pow(10, -3 + 6 * random.NextDouble())).ToArray());
        var shapes = ToFloat(Uniform(random, count, 0.05, 20));
        var rates = ToFloat(Uniform(random, count, 0.1, 10));
        var z = ToFloat(Uniform(random, count, 1e-3, 30));
        var accelerator = kernels.Accelerator;
        using var xBuffer = accelerator.Allocate1D(x);
        using var first = accelerator.Allocate1D<float>(count);
        using var second = accelerator.Allocate1D<float>(count);
        using var third = accelerator.Allocate1D<float>(count);
        kernels.SpecialFunctions(xBuffer.View, first.View, second.View);
        string shape = count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var logGamma = x.Select(value => Reference.DistributionReference.LogGamma(value)).ToArray();
        var digamma = x.Select(value => Reference.DistributionReference.Digamma(value)).ToArray();
        yield return Compare("log Γ", shape, logGamma, first.GetAsArray1D(), 4e-6, 4e-5);
        yield return Compare("digamma ψ", shape, digamma, second.GetAsArray1D(), 4e-6, 4e-6);
        using var zBuffer = accelerator.Allocate1D(z);
        using var shapeBuffer = accelerator.Allocate1D(shapes);
        using var rateBuffer = accelerator.Allocate1D(rates);
        kernels.GammaLogDensity(zBuffer.View, shapeBuffer.View, rateBuffer.View, first.View, second.View, third.View);
        var terms = Enumerable.Range(0, count).Select(i => Math.Abs(shapes[i] * Math.Log(rates[i])) + Math.Abs(Reference.DistributionReference.LogGamma(shapes[i]))
            + Math.Abs((shapes[i] - 1) * Math.Log(z[i])) + rates[i] * z[i] + 0.1).ToArray();
        yield return Compare("gamma log density", shape, Enumerable.Range(0, count).Select(i => Reference.DistributionReference.GammaLogDensity(z[i], shapes[i], rates[i])).ToArray(),
            first.GetAsArray1D(), 1e-5, 0, terms);
        yield return Compare("gamma score ∂/∂α", shape, Enumerable.Range(0, count).Select(i => Reference.DistributionReference.GammaScore(z[i], shapes[i], rates[i]).Shape).ToArray(),
            second.GetAsArray1D(), 1e-5, 1e-5);
        yield return Compare("gamma score ∂/∂β", shape, Enumerable.Range(0, count).Select(i => Reference.DistributionReference.GammaScore(z[i], shapes[i], rates[i]).Rate).ToArray(),
            third.GetAsArray1D(), 1e-5, 1e-5);
    }

    /// <summary>The rank-one covariance sampler with its KL, its backward pass and its log weights.</summary>
    private IEnumerable<CheckResult> RankOneCovariance(int examples, int latent, int samples)
    {
        int rows = examples * samples;
        var random = new Random(rows + latent);
        var stats = Uniform(random, examples * 3 * latent, -1, 1);
        var dZ = Uniform(random, rows * latent, -1, 1);
        var reconstruction = Uniform(random, rows, 50, 150);
        var key = new DrawKey(3, Philox.Streams.Reparameterize, 1);
        const float klWeight = 0.3f;
        var accelerator = kernels.Accelerator;
        using var statsBuffer = accelerator.Allocate1D(ToFloat(stats));
        using var z = accelerator.Allocate1D<float>(rows * latent);
        using var epsilon = accelerator.Allocate1D<float>(rows * latent);
        using var kl = accelerator.Allocate1D<float>(rows);
        using var dZBuffer = accelerator.Allocate1D(ToFloat(dZ));
        using var dStats = accelerator.Allocate1D<float>(examples * 3 * latent);
        using var reconstructionBuffer = accelerator.Allocate1D(ToFloat(reconstruction));
        using var logWeights = accelerator.Allocate1D<float>(rows);
        kernels.RankOneForward(statsBuffer.View, z.View, epsilon.View, kl.View, rows, latent, key, samples);
        kernels.RankOneBackward(statsBuffer.View, epsilon.View, dZBuffer.View, dStats.View, examples, latent, klWeight, samples);
        kernels.RankOneLogWeights(statsBuffer.View, z.View, epsilon.View, reconstructionBuffer.View, logWeights.View, rows, latent, samples);
        var eps = ToDouble(epsilon.GetAsArray1D());
        var repeated = ImportanceReference.RepeatRows(stats, examples, 3 * latent, samples);
        var (expectedZ, expectedKl) = RankOneReference.Forward(repeated, eps, rows, latent);
        var expectedDStats = ImportanceReference.SumRepeatedRows(RankOneReference.Backward(repeated, eps, dZ, rows, latent, klWeight / samples),
            examples, 3 * latent, samples);
        string shape = $"{examples}x{latent}x{samples}";
        // As in the tests: 2e-5 of each value (of the largest for dStats, whose samples' terms add and cancel).
        yield return Compare("rank-one sampler z", shape, expectedZ, z.GetAsArray1D(), 2e-5, 2e-5);
        yield return Compare("rank-one KL", shape, expectedKl, kl.GetAsArray1D(), 2e-5, 2e-6 * latent);
        yield return Compare("rank-one backward", shape, expectedDStats, dStats.GetAsArray1D(), 2e-5, 2e-5 * expectedDStats.Max(Math.Abs));
        yield return Compare("rank-one log w", shape, RankOneReference.LogWeights(repeated, expectedZ, reconstruction, rows, latent),
            logWeights.GetAsArray1D(), 1e-5, 1e-4);
        // The IWAE's pass, with the rows' weights drawn like normalised ones.
        var weights = Uniform(random, rows, 0.1, 1);
        using var weightsBuffer = accelerator.Allocate1D(ToFloat(weights));
        kernels.RankOneWeightedBackward(statsBuffer.View, z.View, epsilon.View, dZBuffer.View, weightsBuffer.View, dStats.View, examples, latent, samples, 0.25f);
        var expectedWeighted = ImportanceReference.SumRepeatedRows(RankOneReference.WeightedBackward(repeated, ToDouble(z.GetAsArray1D()), eps, dZ, weights,
            rows, latent, 0.25), examples, 3 * latent, samples);
        yield return Compare("rank-one weighted backward", shape, expectedWeighted, dStats.GetAsArray1D(), 2e-5, 2e-5 * expectedWeighted.Max(Math.Abs));
    }

    /// <summary>The Ladder VAE's merge by precision and its backward pass: of a diagonal q̂, or (with
    /// <paramref name="rankOne"/>) of a rank-one one, against the reference built from the precision matrices.</summary>
    private IEnumerable<CheckResult> LadderMerge(int examples, int latent, int samples, bool rankOne = false)
    {
        int rows = examples * samples, blocks = rankOne ? 3 : 2;
        var random = new Random(rows + (rankOne ? 5 : 1) * latent);
        var bottomUp = rankOne ? Uniform(random, examples * 3 * latent, -1, 1) : Uniform(random, examples * 2 * latent, -3, 3);
        var topDown = Uniform(random, rows * 2 * latent, rankOne ? -2 : -3, rankOne ? 2 : 3);
        var dMerged = Uniform(random, rows * blocks * latent, -1, 1);
        var accelerator = kernels.Accelerator;
        using var upBuffer = accelerator.Allocate1D(ToFloat(bottomUp));
        using var downBuffer = accelerator.Allocate1D(ToFloat(topDown));
        using var merged = accelerator.Allocate1D<float>(rows * blocks * latent);
        using var dMergedBuffer = accelerator.Allocate1D(ToFloat(dMerged));
        using var dUp = accelerator.Allocate1D<float>(examples * blocks * latent);
        using var dDown = accelerator.Allocate1D<float>(rows * 2 * latent);
        dDown.MemSetToZero();
        if (rankOne)
        {
            kernels.LadderRankOneMerge(upBuffer.View, downBuffer.View, merged.View, rows, latent, samples);
            kernels.LadderRankOneMergeBackward(upBuffer.View, downBuffer.View, dMergedBuffer.View, dUp.View, dDown.View, examples, latent, samples);
        }
        else
        {
            kernels.LadderMerge(upBuffer.View, downBuffer.View, merged.View, rows, latent, samples);
            kernels.LadderMergeBackward(upBuffer.View, downBuffer.View, dMergedBuffer.View, dUp.View, dDown.View, examples, latent, samples);
        }
        var expectedMerged = rankOne ? LadderReference.RankOneMerge(bottomUp, topDown, rows, latent, samples) : LadderReference.Merge(bottomUp, topDown, rows, latent, samples);
        var (expectedUp, expectedDown) = rankOne
            ? LadderReference.RankOneMergeBackward(bottomUp, topDown, dMerged, rows, latent, samples)
            : LadderReference.MergeBackward(bottomUp, topDown, dMerged, rows, latent, samples);
        string shape = $"{examples}x{latent}x{samples}", name = rankOne ? "Ladder rank-one merge" : "Ladder merge";
        // As in the tests: a handful of float operations per element, sums of ≤ 5 samples (1e-5); the rank-one merge,
        // Sherman–Morrison in float against a Cholesky solve, 2e-5 of the larger of 1 and the value, and its
        // gradients' sums over K and the samples 1e-4 of the largest.
        var (relative, absolute) = rankOne ? (2e-5, 2e-5 * Math.Max(1, expectedMerged.Max(Math.Abs))) : (1e-5, 1e-5);
        var (gradientRelative, upAbsolute, downAbsolute) = rankOne
            ? (1e-4, 1e-4 * expectedUp.Max(Math.Abs), 1e-4 * expectedDown.Max(Math.Abs))
            : (1e-5, 1e-5, 1e-5);
        yield return Compare(name, shape, expectedMerged, merged.GetAsArray1D(), relative, absolute);
        yield return Compare($"{name} gradient (bottom-up)", shape, expectedUp, dUp.GetAsArray1D(), gradientRelative, upAbsolute);
        yield return Compare($"{name} gradient (top-down)", shape, expectedDown, dDown.GetAsArray1D(), gradientRelative, downAbsolute);
    }

    /// <summary>The Ladder VAE's σ² = softplus(ρ) rewritten as log σ², and its gradient carried back to ρ.</summary>
    private IEnumerable<CheckResult> LadderSoftplusVariance(int rows, int latent)
    {
        var random = new Random(rows * latent);
        var raw = Uniform(random, rows * 2 * latent, -25, 25);
        var dStats = Uniform(random, rows * 2 * latent, -1, 1);
        var accelerator = kernels.Accelerator;
        using var rawBuffer = accelerator.Allocate1D(ToFloat(raw));
        using var stats = accelerator.Allocate1D<float>(raw.Length);
        using var dBuffer = accelerator.Allocate1D(ToFloat(dStats));
        kernels.LadderSoftplusVariance(rawBuffer.View, stats.View, rows, latent);
        kernels.LadderSoftplusVarianceBackward(rawBuffer.View, dBuffer.View, rows, latent);
        // The reference on ρ as float holds it; a few ulps of log σ² (up to 25 here), and 1e-6 near σ² = 1.
        var rawAsFloat = ToFloat(raw).Select(value => (double)value).ToArray();
        string shape = $"{rows}x{latent}";
        yield return Compare("Ladder softplus variance", shape, LadderReference.SoftplusVariance(rawAsFloat, rows, latent), stats.GetAsArray1D(), 2e-6, 1e-6);
        yield return Compare("Ladder softplus variance gradient", shape, LadderReference.SoftplusVarianceBackward(rawAsFloat, dStats, rows, latent), dBuffer.GetAsArray1D(), 2e-6, 1e-6);
    }

    /// <summary>log w of a Ladder VAE summed layer by layer (layers below the top with a prior, the top against N(0, I)).</summary>
    private CheckResult LadderLogWeights(int examples, int samples, int[] widths)
    {
        int rows = examples * samples, layers = widths.Length;
        var random = new Random(rows + layers);
        var accelerator = kernels.Accelerator;
        var buffers = new List<MemoryBuffer1D<float, Stride1D.Dense>>();
        ArrayView<float> Upload(double[] values)
        {
            var buffer = accelerator.Allocate1D(ToFloat(values));
            buffers.Add(buffer);
            return buffer.View;
        }
        var rowStats = new double[layers][];
        var z = new double[layers][];
        var priors = new double[layers][];
        using var logWeights = accelerator.Allocate1D<float>(rows);
        using var kl = accelerator.Allocate1D<float>(rows);
        var reconstruction = Uniform(random, rows, 0, 100);
        for (int l = 0; l < layers; l++)
        {
            int k = widths[l];
            bool top = l == layers - 1;
            var stats = Uniform(random, (top ? examples : rows) * 2 * k, -2, 2);
            rowStats[l] = top ? ImportanceReference.RepeatRows(stats, examples, 2 * k, samples) : stats;
            var epsilon = Uniform(random, rows * k, -2, 2);
            // z as the kernel will read it, in float, from the same μ, σ and ε.
            z[l] = Enumerable.Range(0, rows * k).Select(i => (double)(float)(rowStats[l][i / k * 2 * k + i % k] + Math.Exp(rowStats[l][i / k * 2 * k + k + i % k] / 2) * epsilon[i])).ToArray();
            priors[l] = top ? [] : Uniform(random, rows * 2 * k, -2, 2);
            if (top)
                kernels.LadderTopLogWeights(logWeights.View, Upload(stats), Upload(z[l]), Upload(epsilon), rows, k, samples);
            else
                kernels.LadderPriorLogWeights(logWeights.View, Upload(stats), Upload(z[l]), Upload(epsilon), Upload(priors[l]), rows, k, l == 0 ? 1 : 0);
        }
        kernels.LadderFinishLogWeights(logWeights.View, Upload(reconstruction), kl.View, rows);
        var expected = LadderReference.LogWeights(rowStats, z, priors, reconstruction, rows);
        var actual = logWeights.GetAsArray1D();
        buffers.ForEach(buffer => buffer.Dispose());
        // Sums of 112 float terms of size ≤ e^4·4 beside a reconstruction ≤ 100: 1e-5 relative, 1e-3 absolute.
        return Compare("Ladder log w by layer", $"{examples}x{samples} layers {string.Join(",", widths)}", expected, actual, 1e-5, 1e-3);
    }

    /// <summary>Batch norm with ReLU in training mode, forward and backward.</summary>
    private IEnumerable<CheckResult> BatchNormalisation(int rows, int columns)
    {
        var random = new Random(rows * columns);
        var pre = Uniform(random, rows * columns, -3, 5);
        double[] norm = [.. Uniform(random, columns, 0.5, 2), .. Uniform(random, columns, -1, 1), .. new double[columns], .. Enumerable.Repeat(1.0, columns)];
        var dOutput = Uniform(random, rows * columns, -1, 1);
        var accelerator = kernels.Accelerator;
        using var preBuffer = accelerator.Allocate1D(ToFloat(pre));
        using var normBuffer = accelerator.Allocate1D(ToFloat(norm));
        using var output = accelerator.Allocate1D<float>(rows * columns);
        using var saved = accelerator.Allocate1D<float>(2 * columns);
        using var dBuffer = accelerator.Allocate1D(ToFloat(dOutput));
        using var dNorm = accelerator.Allocate1D<float>(2 * columns);
        var batchShape = new BatchNormShape(rows, columns, training: true);
        kernels.BatchNormForward(ActivationKind.Relu, preBuffer.View, normBuffer.View, output.View, saved.View, batchShape);
        kernels.BatchNormBackward(ActivationKind.Relu, preBuffer.View, normBuffer.View, output.View, saved.View, dBuffer.View, dNorm.View, batchShape);
        var (expected, statistics) = BatchNormReference.Forward(ActivationKind.Relu, pre, norm, rows, columns, training: true);
        var (expectedDPre, expectedDNorm) = BatchNormReference.Backward(ActivationKind.Relu, pre, norm, statistics, dOutput, rows, columns, training: true);
        string shape = $"{rows}x{columns}";
        // As in the tests: 1e-5 forward; backward 1e-4 of the largest gradient (its batch means cancel).
        double scale = expectedDPre.Concat(expectedDNorm).Max(Math.Abs);
        yield return Compare("batch norm + ReLU", shape, expected, output.GetAsArray1D(), 1e-5, 1e-5);
        yield return Compare("batch norm + ReLU gradient", shape, [.. expectedDPre, .. expectedDNorm],
            [.. dBuffer.GetAsArray1D(), .. dNorm.GetAsArray1D()], 1e-4, 1e-4 * scale);
    }

    /// <summary>The VLAE's join of a rung's input [z̃ | z_l] (a copy of a column block) and VCCA-private's sum of
    /// two gradients of z (an add of one): exact.</summary>
    private CheckResult ColumnCopy(ColumnBlock block)
    {
        var random = new Random(block.Rows);
        var source = Uniform(random, block.Rows * block.SourceWidth, -1, 1);
        var target = Uniform(random, block.Rows * block.TargetWidth, -1, 1);
        var accelerator = kernels.Accelerator;
        using var sourceBuffer = accelerator.Allocate1D(ToFloat(source));
        using var targetBuffer = accelerator.Allocate1D(ToFloat(target));
        kernels.CopyColumns(sourceBuffer.View, targetBuffer.View, block);
        var copied = ViewReference.CopyColumns(source, target, block);
        // And added back in: doubles of copied floats, each sum correctly rounded, so exact again.
        kernels.AddColumns(sourceBuffer.View, targetBuffer.View, block);
        var added = ViewReference.AddColumns(source, copied, block).Select(value => (double)(float)value).ToArray();
        return Compare("column block copy + add", $"{block.Rows}x{block.Columns} of {block.SourceWidth} to {block.TargetWidth}",
            added, targetBuffer.GetAsArray1D(), 0, 1e-30);
    }

    /// <summary>VCCA's split of square images into left and right halves and the join back: exact copies.</summary>
    private CheckResult TwoViews(int rows, int width)
    {
        var shape = new ViewShape(width * width, width, (width + 1) / 2);
        var full = Uniform(new Random(rows), rows * shape.Features, 0, 1);
        var accelerator = kernels.Accelerator;
        using var fullBuffer = accelerator.Allocate1D(ToFloat(full));
        using var left = accelerator.Allocate1D<float>(rows * shape.View1Size);
        using var right = accelerator.Allocate1D<float>(rows * shape.View2Size);
        using var joined = accelerator.Allocate1D<float>(rows * shape.Features);
        kernels.SplitViews(fullBuffer.View, left.View, right.View, rows, shape);
        kernels.JoinViews(left.View, right.View, joined.View, rows, shape);
        var (expectedLeft, expectedRight) = ViewReference.Split(full, rows, shape);
        // Copies: the smallest tolerance the comparison allows.
        return Compare("VCCA views split + join", $"{rows}x{width}x{width}", [.. expectedLeft, .. expectedRight, .. full],
            [.. left.GetAsArray1D(), .. right.GetAsArray1D(), .. joined.GetAsArray1D()], 0, 1e-30);
    }

    private CheckResult Gather(bool binarize)
    {
        const int examples = 300, batch = 128, features = 784, first = 100;
        var random = new Random(binarize ? 1 : 2);
        var data = new byte[examples * features];
        random.NextBytes(data);
        int[] order = Enumerable.Range(0, examples).OrderBy(_ => random.Next()).ToArray();
        var key = new DrawKey(3, Philox.Streams.Binarize, 9);
        var accelerator = kernels.Accelerator;
        using var dataBuffer = accelerator.Allocate1D(data);
        using var orderBuffer = accelerator.Allocate1D(order);
        using var x = accelerator.Allocate1D<float>(batch * features);
        kernels.Gather(dataBuffer.View, orderBuffer.View, x.View, first, batch, features, binarize, key);
        return Compare(binarize ? "minibatch gather, binarized" : "minibatch gather", $"{batch}x{features}",
            MinibatchReference.Gather(data, order, first, batch, features, binarize, key), x.GetAsArray1D(), 1e-7, 0);
    }

    private IEnumerable<CheckResult> Dense(DenseVariant variant, int batch, int inputs, int outputs)
    {
        var random = new Random(batch + 31 * inputs + 7 * outputs);
        double[] x = Uniform(random, batch * inputs, -1, 1);
        double[] weights = Uniform(random, outputs * inputs, -1 / Math.Sqrt(inputs), 1 / Math.Sqrt(inputs));
        double[] bias = Uniform(random, outputs, -0.5, 0.5);
        double[] dY = Uniform(random, batch * outputs, -1, 1);
        var accelerator = kernels.Accelerator;
        using var xBuffer = accelerator.Allocate1D(ToFloat(x));
        using var wBuffer = accelerator.Allocate1D(ToFloat(weights));
        using var bBuffer = accelerator.Allocate1D(ToFloat(bias));
        using var yBuffer = accelerator.Allocate1D<float>(batch * outputs);
        // dPre is only read by the backward pass, so one upload serves every activation.
        using var dYBuffer = accelerator.Allocate1D(ToFloat(dY));
        using var dXBuffer = accelerator.Allocate1D<float>(batch * inputs);
        using var dWBuffer = accelerator.Allocate1D<float>(outputs * inputs);
        using var dBBuffer = accelerator.Allocate1D<float>(outputs);
        string shape = $"{batch}x{inputs}->{outputs}";
        var absW = weights.Select(Math.Abs).ToArray();
        var absDY = dY.Select(Math.Abs).ToArray();
        var forwardScale = DenseReference.AbsoluteScale(x, weights, bias, batch, inputs, outputs);
        foreach (var activation in Enum.GetValues<ActivationKind>())
        {
            kernels.DenseForward(activation, xBuffer.View, wBuffer.View, bBuffer.View, yBuffer.View, batch, inputs, outputs);
            yield return Compare($"dense forward {activation} ({variant})", shape,
                DenseReference.Forward(activation, x, weights, bias, batch, inputs, outputs), yBuffer.GetAsArray1D(), DotRelative, DotAbsolute, forwardScale);

            // Backward from dPre = dY, with this activation as the layer below's: its output act(x) is the input.
            var below = ToFloat(x.Select(u => ActivationReference.Forward(activation, u)).ToArray());
            using var belowBuffer = accelerator.Allocate1D(below);
            kernels.DenseBackward(belowBuffer.View, wBuffer.View, dYBuffer.View, dXBuffer.View, activation, dWBuffer.View, dBBuffer.View, batch, inputs, outputs);
            var (dInput, dWeights, dBias) = DenseReference.BackwardFromPreActivation(activation, x, weights, dY, batch, inputs, outputs);
            // Scales: the same products with absolute values (every act' is at most 1).
            var scale = DenseReference.Backward(ActivationKind.Identity, below.Select(v => (double)Math.Abs(v)).ToArray(), absW, [], absDY, batch, inputs, outputs);
            var worst = new[]
            {
                Compare("", shape, dInput, dXBuffer.GetAsArray1D(), DotRelative, DotAbsolute, scale.dInput),
                Compare("", shape, dWeights, dWBuffer.GetAsArray1D(), DotRelative, DotAbsolute, scale.dWeights),
                Compare("", shape, dBias, dBBuffer.GetAsArray1D(), DotRelative, DotAbsolute, scale.dBias),
            }.MaxBy(result => result.WorstRatio)!;
            yield return worst with { Kernel = $"dense backward, {activation} below ({variant})" };
        }
    }

    private IEnumerable<CheckResult> Reparameterize(int batch, int latent)
    {
        var random = new Random(batch * latent);
        double[] stats = Uniform(random, batch * 2 * latent, -2, 2);
        double[] dZ = Uniform(random, batch * latent, -1, 1);
        var key = new DrawKey(7, Philox.Streams.Reparameterize, 3);
        var epsilon = Enumerable.Range(0, batch * latent).Select(i => Philox.NormalDouble(key.Seed, key.Stream, key.Step, i)).ToArray();
        var accelerator = kernels.Accelerator;
        using var statsBuffer = accelerator.Allocate1D(ToFloat(stats));
        using var zBuffer = accelerator.Allocate1D<float>(batch * latent);
        using var epsilonBuffer = accelerator.Allocate1D<float>(batch * latent);
        using var klBuffer = accelerator.Allocate1D<float>(batch);
        using var dZBuffer = accelerator.Allocate1D(ToFloat(dZ));
        using var dStatsBuffer = accelerator.Allocate1D<float>(batch * 2 * latent);
        kernels.ReparameterizeForward(statsBuffer.View, zBuffer.View, epsilonBuffer.View, klBuffer.View, batch, latent, key);
        kernels.ReparameterizeBackward(statsBuffer.View, epsilonBuffer.View, dZBuffer.View, dStatsBuffer.View, batch, latent, 0.25f);
        var (z, kl) = LossReference.ReparameterizeForward(stats, epsilon, batch, latent);
        string shape = $"{batch}x{latent}";
        yield return Compare("reparameterize ε, z", shape, epsilon.Concat(z).ToArray(), epsilonBuffer.GetAsArray1D().Concat(zBuffer.GetAsArray1D()).ToArray(), ElementRelative, ElementAbsolute);
        yield return Compare("KL", shape, kl, klBuffer.GetAsArray1D(), ElementRelative, ElementAbsolute * latent);
        yield return Compare("reparameterize + KL backward", shape,
            LossReference.ReparameterizeBackward(stats, epsilon, dZ, batch, latent, 0.25), dStatsBuffer.GetAsArray1D(), ElementRelative, ElementAbsolute);

        double[] reconstruction = Uniform(random, batch, 50, 200);
        using var recBuffer = accelerator.Allocate1D(ToFloat(reconstruction));
        using var logWeights = accelerator.Allocate1D<float>(batch);
        kernels.LogWeights(statsBuffer.View, zBuffer.View, epsilonBuffer.View, recBuffer.View, logWeights.View, batch, latent);
        var zFloat = ToDouble(zBuffer.GetAsArray1D());
        var epsilonFloat = ToDouble(epsilonBuffer.GetAsArray1D());
        // Scale: the magnitudes of the summed terms (rec, ½ε², ½|v|, ½z²) bound the float rounding of log w.
        var scale = Enumerable.Range(0, batch).Select(b => reconstruction[b] + Enumerable.Range(0, latent).Sum(k =>
            0.5 * (epsilonFloat[b * latent + k] * epsilonFloat[b * latent + k] + Math.Abs(stats[b * 2 * latent + latent + k]) + zFloat[b * latent + k] * zFloat[b * latent + k]))).ToArray();
        yield return Compare("importance log weights", shape,
            LossReference.LogWeights(stats, zFloat, epsilonFloat, reconstruction, batch, latent), logWeights.GetAsArray1D(), 1e-5, 1e-6, scale);
    }

    private CheckResult Reconstruction(LikelihoodKind likelihood, int batch, int features)
    {
        var random = new Random(batch + features);
        double[] target = Uniform(random, batch * features, 0, 1);
        double[] output = likelihood == LikelihoodKind.Bernoulli ? Uniform(random, batch * features, -40, 40) : Uniform(random, batch * features, 0, 1);
        var accelerator = kernels.Accelerator;
        using var targetBuffer = accelerator.Allocate1D(ToFloat(target));
        using var outputBuffer = accelerator.Allocate1D(ToFloat(output));
        using var gradientBuffer = accelerator.Allocate1D<float>(batch * features);
        using var rowBuffer = accelerator.Allocate1D<float>(batch);
        kernels.ReconstructionLossGradient(likelihood, targetBuffer.View, outputBuffer.View, gradientBuffer.View, rowBuffer.View, batch, features,
            ReconstructionParameters.For(likelihood, features, 0.3, 0.5));
        var (rows, gradient) = LossReference.Reconstruction(likelihood, ToDouble(ToFloat(target)), ToDouble(ToFloat(output)), batch, features, 0.3, 0.5);
        var rowScale = Enumerable.Range(0, batch).Select(b => Enumerable.Range(0, features)
            .Sum(j => Math.Abs(LossReference.NegativeLogLikelihood(likelihood, (float)target[b * features + j], (float)output[b * features + j], 0.3)))).ToArray();
        var value = Compare("", "", rows, rowBuffer.GetAsArray1D(), ElementRelative, ElementAbsolute, rowScale);
        var slope = Compare("", "", gradient, gradientBuffer.GetAsArray1D(), ElementRelative, ElementAbsolute);
        return (value.WorstRatio >= slope.WorstRatio ? value : slope) with { Kernel = $"{likelihood} reconstruction + gradient", Shape = $"{batch}x{features}" };
    }

    /// <summary>The clipping norm and scale; float sums over 256 chunks are good to (n/256 + 256)·6e-8.</summary>
    private CheckResult GradientNorm(int count)
    {
        var random = new Random(count);
        var gradient = ToDouble(ToFloat(Uniform(random, count, -0.1, 0.1)));
        var (_, norm) = ClippingReference.Clip(gradient, 1.0);
        var expected = new[] { Math.Min(1, 1.0 / (norm + 1e-6)), norm };
        var accelerator = kernels.Accelerator;
        using var g = accelerator.Allocate1D(ToFloat(gradient));
        using var partials = accelerator.Allocate1D<float>(GradientClipping.Slots);
        using var scale = accelerator.Allocate1D<float>(2);
        kernels.ClipGradients(g.View, partials.View, scale.View, 1f);
        double relative = 2 * (count / 256.0 + 256) * 6e-8;
        return Compare("gradient-norm clipping", count.ToString(System.Globalization.CultureInfo.InvariantCulture), expected, scale.GetAsArray1D(), relative, 1e-7);
    }

    /// <summary>−L_k and the normalised weights from log-weights around −100 nats spread over 20.</summary>
    private IEnumerable<CheckResult> ImportanceBound(int examples, int samples)
    {
        var random = new Random(examples * samples);
        var logWeights = ToDouble(ToFloat(Uniform(random, examples * samples, -120, -100)));
        var (negativeBound, weights) = ImportanceReference.Bound(logWeights, examples, samples);
        var accelerator = kernels.Accelerator;
        using var logWeightBuffer = accelerator.Allocate1D(ToFloat(logWeights));
        using var weightBuffer = accelerator.Allocate1D<float>(examples * samples);
        using var boundBuffer = accelerator.Allocate1D<float>(examples);
        kernels.ImportanceBound(logWeightBuffer.View, weightBuffer.View, boundBuffer.View, examples, samples);
        string shape = $"{examples}x{samples}";
        // As in the tests: a few ulps of ~100 nats plus k·6e-8 from the sum; weights carry the exponent's error.
        yield return Compare("IWAE bound −L_k", shape, negativeBound, boundBuffer.GetAsArray1D(), 1e-6, 1e-7 * samples + 1e-5);
        yield return Compare("IWAE normalised weights", shape, weights, weightBuffer.GetAsArray1D(), 2e-4, 1e-7);
    }

    /// <summary>The InfoVAE's MMD² (summed row shares) and its gradient, on the device's own prior draws.</summary>
    private IEnumerable<CheckResult> MaximumMeanDiscrepancy(MmdKernelKind kind, int rows, int latent)
    {
        var random = new Random(rows + latent);
        var z = ToDouble(ToFloat(Uniform(random, rows * latent, -0.5, 1.5)));
        var accelerator = kernels.Accelerator;
        using var zBuffer = accelerator.Allocate1D(ToFloat(z));
        using var prior = accelerator.Allocate1D<float>(rows * latent);
        using var dZ = accelerator.Allocate1D<float>(rows * latent);
        using var zeros = accelerator.Allocate1D<float>(rows);
        using var shares = accelerator.Allocate1D<float>(rows);
        using var objective = accelerator.Allocate1D<float>(rows);
        dZ.MemSetToZero();
        zeros.MemSetToZero();
        var parameters = new MmdParameters(latent, rows, kind, 1f, 0f);
        kernels.PriorSample(prior.View, new DrawKey(3, Philox.Streams.Reparameterize + Philox.Streams.MmdPriorOffset, 1));
        kernels.MmdForward(zBuffer.View, prior.View, zeros.View, zeros.View, shares.View, objective.View, parameters);
        kernels.MmdBackward(zBuffer.View, prior.View, dZ.View, parameters, 1f);
        var priorDraws = ToDouble(prior.GetAsArray1D());
        string shape = $"{rows}x{latent}";
        // Each share sums 3·rows kernel values of at most 1, scaled by 1/rows²: float rounding is about
        // 6e-8·3/rows per share, far below 1e-7 in all. Gradients are of order 4/rows² (2e-4 here): 1e-5 of that
        // is 2.4e-9, so 1e-9 absolute plus 1e-5 relative.
        yield return Compare($"MMD² ({kind})", shape, [MmdReference.Squared(kind, z, priorDraws, rows, latent)],
            [shares.GetAsArray1D().Sum()], 1e-5, 1e-7);
        yield return Compare($"MMD² gradient ({kind})", shape, MmdReference.Gradient(kind, z, priorDraws, rows, latent),
            dZ.GetAsArray1D(), 1e-5, 1e-9);
    }

    /// <summary>The Deep VIB's softmax cross-entropy and its gradient, labels read through a shuffled order.</summary>
    private IEnumerable<CheckResult> CrossEntropy(int rows, int classes)
    {
        var random = new Random(rows * classes);
        var logits = ToDouble(ToFloat(Uniform(random, rows * classes, -8, 8)));
        var labels = Enumerable.Range(0, rows).Select(_ => (byte)random.Next(classes)).ToArray();
        var order = Enumerable.Range(0, rows).OrderBy(_ => random.Next()).ToArray();
        var accelerator = kernels.Accelerator;
        using var logitBuffer = accelerator.Allocate1D(ToFloat(logits));
        using var labelBuffer = accelerator.Allocate1D(labels);
        using var orderBuffer = accelerator.Allocate1D(order);
        using var dLogits = accelerator.Allocate1D<float>(rows * classes);
        using var loss = accelerator.Allocate1D<float>(rows);
        using var correct = accelerator.Allocate1D<float>(rows);
        kernels.ClassificationLossGradient(logitBuffer.View, labelBuffer.View, orderBuffer.View, dLogits.View, loss.View, correct.View,
            rows, new ClassificationShape(classes, 1, 0), 1f);
        var (expectedLoss, expectedGradient, _) = ClassificationReference.CrossEntropy(logits, order.Select(i => (int)labels[i]).ToArray(), rows, classes);
        string shape = $"{rows}x{classes}";
        yield return Compare("Deep VIB cross-entropy", shape, expectedLoss, loss.GetAsArray1D(), 1e-5, 2e-5);
        yield return Compare("Deep VIB cross-entropy gradient", shape, expectedGradient, dLogits.GetAsArray1D(), 1e-5, 1e-7);
    }

    private CheckResult Adam(int count)
    {
        var random = new Random(count);
        double[] parameters = Uniform(random, count, -1, 1);
        double[] gradient = Uniform(random, count, -0.1, 0.1);
        var accelerator = kernels.Accelerator;
        using var p = accelerator.Allocate1D(ToFloat(parameters));
        using var g = accelerator.Allocate1D(ToFloat(gradient));
        using var m = accelerator.Allocate1D<float>(count);
        using var v = accelerator.Allocate1D<float>(count);
        m.MemSetToZero();
        v.MemSetToZero();
        kernels.AdamStep(p.View, g.View, m.View, v.View, new AdamParameters(1e-3f, 0.9f, 0.999f, 1e-8f, 1));
        var expected = ToDouble(ToFloat(parameters));
        AdamReference.Step(expected, ToDouble(ToFloat(gradient)), new double[count], new double[count], 1e-3, 0.9, 0.999, 1e-8, 1);
        return Compare("Adam step", count.ToString(System.Globalization.CultureInfo.InvariantCulture), expected, p.GetAsArray1D(), 1e-6, 1e-7);
    }

    private static CheckResult Compare(string kernel, string shape, double[] expected, float[] actual, double relative, double absolute, double[]? scale = null)
    {
        double worstRatio = 0, worstError = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Math.Abs(actual[i] - expected[i]);
            if (!double.IsFinite(error))
                return new CheckResult(kernel, shape, double.PositiveInfinity, double.PositiveInfinity);
            double ratio = error / (absolute + relative * (scale?[i] ?? Math.Abs(expected[i])));
            if (ratio > worstRatio)
            {
                worstRatio = ratio;
                worstError = error;
            }
        }
        return new CheckResult(kernel, shape, worstRatio, worstError);
    }

    private static double[] Uniform(Random random, int count, double low, double high) =>
        ToDouble(Enumerable.Range(0, count).Select(_ => (float)(low + (high - low) * random.NextDouble())).ToArray());

    private static float[] ToFloat(double[] values) => values.Select(value => (float)value).ToArray();

    private static double[] ToDouble(float[] values) => values.Select(value => (double)value).ToArray();
}
