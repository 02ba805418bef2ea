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
    private int doneAtStart;

    /// <summary>Units of work between reports: about 50 on a terminal, 4 otherwise.</summary>
    public int Interval => Math.Max(1, total / (interactive ? 50 : 4));

    /// <summary>Starts the clock; <paramref name="doneAlready"/> units (a resumed run's steps) are not counted in the
    /// rate the ETA is worked out from.</summary>
    public void Start(string what, int doneAlready = 0)
    {
        label = what;
        doneAtStart = doneAlready;
        clock.Restart();
    }

    public void Report(int done, string figure)
    {
        double fraction = done / (double)total;
        var eta = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds * (total - done) / Math.Max(done - doneAtStart, 1e-9));
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
