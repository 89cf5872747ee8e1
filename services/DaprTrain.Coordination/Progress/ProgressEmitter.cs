namespace DaprTrain.Coordination.Progress;

/// <summary>Where progress events go: a file (embedded mode), the pub/sub topic <c>progress</c> (services), a test's list.</summary>
public interface IProgressSink
{
    /// <summary>Takes one event. Must not block training: a sink that cannot keep up drops and counts.</summary>
    void Write(ProgressEvent progress);
}

/// <summary>
/// Stamps events with the envelope (job, source, a sequence number per source, time) and hands them to a sink.
/// One emitter per process: the embedded job writes for every node (a sequence per node), a service for itself.
/// Thread-safe: the services emit from their loop and from request handlers.
/// </summary>
/// <param name="firstSequence">Where each source's sequence starts: the services and the embedded job take the process's
/// start in microseconds since the Unix epoch (<see cref="ProcessStartSequence"/>), so that a restarted process (or a
/// second run written into the same events file) goes on above the numbers before it, and a receiver that drops repeats
/// by (source, seq) does not drop its events.</param>
public sealed class ProgressEmitter(IProgressSink sink, string job, Func<double> clockMs, long firstSequence = 0)
{
    private readonly Dictionary<string, long> _sequences = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Unix milliseconds now: the services' clock.</summary>
    public static double WallClockMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public string Job { get; } = job;

    /// <summary>A service process's first sequence number: microseconds since the Unix epoch now (about 1.8e15, under JSON's 2^53).</summary>
    public static long ProcessStartSequence() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;

    /// <param name="job">The job the event is about, when it is not this emitter's (the coordinator's actors, one per job id).</param>
    public void Emit(string source, ProgressEvent progress, string? job = null)
    {
        lock (_gate)
        {
            long seq = _sequences.GetValueOrDefault(source, firstSequence);
            _sequences[source] = seq + 1;
            sink.Write(progress with { Job = job ?? Job, Source = source, Seq = seq, TimeMs = Math.Max(0, clockMs()) });
        }
    }
}
