using System.Collections.Concurrent;

namespace DaprTrain.SidecarDouble;

/// <summary>
/// What the sidecars of one test share, as real sidecars share their components: the state store, the pub/sub
/// broker, the actor placement table, the actors' turns and the reminders. One instance per test.
/// </summary>
public sealed class SharedComponents : IAsyncDisposable
{
    /// <param name="delivery">How the broker delivers; by default the strictest realistic one, Redis on Dapr 1.17+ without a Resiliency policy (a failed delivery is lost) and concurrency 10.</param>
    public SharedComponents(SidecarFaults? faults = null, int seed = 1, IReadOnlyList<ComponentInfo>? components = null, StateStoreProfile stateProfile = StateStoreProfile.Redis,
        DeliveryProfile? delivery = null)
    {
        Faults = faults ?? new SidecarFaults();
        Delivery = delivery ?? DeliveryProfile.Redis117();
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

    public DeliveryProfile Delivery { get; }

    public StateStore State { get; }

    public Broker Broker { get; }

    /// <summary>Actor type to the base URL of the app that hosts it (from that app's GET /dapr/config).</summary>
    public ConcurrentDictionary<string, Uri> Placement { get; } = new(StringComparer.Ordinal);

    public Reminders Reminders { get; } = new();

    /// <summary>
    /// The turn lock of each actor (type and id). daprd holds it on the actor's host, so every caller's sidecar, and the
    /// host's own reminders and timers, wait for the same one: one call at a time per actor, whoever calls.
    /// </summary>
    public ActorTurns ActorTurns { get; } = new();

    /// <summary>The instances of each app id that service invocation reaches, and what it did.</summary>
    public ServiceInvocation Invocation { get; } = new();

    /// <summary>App ids whose sidecar is down.</summary>
    public ConcurrentDictionary<string, bool> DownApps { get; } = new(StringComparer.Ordinal);

    /// <summary>Every actor call forwarded and its answer, for diagnostics.</summary>
    public ConcurrentQueue<string> ActorCalls { get; } = new();

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>Where the double's own time goes: publishes received and fanned out, deliveries queued and posted, actor calls, state calls.</summary>
    public DoubleTimings Timings { get; } = new();

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

/// <summary>One lock per actor (type and id), as daprd's turn-based actor runtime holds it on the actor's host.</summary>
public sealed class ActorTurns
{
    private readonly ConcurrentDictionary<(string Type, string Id), SemaphoreSlim> _turns = new();

    /// <summary>Raised with the actor's type and id when a call, reminder or timer has to wait for the actor's turn (for tests that wait on it).</summary>
    public event Action<string, string>? Waiting;

    /// <summary>Waits for the actor's turn; dispose the result to give it back.</summary>
    public async Task<IDisposable> TakeAsync(string type, string id, CancellationToken cancellationToken)
    {
        var turn = _turns.GetOrAdd((type, id), _ => new SemaphoreSlim(1, 1));
        if (!turn.Wait(0, CancellationToken.None))
        {
            Waiting?.Invoke(type, id);
            await turn.WaitAsync(cancellationToken);
        }
        return new Turn(turn);
    }

    private sealed class Turn(SemaphoreSlim turn) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) turn.Release();
        }
    }
}

/// <summary>
/// Name resolution for service invocation: the instances of each app id (any number run under one id, each with its
/// sidecar), chosen in turn; and a count of the calls each instance was sent, by status.
/// </summary>
public sealed class ServiceInvocation
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<Uri>> _instances = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _next = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string AppId, Uri Instance, int Status), int> _calls = new();

    public void Register(string appId, Uri app)
    {
        lock (_gate)
        {
            var list = _instances.TryGetValue(appId, out var known) ? known : _instances[appId] = [];
            if (!list.Contains(app)) list.Add(app);
        }
    }

    public void Unregister(string appId, Uri app)
    {
        lock (_gate)
        {
            if (_instances.TryGetValue(appId, out var list)) list.Remove(app);
        }
    }

    /// <summary>The instance the next call to <paramref name="appId"/> goes to, or null when none runs.</summary>
    public Uri? Next(string appId)
    {
        lock (_gate)
        {
            if (!_instances.TryGetValue(appId, out var list) || list.Count == 0) return null;
            int next = _next.GetValueOrDefault(appId);
            _next[appId] = next + 1;
            return list[next % list.Count];
        }
    }

    public void Record(string appId, Uri instance, int status) => _calls.AddOrUpdate((appId, instance, status), 1, (_, n) => n + 1);

    /// <summary>Calls sent to each instance of <paramref name="appId"/>, by the status it (or, for 500, the sidecar) answered.</summary>
    public IReadOnlyDictionary<(Uri Instance, int Status), int> Calls(string appId) =>
        _calls.Where(c => c.Key.AppId == appId).ToDictionary(c => (c.Key.Instance, c.Key.Status), c => c.Value);
}
