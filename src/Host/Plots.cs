using ScottPlot;

namespace IlgpuVae.Host;

/// <summary>The loss curves of a run as a PNG (ScottPlot, rendering through SkiaSharp).</summary>
public static class Plots
{
    public static void WriteLossCurves(string path, IReadOnlyList<EpochMetrics> rows, string title, Model.Models.ObjectiveTerms? terms = null)
    {
        terms ??= Model.Models.ObjectiveTerms.Elbo;
        var plot = new Plot();
        double[] epochs = rows.Select(row => (double)row.Epoch).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        void Line(Func<EpochMetrics, double> value, string label, int colour, bool train)
        {
            var line = plot.Add.Scatter(epochs, rows.Select(value).ToArray());
            line.LegendText = label;
            line.Color = palette.GetColor(colour);
            // Train curves dashed, test curves solid, one colour per term.
            if (train)
                line.LinePattern = LinePattern.Dashed;
        }
        Line(row => row.TrainLoss, $"train loss ({terms.Loss})", 0, true);
        Line(row => row.TestLoss, $"test loss ({terms.Loss})", 0, false);
        Line(row => row.TrainReconstruction, $"train {terms.Distortion}", 1, true);
        Line(row => row.TestReconstruction, $"test {terms.Distortion}", 1, false);
        Line(row => row.TrainKl, $"train {terms.Rate}", 2, true);
        Line(row => row.TestKl, $"test {terms.Rate}", 2, false);
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel("nats per image");
        // Outside the axes, so it never hides a curve.
        plot.ShowLegend(Edge.Right);
        Save(plot, path, 800, 500);
    }

    /// <summary>A regression's predictive mean over a grid with a band of ±2 standard deviations, and the training points.</summary>
    public static void WritePredictive(string path, double[] grid, double[] mean, double[] deviation, double[] trainX, double[] trainY, string title)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var band = plot.Add.FillY(grid, mean.Zip(deviation, (m, d) => m - 2 * d).ToArray(), mean.Zip(deviation, (m, d) => m + 2 * d).ToArray());
        band.FillColor = palette.GetColor(0).WithAlpha(0.25);
        band.LegendText = "±2 sd";
        var line = plot.Add.Scatter(grid, mean);
        line.Color = palette.GetColor(0);
        line.MarkerSize = 0;
        line.LegendText = "predictive mean";
        var points = plot.Add.ScatterPoints(trainX, trainY);
        points.Color = palette.GetColor(1);
        points.MarkerSize = 4;
        points.LegendText = "training points";
        plot.Title(title);
        plot.XLabel("x");
        plot.YLabel("y");
        plot.ShowLegend(Edge.Right);
        Save(plot, path, 800, 500);
    }

    /// <summary>One bar per latent dimension: its mean KL against the prior in nats (CorEx's information per
    /// dimension), anchors in a colour of their own.</summary>
    public static void WriteDimensionKl(string path, IReadOnlyList<double> kl, int anchors, string title)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var bars = plot.Add.Bars(kl.Select((value, d) => new Bar
        {
            Position = d,
            Value = value,
            FillColor = palette.GetColor(d < anchors ? 1 : 0),
        }).ToList());
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.XLabel(anchors > 0 ? $"latent dimension (the first {anchors} are anchors)" : "latent dimension");
        plot.YLabel("KL(q(z_j|x) ‖ r(z_j)), nats");
        Save(plot, path, 800, 450);
    }

    /// <summary>2-D codes (x, y pairs) as points, one colour and legend entry per label.</summary>
    public static void WriteLatentCodes(string path, float[] codes, byte[] labels, string title)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        foreach (var label in labels.Distinct().Order())
        {
            var indices = Enumerable.Range(0, labels.Length).Where(i => labels[i] == label).ToArray();
            var points = plot.Add.ScatterPoints(indices.Select(i => (double)codes[2 * i]).ToArray(), indices.Select(i => (double)codes[2 * i + 1]).ToArray());
            points.Color = palette.GetColor(label).WithAlpha(0.5);
            points.MarkerSize = 3;
            points.LegendText = label.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        plot.Title(title);
        plot.XLabel("z₁ (posterior mean)");
        plot.YLabel("z₂ (posterior mean)");
        plot.ShowLegend(Alignment.UpperRight);
        Save(plot, path, 700, 700);
    }

    /// <summary>The rate–distortion curve: one point per target rate σ, test rate R against test distortion D,
    /// with the line D + R = const through the best point for reference (the ELBO's iso-lines).</summary>
    public static void WriteRateDistortion(string path, IReadOnlyList<(double Target, double Rate, double Distortion)> points, string title)
    {
        var plot = new Plot();
        var ordered = points.OrderBy(point => point.Rate).ToArray();
        var curve = plot.Add.Scatter(ordered.Select(point => point.Rate).ToArray(), ordered.Select(point => point.Distortion).ToArray());
        curve.LegendText = "trained at target rate σ";
        foreach (var point in ordered)
            plot.Add.Text(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"σ={point.Target:G3}"), point.Rate, point.Distortion);
        var best = ordered.MinBy(point => point.Rate + point.Distortion);
        double elbo = best.Rate + best.Distortion;
        var iso = plot.Add.Line(0, elbo, elbo, 0);
        iso.LinePattern = LinePattern.Dashed;
        iso.LegendText = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"R + D = {elbo:F1} (best −ELBO)");
        plot.Axes.SetLimits(0, Math.Max(1, ordered.Max(point => point.Rate)) * 1.15, 0, ordered.Max(point => point.Distortion) * 1.1);
        plot.Title(title);
        plot.XLabel("rate R = KL(q(z|x) ‖ p(z)), nats");
        plot.YLabel("distortion D = −E log p(x|z), nats");
        plot.ShowLegend(Alignment.UpperRight);
        Save(plot, path, 800, 600);
    }

    /// <summary>The mutual-information sweep: the achieved Î(x; z) against the target M (with the line Î = M), and
    /// the test distortion on the right axis.</summary>
    public static void WriteMutualInformation(string path, IReadOnlyList<(double Target, double Achieved, double Distortion)> points, string title)
    {
        var plot = new Plot();
        var ordered = points.OrderBy(point => point.Target).ToArray();
        double[] targets = ordered.Select(point => point.Target).ToArray();
        var achieved = plot.Add.Scatter(targets, ordered.Select(point => point.Achieved).ToArray());
        achieved.LegendText = "achieved Î(x; z)";
        double top = Math.Max(targets.Max(), ordered.Max(point => point.Achieved));
        var diagonal = plot.Add.Line(0, 0, top, top);
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.LegendText = "Î = M";
        var distortion = plot.Add.Scatter(targets, ordered.Select(point => point.Distortion).ToArray());
        distortion.Axes.YAxis = plot.Axes.Right;
        distortion.LegendText = "test distortion (right axis)";
        plot.Axes.Right.Label.Text = "distortion −E log p(x|z), nats";
        plot.Title(title);
        plot.XLabel("target M, nats");
        plot.YLabel("Î(x; z) = H(z) + E log r(z|x), nats");
        plot.ShowLegend(Alignment.UpperLeft);
        Save(plot, path, 800, 600);
    }

    /// <summary>Renders to a temporary file and renames it over the target, so a crash never leaves half a PNG.</summary>
    private static void Save(Plot plot, string path, int width, int height)
    {
        string temporary = path + ".tmp.png";
        plot.SavePng(temporary, width, height);
        File.Move(temporary, path, overwrite: true);
    }
}
