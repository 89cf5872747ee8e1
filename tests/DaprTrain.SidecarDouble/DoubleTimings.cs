using System.Collections.Concurrent;
using System.Diagnostics;

namespace DaprTrain.SidecarDouble;

/// <summary>
/// Where the double's own time goes (issue 16), so that a reader of a round's breakdown can tell the sidecar's part from
/// the services': per step, how many times and how many milliseconds. The steps:
/// <list type="bullet">
/// <item>"publish receive": a PublishEvent call's work after gRPC has parsed it (the CloudEvent written in UTF-8: JSON with data_base64);</item>
/// <item>"publish fan-out": putting the CloudEvent in the queue of every subscription of the topic (one consumer group per app);</item>
/// <item>"delivery queued": a CloudEvent waiting in a subscription's queue until a delivery worker takes it (fault delays included);</item>
/// <item>"delivery post": one HTTP POST of a CloudEvent to the subscriber and its answer read: the app's own handling is inside it
/// (the services report theirs as "receive" off the round's path in their /status);</item>
/// <item>"actor turn wait": an actor call waiting for the actor's lock (turn-based: one call at a time per actor, whoever calls);</item>
/// <item>"actor call": an actor call forwarded to the app hosting the actor and its answer copied back (the actor's own work inside it);</item>
/// <item>"state": a gRPC state call (get, save, delete, transaction) on the in-memory store.</item>
/// </list>
/// </summary>
public sealed class DoubleTimings
{
    private readonly ConcurrentDictionary<string, Figure> _figures = new(StringComparer.Ordinal);

    public void Record(string step, double ms)
    {
        var figure = _figures.GetOrAdd(step, _ => new Figure());
        lock (figure)
        {
            figure.Count++;
            figure.Ms += ms;
        }
    }

    /// <summary>Records the time since <paramref name="started"/> (a <see cref="Stopwatch.GetTimestamp"/>).</summary>
    public void Since(string step, long started) => Record(step, Stopwatch.GetElapsedTime(started).TotalMilliseconds);

    /// <summary>Every step so far: count and total milliseconds, by name.</summary>
    public IReadOnlyList<(string Step, long Count, double Ms)> Snapshot() =>
        [.. _figures.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => { lock (f.Value) return (f.Key, f.Value.Count, f.Value.Ms); })];

    private sealed class Figure
    {
        public long Count;
        public double Ms;
    }
}
