using System.Buffers.Binary;
using System.Numerics.Tensors;
using DaprTrain.Engine.Messaging;
using DaprTrain.Training;

namespace DaprTrain.Engine.Compression;

/// <summary>
/// Encoding 4: QSGD (Alistarh et al., NeurIPS 2017) with s levels per bucket of <see cref="BucketSize"/> values.
/// A value x of a bucket with L2 norm ||v|| is sent as sign(x) x l, where l in 0..s rounds |x| / ||v|| x s up or down at
/// random with the probabilities that make it unbiased; it decodes as code x (||v|| / s). Layout: u16 s, one float32
/// norm per bucket, then the codes: two's-complement nibbles (two a byte, low first) when s &lt;= 7, else one signed
/// byte each. (QSGD's Elias coding of the codes would be smaller still; fixed widths keep decoding branch-free.)
/// </summary>
public static class QsgdCodec
{
    public const byte Encoding = 4;
    public const int BucketSize = 512;
    public const int MaxLevels = 127;

    public static int Buckets(int count) => (count + BucketSize - 1) / BucketSize;

    public static bool Nibbles(int levels) => levels <= 7;

    public static long EncodedBytes(int count, int levels) => 2 + 4L * Buckets(count) + (Nibbles(levels) ? (count + 1L) / 2 : count);

    /// <param name="seed">The stochastic rounding's random stream (the sender derives it from the job's seed, itself and the round).</param>
    public static void Encode(ReadOnlySpan<float> values, int levels, ulong seed, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(levels, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(levels, MaxLevels);
        int buckets = Buckets(values.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)levels);
        var norms = destination.Slice(2, 4 * buckets);
        var codes = destination[(2 + 4 * buckets)..];
        if (Nibbles(levels)) codes[..((values.Length + 1) / 2)].Clear();
        var random = new SplitMix64(seed);
        for (int b = 0; b < buckets; b++)
        {
            int start = b * BucketSize;
            var bucket = values.Slice(start, Math.Min(BucketSize, values.Length - start));
            float norm = Norm(bucket);
            BinaryPrimitives.WriteSingleLittleEndian(norms[(4 * b)..], norm);
            float toLevels = norm == 0 ? 0 : levels / norm;
            for (int i = 0; i < bucket.Length; i++)
            {
                float r = Math.Abs(bucket[i]) * toLevels;
                int l = (int)r;
                if (random.NextSingle() < r - l) l++;
                l = Math.Min(l, levels);
                int code = bucket[i] < 0 ? -l : l;
                int at = start + i;
                if (Nibbles(levels)) codes[at >> 1] |= (byte)((code & 0xF) << (4 * (at & 1)));
                else codes[at] = (byte)(sbyte)code;
            }
        }
    }

    /// <summary>The bucket's L2 norm; in double when float32 would overflow (values of 1e19 and more), clamped to a finite float.</summary>
    private static float Norm(ReadOnlySpan<float> bucket)
    {
        float norm = TensorPrimitives.Norm(bucket);
        if (float.IsFinite(norm)) return norm;
        double sum = 0;
        foreach (float x in bucket) sum += (double)x * x;
        return (float)Math.Min(Math.Sqrt(sum), float.MaxValue);
    }

    /// <summary>Checks s (1..127), the norms (finite, non-negative) and every code (|code| &lt;= s; a spare nibble zero), then writes code x norm / s.</summary>
    public static void Decode(ReadOnlySpan<byte> payload, Span<float> destination)
    {
        int count = destination.Length;
        if (payload.Length < 2) throw new MessageRejectedException($"truncated qsgd payload ({payload.Length} bytes)");
        int levels = BinaryPrimitives.ReadUInt16LittleEndian(payload);
        if (levels is < 1 or > MaxLevels) throw new MessageRejectedException($"qsgd levels {levels} outside 1..{MaxLevels}");
        if (payload.Length != EncodedBytes(count, levels)) throw new MessageRejectedException($"wrong length: qsgd payload of {payload.Length} bytes for {count} values at {levels} levels");
        int buckets = Buckets(count);
        var codes = payload[(2 + 4 * buckets)..];
        bool nibbles = Nibbles(levels);
        if (nibbles && (count & 1) == 1 && codes[^1] >> 4 != 0) throw new MessageRejectedException("qsgd: the spare nibble after the last value is not zero");
        for (int b = 0; b < buckets; b++)
        {
            float norm = BinaryPrimitives.ReadSingleLittleEndian(payload[(2 + 4 * b)..]);
            if (!(norm >= 0 && float.IsFinite(norm))) throw new MessageRejectedException($"qsgd bucket {b} has norm {norm}; norms are finite and non-negative");
            // |code| <= s, so |code x (norm / s)| <= norm: finite.
            float step = norm / levels;
            int start = b * BucketSize;
            int end = Math.Min(start + BucketSize, count);
            for (int at = start; at < end; at++)
            {
                int code = nibbles ? (sbyte)(codes[at >> 1] >> (4 * (at & 1)) << 4) >> 4 : (sbyte)codes[at];
                if (code < -levels || code > levels) throw new MessageRejectedException($"qsgd code {code} at index {at} outside -{levels}..{levels}");
                destination[at] = code * step;
            }
        }
    }
}
