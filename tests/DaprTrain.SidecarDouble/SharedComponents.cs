using System.Collections.Concurrent;

namespace DaprTrain.SidecarDouble;

/// <summary>
/// What the sidecars of one test share, as real sidecars share their components: the state store, the pub/sub
/// broker, the actor placement table and the reminders. One instance per test.
/// </summary>
public sealed class SharedComponents : IAsyncDisposable
{
    public SharedComponents(SidecarFaults? faults = null, int seed = 1, IReadOnlyList<ComponentInfo>? components = null, StateStoreProfile stateProfile = StateStoreProfile.Redis)
    {
        Faults = faults ?? new SidecarFaults();
        State = new StateStore(stateProfile);
        Broker = new Broker(this, seed);
        Registered = components ?? DefaultComponents;
    }

    /// <summary>The names of components/redis/*.yaml, which the services use; any name works, these are what metadata reports.</summary>
    public static readonly IReadOnlyList<ComponentInfo> DefaultComponents =
    [
        new("gradients", "pubsub.in-memory-double", "v1", []),
        new("checkpoints", "state.in-memory-double", "v1", ["ETAG", "TRANSACTIONAL", "ACTOR"]),
    ];

    /// <summary>The components GetMetadata lists.</summary>
    public IReadOnlyList<ComponentInfo> Registered { get; }

    public SidecarFaults Faults { get; }

    public StateStore State { get; }

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

public sealed record ComponentInfo(string Name, string Type, string Version, IReadOnlyList<string> Capabilities);

/// <summary>Knobs for faults the sidecars inject into deliveries.</summary>
public sealed class SidecarFaults
{
    /// <summary>Fraction of deliveries made twice.</summary>
    public double DuplicateProbability { get; set; }

    /// <summary>Extra delay before every delivery.</summary>
    public TimeSpan DeliveryDelay { get; set; }
}
