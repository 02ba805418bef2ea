using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using IlgpuVae.GpuKernels;
using IlgpuVae.Model;
using IlgpuVae.Model.Distributed;
using IlgpuVae.Model.Checkpoints;
using IlgpuVae.Model.Models;

namespace IlgpuVae.Host;

/// <summary>
/// The eval command: on the run's test set, the one-sample ELBO with its rate (KL) and distortion
/// (reconstruction), the k-sample bound L_k and NLL = −L_k (k = 5000 by default, as in Burda et al.), and the
/// active units. Prints them and writes RUN_DIR/eval.json.
/// </summary>
public static class Evaluate
{
    /// <summary>
    /// The eval command. With several <paramref name="ranks"/> (mpirun), the test pass and L_k are shared out over
    /// them (L_k by images, the per-image bounds gathered and added in image order: the same NLL as one process);
    /// the rest is computed by each, and rank 0 writes.
    /// </summary>
    /// <param name="stream">Stream the test images from the host (as train --stream); also chosen by itself when they
    /// do not fit beside the model, within <paramref name="deviceMemoryMiB"/> when that is given (0: all the memory).</param>
    public static EvaluationReport Run(string runDirectory, int k, int examples, AcceleratorChoice choice, TextWriter output,
        bool surgery = false, int surgerySamples = 0, Communicator? ranks = null, bool stream = false, int deviceMemoryMiB = 0)
    {
        ranks ??= SingleProcess.Instance;
        if (surgerySamples < 0)
            throw new ArgumentException($"--surgery-samples must be 0 (one per image) or more (got {surgerySamples})");
        if (k < 1)
            throw new ArgumentException($"--k must be at least 1 (got {k})");
        if (examples < 0)
            throw new ArgumentException($"--examples must be 0 (all) or more (got {examples})");
        // Importance samples are drawn up to 1000 rows at a time (the buffers of one batch).
        // A model whose test pass needs the whole batch (see Vae.DataParallelRefusal) is scored whole by each rank;
        // its L_k is still shared out, being per image.
        var options = TrainOptions.ForResume(runDirectory);
        var modelRanks = ranks.Size > 1 && Vae.DataParallelRefusal(options.Config) is null ? ranks : SingleProcess.Instance;
        using var run = new RunFolder(runDirectory, choice, maxBatch: Math.Max(128, Math.Min(k, 1000)), modelRanks, options);
        var vae = run.Vae;
        var test = DataSets.Load(run.Options.Data, output, ranks).Test;
        RunFolder.RequireInputSize(test, vae);
        if (examples > 0)
            test = test.Take(examples);
        output.WriteLine($"evaluating {runDirectory} (after epoch {run.Epoch}) on {test.Count} test images of {test.Name}, {Compute.Describe(run.Accelerator)}");

        using var data = new DeviceDataset(run.Accelerator, test, TestStreamRows(vae, run.Accelerator, test, stream, deviceMemoryMiB, output));
        var sums = Epoch.Evaluate(vae, data, Math.Min(128, vae.MaxBatch), epoch: 0);
        int activeUnits = Evaluation.ActiveUnits(vae, data, test.Count);
        var spec = vae.Config.Spec;
        string lossName = spec.ObjectiveName(vae.Config);
        var terms = spec.Terms(vae.Config);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{lossName}: loss {sums.MeanLoss:F2}; distortion ({terms.Distortion}) {sums.MeanReconstruction:F2}, rate ({terms.Rate}) {sums.MeanKl:F2}; active units {activeUnits} of {vae.Config.TopLatent}"));
        var layerActivity = Evaluation.LayerActivity(vae, data, test.Count);
        var layerActiveUnits = layerActivity?.Active;
        if (layerActivity is { } activity)
            output.WriteLine("active units per stochastic layer: " + string.Join(", ",
                activity.Active.Select((active, layer) => $"z{layer + 1} {active} of {activity.Units[layer]}")));
        string path = Path.Combine(runDirectory, "eval.json");
        // q(z|x) of every test image, encoded once for whichever of the reports below read it.
        (float[] Mu, float[] LogVariance)? encoded = null;
        (float[] Mu, float[] LogVariance) Encoded() => encoded ??= EncodeAll(vae, data, test.Count);
        SurgeryReport? surgeryReport = null;
        if (surgery)
        {
            if (!spec.Has(ModelCapabilities.Posterior))
                throw new ArgumentException($"--surgery splits the KL of q(z|x); --model {spec.Name} has none");
            surgeryReport = Surgery(vae, Encoded(), test.Count, surgerySamples == 0 ? test.Count : surgerySamples, output);
        }
        var groups = spec.LatentGroups(vae.Config);
        Dictionary<string, double>? layerKl = null;
        // CorEx: the KL of each dimension against the learned marginal r(z), the information it carries.
        double[]? dimensionKl = null;
        if (vae.Config.ModelPrior == PriorKind.Factorized)
        {
            string plotPath = Path.Combine(runDirectory, "information.png");
            dimensionKl = WriteInformation(vae, Encoded(), test.Count, ranks.IsRoot ? plotPath : null);
            // A rank-one q's KL does not split by dimension: each dimension's is its marginal's, and the sum falls
            // short of the KL by q's total correlation.
            output.WriteLine((vae.Config.Covariance == CovarianceKind.RankOne ? "KL of each dimension's marginal of q(z|x) against r(z) (nats): " : "KL per latent dimension against r(z) (nats): ")
                + string.Join(", ", dimensionKl.Select((value, d) => string.Create(CultureInfo.InvariantCulture, $"{(d < vae.Config.CodeAnchors ? "anchor " : "z")}{d} {value:F2}"))));
            output.WriteLine($"written: {plotPath}");
        }
        if (groups.Count > 1)
        {
            var (mu, logVariance) = Encoded();
            var perDimension = dimensionKl ?? Evaluation.KlPerDimension(mu, logVariance, test.Count, vae.Config.TopLatent);
            layerKl = groups.ToDictionary(group => group.Name, group => perDimension.Skip(group.First).Take(group.Width).Sum());
            output.WriteLine("KL per latent layer (nats): " + string.Join(", ",
                layerKl.Select(pair => string.Create(CultureInfo.InvariantCulture, $"{pair.Key} {pair.Value:F2}"))));
        }
        double? information = vae.InformationEstimate();
        if (information is { } estimate)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"mutual information Î(x; z) = H(z) + E log r(z|x) = {estimate:F2} nats on {10 * vae.MaxBatch} pairs drawn from the model (a lower bound on I(x; z); target M = {vae.Config.MutualInformation})"));
        var correlation = Evaluation.RankOneCorrelation(vae, data, test.Count);
        if (correlation is not null)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"rank-one posterior: mean |correlation| between dimensions of {(vae.Config.StochasticLayers == 2 ? "q(z1|x)" : "q(z|x)")} {correlation.MeanAbsolute:F3}, largest {correlation.Largest:F3}"));
        var report = new EvaluationReport
        {
            LayerKl = layerKl,
            DimensionKl = dimensionKl,
            MutualInformation = information,
            PosteriorCorrelation = correlation,
            Examples = test.Count,
            Loss = sums.MeanLoss,
            Distortion = sums.MeanReconstruction,
            Rate = sums.MeanKl,
            ActiveUnits = activeUnits,
            LatentUnits = vae.Config.TopLatent,
            LayerActiveUnits = layerActiveUnits,
            Surgery = surgeryReport,
            TestError = spec.Has(ModelCapabilities.Labels) ? sums.ErrorRate : null,
            Terms = terms == ObjectiveTerms.Elbo ? null : terms,
        };
        if (spec.Has(ModelCapabilities.Labels))
            // A classifier: its report is the test error; it has no likelihood of images to bound.
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test error {100 * sums.ErrorRate:F2}% (one z per image; Alemi et al. report 1.13%)"));
        else if (vae.NoLikelihoodBound is { } reason)
            // No importance weights (the autoencoder has no q(z|x)): the report stops at the reconstruction.
            output.WriteLine($"L_k and NLL: not defined ({reason})");
        else
        {
            var clock = Stopwatch.StartNew();
            // With several ranks, rank 0 shows its own share of the images.
            int shown = BatchSlice.Of(test.Count, 0, ranks.Size).Count;
            var progress = new Progress(output, shown, ranks.Size > 1 ? "images (rank 0's share)" : "images");
            progress.Start($"L_{k}");
            double lowerBound = Evaluation.LowerBound(vae, data, k, test.Count, (done, sum) =>
            {
                if (done % progress.Interval == 0 && done < shown)
                    progress.Report(done, string.Create(CultureInfo.InvariantCulture, $"NLL so far {-sum / done:F2}"));
            }, ranks);
            progress.End();
            report = report with { K = k, LowerBound = lowerBound };
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"L_{k} = {report.LowerBound:F2}, NLL = {report.NegativeLogLikelihood:F2} nats ({clock.Elapsed.TotalSeconds:F1} s)"));
        }
        if (ranks.IsRoot)
        {
            AtomicFile.WriteText(path, JsonSerializer.Serialize(report, Checkpoint.JsonOptions));
            output.WriteLine($"written: {path}");
        }
        return report;
    }

    /// <summary>
    /// Null when the test images are held on the device (they fit beside the model, as train's memory plan counts
    /// it); else the rows of the stream's slots, the model's batch: asked for, or the images do not fit. The
    /// streamed evaluation is the resident one bit for bit (the gather reads the same bytes with the same draws).
    /// </summary>
    private static int? TestStreamRows(Vae vae, ILGPU.Runtime.Accelerator accelerator, Model.Data.ImageDataset test, bool stream, int deviceMemoryMiB,
        TextWriter output)
    {
        if (deviceMemoryMiB < 0)
            throw new SettingException($"--device-memory is MiB of the accelerator's memory to plan for, 0 for all of it (got {deviceMemoryMiB})");
        long available = Math.Min(MemoryPlan.Available(accelerator), deviceMemoryMiB > 0 ? deviceMemoryMiB * (1L << 20) : long.MaxValue);
        void Check(int? rows) => MemoryPlan.Check(vae.Config, vae.MaxBatch, DeviceDataset.DeviceBytes(test.Count, test.Features, rows), available,
            Compute.Describe(accelerator), vae.Adam);
        if (!stream)
            try
            {
                Check(null);
                return null;
            }
            catch (SettingException)
            {
                // Too large to hold: streamed below, if the model and two slots fit.
            }
        Check(vae.MaxBatch);
        output.WriteLine($"data: test images streamed from the host in minibatches of up to {vae.MaxBatch} (" +
                         (stream ? "--stream" : "they do not fit beside the model") + ")");
        return vae.MaxBatch;
    }


    /// <summary>CorEx: each dimension's mean KL against the learned marginal r(z) over the encoded images, drawn to
    /// <paramref name="path"/> (information.png, which eval and train both write) and returned.</summary>
    internal static double[] WriteInformation(Vae vae, (float[] Mu, float[] LogVariance) encoded, int examples, string? path)
    {
        var dimensionKl = Evaluation.KlPerDimension(encoded.Mu, encoded.LogVariance, examples, vae.Config.TopLatent, vae.PriorComponents());
        if (path is not null)
            Plots.WriteDimensionKl(path, dimensionKl, vae.Config.CodeAnchors, $"information per dimension, {examples} test images");
        return dimensionKl;
    }

    /// <summary>q(z|x) of the top latent for the first <paramref name="examples"/> images, in order.</summary>

    internal static (float[] Mu, float[] LogVariance) EncodeAll(Vae vae, DeviceDataset data, int examples)
    {
        int latent = vae.Config.TopLatent;
        var mu = new float[examples * latent];
        var logVariance = new float[examples * latent];
        data.SetOrder(Enumerable.Range(0, data.Count).ToArray());
        for (int first = 0; first < examples; first += vae.MaxBatch)
        {
            int batch = Math.Min(vae.MaxBatch, examples - first);
            var (batchMu, batchLogVariance) = vae.Encode(data, first, batch);
            batchMu.CopyTo(mu, first * latent);
            batchLogVariance.CopyTo(logVariance, first * latent);
        }
        return (mu, logVariance);
    }

    /// <summary>Splits the average KL of the encoded test images (of the top stochastic layer).</summary>
    private static SurgeryReport Surgery(Vae vae, (float[] Mu, float[] LogVariance) encoded, int examples, int samples, TextWriter output)
    {
        int latent = vae.Config.TopLatent;
        var (mu, logVariance) = encoded;
        var clock = Stopwatch.StartNew();
        var report = ElboSurgery.Estimate(mu, logVariance, examples, latent, samples, vae.Seed, vae.PriorComponents());
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ELBO surgery ({(vae.Config.StochasticLayers == 2 ? "z2, " : "")}{examples} images, {samples} samples of q(z)): average KL {report.AverageKl:F2}{(report.SampledAverageKl ? " (sampled: the learned mixture has no closed form)" : "")} = " +
            $"index-code mutual information {report.MutualInformation:F2} (at most log N = {report.LogN:F2}) + marginal KL(q(z) ‖ p(z)) {report.MarginalKl:F2} ({clock.Elapsed.TotalSeconds:F1} s)"));
        return report;
    }
}
