using System.ComponentModel.DataAnnotations;

namespace DaprTrain.Dapr;

/// <summary>The job as this worker sees it. Bound from the "Job" section (or JOB__* environment variables) and validated at start.</summary>
public sealed class TrainingJobOptions : IValidatableObject
{
    public const string Section = "Job";

    [Required, RegularExpression("^[A-Za-z0-9._-]{1,128}$")]
    public string JobId { get; set; } = "daprtrain";

    /// <summary>This worker's id, worker-1 .. worker-N (its data shard is N-1 while all workers are present).</summary>
    [Required, RegularExpression("^worker-[1-9][0-9]*$")]
    public string WorkerId { get; set; } = "worker-1";

    [Required, RegularExpression("^(ps|p2p)$", ErrorMessage = "Topology must be ps or p2p (p2p-scatter runs in the embedded mode only).")]
    public string Topology { get; set; } = "p2p";

    [Range(1, 64)]
    public int Workers { get; set; } = 3;

    [Required, RegularExpression("^(mlp|cnn)$")]
    public string Model { get; set; } = "mlp";

    [Required, RegularExpression("^(adam|sgd)$")]
    public string Optimizer { get; set; } = "adam";

    [Range(1e-6, 10)]
    public double LearningRate { get; set; } = 2e-3;

    [Range(1, 65536)]
    public int BatchSize { get; set; } = 64;

    public ulong Seed { get; set; } = 1;

    [Range(1, 10_000_000)]
    public long Rounds { get; set; } = 100;

    [Range(1, 600_000)]
    public int RoundDeadlineMs { get; set; } = 2000;

    [Range(1, 100_000)]
    public int CheckpointEvery { get; set; } = 10;

    /// <summary>Milliseconds between heartbeats to the coordinator; keep it well under the coordinator's lease.</summary>
    [Range(50, 600_000)]
    public int HeartbeatMs { get; set; } = 1000;

    /// <summary>A folder with MNIST IDX files; empty means synthetic data.</summary>
    public string? DataDir { get; set; }

    [Range(1, 1_000_000)]
    public int Holdout { get; set; } = 2000;

    [Range(16 * 1024, 16 * 1024 * 1024)]
    public int MaxChunkBytes { get; set; } = 512 * 1024;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (int.Parse(WorkerId.AsSpan(7), System.Globalization.CultureInfo.InvariantCulture) > Workers)
        {
            yield return new ValidationResult($"WorkerId {WorkerId} is beyond Workers = {Workers}.", [nameof(WorkerId)]);
        }
        if (!string.IsNullOrEmpty(DataDir) && !Directory.Exists(DataDir))
        {
            yield return new ValidationResult($"DataDir '{DataDir}' does not exist.", [nameof(DataDir)]);
        }
    }
}

public static class TrainingJobOptionsExtensions
{
    public static DaprTrain.Training.TrainerOptions Trainer(this TrainingJobOptions job)
    {
        var kind = job.Optimizer == "sgd" ? DaprTrain.Training.Parameters.OptimizerKind.Sgd : DaprTrain.Training.Parameters.OptimizerKind.Adam;
        return new(job.Model, new DaprTrain.Training.Parameters.OptimizerSettings(kind, job.LearningRate, Momentum: kind == DaprTrain.Training.Parameters.OptimizerKind.Sgd ? 0.9 : 0), job.BatchSize, job.Seed);
    }

    /// <summary>The same data and shards on every node: MNIST from DataDir, or seeded synthetic data.</summary>
    public static DaprTrain.Training.Data.TrainingData LoadData(this TrainingJobOptions job) => string.IsNullOrEmpty(job.DataDir)
        ? DaprTrain.Training.Data.TrainingData.Synthetic(10_000, job.Seed, job.Holdout)
        : DaprTrain.Training.Data.TrainingData.FromMnistFolder(job.DataDir, job.Seed, job.Holdout);
}
