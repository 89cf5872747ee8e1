using DaprTrain.Coordination;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Engine.Nodes;

/// <summary>
/// A worker: its own model replica, its data shards, and the handlers for what peers and the parameter
/// server send it. No transport here: the embedded runtime and the Dapr host both call these methods.
/// </summary>
public sealed partial class WorkerNode : IDisposable
{
    private readonly Trainer _trainer;
    private readonly TrainingData _data;
    private readonly MessageGate _gate;
    private readonly ILogger _logger;
    private readonly int _parameterCount;
    private readonly MessageBufferPool? _buffers;
    private readonly HeldContributions _held;
    private readonly Dictionary<(long Round, int Slice), ReadOnlyMemory<float>> _reduced = [];
    private readonly ulong _samplerSeed;
    private (byte[] Bytes, bool Sealed) _ownMessage = ([], true);
    private bool _gradientBufferHoldsOwn;
    private EpochSampler? _sampler;
    private long[] _batch;
    private IReadOnlyList<string> _members = [];
    private IReadOnlyList<int> _shards = [];
    private LabeledDataset? _flippedLabels;
    private MessageKeys _keys = MessageKeys.None;
    private int _viewGeneration;

    /// <param name="buffers">Where outgoing messages get their bytes; the owner of the pool decides when a message is dead.</param>
    public WorkerNode(string id, string jobId, TrainerOptions options, TrainingData data, ILogger logger, MessageBufferPool? buffers = null)
    {
        _buffers = buffers;
        Id = id;
        JobId = jobId;
        _data = data;
        _trainer = new Trainer(options);
        _logger = logger;
        _gate = new MessageGate(id, jobId, logger, Counters) { DecodedValues = new DecodedValuesPool() };
        _held = new HeldContributions(_gate.Release);
        _parameterCount = _trainer.Parameters.Count;
        _batch = new long[options.BatchSize];
        _samplerSeed = SplitMix64.Derive(options.Seed, "sampler:" + id).NextUInt64();
    }

    public string Id { get; }

    public string JobId { get; }

    public int Generation { get; private set; }

    /// <summary>The last round whose update this replica's weights contain.</summary>
    public long AppliedRound { get; private set; }

    public long OpenRound => AppliedRound + 1;

    public NodeCounters Counters { get; } = new();

    /// <summary>
    /// Where the values of the compressed messages this worker receives are decoded into; each array goes back when the
    /// worker forgets the message's round, drops the message, or is disposed. The worker's own pool unless its owner shares
    /// one among its nodes (the embedded job); null decodes into a new array per message, as before pooling.
    /// </summary>
    public DecodedValuesPool? DecodedValues
    {
        get => _gate.DecodedValues;
        init => _gate.DecodedValues = value;
    }

    /// <summary>How this replica aggregates a round (resolved for the job's workers; the mean by default).</summary>
    public AggregationRule Aggregator { get; init; } = AggregationRule.Mean;

    /// <summary>
    /// This worker's signing key. When set, every message it sends is signed, and it takes only messages signed by the key
    /// its membership view registers for their sender (Dapr mode always; the embedded mode unless signing is off).
    /// </summary>
    public DaprTrain.Coordination.Security.NodeKey? Key { get; init; }

    /// <summary>
    /// Set when weights of a generation newer than the view's arrived: the parameter server was restored, or someone forges.
    /// Only a view from the coordinator that names the generation (and the server's key for it) lets such weights in.
    /// </summary>
    public bool NeedsView { get; private set; }

    private int Trailer => Key is null ? 0 : MessageSignature.TrailerBytes;

    /// <summary>Signs a message sealed with <see cref="Trailer"/> bytes of room (nothing to do when the job does not sign).</summary>
    private byte[] Signed(byte[] message)
    {
        if (Key is not null) MessageSignature.Sign(message, Key);
        return message;
    }

    /// <summary>An experiment's Byzantine behaviour: what this worker does to the gradient it sends (none by default).</summary>
    public GradientAttack? Attack { get; init; }

    public Trainer Trainer => _trainer;

    /// <summary>The job's training set (this worker reads its shards of it); a label-flipping attacker's own copy with every label y as 9 - y.</summary>
    public LabeledDataset TrainData => Attack is { FlipsLabels: true } attack && attack.ActiveIn(OpenRound) ? FlippedLabels() : _data.Train;

