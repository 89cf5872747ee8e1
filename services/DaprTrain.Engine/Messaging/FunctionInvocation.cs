using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace DaprTrain.Engine.Messaging;

/// <summary>
/// One gradient-function invocation (arXiv 2309.14139: a peer fans its batch out to functions): which worker asks, for
/// which job, generation, round and share of its batch, the round's weights and the share's sample indices. The
/// function answers with the share's mean gradient as a <see cref="WireMessage"/> of kind
/// <see cref="MessageKind.Gradient"/>, encoded and validated by <see cref="WireCodec"/> like any gradient on the broker.
/// </summary>
/// <remarks>
/// (Job, Worker, Generation, Round, Share) is the invocation's idempotency key: a retry sends the same bytes, and a
/// function instance that already answered it may answer again from its cache. Any instance gives the same gradient
/// for the same key, so it does not matter which one answers.
/// </remarks>
public sealed record FunctionInvocation(string JobId, string Worker, int Generation, long Round, int Share, long[] Samples, ReadOnlyMemory<float> Weights)
{
    public string IdempotencyKey => $"{JobId}/{Worker}/{Generation}/{Round}/{Share}";

    /// <summary>Whether <paramref name="answer"/> is this invocation's gradient: same job, generation, round and share, one value per weight.</summary>
    public string? Mismatch(WireMessage answer)
    {
        if (answer.Kind != MessageKind.Gradient) return $"the answer is a {answer.Kind} message, not a gradient";
        if (answer.JobId != JobId || answer.Generation != Generation || answer.Round != Round || answer.SliceIndex != Share)
        {
            return $"the answer is for {answer.JobId} generation {answer.Generation} round {answer.Round} share {answer.SliceIndex}, not {IdempotencyKey}";
        }
        if (answer.SampleCount != Samples.Length) return $"the answer counts {answer.SampleCount} samples; the share has {Samples.Length}";
        if (answer.Values.Length != Weights.Length) return $"the answer has {answer.Values.Length} values; the model has {Weights.Length}";
        return null;
    }
}

/// <summary>
/// The invocation's binary form, little-endian: magic "DTFN", u8 version, three reserved bytes, i32 generation, i64 round,
/// i32 share, i32 sample count, i32 weight count, u16+UTF-8 job id, u16+UTF-8 worker, the sample indices (i64), the
/// weights (f32), and an XxHash3-64 of all bytes before it. Decoding checks every field against the receiver's limits
/// and names what is wrong; nothing is allocated beyond what the body holds.
/// </summary>
public static class FunctionInvocationCodec
{
    public const byte FormatVersion = 1;
    private const int FixedHeader = 4 + 4 + 4 + 8 + 4 + 4 + 4;
    private static ReadOnlySpan<byte> Magic => "DTFN"u8;

    /// <summary>The length of an invocation of <paramref name="samples"/> indices and <paramref name="weights"/> values with identifiers of at most 256 bytes.</summary>
    public static long MaxLength(int samples, int weights) => FixedHeader + 2 * (2 + WireCodec.MaxIdentifierBytes) + 8L * samples + 4L * weights + 8;

