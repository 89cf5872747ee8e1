using System.Collections.Concurrent;
using DaprTrain.Dapr;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Worker;

/// <summary>The worker node, and an inbox (chunk reassembly, Dapr answers) for each topic its round plan subscribes to.</summary>
public sealed class WorkerRuntime(ILogger<WorkerRuntime> logger, Microsoft.Extensions.Options.IOptions<WorkerOptions> identity,
    Microsoft.Extensions.Options.IOptions<TrainingJobOptions> job, FunctionFanOut functions, DaprTrain.Engine.Telemetry.RoundPhases phases)
    : NodeRuntime<WorkerNode>(job.Value.WakeOnDelivery, ms => phases.RecordDetail("wait saw a delivery after", ms))
{
    private readonly ConcurrentDictionary<string, MessageInbox> _inboxes = new(StringComparer.Ordinal);

    /// <summary>The inbox of one topic: each topic reassembles its own chunks.</summary>
    public MessageInbox Inbox(string topic) => _inboxes.GetOrAdd(topic, _ => new MessageInbox(logger, job.Value.MaxChunkBytes, identity.Value.WorkerId, CurrentRound, phases));

    /// <summary>Between peers, the hints that a round the worker waits for is decided (Job:DecisionHints).</summary>
    public DecisionHints Hints { get; } = new(job.Value.JobId);

    /// <summary>The inbox of the decision hints: chunks and messages of a hint's size at most, a few kB held.</summary>
    public MessageInbox HintInbox => LazyInitializer.EnsureInitialized(ref _hintInbox,
        () => new MessageInbox(logger, DecisionHints.MaxChunkBytes, identity.Value.WorkerId, CurrentRound, phases, DecisionHints.MaxMessageBytes));

    private MessageInbox? _hintInbox;

    /// <summary>The round the worker is in (0 before it starts): incomplete messages of rounds long past are let go.</summary>
    private long CurrentRound() => Ready ? Use(n => n.AppliedRound) : 0;

    private double? _finalAccuracy;

    /// <summary>Held-out accuracy of the final weights, once the worker has run all its rounds.</summary>
    public double? FinalAccuracy => Ready ? Use(_ => _finalAccuracy) : null;

    /// <summary>Bytes every inbox delivered to the node.</summary>
    public long BytesReceived => _inboxes.Values.Sum(i => i.BytesReceived);

    /// <summary>Evaluates the final weights on the held-out set and keeps the accuracy for /status.</summary>
    public (double Accuracy, double Loss) Finish(DaprTrain.Training.Data.TrainingData data) => Use(n =>
    {
        var result = n.Trainer.Evaluate(data.Holdout, data.HoldoutIndices);
        _finalAccuracy = result.Accuracy;
        return (result.Accuracy, result.Loss);
    });

    public WorkerStatus Status() => Use(n => new WorkerStatus(n.Id, n.AppliedRound, n.Generation,
        n.WeightHash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), n.Shards.ToArray(), n.Counters.Applied,
        n.Counters.Duplicates, n.Counters.Late, _inboxes.Values.Sum(i => i.Redelivered), _finalAccuracy, functions.Counters, phases.Snapshot()));
}

/// <summary>What GET /status answers: progress, the replica's weight hash, message counters, the gradient-function fan-out's counters, the final accuracy when done, and where the rounds' time went.</summary>
public sealed record WorkerStatus(string Worker, long AppliedRound, int Generation, string WeightHash, IReadOnlyList<int> Shards,
    long Applied, long Duplicates, long Late, long Redelivered, double? FinalAccuracy, FunctionCounters Functions, DaprTrain.Engine.Telemetry.PhaseSummary Phases);