    public int ParameterCount => _parameterCount;

    public IReadOnlyList<int> Shards => _shards;

    /// <summary>The members of the view this worker applied last, in the view's order (p2p-scatter's slice owners).</summary>
    public IReadOnlyList<string> Members => _members;

    public ulong WeightHash => ReplicaState.WeightHash(_trainer);

    /// <summary>Takes a membership view: the peers it accepts messages from and the shards it trains on.</summary>
    public void ApplyView(MembershipView view, long[][] shardIndices)
    {
        bool newOwners = !_members.SequenceEqual(view.Members, StringComparer.Ordinal);
        _members = view.Members;
        _keys = MessageKeys.From(view.PublicKeys, _keys);
        _gate.Keys = Key is null ? null : _keys;
        _viewGeneration = view.Generation;
        NeedsView = false;
        _held.SetMembers(view.Members);
        if (newOwners)
        {
            ForgetSlicesOfOtherOwners();
            SlicesMoved();
        }
        // Messages that overtook the view registering their sender's key are judged now, against the new owners' slices.
        _gate.ReleaseDeferred(OpenRound);
        var mine = view.ShardsOf(Id);
        if (mine.SequenceEqual(_shards) && _sampler is not null) return;
        _shards = mine;
        if (mine.Count == 0) return;
        var indices = mine.SelectMany(s => shardIndices[s]).ToArray();
        if (_sampler is null) _sampler = new EpochSampler(indices, _trainer.Options.BatchSize, _samplerSeed);
        else _sampler.Reassign(indices);
    }

    /// <summary>Forward and backward on the next batch of this worker's shards; the gradient stays in this node.</summary>
    public (float Loss, int Samples) ComputeGradient()
    {
        int count = NextBatch();
        float loss = _trainer.ComputeGradient(TrainData, _batch.AsSpan(0, count));
        // Exported straight into the message that will carry it: no staging copy. Sealed (checksummed) when sent.
        var values = BeginOwnGradient(count);
        _trainer.Parameters.ExportGradients(values.Span);
        // Compressed, the contribution becomes what the codec decodes to, no longer the gradient buffer's values.
        _gradientBufferHoldsOwn = Compression.IsNone;
        CorruptOwnGradient(values.Span);
        return (loss, count);
    }

    /// <summary>
    /// A Byzantine worker bends its computed gradient before it is sent (label flipping already acted on the batch; ALIE
    /// waits for the honest gradients, <see cref="Collude"/>). Its own replica aggregates what it sent, like every other
    /// replica, so the replicas stay identical.
    /// </summary>
    private void CorruptOwnGradient(Span<float> values)
    {
        if (Attack is not { } attack || !attack.ActiveIn(OpenRound) || attack.FlipsLabels || attack.NeedsHonestGradients) return;
        attack.Apply(values, _trainer.Options.Seed, Id, OpenRound);
        // The gradient buffer holds the honest gradient, no longer what this worker contributes.
        _gradientBufferHoldsOwn = false;
    }

    /// <summary>True when this worker is to send an ALIE gradient in the round, made from the honest gradients (<see cref="Collude"/>).</summary>
    public bool Colludes(long round) => Attack is { NeedsHonestGradients: true } attack && attack.ActiveIn(round);

    /// <summary>
    /// ALIE: replaces this worker's computed gradient for the open round with mean - z x std of <paramref name="honest"/>,
    /// before it is sent. The embedded mode hands the honest gradients of the round over (an omniscient attacker); the Dapr
    /// worker hands what it received from its p2p peers before sending its own (<see cref="PeerGradients"/>).
    /// </summary>
    public void Collude(IReadOnlyList<ReadOnlyMemory<float>> honest, int workers, int colluding)
    {
        if (Attack is not { NeedsHonestGradients: true } attack) throw new InvalidOperationException($"{Id} runs no colluding attack");
        if (_ownMessage.Sealed) throw new InvalidOperationException($"{Id} has already sent its gradient for round {OpenRound}");
        var own = OwnContribution();
        attack.ApplyAlie(System.Runtime.InteropServices.MemoryMarshal.AsMemory(own.Values).Span, honest, workers, colluding);
        _gradientBufferHoldsOwn = false;
    }