    public static byte[] Encode(FunctionInvocation invocation)
    {
        byte[] job = Encoding.UTF8.GetBytes(invocation.JobId);
        byte[] worker = Encoding.UTF8.GetBytes(invocation.Worker);
        if (job.Length is 0 or > WireCodec.MaxIdentifierBytes || worker.Length is 0 or > WireCodec.MaxIdentifierBytes)
        {
            throw new ArgumentException("job id and worker must be 1 to 256 bytes of UTF-8.");
        }
        int length = checked(FixedHeader + 2 + job.Length + 2 + worker.Length + 8 * invocation.Samples.Length + 4 * invocation.Weights.Length + 8);
        var bytes = GC.AllocateUninitializedArray<byte>(length);
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        span[4] = FormatVersion;
        span[5] = span[6] = span[7] = 0;
        BinaryPrimitives.WriteInt32LittleEndian(span[8..], invocation.Generation);
        BinaryPrimitives.WriteInt64LittleEndian(span[12..], invocation.Round);
        BinaryPrimitives.WriteInt32LittleEndian(span[20..], invocation.Share);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], invocation.Samples.Length);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], invocation.Weights.Length);
        int position = FixedHeader;
        foreach (var identifier in new[] { job, worker })
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span[position..], (ushort)identifier.Length);
            identifier.CopyTo(span[(position + 2)..]);
            position += 2 + identifier.Length;
        }
        MemoryMarshal.AsBytes(invocation.Samples.AsSpan()).CopyTo(span[position..]);
        position += 8 * invocation.Samples.Length;
        MemoryMarshal.AsBytes(invocation.Weights.Span).CopyTo(span[position..]);
        BinaryPrimitives.WriteUInt64LittleEndian(span[^8..], XxHash3.HashToUInt64(span[..^8]));
        return bytes;
    }

    /// <summary>
    /// Decodes and checks an invocation: structure, checksum, at most <paramref name="maxSamples"/> indices each below
    /// <paramref name="sampleCount"/>, exactly <paramref name="weightCount"/> finite weights. Throws
    /// <see cref="MessageRejectedException"/> naming the problem. The weights stay in <paramref name="body"/> (no copy).
    /// </summary>
    public static FunctionInvocation Decode(byte[] body, int maxSamples, long sampleCount, int weightCount)
    {
        ReadOnlySpan<byte> bytes = body;
        if (bytes.Length < FixedHeader + 2 + 2 + 8) throw new MessageRejectedException($"truncated invocation ({bytes.Length} bytes)");
        if (!bytes[..4].SequenceEqual(Magic)) throw new MessageRejectedException("not a DaprTrain gradient-function invocation (bad magic number)");
        if (bytes[4] != FormatVersion) throw new MessageRejectedException($"unsupported invocation format version {bytes[4]} (this build reads {FormatVersion})");
        if (BinaryPrimitives.ReadUInt64LittleEndian(bytes[^8..]) != XxHash3.HashToUInt64(bytes[..^8])) throw new MessageRejectedException("checksum mismatch (corrupted or truncated invocation)");
        int generation = BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]);
        long round = BinaryPrimitives.ReadInt64LittleEndian(bytes[12..]);
        int share = BinaryPrimitives.ReadInt32LittleEndian(bytes[20..]);
        int samples = BinaryPrimitives.ReadInt32LittleEndian(bytes[24..]);
        int weights = BinaryPrimitives.ReadInt32LittleEndian(bytes[28..]);
        if (generation < 0 || round < 1 || share < 0) throw new MessageRejectedException($"generation {generation}, round {round} or share {share} out of range");
        if (samples < 1 || samples > maxSamples) throw new MessageRejectedException($"{samples} samples; a share holds 1 to {maxSamples} (the batch size)");
        if (weights != weightCount) throw new MessageRejectedException($"{weights} weights; the model has {weightCount}");
        int position = FixedHeader;
        string job = ReadIdentifier(bytes, ref position, "job id");
        string worker = ReadIdentifier(bytes, ref position, "worker");
        long expected = position + 8L * samples + 4L * weights + 8;
        if (bytes.Length != expected) throw new MessageRejectedException($"wrong length: the header declares {expected} bytes, the body holds {bytes.Length}");

        var indices = MemoryMarshal.Cast<byte, long>(bytes.Slice(position, 8 * samples)).ToArray();
        for (int i = 0; i < indices.Length; i++)
        {
            if ((ulong)indices[i] >= (ulong)sampleCount) throw new MessageRejectedException($"sample index {indices[i]} at {i} is outside the training set (0 to {sampleCount - 1})");
        }
        position += 8 * samples;
        var values = MemoryMarshal.Cast<byte, float>(bytes.Slice(position, 4 * weights));
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i])) throw new MessageRejectedException($"non-finite weight {values[i]} at index {i}");
        }
        return new FunctionInvocation(job, worker, generation, round, share, indices, new FloatView(body, position, weights).Memory);
    }

    private static string ReadIdentifier(ReadOnlySpan<byte> bytes, ref int position, string what)
    {
        if (position + 2 > bytes.Length - 8) throw new MessageRejectedException($"truncated {what}");
        int length = BinaryPrimitives.ReadUInt16LittleEndian(bytes[position..]);
        if (length is 0 or > WireCodec.MaxIdentifierBytes || position + 2 + length > bytes.Length - 8) throw new MessageRejectedException($"invalid {what} length {length}");
        string value = Encoding.UTF8.GetString(bytes.Slice(position + 2, length));
        position += 2 + length;
        return value;
    }
}
