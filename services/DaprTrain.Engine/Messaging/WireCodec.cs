using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace DaprTrain.Engine.Messaging;

/// <summary>
/// Binary envelope, little-endian: magic "DTGM", u8 version, u8 kind, u8 encoding (0 = float32), u8 reserved,
/// i32 generation, i64 round, i32 sample count, i32 slice index, i32 offset, i32 value count, u16+UTF-8 job id,
/// u16+UTF-8 sender, the values, and an XxHash3-64 of all bytes before it. Decoding rejects anything malformed
/// with a reason: a poison message must be dropped, never retried.
/// <para>
/// Encodings 1 to 5 carry compressed values (<see cref="Compression.PayloadCodecs"/>: fp16, int8, top-k, qsgd, sparse-fp16); the value
/// count is then the number of values the payload decodes into, and the checksum covers the compressed bytes as they
/// travel. The header did not change, and a float32 message is byte for byte what it was, so the version stays 1: a
/// reader that predates an encoding rejects it by its encoding byte ("unknown payload encoding"), which is the reason
/// the version would otherwise have given.
/// </para>
/// </summary>
public static class WireCodec
{
    public const byte FormatVersion = 1;
    public const byte Float32Encoding = 0;
    public const int MaxIdentifierBytes = 256;
    private const int FixedHeader = 4 + 4 + 4 + 8 + 4 * 4;
    private static ReadOnlySpan<byte> Magic => "DTGM"u8;

    public static int EncodedLength(WireMessage message) =>
        FixedHeader + 2 + Encoding.UTF8.GetByteCount(message.JobId) + 2 + Encoding.UTF8.GetByteCount(message.Sender) + 4 * message.Values.Length + 8;

    public static byte[] Encode(WireMessage message) => Encode(message, message.Values.Span);

    /// <summary>Encodes with <paramref name="values"/> as the payload (a slice of a larger buffer needs no copy first).</summary>
    /// <param name="trailerBytes">Room left after the checksum for a block of another layer (a signature, <see cref="MessageSignature"/>).</param>
    public static byte[] Encode(WireMessage message, ReadOnlySpan<float> values, MessageBufferPool? buffers = null, int trailerBytes = 0)
    {
        var (bytes, payload) = Begin(message, values.Length, buffers, trailerBytes);
        values.CopyTo(payload.Span);
        Seal(bytes, trailerBytes);
        return bytes;
    }

    /// <summary>
    /// The first half of an encoding whose values are written in place: the header is written and
    /// <paramref name="valueCount"/> floats are left for the caller to fill through the returned memory; then
    /// <see cref="Seal"/>. A gradient exported straight into its message needs no staging buffer.
    /// </summary>
    /// <param name="buffers">Where the bytes come from; a fresh array when null.</param>
    /// <param name="trailerBytes">Room left after the checksum for a block of another layer (a signature); <see cref="Seal"/> needs the same.</param>
    public static (byte[] Bytes, Memory<float> Payload) Begin(WireMessage header, int valueCount, MessageBufferPool? buffers = null, int trailerBytes = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(valueCount);
        var (bytes, position) = BeginEncoded(header, Float32Encoding, valueCount, 4L * valueCount, buffers, trailerBytes);
        return (bytes, new FloatView(bytes, position, valueCount).Memory);
    }

