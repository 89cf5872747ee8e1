using DaprTrain.Coordination;
using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Nodes;

/// <summary>
/// Gradient compression (<see cref="Compression"/>): what this worker sends is compressed with error feedback, and its own
/// replica aggregates what the codec decodes to, exactly as its peers do.
/// <para>
/// p2p and ps: the whole gradient is one compressed message. p2p-scatter: the gradient (plus the residual) is compressed
/// per slice, each slice on its own (top-k keeps ratio x slice length of each), for the owner of that slice; the own slice
/// goes through the codec too without travelling, so the owner reduces the same kind of vector from every sender. The
/// owner's reduced slice, which every peer applies, is compressed again with a second residual of the owner's. Under
/// top-k it is sent whole on its support, the union of up to N senders' top-k sets, as halves with delta-coded indices
/// (<see cref="SparseHalfCodec"/>, about 3 bytes a non-zero): what each sender's top-k chose arrives in full, as in p2p,
/// and the residual keeps only the halves' rounding. (Cutting the union to k again, DoubleSqueeze-style double
/// compression, kept the bytes at k but left most of what arrived waiting in the owner's residual: 3.3 points below
/// uncompressed on Fashion-MNIST against p2p's 1.2; BENCHMARKS.md.) Under fp16, int8 and QSGD the reduced slice is
/// compressed like a sender's (double compression with error feedback on both sides, as in DoubleSqueeze, Tang et al.
/// 2019). Every replica, the owner's included, applies the decoded reduced slice, so the replicas stay bit-identical.
/// </para>
/// </summary>
public sealed partial class WorkerNode
{
    private GradientCompressor? _compressor;
    private GradientCompressor? _reducedCompressor;
    private float[]? _ownValues;
    private (long Round, int Generation, IReadOnlyList<string> Members, IReadOnlyList<(string Owner, byte[] Payload)> Messages)? _compressedSlices;
    private (RoundDecision Decision, int Generation, byte[] Message)? _compressedReduced;

    /// <summary>The job's gradient codec (none by default). Every worker of a job names the same; receivers decode any.</summary>
    public CompressionSpec Compression { get; init; } = CompressionSpec.None;

    /// <summary>This worker's error-feedback residual for its gradients (tests read it); null before its first compressed message.</summary>
    public GradientCompressor? Compressor => _compressor;

    private GradientCompressor GradientCompressor => _compressor ??= new GradientCompressor(Compression, _trainer.Options.Seed, _parameterCount);

    private GradientCompressor ReducedCompressor => _reducedCompressor ??= GradientCompressor.ForReducedSlices(Compression, _trainer.Options.Seed, _parameterCount);

    /// <summary>The own gradient goes to a float buffer of this node; its message is made when it is first sent (after an attack may have bent it).</summary>
    private Memory<float> BeginOwnCompressed(int samples)
    {
        _ownValues ??= new float[_parameterCount];
        _ownMessage = ([], Sealed: false);
        _compressedSlices = null;
        var values = _ownValues.AsMemory();
        _held.PutOwn(OpenRound, new Contribution(Id, samples, values));
        return values;
    }

    /// <summary>p2p and ps: the whole gradient, compressed once per round (a retried round resends the same bytes).</summary>
    private byte[] CompressOwnGradient()
    {
        var own = OwnContribution();
        var header = new WireMessage(MessageKind.Gradient, JobId, Generation, OpenRound, Id, own.SampleCount, 0, 0, ReadOnlyMemory<float>.Empty);
        return GradientCompressor.Encode(header, _ownValues, 0, _buffers, Trailer);
    }

    /// <summary>
    /// p2p-scatter: the slices for their owners, compressed once per round and view. A new view cuts new slices; they are
    /// cut from the decoded values plus the residual, which is (up to rounding) the gradient plus the residual again.
    /// </summary>
    private IReadOnlyList<(string Owner, byte[] Payload)> CompressedSliceMessages()
    {
        var own = OwnContribution();
        if (_compressedSlices is { } cached && cached.Round == OpenRound && cached.Generation == Generation && cached.Members.SequenceEqual(_members, StringComparer.Ordinal))
        {
            return cached.Messages;
        }
        var messages = new List<(string, byte[])>();
        for (int k = 0; k < _members.Count; k++)
        {
            var (offset, count) = ReplicaState.Slice(ParameterCount, k, _members.Count);
            var header = new WireMessage(MessageKind.GradientSlice, JobId, Generation, OpenRound, Id, own.SampleCount, k, offset, ReadOnlyMemory<float>.Empty);
            byte[] message = Signed(GradientCompressor.Encode(header, _ownValues.AsSpan(offset, count), offset, _buffers, Trailer));
            // The own slice is compressed like the others (its decoded values are what this owner reduces), but stays here.
            if (_members[k] == Id) _buffers?.Return(message);
            else messages.Add((_members[k], message));
        }
        _compressedSlices = (OpenRound, Generation, _members, messages);
        return messages;
    }

    /// <summary>p2p-scatter under compression: the owner's reduced slice, compressed once per round; this replica applies the decoded slice too.</summary>
    private byte[] ReduceOwnSliceCompressed(RoundDecision decision, List<Contribution> contributions, int samples, int mine, int offset, int count)
    {
        // The same decision again (a resent share) gets the same bytes; the residual must not take the same slice twice.
        if (_compressedReduced is { } cached && cached.Generation == Generation && cached.Decision.Round == decision.Round
            && cached.Decision.Included.SequenceEqual(decision.Included, StringComparer.Ordinal))
        {
            return cached.Message;
        }
        if (Aggregator.NeedsWholeVectors) throw new InvalidOperationException($"{Aggregator} needs whole gradients; p2p-scatter gives {Id} one slice of them");
        var reduced = new float[count];
        Aggregate(contributions, reduced, null, decision.Round);
        var header = new WireMessage(MessageKind.ReducedSlice, JobId, Generation, decision.Round, Id, samples, mine, offset, ReadOnlyMemory<float>.Empty);
        byte[] message = Signed(ReducedCompressor.Encode(header, reduced, offset, _buffers, Trailer));
        PutOwnReduced((decision.Round, mine), reduced);
        _compressedReduced = (decision, Generation, message);
        return message;
    }

    /// <summary>A new view moved the slices: the owner's residual was for a slice it may no longer own.</summary>
    private void SlicesMoved()
    {
        _reducedCompressor?.Reset();
        _compressedReduced = null;
    }

    /// <summary>The weights were replaced (a state transfer, a restore, a rolled-back server): the residuals start from zero.</summary>
    private void ResetCompression()
    {
        _compressor?.Reset();
        _reducedCompressor?.Reset();
        _compressedSlices = null;
        _compressedReduced = null;
    }
}
