using System.Numerics;
using System.Runtime.InteropServices;

namespace DaprTrain.Engine.Messaging;

public readonly record struct Contribution(string Sender, int SampleCount, ReadOnlyMemory<float> Values);

/// <summary>
/// Sample-weighted average of gradients, in float32, in ascending ordinal order of sender. Every replica
/// that aggregates the same set gets the same bits: the order is fixed, and the arithmetic is element-wise
/// multiply then add (never fused, in the vector and the scalar path alike), so a slice of the vector
/// (p2p-scatter) reduces to exactly the bits the whole vector (p2p) does.
/// </summary>
public static class GradientAggregator
{
    public static void WeightedAverage(IReadOnlyList<Contribution> contributions, Span<float> destination)
    {
        if (contributions.Count == 0) throw new ArgumentException("nothing to aggregate", nameof(contributions));
        var ordered = contributions.OrderBy(c => c.Sender, StringComparer.Ordinal).ToArray();
        for (int i = 1; i < ordered.Length; i++)
        {
            if (ordered[i].Sender == ordered[i - 1].Sender) throw new ArgumentException($"sender {ordered[i].Sender} contributes twice");
        }
        long total = ordered.Sum(c => (long)c.SampleCount);
        if (total <= 0) throw new ArgumentException("contributions carry no samples");

        var coefficients = new float[ordered.Length];
        for (int c = 0; c < ordered.Length; c++)
        {
            if (ordered[c].Values.Length != destination.Length)
            {
                throw new ArgumentException($"{ordered[c].Sender} sent {ordered[c].Values.Length} values, expected {destination.Length}");
            }
            coefficients[c] = (float)ordered[c].SampleCount / total;
        }

        // Block by block, so that the block of the destination stays in L1 while every contribution is added to
        // it: each contribution is read once and the destination written once, not read and written N times.
        // Within an element the order (zero, then each sender's product in turn) is the same whatever the block.
        for (int start = 0; start < destination.Length; start += BlockFloats)
        {
            int length = Math.Min(BlockFloats, destination.Length - start);
            var block = destination.Slice(start, length);
            block.Clear();
            for (int c = 0; c < ordered.Length; c++) AddScaled(block, ordered[c].Values.Span.Slice(start, length), coefficients[c]);
        }
    }

    /// <summary>8 KiB of floats: a destination block and the contribution's block fit in L1 together.</summary>
    private const int BlockFloats = 2048;

    private static void AddScaled(Span<float> accumulator, ReadOnlySpan<float> values, float coefficient)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var scale = new Vector<float>(coefficient);
            var accumulatorVectors = MemoryMarshal.Cast<float, Vector<float>>(accumulator);
            var valueVectors = MemoryMarshal.Cast<float, Vector<float>>(values);
            for (int v = 0; v < accumulatorVectors.Length; v++)
            {
                var product = valueVectors[v] * scale;
                accumulatorVectors[v] += product;
            }
            i = accumulatorVectors.Length * Vector<float>.Count;
        }
        for (; i < accumulator.Length; i++)
        {
            float product = values[i] * coefficient;
            accumulator[i] += product;
        }
    }
}
