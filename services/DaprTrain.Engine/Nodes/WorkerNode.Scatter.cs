using DaprTrain.Coordination;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Engine.Nodes;

/// <summary>p2p-scatter: the slices this worker sends to their owners, the slice it reduces, and the reduced slices it applies.</summary>
public sealed partial class WorkerNode
{
    /// <summary>p2p-scatter: the slices of this worker's gradient that the other members own, addressed to them.</summary>
    public IReadOnlyList<(string Owner, byte[] Payload)> GradientSliceMessages()
    {
        if (!Compression.IsNone) return CompressedSliceMessages();
        var own = OwnContribution();
        var messages = new List<(string, byte[])>();
        for (int k = 0; k < _members.Count; k++)
        {
            if (_members[k] == Id) continue;
            var (offset, count) = ReplicaState.Slice(ParameterCount, k, _members.Count);
            var header = new WireMessage(MessageKind.GradientSlice, JobId, Generation, OpenRound, Id, own.SampleCount, k, offset, ReadOnlyMemory<float>.Empty);
            messages.Add((_members[k], Signed(WireCodec.Encode(header, own.Values.Span.Slice(offset, count), _buffers, Trailer))));
        }
        return messages;
    }

    public DeliveryResult HandleGradientSlice(byte[] payload)
    {
        if (NotInView() is { } notYet) return notYet;
        int mine = MyIndex;
        var (verdict, message, result) = _gate.Check(payload, MessageKind.GradientSlice, Generation, OpenRound, m => SliceProblem(m, mine),
            maxSamples: _trainer.Options.BatchSize, defer: HandleGradientSlice, maxValues: ParameterCount);
        return verdict == MessageGate.Verdict.Accept ? Hold(message!) : result;
    }

    /// <summary>p2p-scatter: reduces this worker's slice over the decided senders; the message goes to every peer.</summary>
    public byte[]? ReduceOwnSlice(RoundDecision decision)
    {
        RequireOpen(decision.Round);
        if (decision.Included.Count == 0) return null;
        int mine = MyIndex;
        var (offset, count) = ReplicaState.Slice(ParameterCount, mine, _members.Count);
        var contributions = decision.Included.Select(s =>
        {
            if (!_held.TryGet(decision.Round, s, out var c)) throw new InvalidOperationException($"{Id} lacks {s}'s slice for round {decision.Round}");
            // The own contribution is the whole gradient; a peer's is already the slice.
            return s == Id ? c with { Values = c.Values.Slice(offset, count) } : c;
        }).ToList();
        int samples = contributions.Sum(c => c.SampleCount);
        if (!Compression.IsNone) return ReduceOwnSliceCompressed(decision, contributions, samples, mine, offset, count);
        // Reduced straight into the message that carries it to the peers.
        var (message, reduced) = WireCodec.Begin(new WireMessage(MessageKind.ReducedSlice, JobId, Generation, decision.Round, Id, samples, mine, offset, ReadOnlyMemory<float>.Empty), count, _buffers, Trailer);
        // Coordinate-wise rules reduce a slice exactly as they would the whole vector; rules that need whole vectors
        // (Krum, Bulyan) are refused for p2p-scatter when the job is validated.
        if (Aggregator.NeedsWholeVectors) throw new InvalidOperationException($"{Aggregator} needs whole gradients; p2p-scatter gives {Id} one slice of them");
        Aggregate(contributions, reduced.Span, null, decision.Round);
        WireCodec.Seal(message, Trailer);
        Signed(message);
        PutOwnReduced((decision.Round, mine), reduced);
        return message;
    }

    public DeliveryResult HandleReducedSlice(byte[] payload)
    {
        if (NotInView() is { } notYet) return notYet;
        var (verdict, message, result) = _gate.Check(payload, MessageKind.ReducedSlice, Generation, OpenRound,
            m => m.SliceIndex < _members.Count && _members[m.SliceIndex] == m.Sender ? SliceProblem(m, m.SliceIndex) : $"{m.Sender} does not own slice {m.SliceIndex}",
            IsMember, maxSamples: _trainer.Options.BatchSize * Math.Max(_members.Count, 1), maxValues: ParameterCount);
        if (verdict != MessageGate.Verdict.Accept) return result;
        var m = message!;
        if (!_reduced.TryAdd((m.Round, m.SliceIndex), m.Values))
        {
            _gate.Release(m.Values);
            Counters.CountDuplicate();
            return DeliveryResult.Duplicate;
        }
        Counters.CountApplied();
        return DeliveryResult.Applied;
    }

    public int MissingReducedSlices(long round) => Enumerable.Range(0, _members.Count).Count(k => !_reduced.ContainsKey((round, k)));

    /// <summary>p2p-scatter: applies the round when every owner's reduced slice is here; false if some are missing.</summary>
    public bool TryApplyReducedSlices(long round, bool anyIncluded)
    {
        RequireOpen(round);
        if (anyIncluded)
        {
            _gradientBufferHoldsOwn = false;
            var gradient = _trainer.Parameters.GradientSpan;
            for (int k = 0; k < _members.Count; k++)
            {
                if (!_reduced.TryGetValue((round, k), out var slice)) return false;
                var (offset, _) = ReplicaState.Slice(ParameterCount, k, _members.Count);
                slice.Span.CopyTo(gradient[offset..]);
            }
            Step();
        }
        Complete(round);
        return true;
    }

    /// <summary>
    /// Closes the open round without applying anything: every replica missed part of it (p2p-scatter), so none can apply
    /// it and all skip it alike, keeping the same weights. Its messages are forgotten, and late ones are stale from now on.
    /// </summary>
    public void SkipRound(long round)
    {
        RequireOpen(round);
        _gradientBufferHoldsOwn = false;
        Complete(round);
    }

    private int MyIndex
    {
        get
        {
            for (int k = 0; k < _members.Count; k++) if (_members[k] == Id) return k;
            throw new InvalidOperationException($"{Id} is not in the membership view");
        }
    }

    private string? SliceProblem(WireMessage m, int expectedIndex)
    {
        if (m.SliceIndex != expectedIndex) return $"slice {m.SliceIndex} sent to the owner of slice {expectedIndex}";
        var (offset, count) = ReplicaState.Slice(ParameterCount, expectedIndex, _members.Count);
        return m.Offset == offset && m.Values.Length == count ? null : $"slice {m.SliceIndex} has offset {m.Offset} and {m.Values.Length} values; expected {offset} and {count}";
    }
}
