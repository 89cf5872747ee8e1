using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Compute;

namespace DaprTrain.Simulation;

public sealed record RoundProgress(long Round, long Rounds, double NowMs, int Members, int Included, double? Accuracy);

/// <summary>What a run measured, in virtual time (see README: measured compute plus the network model) and wall time.</summary>
public sealed class RunResult
{
    public required JobOptions Options { get; init; }

    public required string Scenario { get; init; }

    public required IReadOnlyList<RoundRecord> Rounds { get; init; }

    public required IReadOnlyList<NodeMetrics> Nodes { get; init; }

    public required IReadOnlyList<FaultRecord> Faults { get; init; }

    public required double FinalAccuracy { get; init; }

    public required double FinalLoss { get; init; }

    public double? TimeToTargetMs { get; init; }

    public required double TotalMs { get; init; }

    public required double WallMs { get; init; }

    public required long RoundsLost { get; init; }

    /// <summary>Gradients (and other round messages) that came after their round closed, and were discarded.</summary>
    public required int LateMessages { get; init; }

    public required int DuplicatesIgnored { get; init; }

    public required IReadOnlyDictionary<string, int> Rejected { get; init; }

    /// <summary>Gradients computed but not part of their round's aggregate (late, lost, or from a node out of sync).</summary>
    public required long GradientsDropped { get; init; }

    public required long Requests { get; init; }

    public required int ConsistencyChecks { get; init; }

    /// <summary>Worker messages whose bytes came from an earlier round's dead message rather than a new allocation.</summary>
    public long MessageBuffersReused { get; init; }

    /// <summary>Received compressed messages whose values were decoded into an array an earlier message had (pooling on).</summary>
    public long DecodedArraysReused { get; init; }

    public required int ParameterCount { get; init; }

    public required IReadOnlyDictionary<string, ulong> FinalWeightHashes { get; init; }

    public required float[] FinalWeights { get; init; }

    /// <summary>Data shard to worker at the end of the run (shards of dead workers are reassigned).</summary>
    public required IReadOnlyDictionary<int, string> FinalShardOwners { get; init; }

    public required CostEstimate Cost { get; init; }

    public required PriceTable Prices { get; init; }

    /// <summary>--compute serverless: the gradient functions' invocations, cold starts, retries and cost; null for VM workers.</summary>
    public FunctionReport? Functions { get; init; }

    /// <summary>The run's cost in both deployments, VMs against serverless in its two layouts (modelled; see <see cref="Billing"/>).</summary>
    public required Billing Billing { get; init; }

    public double BytesPerWorkerPerRound(bool sent) =>
        Nodes.Where(n => n.Node.StartsWith("worker-", StringComparison.Ordinal) && n.Rounds > 0)
             .Average(n => (double)(sent ? n.BytesSent : n.BytesReceived) / n.Rounds);
}
