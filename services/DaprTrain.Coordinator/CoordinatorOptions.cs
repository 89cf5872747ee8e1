using System.ComponentModel.DataAnnotations;

namespace DaprTrain.Coordinator;

/// <summary>Bound from the "Coordinator" section (appsettings, environment COORDINATOR__SHARDS and so on) and validated at start.</summary>
public sealed class CoordinatorOptions
{
    public const string Section = "Coordinator";

    /// <summary>Data shards of the job: one per worker when all are present.</summary>
    [Range(1, 64)]
    public int Shards { get; set; } = 4;

    /// <summary>Milliseconds without a heartbeat after which a worker leaves the membership.</summary>
    [Range(100, 3_600_000)]
    public int LeaseMs { get; set; } = 10_000;

    /// <summary>True for the peer-to-peer topologies (a worker writes checkpoints); false when a parameter server does.</summary>
    public bool WorkersWriteCheckpoints { get; set; } = true;
}
