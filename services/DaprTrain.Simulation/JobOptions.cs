using DaprTrain.Coordination;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Compression;
using DaprTrain.Simulation.Compute;
using DaprTrain.Simulation.Faults;
using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Simulation;

/// <summary>Everything that defines a distributed run. Two runs with equal options and data give equal weights.</summary>
/// <param name="PoolDecodedValues">
/// Nodes decode received compressed messages into pooled arrays (on by default; the weights are the same either way, which
/// a test checks against a run with it off).
/// </param>
public sealed record JobOptions(
    string JobId,
    Topology Topology,
    int Workers,
    TrainerOptions Trainer,
    long Rounds,
    FaultPlan Faults,
    NetworkModel Network,
    ShardingMode Sharding = ShardingMode.Iid,
    double RoundDeadlineMs = 250,
    double LeaseMs = 1000,
    double ParameterServerRestartMs = 3000,
    int CheckpointEvery = 10,
    int EvaluateEvery = 5,
    double TargetAccuracy = 0.9,
    bool ResumeFromStore = false,
    ComputeMode Compute = ComputeMode.Vm,
    ServerlessOptions? Serverless = null,
    AggregationRule? Aggregator = null,
    bool SignMessages = true,
    CompressionSpec? Compression = null,
    bool PoolDecodedValues = true)
{
    /// <summary>The workers' gradient codec (none when not given).</summary>
    public CompressionSpec Codec => Compression ?? CompressionSpec.None;

    /// <summary>The aggregation rule with its f (and m) filled in for this job's workers; throws naming the rule's condition when it cannot hold.</summary>
    public AggregationRule ResolvedAggregator => (Aggregator ?? AggregationRule.Mean).ForWorkers(Workers);

    public const int MaxWorkers = 64;

    /// <summary>1 to 64 letters, digits, '-', '_' or '.', starting with a letter or a digit (the progress events' id pattern).</summary>
    public static bool IsJobId(string? id) =>
        id is { Length: > 0 and <= 64 } && char.IsAsciiLetterOrDigit(id[0]) && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    public void Validate()
    {
        // The progress events' id pattern (schemas/progress-event.schema.json): a job the dashboard could not show is refused here.
        if (!IsJobId(JobId))
        {
            throw new ArgumentException($"job id '{JobId}' must be 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or a digit.");
        }
        if (Workers < 1 || Workers > MaxWorkers) throw new ArgumentException($"workers must be between 1 and {MaxWorkers} (got {Workers}).");
        if (Workers < Topology.MinWorkers()) throw new ArgumentException($"{Topology.Name()} needs at least {Topology.MinWorkers()} workers.");
        if (Rounds < 1) throw new ArgumentException($"rounds must be at least 1 (got {Rounds}).");
        if (!(RoundDeadlineMs > 0)) throw new ArgumentException($"round deadline must be positive (got {RoundDeadlineMs} ms).");
        if (!(LeaseMs > 0)) throw new ArgumentException($"lease must be positive (got {LeaseMs} ms).");
        if (!(ParameterServerRestartMs >= 0)) throw new ArgumentException($"parameter server restart delay must be zero or more (got {ParameterServerRestartMs} ms).");
        if (CheckpointEvery < 1) throw new ArgumentException($"checkpoint interval must be at least 1 round (got {CheckpointEvery}).");
        if (EvaluateEvery < 1) throw new ArgumentException($"evaluation interval must be at least 1 round (got {EvaluateEvery}).");
        if (TargetAccuracy is < 0 or > 1) throw new ArgumentException($"target accuracy must be between 0 and 1 (got {TargetAccuracy}).");
        Trainer.Validate();
        Network.Validate();
        if (Compute == ComputeMode.Serverless && Serverless is null) throw new ArgumentException("--compute serverless needs its functions and platform profile.");
        if (Compute == ComputeMode.Serverless) Serverless!.Validate(Trainer.BatchSize);
        var rule = ResolvedAggregator;
        if (rule.NeedsWholeVectors && Topology == Topology.PeerToPeerScatter)
        {
            // Krum's distances need every coordinate of two gradients; a p2p-scatter owner holds one slice of each. Exchanging
            // every owner's partial distances would be a third phase of the round (see the README, Aggregators).
            throw new ArgumentException($"aggregator {rule} compares whole gradients, and p2p-scatter gives each worker one slice of them: use p2p or ps with it, or a coordinate-wise rule (median, trimmed-mean) with p2p-scatter.");
        }
        Faults.Validate(Workers, Topology.HasParameterServer(), Rounds, Compute == ComputeMode.Serverless);
    }

    /// <summary>Rounds for a number of epochs: every worker takes one batch a round.</summary>
    public static long RoundsForEpochs(int epochs, int trainSamples, int workers, int batchSize) =>
        Math.Max(1, (long)Math.Ceiling((double)epochs * trainSamples / ((long)workers * batchSize)));
}

/// <summary>--compute serverless: K gradient functions per worker per round on a platform profile.</summary>
public sealed record ServerlessOptions(int Functions, PlatformProfile Platform, int MaxAttempts = 3)
{
    public const int MaxFunctions = 256;

    public void Validate(int batchSize)
    {
        if (Functions < 1 || Functions > MaxFunctions) throw new ArgumentException($"functions must be between 1 and {MaxFunctions} (got {Functions}).");
        if (Functions > batchSize) throw new ArgumentException($"{Functions} functions cannot share a batch of {batchSize} samples: every function needs at least one (raise --batch-size).");
        if (MaxAttempts < 1) throw new ArgumentException($"attempts per invocation must be at least 1 (got {MaxAttempts}).");
        Platform.Validate("the job's options");
    }
}
