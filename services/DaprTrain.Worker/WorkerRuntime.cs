using DaprTrain.Dapr;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Worker;

/// <summary>The worker node, and an inbox for each topic it may subscribe to.</summary>
public sealed class WorkerRuntime(ILogger<WorkerRuntime> logger) : NodeRuntime<WorkerNode>
{
    public MessageInbox Gradients { get; } = new(logger);

    public MessageInbox Weights { get; } = new(logger);

    /// <summary>Held-out accuracy of the final weights, once the worker has run all its rounds.</summary>
    public double? FinalAccuracy { get; set; }

    public WorkerStatus Status() => Use(n => new WorkerStatus(n.Id, n.AppliedRound, n.Generation,
        n.WeightHash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), n.Shards.ToArray(), n.Counters.Applied,
        n.Counters.Duplicates, n.Counters.Late, Gradients.Redelivered + Weights.Redelivered, FinalAccuracy));
}

/// <summary>What GET /status answers: progress, the replica's weight hash, message counters, and the final accuracy when done.</summary>
public sealed record WorkerStatus(string Worker, long AppliedRound, int Generation, string WeightHash, IReadOnlyList<int> Shards,
    long Applied, long Duplicates, long Late, long Redelivered, double? FinalAccuracy);
