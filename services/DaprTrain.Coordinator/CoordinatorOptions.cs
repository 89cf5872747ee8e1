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

    /// <summary>
    /// The job's secret (Job:Secret, JOB__SECRET: the chart's generated Kubernetes Secret, or the run file's): a join must
    /// prove it. Required; <see cref="AllowOpenJoins"/> is for tests that drive the actor without one.
    /// </summary>
    public string? Secret { get; set; }

    /// <summary>The job's workers (Job:Workers): only worker-1 .. worker-N may join.</summary>
    [Range(1, 64)]
    public int Workers { get; set; } = 3;

    /// <summary>Tests only: joins without ids checked or a secret proven, as before admission existed.</summary>
    public bool AllowOpenJoins { get; set; }

    /// <summary>Who may join, or null when joins are open (<see cref="AllowOpenJoins"/>).</summary>
    public DaprTrain.Coordination.Security.JobAdmission? Admission() =>
        AllowOpenJoins ? null : DaprTrain.Coordination.Security.JobAdmission.ForWorkers(Secret ?? throw new InvalidOperationException("Job:Secret is not set"), Workers);

    /// <summary>Why <see cref="TopologyKey"/> could not be read, if it could not.</summary>
    internal string? TopologyError { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (TopologyError is not null) yield return new ValidationResult(TopologyError, [TopologyKey]);
        if (!AllowOpenJoins && (Secret is null || Secret.Length < DaprTrain.Coordination.Security.JobAdmission.MinSecretLength))
        {
            yield return new ValidationResult($"Job:Secret (JOB__SECRET) must be set to at least {DaprTrain.Coordination.Security.JobAdmission.MinSecretLength} characters: "
                + "joins prove it (the chart generates one in a Kubernetes Secret; dapr.yaml sets one for local runs).", [nameof(Secret)]);
        }
    }
}
