using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Compression;

/// <summary>
/// Encoding 5: a sparse vector with half-precision values and delta-coded indices, about 3 bytes a non-zero where top-k's
/// (index, value) pairs take 8. It carries what p2p-scatter's owner sends under top-k: the whole support of its reduced
/// slice, the union of up to N senders' top-k sets, which as top-k pairs would cost up to N times the first phase.
/// <para>
/// Layout: u32 k; i8 e, the scale exponent; k IEEE halves, the values divided by 2^e; then the k indices as gaps (the
/// first index itself, then each index minus the previous one minus 1), each in LEB128 (7 bits a byte, low first, at most
/// 5 bytes, no superfluous zero byte), up to the end of the payload. A value decodes to half x 2^e; every other value is
/// zero. The scale puts the largest magnitude in [2^14, 2^15), so the halves keep 11 significant bits of every value
/// within 2^-24 of the largest, and never overflow.
/// </para>
/// </summary>
public static class SparseHalfCodec
{
    public const byte Encoding = 5;

    /// <summary>The smallest exponent: 2^-126 is float32's smallest normal, so the scale itself is exact.</summary>
    public const int MinExponent = -126;

    /// <summary>The largest exponent: 65504 x 2^111 is below float32's largest value, so no decoded value overflows.</summary>
    public const int MaxExponent = 111;

    private const int MaxVarintBytes = 5;