    /// <summary>
    /// Like <see cref="Begin"/> for a payload of <paramref name="payloadBytes"/> bytes in <paramref name="encoding"/> that
    /// decodes into <paramref name="valueCount"/> values; returns the payload's offset in the bytes. Then <see cref="Seal"/>.
    /// </summary>
    public static (byte[] Bytes, int PayloadOffset) BeginEncoded(WireMessage header, byte encoding, int valueCount, long payloadBytes, MessageBufferPool? buffers = null, int trailerBytes = 0)
    {
        byte[] job = Encoding.UTF8.GetBytes(header.JobId);
        byte[] sender = Encoding.UTF8.GetBytes(header.Sender);
        if (job.Length is 0 or > MaxIdentifierBytes || sender.Length is 0 or > MaxIdentifierBytes)
        {
            throw new ArgumentException("job id and sender must be 1 to 256 bytes of UTF-8.");
        }
        ArgumentOutOfRangeException.ThrowIfNegative(valueCount);
        ArgumentOutOfRangeException.ThrowIfNegative(payloadBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(trailerBytes);
        int length = checked((int)(FixedHeader + 2 + job.Length + 2 + sender.Length + payloadBytes + 8 + trailerBytes));
        var bytes = buffers?.Rent(length) ?? GC.AllocateUninitializedArray<byte>(length);
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        span[4] = FormatVersion;
        span[5] = (byte)header.Kind;
        span[6] = encoding;
        span[7] = 0;
        BinaryPrimitives.WriteInt32LittleEndian(span[8..], header.Generation);
        BinaryPrimitives.WriteInt64LittleEndian(span[12..], header.Round);
        BinaryPrimitives.WriteInt32LittleEndian(span[20..], header.SampleCount);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], header.SliceIndex);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], header.Offset);
        BinaryPrimitives.WriteInt32LittleEndian(span[32..], valueCount);
        int position = FixedHeader;
        BinaryPrimitives.WriteUInt16LittleEndian(span[position..], (ushort)job.Length);
        job.CopyTo(span[(position + 2)..]);
        position += 2 + job.Length;
        BinaryPrimitives.WriteUInt16LittleEndian(span[position..], (ushort)sender.Length);
        sender.CopyTo(span[(position + 2)..]);
        position += 2 + sender.Length;
        return (bytes, position);
    }

    /// <summary>Writes the checksum of a message <see cref="Begin"/> started, once its values are in place.</summary>
    public static void Seal(byte[] bytes, int trailerBytes = 0)
    {
        var span = bytes.AsSpan(0, bytes.Length - trailerBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(span[^8..], XxHash3.HashToUInt64(span[..^8]));
    }

    /// <summary>Decodes a copy of <paramref name="bytes"/>; see <see cref="Decode(byte[])"/>.</summary>
    public static WireMessage Decode(ReadOnlySpan<byte> bytes) => Decode(bytes.ToArray());

    /// <summary>
    /// Decodes and checks structure, checksum and values; throws <see cref="MessageRejectedException"/> naming the
    /// problem. Float32 values stay in <paramref name="message"/> (no copy), which must not change afterwards; compressed
    /// values are decoded into a new array of at most <paramref name="maxValues"/> values (the receiver's model size).
    /// </summary>
    public static WireMessage Decode(byte[] message) => Decode(message, message.Length, Compression.PayloadCodecs.DefaultMaxValues);

    /// <summary>Decodes the message in the first <paramref name="length"/> bytes (a signed message's trailer follows it).</summary>
    /// <param name="decodedValues">
    /// Where the array of a compressed message's values comes from: the caller then gives it back
    /// (<see cref="DecodedValuesPool.Return"/>) once nothing reads the message's values. A new array when null.
    /// </param>
    public static WireMessage Decode(byte[] message, int length, int maxValues = Compression.PayloadCodecs.DefaultMaxValues, DecodedValuesPool? decodedValues = null)
    {
        ReadOnlySpan<byte> bytes = message.AsSpan(0, length);
        if (bytes.Length < FixedHeader + 2 + 2 + 8) throw new MessageRejectedException($"truncated message ({bytes.Length} bytes)");
        if (!bytes[..4].SequenceEqual(Magic)) throw new MessageRejectedException("not a DaprTrain message (bad magic number)");
        if (bytes[4] != FormatVersion) throw new MessageRejectedException($"unsupported message format version {bytes[4]} (this build reads {FormatVersion})");
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(bytes[^8..]);
        if (stored != XxHash3.HashToUInt64(bytes[..^8])) throw new MessageRejectedException("checksum mismatch (corrupted or truncated message)");

        var kind = (MessageKind)bytes[5];
        if (!Enum.IsDefined(kind)) throw new MessageRejectedException($"unknown message kind {bytes[5]}");
        // An encoding other than float32 is checked (known or not) where its payload is decoded, below.
        byte encoding = bytes[6];
        int generation = BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]);
        long round = BinaryPrimitives.ReadInt64LittleEndian(bytes[12..]);
        int samples = BinaryPrimitives.ReadInt32LittleEndian(bytes[20..]);
        int slice = BinaryPrimitives.ReadInt32LittleEndian(bytes[24..]);
        int offset = BinaryPrimitives.ReadInt32LittleEndian(bytes[28..]);
        int count = BinaryPrimitives.ReadInt32LittleEndian(bytes[32..]);
        if (generation < 0 || round < 0 || slice < 0 || offset < 0 || count < 0) throw new MessageRejectedException("negative generation, round, slice, offset or length in header");

        int position = FixedHeader;
        string job = ReadIdentifier(bytes, ref position, "job id");
        string sender = ReadIdentifier(bytes, ref position, "sender");
        long payload = bytes.Length - 8 - position;
        if (encoding != Float32Encoding)
        {
            var decoded = Compression.PayloadCodecs.Decode(encoding, bytes.Slice(position, (int)payload), count, maxValues, decodedValues);
            return new WireMessage(kind, job, generation, round, sender, samples, slice, offset, decoded);
        }
        if (payload != 4L * count) throw new MessageRejectedException($"wrong length: header declares {count} values, payload holds {payload} bytes");

        var values = MemoryMarshal.Cast<byte, float>(bytes.Slice(position, 4 * count));
        int bad = IndexOfNonFinite(values);
        if (bad >= 0) throw new MessageRejectedException($"non-finite value {values[bad]} at index {bad}");
        return new WireMessage(kind, job, generation, round, sender, samples, slice, offset, new FloatView(message, position, count).Memory);
    }

    /// <summary>Where the values begin (the header's length), read from a well-formed message's identifier lengths.</summary>
    internal static int HeaderLength(ReadOnlySpan<byte> bytes)
    {
        int job = BinaryPrimitives.ReadUInt16LittleEndian(bytes[FixedHeader..]);
        return FixedHeader + 2 + job + 2 + BinaryPrimitives.ReadUInt16LittleEndian(bytes[(FixedHeader + 2 + job)..]);
    }

    private static string ReadIdentifier(ReadOnlySpan<byte> bytes, ref int position, string what)
    {
        if (position + 2 > bytes.Length - 8) throw new MessageRejectedException($"truncated {what}");
        int length = BinaryPrimitives.ReadUInt16LittleEndian(bytes[position..]);
        if (length is 0 or > MaxIdentifierBytes || position + 2 + length > bytes.Length - 8) throw new MessageRejectedException($"invalid {what} length {length}");
        string value = Encoding.UTF8.GetString(bytes.Slice(position + 2, length));
        position += 2 + length;
        return value;
    }

    private static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        // x * 0 is 0 for every finite x and NaN for NaN and the infinities, and a NaN survives every addition:
        // summing x * 0 over a block tells whether the block is clean with no branch per element. Only a block
        // that is not is scanned element by element, to name the first bad index.
        const int block = 1024;
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated && System.Numerics.Vector<float>.Count * 4 <= block)
        {
            var zero = System.Numerics.Vector<float>.Zero;
            for (; i <= values.Length - block; i += block)
            {
                var vectors = System.Runtime.InteropServices.MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(values.Slice(i, block));
                System.Numerics.Vector<float> a = zero, b = zero, c = zero, d = zero;
                for (int v = 0; v < vectors.Length; v += 4)
                {
                    a += vectors[v] * zero;
                    b += vectors[v + 1] * zero;
                    c += vectors[v + 2] * zero;
                    d += vectors[v + 3] * zero;
                }
                if (!System.Numerics.Vector.EqualsAll(a + b + c + d, zero)) return IndexOfNonFiniteScalar(values, i, block);
            }
        }
        return IndexOfNonFiniteScalar(values, i, values.Length - i);
    }

    private static int IndexOfNonFiniteScalar(ReadOnlySpan<float> values, int start, int count)
    {
        for (int i = start; i < start + count; i++)
        {
            if (!float.IsFinite(values[i])) return i;
        }
        return -1;
    }
}
