namespace DaprTrain.Cli;

/// <summary>
/// A live status line: rewritten in place on a terminal, throttled to one plain line every few seconds
/// when the output is a file or a pipe (CI logs stay readable).
/// </summary>
internal sealed class ProgressLine(TextWriter output)
{
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(5);
    private readonly bool _interactive = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
    private readonly System.Diagnostics.Stopwatch _sinceLast = System.Diagnostics.Stopwatch.StartNew();
    private int _lastLength;

    public void Update(string text)
    {
        if (_interactive)
        {
            output.Write('\r' + text.PadRight(_lastLength));
            _lastLength = text.Length;
        }
        else if (_sinceLast.Elapsed >= PlainInterval)
        {
            output.WriteLine(text);
            _sinceLast.Restart();
        }
    }

    /// <summary>Erases the live line (on a terminal) so that another line can be written.</summary>
    public void Clear()
    {
        if (_interactive && _lastLength > 0) output.Write('\r' + new string(' ', _lastLength) + '\r');
        _lastLength = 0;
    }

    /// <summary>Ends the live line with a permanent one.</summary>
    public void Complete(string text)
    {
        if (_interactive && _lastLength > 0) output.Write('\r' + new string(' ', _lastLength) + '\r');
        _lastLength = 0;
        output.WriteLine(text);
        _sinceLast.Restart();
    }

    public static string Bar(double fraction, int width = 20)
    {
        int filled = (int)Math.Round(Math.Clamp(fraction, 0, 1) * width);
        return "[" + new string('#', filled) + new string('-', width - filled) + "]";
    }
}