    /// <summary>Writes the positions of the non-zero values (±0 are zero) into <paramref name="indices"/>, ascending; returns how many.</summary>
    public static int Support(ReadOnlySpan<float> values, Span<int> indices)
    {
        int n = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // Most of a reduced top-k slice is zero: a vector of zeros is skipped with one comparison.
            int width = Vector<float>.Count;
            for (; i <= values.Length - width; i += width)
            {
                if (Vector.EqualsAll(new Vector<float>(values.Slice(i, width)), Vector<float>.Zero)) continue;
                for (int j = i; j < i + width; j++) if (values[j] != 0) indices[n++] = j;
            }
        }
        for (; i < values.Length; i++) if (values[i] != 0) indices[n++] = i;
        return n;
    }

    /// <summary>The payload's length for these (ascending) indices.</summary>
    public static long EncodedBytes(ReadOnlySpan<int> indices)
    {
        long bytes = 4 + 1 + 2L * indices.Length;
        int previous = -1;
        foreach (int index in indices)
        {
            bytes += VarintBytes((uint)(index - previous - 1));
            previous = index;
        }
        return bytes;
    }

    /// <summary>
    /// Encodes the values of <paramref name="values"/> at <paramref name="indices"/> (ascending, distinct, finite values)
    /// into <paramref name="destination"/>, which is <see cref="EncodedBytes"/> long.
    /// </summary>
    public static void Encode(ReadOnlySpan<float> values, ReadOnlySpan<int> indices, Span<byte> destination)
    {
        int k = indices.Length;
        float largest = 0;
        foreach (int index in indices) largest = Math.Max(largest, Math.Abs(values[index]));
        int exponent = largest == 0 ? 0 : Math.Clamp(MathF.ILogB(largest) - 14, MinExponent, MaxExponent);
        float scale = MathF.ScaleB(1f, -exponent);
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)k);
        destination[4] = unchecked((byte)(sbyte)exponent);
        var halves = MemoryMarshal.Cast<byte, Half>(destination.Slice(5, 2 * k));
        for (int j = 0; j < k; j++)
        {
            // Exact: a power of two times a float stays exact unless it leaves the normal range; the clamp only bites
            // when the exponent itself was clamped (values beyond 2^126, a run that has diverged anyway).
            halves[j] = (Half)Math.Clamp(values[indices[j]] * scale, -Fp16Codec.MaxHalf, Fp16Codec.MaxHalf);
        }
        int position = 5 + 2 * k;
        int previous = -1;
        foreach (int index in indices)
        {
            uint gap = (uint)(index - previous - 1);
            previous = index;
            while (gap >= 0x80)
            {
                destination[position++] = (byte)(gap | 0x80);
                gap >>= 7;
            }
            destination[position++] = (byte)gap;
        }
        if (position != destination.Length) throw new InvalidOperationException($"sparse-fp16 wrote {position} bytes of {destination.Length}");
    }

    /// <summary>
    /// Checks k (at most the value count), the exponent (within <see cref="MinExponent"/>..<see cref="MaxExponent"/>), the
    /// halves (finite), the indices (well-formed LEB128, below the count, strictly increasing by construction, and ending
    /// exactly at the payload's end), then writes the sparse vector into <paramref name="destination"/>.
    /// </summary>
    public static void Decode(ReadOnlySpan<byte> payload, Span<float> destination)
    {
        int count = destination.Length;
        if (payload.Length < 5) throw new MessageRejectedException($"truncated sparse-fp16 payload ({payload.Length} bytes)");
        uint kept = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        if (kept > (uint)count) throw new MessageRejectedException($"sparse-fp16 message keeps {kept} values of {count}");
        int k = (int)kept;
        int exponent = (sbyte)payload[4];
        if (exponent is < MinExponent or > MaxExponent) throw new MessageRejectedException($"sparse-fp16 scale exponent {exponent} is outside {MinExponent}..{MaxExponent}");
        // Each value takes 2 bytes and each index at least 1.
        if (payload.Length < 5 + 3L * k) throw new MessageRejectedException($"wrong length: sparse-fp16 payload of {payload.Length} bytes for {k} kept values");
        var bits = MemoryMarshal.Cast<byte, ushort>(payload.Slice(5, 2 * k));
        for (int j = 0; j < k; j++)
        {
            if ((bits[j] & 0x7C00) == 0x7C00) throw new MessageRejectedException($"non-finite sparse-fp16 value (bits 0x{bits[j]:x4}) at position {j}");
        }
        // The indices are read and checked before anything is written, so a refused payload leaves the destination as the
        // caller's pool gave it (it is never read then); the decoded values are written in a second pass.
        var gaps = payload[(5 + 2 * k)..];
        int position = 0;
        long previous = -1;
        for (int j = 0; j < k; j++)
        {
            long index = previous + 1 + ReadVarint(gaps, ref position, j);
            if (index >= count) throw new MessageRejectedException($"sparse-fp16 index {index} at position {j} is outside 0..{count - 1}");
            previous = index;
        }
        if (position != gaps.Length) throw new MessageRejectedException($"sparse-fp16 payload has {gaps.Length - position} bytes after its {k} indices");

        destination.Clear();
        var halves = MemoryMarshal.Cast<byte, Half>(payload.Slice(5, 2 * k));
        float scale = MathF.ScaleB(1f, exponent);
        position = 0;
        previous = -1;
        for (int j = 0; j < k; j++)
        {
            long index = previous + 1 + ReadVarint(gaps, ref position, j);
            destination[(int)index] = (float)halves[j] * scale;
            previous = index;
        }
    }

    private static long ReadVarint(ReadOnlySpan<byte> bytes, ref int position, int at)
    {
        ulong value = 0;
        for (int b = 0; b < MaxVarintBytes; b++)
        {
            if (position >= bytes.Length) throw new MessageRejectedException($"sparse-fp16 index {at} is truncated");
            byte next = bytes[position++];
            value |= (ulong)(next & 0x7F) << (7 * b);
            if ((next & 0x80) == 0)
            {
                if (next == 0 && b > 0) throw new MessageRejectedException($"sparse-fp16 index {at} has a superfluous zero byte");
                if (value > uint.MaxValue) throw new MessageRejectedException($"sparse-fp16 index {at} does not fit 32 bits");
                return (long)value;
            }
        }
        throw new MessageRejectedException($"sparse-fp16 index {at} is longer than {MaxVarintBytes} bytes");
    }

    private static int VarintBytes(uint value) => value < 1u << 7 ? 1 : value < 1u << 14 ? 2 : value < 1u << 21 ? 3 : value < 1u << 28 ? 4 : 5;
}