    /// <summary>Whether this worker's gradient for the open round has gone out (its message is sealed): then it can no longer change.</summary>
    public bool OwnGradientSent => _ownMessage.Sealed;

    /// <summary>
    /// The gradients this worker holds for <paramref name="round"/> from its peers, in sender order: what a p2p worker
    /// receives from the topic, and what an ALIE insider in the Dapr worker makes its gradient from (<see cref="Collude"/>).
    /// </summary>
    public IReadOnlyList<ReadOnlyMemory<float>> PeerGradients(long round) =>
        [.. HeldSenders(round).Where(s => s != Id).Order(StringComparer.Ordinal).Select(s => _held.TryGet(round, s, out var c) ? c.Values : ReadOnlyMemory<float>.Empty)];

    /// <summary>This worker's gradient for the open round as it will be sent.</summary>
    public ReadOnlyMemory<float> OwnGradient => OwnContribution().Values;

    private LabeledDataset FlippedLabels()
    {
        if (_flippedLabels is null)
        {
            var train = _data.Train;
            var flipped = train.Labels.Select(y => train.ClassCount - 1 - y).ToArray();
            _flippedLabels = new LabeledDataset(train.Name + " (labels flipped)", train.Features, flipped, train.SampleShape, train.ClassCount);
        }
        return _flippedLabels;
    }

    private int NextBatch()
    {
        if (_sampler is null) throw new InvalidOperationException($"{Id} has no data shard assigned");
        return _sampler.Next(_batch);
    }

    private Memory<float> BeginOwnGradient(int samples)
    {
        if (!Compression.IsNone) return BeginOwnCompressed(samples);
        var (message, values) = WireCodec.Begin(new WireMessage(MessageKind.Gradient, JobId, Generation, OpenRound, Id, samples, 0, 0, ReadOnlyMemory<float>.Empty), _parameterCount, _buffers, Trailer);
        _ownMessage = (message, Sealed: false);
        _held.PutOwn(OpenRound, new Contribution(Id, samples, values));
        return values;
    }

    /// <summary>True when this worker's gradient for the round is computed (a retried round must send the same one again).</summary>
    public bool HasOwnGradient(long round) => _held.Contains(round, Id);

    /// <summary>The message carrying this worker's gradient for the open round (the same bytes when the round is retried).</summary>
    public byte[] GradientMessage()
    {
        OwnContribution();
        if (!_ownMessage.Sealed)
        {
            if (Compression.IsNone) WireCodec.Seal(_ownMessage.Bytes, Trailer);
            else _ownMessage.Bytes = CompressOwnGradient();
            Signed(_ownMessage.Bytes);
            _ownMessage.Sealed = true;
        }
        return _ownMessage.Bytes;
    }

    /// <summary>p2p: a peer's whole gradient.</summary>
    public DeliveryResult HandleGradient(byte[] payload)
    {
        var (verdict, message, result) = _gate.Check(payload, MessageKind.Gradient, Generation, OpenRound,
            m => m.Values.Length == ParameterCount && m.Offset == 0 ? null : $"gradient of {m.Values.Length} values at offset {m.Offset}; the model has {ParameterCount}",
            maxSamples: _trainer.Options.BatchSize, defer: HandleGradient, maxValues: ParameterCount);
        return verdict == MessageGate.Verdict.Accept ? Hold(message!) : result;
    }

    /// <summary>The members whose contribution to the round this worker holds (its own included).</summary>
    public IReadOnlyList<string> HeldSenders(long round) => _held.Senders(round);

    /// <summary>True when this worker holds the member's contribution to the round.</summary>
    public bool Holds(long round, string member) => _held.Contains(round, member);

    /// <summary>Contributions to the round from senders no view has named yet (see <see cref="HeldContributions"/>).</summary>
    public int HeldApart(long round) => _held.StrangersOf(round);

