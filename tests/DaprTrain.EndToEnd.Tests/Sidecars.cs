using DaprTrain.SidecarDouble;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>Where a cluster's sidecars come from: the in-process double, or real daprd processes.</summary>
public interface ISidecarProvider : IAsyncDisposable
{
    /// <summary>Starts the sidecar of <paramref name="appId"/>, before its app (as `dapr run` does).</summary>
    Task<ISidecar> StartAsync(string appId, Uri appUrl);

    /// <summary>Writes what the sidecars recorded (their logs, the actor calls they forwarded) into <paramref name="folder"/>.</summary>
    void SaveLogs(string folder);
}

public interface ISidecar : IAsyncDisposable
{
    /// <summary>DAPR_HTTP_PORT and DAPR_GRPC_PORT for the app.</summary>
    IReadOnlyDictionary<string, string> AppEnvironment { get; }

    /// <summary>Returns once the sidecar has found its app and reports healthy (subscriptions and actor types read).</summary>
    Task AttachAppAsync(TimeSpan timeout);

    /// <summary>The sidecar is unavailable to its app for <paramref name="duration"/>, then back.</summary>
    Task GoDownAsync(TimeSpan duration);
}

/// <summary>
/// Sidecar doubles sharing one set of in-memory components (tests/DaprTrain.SidecarDouble). They deliver as the
/// strictest realistic profile does, Redis on Dapr 1.17+ without a Resiliency policy (a failed delivery is lost) with
/// 10 deliveries in flight per subscription, unless DAPRTRAIN_DOUBLE_DELIVERY names another
/// (<see cref="DeliveryProfile.Named"/>).
/// </summary>
public sealed class DoubleSidecars(SidecarFaults? faults = null) : ISidecarProvider
{
    private readonly List<Sidecar> _started = [];

    public SharedComponents Components { get; } = new(faults, delivery: Environment.GetEnvironmentVariable("DAPRTRAIN_DOUBLE_DELIVERY") is { Length: > 0 } name
        ? DeliveryProfile.Named(name)
        : DeliveryProfile.Redis117());

    public async Task<ISidecar> StartAsync(string appId, Uri appUrl)
    {
        var sidecar = await Sidecar.StartAsync(appId, appUrl, Components);
        _started.Add(sidecar);
        return new Started(sidecar);
    }

    public void SaveLogs(string folder)
    {
        File.WriteAllLines(Path.Combine(folder, "actor-calls.log"), Components.ActorCalls);
        // What never reached an app: under a profile without redelivery these are the messages the services had to do without.
        File.WriteAllLines(Path.Combine(folder, "undelivered.log"), [
            $"profile {Components.Delivery.Name}: {Components.Broker.Delivered} delivered, {Components.Broker.Attempts} attempts",
            .. Components.Broker.Undelivered.Select(u => $"undelivered {u.AppId} {u.Topic}: {u.Reason}"),
            .. Components.Broker.DeadLetters.Select(d => $"dead letter {d.AppId} {d.Topic} -> {d.DeadLetterTopic}: {d.Reason}")]);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var sidecar in _started) await sidecar.DisposeAsync();
        await Components.DisposeAsync();
    }

    private sealed class Started(Sidecar sidecar) : ISidecar
    {
        public IReadOnlyDictionary<string, string> AppEnvironment => sidecar.AppEnvironment;

        public Task AttachAppAsync(TimeSpan timeout) => sidecar.AttachAppAsync(timeout);

        public Task GoDownAsync(TimeSpan duration) => sidecar.GoDownAsync(duration);

        // The provider stops every sidecar it started.
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
