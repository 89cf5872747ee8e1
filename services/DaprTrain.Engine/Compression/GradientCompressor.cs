using System.Numerics.Tensors;
using DaprTrain.Engine.Messaging;
using DaprTrain.Training;

namespace DaprTrain.Engine.Compression;

/// <summary>
/// One node's compressor with error feedback (Karimireddy et al., ICML 2019; not for QSGD, see <see cref="FeedsBackError"/>): before a vector is compressed, what
/// compression dropped from this node's earlier vectors (the residual) is added to it; after, the residual becomes what
/// this compression drops: e = (g + e) - D(C(g + e)). Biased compressors such as top-k then converge like SGD.
/// <para>
/// The vector handed in is overwritten with D(C(g + e)), decoded from the very bytes that travel by the decoder every
/// receiver runs: the sender's own replica aggregates exactly what its peers aggregate, so replicas stay bit-identical.
/// </para>
/// <para>
/// The residual is node-local state, over the whole parameter vector (a p2p-scatter slice uses its range of it). It is
/// not part of a checkpoint (a checkpoint is the job's state, written by one worker for all) and it is reset to zero
/// whenever the node's weights are replaced (a state transfer, a rejoin, a restore from a checkpoint): it is the error
/// against gradients computed at the weights this node had, and a restarted process starts with none. Zero is also what
/// every process that starts from the same state has, so a rejoin is deterministic.
/// </para>
/// <para>
/// With <paramref name="sendsSupport"/> (<see cref="ForReducedSlices"/>: p2p-scatter's owner under top-k) the vector is
/// sent whole on its support, the coordinates where it is not zero, as halves with delta-coded indices
/// (<see cref="SparseHalfCodec"/>), instead of being cut to k again: the owner's reduced slice is the union of the senders'
/// top-k sets, and what a sender's top-k chose then arrives in full, as it does in p2p. The residual takes only the
/// halves' rounding, and only on the support: a coordinate's rounding waits in the residual until the coordinate is sent
/// again, so the support stays the senders' union and never grows into the residual's.
/// </para>
/// </summary>
public sealed class GradientCompressor(CompressionSpec spec, ulong seed, int parameterCount, bool sendsSupport = false)
{
    private readonly float[] _residual = new float[parameterCount];
    private float[]? _scratch;
    private int[]? _support;

    public CompressionSpec Spec { get; } = spec;

    /// <summary>The vector is sent on its support with <see cref="SparseHalfCodec"/> (see the class remarks).</summary>
    public bool SendsSupport { get; } = !sendsSupport || spec.Kind == CompressionKind.TopK
        ? sendsSupport
        : throw new ArgumentException($"only top-k's aggregates are sent on their support, not {spec}'s", nameof(sendsSupport));

    /// <summary>
    /// The compressor for p2p-scatter's reduced slices: under top-k it sends each reduced slice on its support
    /// (<see cref="SendsSupport"/>); under the dense codecs it compresses like a sender's.
    /// </summary>
    public static GradientCompressor ForReducedSlices(CompressionSpec spec, ulong seed, int parameterCount) =>
        new(spec, seed, parameterCount, sendsSupport: spec.Kind == CompressionKind.TopK);

    /// <summary>
    /// Error feedback is for the biased, contractive codecs (fp16, int8, top-k: ||x - C(x)|| &lt; ||x||). QSGD is unbiased and
    /// needs none, and with fewer levels than about sqrt(bucket size) its error is larger than the vector itself (variance
    /// factor min(d / s^2, sqrt(d) / s) = 3.2 for s = 7, d = 512): fed back, the residual grows every round (measured: 4
    /// p2p workers on Fashion-MNIST fell from 83% to 28% held-out with qsgd:7 and SGD). QSGD runs as its paper has it.
    /// </summary>
    public bool FeedsBackError => Spec.Kind != CompressionKind.Qsgd;

    /// <summary>What compression has dropped so far and the next vector gets back (tests read it).</summary>
    public ReadOnlySpan<float> Residual => _residual;

    /// <summary>Forgets the residual: the node's weights were replaced (see the class remarks).</summary>
    public void Reset() => Array.Clear(_residual);

