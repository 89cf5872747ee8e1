namespace DaprTrain.Coordination;

/// <summary>
/// How a job's workers exchange gradients. Parsed once (from a command-line option or a service's options) and
/// passed on as this type; what a topology does in a round is its round plan (DaprTrain.Engine.Topologies).
/// </summary>
public enum Topology
{
    ParameterServer,
    PeerToPeer,
    PeerToPeerScatter,
}

public static class Topologies
{
    /// <summary>What the CLI and the services run when no topology is named.</summary>
    public const Topology Default = Topology.PeerToPeer;

    public static IReadOnlyList<Topology> All { get; } = [Topology.ParameterServer, Topology.PeerToPeer, Topology.PeerToPeerScatter];

    public static IReadOnlyList<string> Names { get; } = [.. All.Select(Name)];

    public static string Name(this Topology topology) => topology switch
    {
        Topology.ParameterServer => "ps",
        Topology.PeerToPeer => "p2p",
        Topology.PeerToPeerScatter => "p2p-scatter",
        _ => throw new ArgumentOutOfRangeException(nameof(topology), topology, "not a topology"),
    };

    /// <summary>A parameter server aggregates and owns the weights; otherwise every worker keeps a replica.</summary>
    public static bool HasParameterServer(this Topology topology) => topology == Topology.ParameterServer;

    /// <summary>Who writes the job's checkpoints: a worker holding a replica, or the server.</summary>
    public static bool WorkersWriteCheckpoints(this Topology topology) => !topology.HasParameterServer();

    /// <summary>Scatter-reduce needs at least two owners of slices.</summary>
    public static int MinWorkers(this Topology topology) => topology == Topology.PeerToPeerScatter ? 2 : 1;

    public static Topology Parse(string name) => TryParse(name, out var topology)
        ? topology
        : throw new ArgumentException($"unknown topology '{name}' (known: {string.Join(", ", Names)})");

    public static bool TryParse(string? name, out Topology topology)
    {
        foreach (var candidate in All)
        {
            if (string.Equals(candidate.Name(), name?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                topology = candidate;
                return true;
            }
        }
        topology = Default;
        return false;
    }
}
