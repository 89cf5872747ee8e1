using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Compression;

/// <summary>
/// Encoding 3: a sparse vector. Layout: u32 k, then k u32 indices (strictly increasing, below the header's value
/// count), then k float32 values (finite); every other value is zero. Top-k fills it with the k largest magnitudes.
/// </summary>
public static class TopKCodec
{
    public const byte Encoding = 3;

    public static long EncodedBytes(int kept) => 4 + 8L * kept;

    /// <summary>
    /// The <paramref name="kept"/> values of largest magnitude, found by selection (quickselect on the magnitudes, O(n)
    /// on average), not by sorting. Ties at the threshold go to the lower index, so the choice is a function of the values.
    /// </summary>
    /// <param name="scratch">At least as long as <paramref name="values"/>; overwritten.</param>
    public static void Encode(ReadOnlySpan<float> values, int kept, Span<byte> destination, Span<float> scratch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(kept);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(kept, values.Length);
        if (kept == 0)
        {
            Write(values, destination, 0, float.PositiveInfinity, 0);
            return;
        }
        var magnitudes = scratch[..values.Length];
        TensorPrimitives.Abs(values, magnitudes);
        float threshold = Selection.NthLargest(magnitudes, kept - 1);
        int above = CountAbove(values, threshold);
        Write(values, destination, kept, threshold, kept - above);
    }

    /// <summary>Writes k, then the indices and values of |x| &gt; threshold and of the first <paramref name="ties"/> with |x| = threshold.</summary>
    private static void Write(ReadOnlySpan<float> values, Span<byte> destination, int kept, float threshold, int ties)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)kept);
        var indices = MemoryMarshal.Cast<byte, uint>(destination.Slice(4, 4 * kept));
        var keptValues = MemoryMarshal.Cast<byte, float>(destination.Slice(4 + 4 * kept, 4 * kept));
        int n = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // Most values are below the threshold: a vector of them is skipped with one comparison.
            var limit = new Vector<float>(threshold);
            int width = Vector<float>.Count;
            for (; i <= values.Length - width && n < kept; i += width)
            {
                var v = Vector.Abs(new Vector<float>(values.Slice(i, width)));
                if (Vector.GreaterThanOrEqualAny(v, limit)) Take(values, i, i + width, threshold, ref ties, indices, keptValues, ref n);
            }
        }
        Take(values, i, values.Length, threshold, ref ties, indices, keptValues, ref n);
        if (n != kept) throw new InvalidOperationException($"top-k selected {n} values where {kept} were to be kept");
    }

    private static void Take(ReadOnlySpan<float> values, int from, int to, float threshold, ref int ties, Span<uint> indices, Span<float> keptValues, ref int n)
    {
        for (int j = from; j < to && n < indices.Length; j++)
        {
            float a = Math.Abs(values[j]);
            if (a > threshold || (a == threshold && ties > 0))
            {
                if (a == threshold) ties--;
                indices[n] = (uint)j;
                keptValues[n] = values[j];
                n++;
            }
        }
    }

    private static int CountAbove(ReadOnlySpan<float> values, float threshold) => values.Length - CountAtMost(values, threshold);

    /// <summary>The values with |x| &lt;= threshold.</summary>
    private static int CountAtMost(ReadOnlySpan<float> values, float threshold)
    {
        int count = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var limit = new Vector<float>(threshold);
            var sum = Vector<int>.Zero;
            int width = Vector<float>.Count;
            for (; i <= values.Length - width; i += width)
            {
                // A true lane is -1: subtracting counts it.
                sum -= Vector.LessThanOrEqual(Vector.Abs(new Vector<float>(values.Slice(i, width))), limit);
            }
            count = Vector.Sum(sum);
        }
        for (; i < values.Length; i++) if (Math.Abs(values[i]) <= threshold) count++;
        return count;
    }

    /// <summary>
    /// Checks k (at most the value count, and the payload exactly 4 + 8k bytes), the indices (below the count, strictly
    /// increasing: no index twice) and the values (finite), then writes the sparse vector into <paramref name="destination"/>.
    /// </summary>
    public static void Decode(ReadOnlySpan<byte> payload, Span<float> destination)
    {
        int count = destination.Length;
        if (payload.Length < 4) throw new MessageRejectedException($"truncated top-k payload ({payload.Length} bytes)");
        uint kept = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        if (kept > (uint)count) throw new MessageRejectedException($"top-k message keeps {kept} values of {count}");
        if (payload.Length != EncodedBytes((int)kept)) throw new MessageRejectedException($"wrong length: top-k payload of {payload.Length} bytes for {kept} kept values");
        var indices = MemoryMarshal.Cast<byte, uint>(payload.Slice(4, 4 * (int)kept));
        var values = MemoryMarshal.Cast<byte, float>(payload.Slice(4 + 4 * (int)kept, 4 * (int)kept));
        long previous = -1;
        for (int j = 0; j < indices.Length; j++)
        {
            uint index = indices[j];
            if (index >= (uint)count) throw new MessageRejectedException($"top-k index {index} at position {j} is outside 0..{count - 1}");
            if (index <= previous) throw new MessageRejectedException($"top-k indices not strictly increasing: {index} after {previous} at position {j}");
            previous = index;
        }
        for (int j = 0; j < values.Length; j++)
        {
            if (!float.IsFinite(values[j])) throw new MessageRejectedException($"non-finite top-k value {values[j]} at position {j}");
        }
        destination.Clear();
        for (int j = 0; j < indices.Length; j++) destination[(int)indices[j]] = values[j];
    }
}

/// <summary>Selection without sorting: the n-th largest value (nth_element), deterministic for given input.</summary>
public static class Selection
{
    /// <summary>
    /// The value at position <paramref name="n"/> (0-based) of <paramref name="values"/> in descending order. Reorders
    /// <paramref name="values"/>. Quickselect with a median-of-three pivot; after 2 log2(length) + 8 partitions that did
    /// not narrow the range (an adversarial input), the rest is sorted, so the worst case stays O(n log n).
    /// </summary>
    public static float NthLargest(Span<float> values, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(n, values.Length);
        int lo = 0, hi = values.Length - 1;
        int budget = 2 * BitOperations.Log2((uint)values.Length) + 8;
        while (hi > lo)
        {
            if (budget-- == 0)
            {
                var rest = values[lo..(hi + 1)];
                rest.Sort();
                // Ascending: the n-th largest of the whole is at this position of the sorted rest.
                return rest[hi - n];
            }
            int mid = lo + (hi - lo) / 2;
            float pivot = Median(values[lo], values[mid], values[hi]);
            int i = lo, j = hi;
            while (i <= j)
            {
                while (values[i] > pivot) i++;
                while (values[j] < pivot) j--;
                if (i <= j)
                {
                    (values[i], values[j]) = (values[j], values[i]);
                    i++;
                    j--;
                }
            }
            // values[lo..j] >= pivot >= values[i..hi]; between them, pivot itself.
            if (n <= j) hi = j;
            else if (n >= i) lo = i;
            else return values[n];
        }
        return values[n];
    }

    private static float Median(float a, float b, float c) => Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));
}
