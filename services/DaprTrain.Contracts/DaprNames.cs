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

    /// <summary>The parameter server's weights after each round.</summary>
    public const string Weights = "weights";

    /// <summary>p2p-scatter: the slices of peers' gradients that <paramref name="owner"/> reduces (one topic per worker).</summary>
    public static string Slices(string owner) => $"slices.{owner}";

    /// <summary>p2p-scatter: the reduced slices every owner sends to <paramref name="peer"/> (one topic per worker).</summary>
    public static string Reduced(string peer) => $"reduced.{peer}";
}

/// <summary>App ids, as in dapr.yaml and the Helm chart.</summary>
public static class DaprApps
{
    public const string Coordinator = "coordinator";

    public const string ParameterServer = "parameter-server";

    public static string Worker(int number) => $"worker-{number}";
}

public static class DaprActorTypes
{
    public const string JobCoordinator = "JobCoordinatorActor";
}
