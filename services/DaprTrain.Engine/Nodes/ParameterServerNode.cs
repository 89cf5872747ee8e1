using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Engine.Nodes;

/// <summary>
/// The parameter server: holds the authoritative model and optimizer, averages the gradients of a round,
/// steps, and answers with weights. Restored from a checkpoint it starts a new generation, so gradients
/// computed against its pre-crash weights can never be mistaken for current ones.
/// </summary>
public sealed class ParameterServerNode : IDisposable
{
    public const string NodeId = "ps";

    private readonly Trainer _trainer;
    private readonly MessageGate _gate;
    private readonly HeldContributions _held;
    private readonly ILogger _logger;

    public ParameterServerNode(string jobId, TrainerOptions options, ILogger logger)
    {
        JobId = jobId;
        _trainer = new Trainer(options);
        _gate = new MessageGate(NodeId, jobId, logger, Counters) { DecodedValues = new DecodedValuesPool() };
        _held = new HeldContributions(_gate.Release);
        _logger = logger;
    }

    /// <summary>
    /// Where the values of compressed gradients the server receives are decoded into; each array goes back when the server
    /// forgets the round, drops the message, or is disposed. Its own pool unless its owner shares one among its nodes (the
    /// embedded job); null decodes into a new array per message, as before pooling.
    /// </summary>
    public DecodedValuesPool? DecodedValues
    {
        get => _gate.DecodedValues;
        init => _gate.DecodedValues = value;
    }

    /// <summary>How the server aggregates a round (resolved for the job's workers; the mean by default).</summary>
    public AggregationRule Aggregator { get; init; } = AggregationRule.Mean;

    /// <summary>The codec the workers' gradients travel in: a sparse one (top-k) makes the server's steps lazy, as the p2p replicas' are.</summary>
    public DaprTrain.Engine.Compression.CompressionSpec WorkerCompression { get; init; } = DaprTrain.Engine.Compression.CompressionSpec.None;

    public string JobId { get; }

    public int Generation { get; private set; }

    public long AppliedRound { get; private set; }

    public long OpenRound => AppliedRound + 1;

    public NodeCounters Counters { get; } = new();

    public Trainer Trainer => _trainer;

    public int ParameterCount => _trainer.Parameters.Count;

    public ulong WeightHash => ReplicaState.WeightHash(_trainer);

    /// <summary>
    /// The server's signing key. When set, its weights are signed and it takes only gradients signed by the keys its
    /// membership view registers (<see cref="SetMembers"/>).
    /// </summary>
    public DaprTrain.Coordination.Security.NodeKey? Key { get; init; }

    private MessageKeys _keys = MessageKeys.None;

    /// <param name="keys">The view's registered keys; null keeps the ones the server has.</param>
    public void SetMembers(IReadOnlyList<string> members, IReadOnlyDictionary<string, string>? keys = null)
    {
        _held.SetMembers(members);
        if (keys is not null) _keys = MessageKeys.From(keys, _keys);
        _gate.Keys = Key is null ? null : _keys;
        _gate.ReleaseDeferred(OpenRound);
    }

    public DeliveryResult HandleGradient(byte[] payload)
    {
        var (verdict, message, result) = _gate.Check(payload, MessageKind.Gradient, Generation, OpenRound,
            m => m.Values.Length == ParameterCount && m.Offset == 0 ? null : $"gradient of {m.Values.Length} values at offset {m.Offset}; the model has {ParameterCount}",
            maxSamples: _trainer.Options.BatchSize, defer: HandleGradient, maxValues: ParameterCount);
        if (verdict != MessageGate.Verdict.Accept) return result;
        var m = message!;
        return _gate.Answer(m, _held.Hold(m.Round, new Contribution(m.Sender, m.SampleCount, m.Values)));
    }

    /// <summary>Gradients kept until a view gives their sender a key (see <see cref="MessageGate"/>).</summary>
    public int Deferred => _gate.Deferred;

    /// <summary>The members whose gradient for the round the server holds.</summary>
    public IReadOnlyList<string> HeldSenders(long round) => _held.Senders(round);

    /// <summary>True when the server holds the member's gradient for the round.</summary>
    public bool Holds(long round, string member) => _held.Contains(round, member);

    /// <summary>Gradients for the round from senders no member list has named yet (see <see cref="HeldContributions"/>).</summary>
    public int HeldApart(long round) => _held.StrangersOf(round);

    /// <summary>Averages what arrived for the open round, steps, and returns the weights message (the round's result).</summary>
    public byte[] CloseRound()
    {
        long round = OpenRound;
        var contributions = _held.Of(round);
        if (contributions.Count > 0)
        {
            if (Aggregator.IsMean)
            {
                GradientAggregator.WeightedAverage(contributions, _trainer.Parameters.GradientSpan);
            }
            else
            {
                var outcome = RobustAggregator.Aggregate(Aggregator, contributions, _trainer.Parameters.GradientSpan);
                if (outcome.FellBack)
                {
                    Counters.CountFallback();
                    _logger.LogInformation("ps round {Round}: {Reason}", round, outcome.FallbackReason);
                }
            }
            long stepping = System.Diagnostics.Stopwatch.GetTimestamp();
            if (WorkerCompression.SparseAggregate) _trainer.ApplySparseGradient();
            else _trainer.ApplyGradient();
            OptimizerMs += System.Diagnostics.Stopwatch.GetElapsedTime(stepping).TotalMilliseconds;
        }
        AppliedRound = round;
        _held.ForgetThrough(round);
        return WeightsMessage(contributions.Sum(c => c.SampleCount));
    }

    /// <summary>
    /// The weights, always float32 whatever the job's gradient codec: weights are state, not an update. A lossy copy would
    /// put every worker at other weights than the server's, and the error would add up round after round with nothing to
    /// feed it back (fp16 keeps 11 bits: an Adam step of 1e-4 on a weight of 0.5 is below its resolution and lost).
    /// Compressing the update (new - old weights) with error feedback on the server would be the way; see the README.
    /// </summary>
    public byte[] WeightsMessage(int samples = 1)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        var message = WireCodec.Encode(new WireMessage(MessageKind.Weights, JobId, Generation, AppliedRound, NodeId, Math.Max(samples, 1), 0, 0, ReadOnlyMemory<float>.Empty),
            _trainer.Parameters.WeightSpan, trailerBytes: Key is null ? 0 : MessageSignature.TrailerBytes);
        if (Key is not null) MessageSignature.Sign(message, Key);
        EncodeMs += System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return message;
    }

    /// <summary>Wall milliseconds spent in optimizer steps, so a round's time can be split (as <see cref="WorkerNode.OptimizerMs"/>).</summary>
    public double OptimizerMs { get; private set; }

    /// <summary>Wall milliseconds spent making weights messages (encode, checksum, signature).</summary>
    public double EncodeMs { get; private set; }

    public JobCheckpoint CaptureState() => new(AppliedRound, Generation, NodeId, _trainer.CaptureCheckpoint(AppliedRound, null));

    /// <summary>Restores a checkpoint and opens a new generation above every generation seen so far.</summary>
    public void RestoreState(JobCheckpoint checkpoint, int newGeneration)
    {
        if (newGeneration <= checkpoint.Generation) throw new ArgumentException("a restored server needs a newer generation than its checkpoint's");
        _trainer.RestoreCheckpoint(checkpoint.State, null);
        AppliedRound = checkpoint.Round;
        Generation = newGeneration;
        _held.Clear();
    }

    public void Dispose()
    {
        // A pool shared among nodes gets back what the server held.
        _held.Clear();
        _trainer.Dispose();
    }
}
