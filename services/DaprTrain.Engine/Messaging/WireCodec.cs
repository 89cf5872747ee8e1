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
    public static byte[] Encode(WireMessage message, ReadOnlySpan<float> values)
    {
        byte[] job = Encoding.UTF8.GetBytes(message.JobId);
        byte[] sender = Encoding.UTF8.GetBytes(message.Sender);
        if (job.Length is 0 or > MaxIdentifierBytes || sender.Length is 0 or > MaxIdentifierBytes)
        {
            throw new ArgumentException("job id and sender must be 1 to 256 bytes of UTF-8.");
        }
        var bytes = GC.AllocateUninitializedArray<byte>(FixedHeader + 2 + job.Length + 2 + sender.Length + 4 * values.Length + 8);
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        span[4] = FormatVersion;
        span[5] = (byte)message.Kind;
        span[6] = Float32Encoding;
        span[7] = 0;
        BinaryPrimitives.WriteInt32LittleEndian(span[8..], message.Generation);
        BinaryPrimitives.WriteInt64LittleEndian(span[12..], message.Round);
        BinaryPrimitives.WriteInt32LittleEndian(span[20..], message.SampleCount);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], message.SliceIndex);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], message.Offset);
        BinaryPrimitives.WriteInt32LittleEndian(span[32..], values.Length);
        int position = FixedHeader;
        BinaryPrimitives.WriteUInt16LittleEndian(span[position..], (ushort)job.Length);
        job.CopyTo(span[(position + 2)..]);
        position += 2 + job.Length;
        BinaryPrimitives.WriteUInt16LittleEndian(span[position..], (ushort)sender.Length);
        sender.CopyTo(span[(position + 2)..]);
        position += 2 + sender.Length;
        MemoryMarshal.AsBytes(values).CopyTo(span[position..]);
        position += 4 * values.Length;
        BinaryPrimitives.WriteUInt64LittleEndian(span[position..], XxHash3.HashToUInt64(span[..position]));
        return bytes;
    }

    /// <summary>Decodes a copy of <paramref name="bytes"/>; see <see cref="Decode(byte[])"/>.</summary>
    public static WireMessage Decode(ReadOnlySpan<byte> bytes) => Decode(bytes.ToArray());

    /// <summary>
    /// Decodes and checks structure, checksum and values; throws <see cref="MessageRejectedException"/> naming the
    /// problem. The values stay in <paramref name="message"/> (no copy), which must not change afterwards.
    /// </summary>
    public static WireMessage Decode(byte[] message)
    {
        ReadOnlySpan<byte> bytes = message;
        if (bytes.Length < FixedHeader + 2 + 2 + 8) throw new MessageRejectedException($"truncated message ({bytes.Length} bytes)");
        if (!bytes[..4].SequenceEqual(Magic)) throw new MessageRejectedException("not a DaprTrain message (bad magic number)");
        if (bytes[4] != FormatVersion) throw new MessageRejectedException($"unsupported message format version {bytes[4]} (this build reads {FormatVersion})");
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(bytes[^8..]);
        if (stored != XxHash3.HashToUInt64(bytes[..^8])) throw new MessageRejectedException("checksum mismatch (corrupted or truncated message)");

        var kind = (MessageKind)bytes[5];
        if (!Enum.IsDefined(kind)) throw new MessageRejectedException($"unknown message kind {bytes[5]}");
        if (bytes[6] != Float32Encoding) throw new MessageRejectedException($"unknown payload encoding {bytes[6]}");
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
        if (payload != 4L * count) throw new MessageRejectedException($"wrong length: header declares {count} values, payload holds {payload} bytes");

        var values = MemoryMarshal.Cast<byte, float>(bytes.Slice(position, 4 * count));
        int bad = IndexOfNonFinite(values);
        if (bad >= 0) throw new MessageRejectedException($"non-finite value {values[bad]} at index {bad}");
        return new WireMessage(kind, job, generation, round, sender, samples, slice, offset, new FloatView(message, position, count).Memory);
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
        // x * 0 is 0 for every finite x and NaN for NaN and the infinities: one multiply and compare per lane.
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            var zero = System.Numerics.Vector<float>.Zero;
            int width = System.Numerics.Vector<float>.Count;
            for (; i <= values.Length - width; i += width)
            {
                if (!System.Numerics.Vector.EqualsAll(new System.Numerics.Vector<float>(values[i..]) * zero, zero)) break;
            }
        }
        for (; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i])) return i;
        }
        return -1;
    }
}
