using System.ComponentModel.DataAnnotations;

namespace DaprTrain.Coordinator;

/// <summary>Bound from the "Coordinator" section (appsettings, environment COORDINATOR__SHARDS and so on) and validated at start.</summary>
public sealed class CoordinatorOptions : IValidatableObject
{
    public const string Section = "Coordinator";

    /// <summary>The job's topology, as every service reads it; when set, it decides <see cref="WorkersWriteCheckpoints"/>.</summary>
    public const string TopologyKey = "Job:Topology";

    /// <summary>Data shards of the job: one per worker when all are present.</summary>
    [Range(1, 64)]
    public int Shards { get; set; } = 4;

    /// <summary>Milliseconds without a heartbeat after which a worker leaves the membership.</summary>
    [Range(100, 3_600_000)]
    public int LeaseMs { get; set; } = 10_000;

    /// <summary>True for the peer-to-peer topologies (a worker writes checkpoints); false when a parameter server does.</summary>
    public bool WorkersWriteCheckpoints { get; set; } = true;

    /// <summary>Why <see cref="TopologyKey"/> could not be read, if it could not.</summary>
    internal string? TopologyError { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (TopologyError is not null) yield return new ValidationResult(TopologyError, [TopologyKey]);
    }
}
