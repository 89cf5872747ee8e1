namespace DaprTrain.Contracts;

/// <summary>Component names, exactly as metadata.name in components/redis/*.yaml and components/kafka/*.yaml.</summary>
public static class DaprComponents
{
    public const string PubSub = "gradients";

    public const string StateStore = "checkpoints";
}

/// <summary>Pub/sub topics.</summary>
public static class DaprTopics
{
    /// <summary>Workers' gradients (to the parameter server, or to every peer in p2p).</summary>
    public const string Gradients = "gradients";

    /// <summary>
    /// p2p: the gradients of one worker. Each worker publishes to its own and subscribes to its peers', so that the broker
    /// delivers no worker its own gradient back (one of every N deliveries a round, and the bytes of each: issue 16).
    /// </summary>
    public static string GradientsFrom(string worker) => $"{Gradients}.{worker}";

    /// <summary>
    /// Between peers: "round r is decided", published by the worker whose report closed it, so that the members waiting
    /// for the decision ask the coordinator at once instead of at their next poll (issue 16). Only a hint: the coordinator
    /// actor's answer stays the decision; a false hint costs the receiver one call.
    /// </summary>
    public const string Decisions = "decisions";

    /// <summary>The parameter server's weights after each round.</summary>
    public const string Weights = "weights";

    /// <summary>p2p-scatter: the slices of peers' gradients that <paramref name="owner"/> reduces (one topic per worker).</summary>
    public static string Slices(string owner) => $"slices.{owner}";

    /// <summary>p2p-scatter: the reduced slices every owner sends to <paramref name="peer"/> (one topic per worker).</summary>
    public static string Reduced(string peer) => $"reduced.{peer}";

    /// <summary>
    /// Where daprd sends what a subscriber answered DROP (and, with a Resiliency policy, what still failed after it): every
    /// subscription of the workers and the server declares it, and the coordinator counts and shows what lands there.
    /// </summary>
    public const string DeadLetters = "dead-letters";

    /// <summary>Progress events (schemas/progress-event.schema.json, JSON CloudEvents): every service publishes, the dashboard subscribes.</summary>
    public const string Progress = "progress";
}

/// <summary>App ids, as in dapr.yaml and the Helm chart.</summary>
public static class DaprApps
{
    public const string Coordinator = "coordinator";

    public const string ParameterServer = "parameter-server";

    public static string Worker(int number) => $"worker-{number}";

    /// <summary>The gradient-function app: stateless, any number of instances under this one id, invoked by workers in serverless mode.</summary>
    public const string GradientFunction = "gradient-function";

    /// <summary>The dashboard (TypeScript, services/dashboard): subscribes to <see cref="DaprTopics.Progress"/>.</summary>
    public const string Dashboard = "dashboard";

    /// <summary>`daprtrain export --dapr` run under `dapr run`: reads the latest checkpoint, so the state store is scoped to it.</summary>
    public const string Exporter = "exporter";
}

/// <summary>Methods invoked through Dapr service invocation (POST /v1.0/invoke/{app}/method/{method}).</summary>
public static class DaprMethods
{
    /// <summary>On the gradient-function app: a share of a worker's batch in, its gradient out.</summary>
    public const string Gradient = "gradient";
}

public static class DaprActorTypes
{
    public const string JobCoordinator = "JobCoordinatorActor";
}
