using System.Collections.Concurrent;

namespace DaprTrain.SidecarDouble;

/// <summary>
/// What the sidecars of one test share, as real sidecars share their components: the state store, the pub/sub
/// broker, the actor placement table and the reminders. One instance per test.
/// </summary>
public sealed class SharedComponents : IAsyncDisposable
{
    public SharedComponents(SidecarFaults? faults = null, int seed = 1)
    {
        Faults = faults ?? new SidecarFaults();
        Broker = new Broker(this, seed);
    }

    public SidecarFaults Faults { get; }

    public StateStore State { get; } = new();

    public Broker Broker { get; }

    /// <summary>Actor type to the base URL of the app that hosts it (from that app's GET /dapr/config).</summary>
    public ConcurrentDictionary<string, Uri> Placement { get; } = new(StringComparer.Ordinal);

    public Reminders Reminders { get; } = new();

    /// <summary>App ids whose sidecar is down.</summary>
    public ConcurrentDictionary<string, bool> DownApps { get; } = new(StringComparer.Ordinal);

    /// <summary>Every actor call forwarded and its answer, for diagnostics.</summary>
    public ConcurrentQueue<string> ActorCalls { get; } = new();

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        Reminders.Dispose();
        Http.Dispose();
    }
}

/// <summary>Knobs for faults the sidecars inject into deliveries.</summary>
public sealed class SidecarFaults
{
    /// <summary>Fraction of deliveries made twice.</summary>
    public double DuplicateProbability { get; set; }

    /// <summary>Extra delay before every delivery.</summary>
    public TimeSpan DeliveryDelay { get; set; }
}