    /// <summary>
    /// Compresses <paramref name="values"/> (the range of the parameter vector at <paramref name="offset"/>) into a sealed
    /// message with <paramref name="header"/>'s fields, and overwrites <paramref name="values"/> with what it decodes to.
    /// </summary>
    /// <param name="trailerBytes">Room left after the checksum for a signature block (<see cref="MessageSignature"/>), which the caller writes.</param>
    public byte[] Encode(WireMessage header, Span<float> values, int offset, MessageBufferPool? buffers = null, int trailerBytes = 0)
    {
        if (Spec.IsNone) throw new InvalidOperationException("compression none sends float32: WireCodec.Encode");
        var residual = _residual.AsSpan(offset, values.Length);
        // The support is the vector's own, taken before the residual is added (see the class remarks).
        var support = SendsSupport ? Support(values) : default;
        // p = g + e, kept in the residual's place until the decoded values are known.
        TensorPrimitives.Add(values, residual, residual);
        if (values.Length > 0 && !float.IsFinite(TensorPrimitives.MaxMagnitude(residual)))
        {
            // A diverged gradient (NaN or infinity) has no compressed form: it travels as float32, as it would uncompressed,
            // so receivers refuse it as non-finite and the run stops with "training diverged" instead of a codec error.
            residual.CopyTo(values);
            residual.Clear();
            return WireCodec.Encode(header, values, buffers, trailerBytes);
        }
        long payloadBytes = SendsSupport ? SparseHalfCodec.EncodedBytes(support) : PayloadBytes(residual);
        var (message, at) = WireCodec.BeginEncoded(header, EncodingByte, values.Length, payloadBytes, buffers, trailerBytes);
        var payload = message.AsSpan(at, (int)payloadBytes);
        switch (Spec.Kind)
        {
            case CompressionKind.TopK when SendsSupport:
                SparseHalfCodec.Encode(residual, support, payload);
                SparseHalfCodec.Decode(payload, values);
                break;
            case CompressionKind.Fp16:
                Fp16Codec.Encode(residual, payload);
                Fp16Codec.Decode(payload, values);
                break;
            case CompressionKind.Int8:
                Int8Codec.Encode(residual, payload);
                Int8Codec.Decode(payload, values);
                break;
            case CompressionKind.TopK:
                TopKCodec.Encode(residual, Spec.KeptOf(values.Length), payload, Scratch(values.Length));
                TopKCodec.Decode(payload, values);
                break;
            default:
                QsgdCodec.Encode(residual, Spec.Levels, RoundingSeed(header), payload);
                QsgdCodec.Decode(payload, values);
                break;
        }
        // e = p - D(C(p)); none for QSGD (see FeedsBackError). Off the support D(C(p)) is zero and e stays as it was.
        if (FeedsBackError) TensorPrimitives.Subtract(residual, values, residual);
        else residual.Clear();
        WireCodec.Seal(message, trailerBytes);
        return message;
    }

    private byte EncodingByte => SendsSupport ? SparseHalfCodec.Encoding : Spec.Kind switch
    {
        CompressionKind.Fp16 => Fp16Codec.Encoding,
        CompressionKind.Int8 => Int8Codec.Encoding,
        CompressionKind.TopK => TopKCodec.Encoding,
        _ => QsgdCodec.Encoding,
    };

    private long PayloadBytes(ReadOnlySpan<float> values) => Spec.Kind switch
    {
        CompressionKind.Fp16 => Fp16Codec.EncodedBytes(values.Length),
        CompressionKind.Int8 => Int8Codec.EncodedBytes(values.Length),
        CompressionKind.TopK => TopKCodec.EncodedBytes(Spec.KeptOf(values.Length)),
        _ => QsgdCodec.EncodedBytes(values.Length, Spec.Levels),
    };

    /// <summary>QSGD's random stream for one message: the job's seed, the sender, the kind, the slice and the round; a resent round rounds alike.</summary>
    private ulong RoundingSeed(WireMessage header) =>
        SplitMix64.Derive(seed, $"qsgd:{header.Sender}:{(int)header.Kind}:{header.SliceIndex}:{header.Generation}", header.Round).NextUInt64();

    private ReadOnlySpan<int> Support(ReadOnlySpan<float> values)
    {
        if (_support is null || _support.Length < values.Length) _support = new int[values.Length];
        return _support.AsSpan(0, SparseHalfCodec.Support(values, _support));
    }

    private Span<float> Scratch(int length)
    {
        if (_scratch is null || _scratch.Length < length) _scratch = new float[length];
        return _scratch.AsSpan(0, length);
    }
}
