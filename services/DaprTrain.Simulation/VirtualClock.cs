namespace DaprTrain.Simulation;

/// <summary>
/// The embedded engine's time: milliseconds since the job started, advanced by measured compute, injected
/// delays and the network model. Leases and deadlines read it through <see cref="TimeProvider"/>, as the
/// Dapr services read the wall clock through the same abstraction.
/// </summary>
public sealed class VirtualClock : TimeProvider
{
    private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public double NowMs { get; private set; }

    public void AdvanceTo(double ms)
    {
        if (ms < NowMs) throw new InvalidOperationException($"virtual time cannot go back from {NowMs} to {ms} ms");
        NowMs = ms;
    }

    /// <summary>Sets the time for a single step that happens at <paramref name="ms"/> (may be earlier than a step already taken by another node).</summary>
    public void SetForStep(double ms) => NowMs = ms;

    public override DateTimeOffset GetUtcNow() => Epoch.AddTicks((long)(NowMs * TimeSpan.TicksPerMillisecond));
}