    /// <summary>p2p: averages exactly the senders the round's decision names, then steps the optimizer.</summary>
    public void ApplyDecision(RoundDecision decision)
    {
        RequireOpen(decision.Round);
        if (decision.Included.Count > 0)
        {
            var contributions = decision.Included.Select(s => _held.TryGet(decision.Round, s, out var c)
                ? c : throw new InvalidOperationException($"{Id} lacks {s}'s gradient for round {decision.Round}, which the decision includes")).ToList();
            // Until a step or a restore touches it, the gradient buffer holds this worker's own gradient (its message
            // carries a copy), so the aggregate can overwrite it in place instead of reading that copy too.
            Aggregate(contributions, _trainer.Parameters.GradientSpan, destinationHolds: _gradientBufferHoldsOwn ? Id : null, decision.Round);
            Step();
        }
        Complete(decision.Round);
    }

    /// <summary>PS topology: the server's weights after a round (a newer generation means the server was restored).</summary>
    public DeliveryResult HandleWeights(byte[] payload)
    {
        // Decoded and authenticated first: under signing, only the key the view registers for "ps" can sign weights.
        var (opened, dropped) = _gate.Open(payload, maxValues: ParameterCount);
        if (opened is not { } m) return dropped;
        try
        {
            return TakeWeights(m);
        }
        finally
        {
            // Weights are float32 (read in place); values a compressed weights message was decoded into are no longer read.
            _gate.Release(m.Values);
        }
    }

    /// <summary>Judges opened weights (sender, length, generation, round) and takes them when they are newer than the replica's.</summary>
    private DeliveryResult TakeWeights(WireMessage m)
    {
        if (m.Kind != MessageKind.Weights || m.Sender != ParameterServerNode.NodeId) return Rejected("wrong kind", $"{m.Kind} from {m.Sender} where weights from ps were expected");
        if (m.Values.Length != ParameterCount) return Rejected("wrong length", $"wrong length: weights of {m.Values.Length} values; the model has {ParameterCount}");
        if (m.Generation > _viewGeneration)
        {
            // Never jump to a generation on a message's word: one forged message of generation int.MaxValue once made every
            // real weights message "stale" for good. The coordinator names the server's generation; ask it, and take such
            // weights only when a view names that generation (the server sends its weights again until gradients come).
            NeedsView = true;
            _logger.LogWarning("{Node}: weights of generation {Generation}, newer than the view's {ViewGeneration}; asking the coordinator", Id, m.Generation, _viewGeneration);
            return DeliveryResult.Transient($"weights of generation {m.Generation}, newer than the membership view's generation {_viewGeneration}");
        }
        bool newer = m.Generation > Generation || (m.Generation == Generation && m.Round > AppliedRound);
        if (!newer)
        {
            if (m.Generation == Generation && m.Round == AppliedRound) { Counters.CountDuplicate(); return DeliveryResult.Duplicate; }
            Counters.CountLate();
            return DeliveryResult.Stale($"weights of generation {m.Generation}, round {m.Round}");
        }
        _trainer.Parameters.ImportWeights(m.Values.Span);
        _gradientBufferHoldsOwn = false;
        // A restored server (a new generation) rolled the job back: the residual of gradients against the weights it lost goes too.
        if (m.Generation != Generation) ResetCompression();
        Generation = m.Generation;
        AppliedRound = m.Round;
        _held.Clear();
        Counters.CountApplied();
        return DeliveryResult.Applied;
    }

    public JobCheckpoint CaptureState() => new(AppliedRound, Generation, Id, _trainer.CaptureCheckpoint(AppliedRound, null));

    /// <summary>State transfer from a checkpoint or a peer: weights and optimizer state; the data cursor stays this worker's own.</summary>
    public void RestoreState(JobCheckpoint checkpoint)
    {
        _trainer.RestoreCheckpoint(checkpoint.State, null);
        _gradientBufferHoldsOwn = false;
        ResetCompression();
        AppliedRound = checkpoint.Round;
        Generation = checkpoint.Generation;
        _held.Clear();
        ForgetAllReduced();
    }

