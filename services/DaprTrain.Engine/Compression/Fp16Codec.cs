using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Compression;

/// <summary>Encoding 1: every value as an IEEE half (2 bytes, little-endian). Lossless for values a half represents.</summary>
public static class Fp16Codec
{
    public const byte Encoding = 1;

    /// <summary>The largest finite half; larger magnitudes are clamped to it, never sent as infinity.</summary>
    public const float MaxHalf = 65504f;

    public static int EncodedBytes(int count) => checked(2 * count);

    public static void Encode(ReadOnlySpan<float> values, Span<byte> destination)
    {
        var halves = MemoryMarshal.Cast<byte, Half>(destination[..EncodedBytes(values.Length)]);
        if (values.Length == 0) return;
        // One read pass to learn whether any value is out of range; the common case then converts in one vectorised pass.
        if (Math.Abs(TensorPrimitives.MaxMagnitude(values)) <= MaxHalf)
        {
            TensorPrimitives.ConvertToHalf(values, halves);
            return;
        }
        Span<float> block = stackalloc float[256];
        for (int i = 0; i < values.Length; i += block.Length)
        {
            int n = Math.Min(block.Length, values.Length - i);
            TensorPrimitives.Clamp(values.Slice(i, n), -MaxHalf, MaxHalf, block[..n]);
            TensorPrimitives.ConvertToHalf(block[..n], halves.Slice(i, n));
        }
    }

    /// <summary>Checks that the payload is <paramref name="count"/> finite halves and widens them into <paramref name="destination"/>.</summary>
    public static void Decode(ReadOnlySpan<byte> payload, Span<float> destination)
    {
        int count = destination.Length;
        if (payload.Length != EncodedBytes(count)) throw new MessageRejectedException($"wrong length: fp16 payload of {payload.Length} bytes for {count} values");
        var bits = MemoryMarshal.Cast<byte, ushort>(payload);
        int bad = IndexOfNonFinite(bits);
        if (bad >= 0) throw new MessageRejectedException($"non-finite fp16 value (bits 0x{bits[bad]:x4}) at index {bad}");
        TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(payload), destination);
    }

    /// <summary>A half is infinite or NaN when its exponent bits are all ones.</summary>
    private static int IndexOfNonFinite(ReadOnlySpan<ushort> bits)
    {
        const ushort exponent = 0x7C00;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var mask = new Vector<ushort>(exponent);
            var vectors = MemoryMarshal.Cast<ushort, Vector<ushort>>(bits);
            for (int v = 0; v < vectors.Length; v++)
            {
                if (Vector.EqualsAny(vectors[v] & mask, mask)) return ScalarIndex(bits, v * Vector<ushort>.Count);
            }
            i = vectors.Length * Vector<ushort>.Count;
        }
        return ScalarIndex(bits, i);

        static int ScalarIndex(ReadOnlySpan<ushort> bits, int from)
        {
            for (int k = from; k < bits.Length; k++) if ((bits[k] & exponent) == exponent) return k;
            return -1;
        }
    }
}
