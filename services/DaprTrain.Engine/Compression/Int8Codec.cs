using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Compression;

/// <summary>
/// Encoding 2: 8-bit uniform quantisation per block of <see cref="BlockSize"/> values. Layout: one float32 scale per block
/// (max |x| / 127), then one signed byte q per value in -127..127; a value decodes as q x scale, so its error is at most
/// scale / 2. A block of its own scale keeps one large coordinate from flattening the whole gradient to zero; 1024 values
/// a block cost 0.4% over 1 byte a value.
/// </summary>
public static class Int8Codec
{
    public const byte Encoding = 2;
    public const int BlockSize = 1024;

    /// <summary>The largest scale a decoder accepts: 127 x scale must stay finite.</summary>
    public const float MaxScale = float.MaxValue / 127f;

    public static int Blocks(int count) => (count + BlockSize - 1) / BlockSize;

    public static long EncodedBytes(int count) => 4L * Blocks(count) + count;

    public static void Encode(ReadOnlySpan<float> values, Span<byte> destination)
    {
        int blocks = Blocks(values.Length);
        var scales = destination[..(4 * blocks)];
        var codes = MemoryMarshal.Cast<byte, sbyte>(destination.Slice(4 * blocks, values.Length));
        for (int b = 0; b < blocks; b++)
        {
            int start = b * BlockSize;
            var block = values.Slice(start, Math.Min(BlockSize, values.Length - start));
            float max = Math.Abs(TensorPrimitives.MaxMagnitude(block));
            float scale = max / 127f;
            BinaryPrimitives.WriteSingleLittleEndian(scales[(4 * b)..], scale);
            Quantise(block, scale == 0 ? 0 : 127f / max, codes.Slice(start, block.Length));
        }
    }

    private static void Quantise(ReadOnlySpan<float> block, float inverse, Span<sbyte> codes)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<float>.Count * 4 == Vector<sbyte>.Count)
        {
            int width = Vector<sbyte>.Count;
            var scale = new Vector<float>(inverse);
            var high = new Vector<float>(127f);
            var low = new Vector<float>(-127f);
            var floats = MemoryMarshal.Cast<float, Vector<float>>(block);
            var output = MemoryMarshal.Cast<sbyte, Vector<sbyte>>(codes);
            for (int v = 0; v < output.Length; v++)
            {
                var a = Round(floats[4 * v] * scale, low, high);
                var b = Round(floats[4 * v + 1] * scale, low, high);
                var c = Round(floats[4 * v + 2] * scale, low, high);
                var d = Round(floats[4 * v + 3] * scale, low, high);
                output[v] = Vector.Narrow(Vector.Narrow(a, b), Vector.Narrow(c, d));
            }
            i = output.Length * width;
        }
        for (; i < block.Length; i++) codes[i] = (sbyte)Math.Clamp(MathF.Round(block[i] * inverse), -127f, 127f);

        static Vector<int> Round(Vector<float> x, Vector<float> low, Vector<float> high) =>
            Vector.ConvertToInt32(Vector.Round(Vector.Min(Vector.Max(x, low), high)));
    }

    /// <summary>Checks the scales (finite, 0 to <see cref="MaxScale"/>) and the codes (-127 to 127), then writes q x scale.</summary>
    public static void Decode(ReadOnlySpan<byte> payload, Span<float> destination)
    {
        int count = destination.Length;
        int blocks = Blocks(count);
        if (payload.Length != EncodedBytes(count)) throw new MessageRejectedException($"wrong length: int8 payload of {payload.Length} bytes for {count} values");
        var codes = MemoryMarshal.Cast<byte, sbyte>(payload.Slice(4 * blocks, count));
        int bad = codes.IndexOf(sbyte.MinValue);
        if (bad >= 0) throw new MessageRejectedException($"int8 code -128 at index {bad} (codes are -127..127)");
        for (int b = 0; b < blocks; b++)
        {
            float scale = BinaryPrimitives.ReadSingleLittleEndian(payload[(4 * b)..]);
            if (!(scale >= 0 && scale <= MaxScale)) throw new MessageRejectedException($"int8 block {b} has scale {scale}; scales are finite, 0 to {MaxScale}");
            int start = b * BlockSize;
            int n = Math.Min(BlockSize, count - start);
            Dequantise(codes.Slice(start, n), scale, destination.Slice(start, n));
        }
    }

    private static void Dequantise(ReadOnlySpan<sbyte> codes, float scale, Span<float> destination)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<float>.Count * 4 == Vector<sbyte>.Count)
        {
            var factor = new Vector<float>(scale);
            var input = MemoryMarshal.Cast<sbyte, Vector<sbyte>>(codes);
            var output = MemoryMarshal.Cast<float, Vector<float>>(destination);
            for (int v = 0; v < input.Length; v++)
            {
                Vector.Widen(input[v], out Vector<short> lo, out Vector<short> hi);
                Vector.Widen(lo, out Vector<int> a, out Vector<int> b);
                Vector.Widen(hi, out Vector<int> c, out Vector<int> d);
                output[4 * v] = Vector.ConvertToSingle(a) * factor;
                output[4 * v + 1] = Vector.ConvertToSingle(b) * factor;
                output[4 * v + 2] = Vector.ConvertToSingle(c) * factor;
                output[4 * v + 3] = Vector.ConvertToSingle(d) * factor;
            }
            i = input.Length * Vector<sbyte>.Count;
        }
        // The same single multiply as the vector path: every replica decodes the same bits, whichever path it takes.
        for (; i < codes.Length; i++) destination[i] = codes[i] * scale;
    }
}
