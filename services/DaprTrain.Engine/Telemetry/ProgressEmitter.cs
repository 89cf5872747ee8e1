namespace DaprTrain.Engine.Telemetry;

/// <summary>Where progress events go: a file (embedded mode), the pub/sub topic <c>progress</c> (services), a test's list.</summary>
public interface IProgressSink
{
    /// <summary>Takes one event. Must not block training: a sink that cannot keep up drops and counts.</summary>
    void Write(ProgressEvent progress);
}

/// <summary>
/// Stamps events with the envelope (job, source, a sequence number per source from 0, time) and hands them to a sink.
/// One emitter per process: the embedded job writes for every node (a sequence per node), a service for itself.
/// Thread-safe: the services emit from their loop and from request handlers.
/// </summary>
public sealed class ProgressEmitter(IProgressSink sink, string job, Func<double> clockMs)
{
    private readonly Dictionary<string, long> _sequences = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Unix milliseconds now: the services' clock.</summary>
    public static double WallClockMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public string Job { get; } = job;

    public void Emit(string source, ProgressEvent progress)
    {
        lock (_gate)
        {
            long seq = _sequences.GetValueOrDefault(source);
            _sequences[source] = seq + 1;
            sink.Write(progress with { Job = Job, Source = source, Seq = seq, TimeMs = Math.Max(0, clockMs()) });
        }
    }
}
