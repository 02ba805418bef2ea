using ScottPlot;

namespace IlgpuVae.Host;

/// <summary>The loss curves of a run as a PNG (ScottPlot, rendering through SkiaSharp).</summary>
public static class Plots
{
    public static void WriteLossCurves(string path, IReadOnlyList<EpochMetrics> rows, string title)
    {
        var plot = new Plot();
        double[] epochs = rows.Select(row => (double)row.Epoch).ToArray();
        void Line(Func<EpochMetrics, double> value, string label)
        {
            var line = plot.Add.Scatter(epochs, rows.Select(value).ToArray());
            line.LegendText = label;
        }
        Line(row => row.TrainLoss, "train loss");
        Line(row => row.TestLoss, "test loss");
        Line(row => row.TestReconstruction, "test reconstruction");
        Line(row => row.TestKl, "test KL");
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel("nats per image");
        plot.ShowLegend(Alignment.UpperRight);
        string temporary = path + ".tmp.png";
        plot.SavePng(temporary, 800, 500);
        File.Move(temporary, path, overwrite: true);
    }
}
