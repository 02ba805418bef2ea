using System.Diagnostics;
using System.Globalization;

namespace IlgpuVae.Host;

/// <summary>
/// Progress of long work (an epoch of train, the NLL of eval): on a terminal, one line redrawn in place with a
/// bar, the count, a running figure and the ETA; when the output is redirected, a plain line per quarter. A few
/// lines of our own rather than a package: both modes must print the same facts, and the reports must come only
/// at the intervals the caller chooses, since each one costs a host wait on the device.
/// </summary>
internal sealed class Progress(TextWriter output, int total, string unit, bool? interactive = null)
{
    private readonly bool interactive = interactive ?? (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected);
    private readonly Stopwatch clock = new();
    private string label = "";

    /// <summary>Units of work between reports: about 50 on a terminal, 4 otherwise.</summary>
    public int Interval => Math.Max(1, total / (interactive ? 50 : 4));

    public void Start(string what)
    {
        label = what;
        clock.Restart();
    }

    public void Report(int done, string figure)
    {
        double fraction = done / (double)total;
        var eta = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds * (1 - fraction) / Math.Max(fraction, 1e-9));
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{label} [{new string('#', (int)(fraction * 20)),-20}] {done}/{total} {unit}, {figure}, eta {eta:hh\\:mm\\:ss}");
        if (interactive)
            output.Write("\r" + line);
        else
            output.WriteLine(line);
    }

    public void End()
    {
        if (interactive)
            output.Write("\r" + new string(' ', 110) + "\r");
    }
}