    /// <summary>
    /// p2p-scatter: the slices held for the open rounds were cut for the previous view's owners, so under a new view they
    /// have the wrong bounds; peers cut their slices again for the new view when they contribute. Whole gradients (p2p)
    /// do not depend on the view and stay.
    /// </summary>
    private void ForgetSlicesOfOtherOwners()
    {
        foreach (long round in new[] { OpenRound, OpenRound + 1 })
        {
            foreach (var sender in _held.Senders(round))
            {
                if (sender != Id && _held.TryGet(round, sender, out var held) && held.Values.Length != ParameterCount) _held.Forget(round, sender);
            }
        }
        foreach (var key in _reduced.Keys.Where(k => k.Round >= OpenRound).ToList()) ForgetReduced(key);
    }

    /// <summary>
    /// p2p-scatter: slice ownership comes from a view that names this worker. Before it has applied one (a process that
    /// is still joining while its peers already sent round 1), a slice cannot be judged yet: ask for it again later.
    /// </summary>
    private DeliveryResult? NotInView() => _members.Contains(Id, StringComparer.Ordinal)
        ? null
        : DeliveryResult.Transient($"{Id} has no membership view that names it yet, so it cannot tell which slice is its own");

    private bool IsMember(string sender) => _members.Contains(sender, StringComparer.Ordinal);

    private Contribution OwnContribution() => _held.TryGet(OpenRound, Id, out var own)
        ? own : throw new InvalidOperationException($"{Id} has not computed its gradient for round {OpenRound}");

    private DeliveryResult Hold(WireMessage m)
    {
        var outcome = m.Sender == Id ? HeldContributions.Outcome.Duplicate : _held.Hold(m.Round, new Contribution(m.Sender, m.SampleCount, m.Values));
        return _gate.Answer(m, outcome);
    }

    /// <summary>The mean as before (the same call, the same bits), or the job's robust rule; a fallback to the median is logged and counted.</summary>
    private void Aggregate(IReadOnlyList<Contribution> contributions, Span<float> destination, string? destinationHolds, long round)
    {
        if (Aggregator.IsMean)
        {
            GradientAggregator.WeightedAverage(contributions, destination, destinationHolds);
            return;
        }
        var outcome = RobustAggregator.Aggregate(Aggregator, contributions, destination);
        if (outcome.FellBack)
        {
            Counters.CountFallback();
            _logger.LogInformation("{Node} round {Round}: {Reason}", Id, round, outcome.FallbackReason);
        }
    }

    private DeliveryResult Rejected(string category, string reason)
    {
        Counters.CountRejected(category);
        _logger.LogWarning("{Node} dropped a message: {Reason}", Id, reason);
        return DeliveryResult.Poison(reason);
    }

    private void RequireOpen(long round)
    {
        if (round != OpenRound) throw new InvalidOperationException($"{Id} is at open round {OpenRound}, not {round}");
    }

    /// <summary>Steps on the aggregate, which the caller wrote straight into the replica's gradient buffer.</summary>
    private void Step()
    {
        _gradientBufferHoldsOwn = false;
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        if (Compression.SparseAggregate) _trainer.ApplySparseGradient();
        else _trainer.ApplyGradient();
        OptimizerMs += System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    /// <summary>Wall milliseconds spent in optimizer steps (not exchange), so the exchange can be timed apart.</summary>
    public double OptimizerMs { get; private set; }

    private void Complete(long round)
    {
        AppliedRound = round;
        _held.ForgetThrough(round);
        foreach (var key in _reduced.Keys.Where(k => k.Round <= round).ToList()) ForgetReduced(key);
    }

    /// <summary>p2p-scatter: stops holding a reduced slice; one a peer sent goes back to the decode pool.</summary>
    private void ForgetReduced((long Round, int Slice) key)
    {
        if (_reduced.Remove(key, out var values)) _gate.Release(values);
    }

    private void ForgetAllReduced()
    {
        foreach (var key in _reduced.Keys.ToList()) ForgetReduced(key);
    }

    /// <summary>p2p-scatter: holds this owner's reduced slice of the round (a resent share replaces the one before).</summary>
    private void PutOwnReduced((long Round, int Slice) key, ReadOnlyMemory<float> values)
    {
        ForgetReduced(key);
        _reduced[key] = values;
    }

    public void Dispose()
    {
        // A pool shared among nodes gets back what this worker held.
        _held.Clear();
        ForgetAllReduced();
        _trainer.Dispose();
        _flippedLabels?.Dispose();
    }
}
