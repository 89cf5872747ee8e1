using System.Buffers;
using System.Numerics;

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
    /// <param name="destinationHolds">
    /// The sender whose values the destination already holds (a worker's own gradient, still in its gradient buffer):
    /// they are read from there and then overwritten, which saves reading a second copy of them. Null: none.
    /// </param>
    public static unsafe void WeightedAverage(IReadOnlyList<Contribution> contributions, Span<float> destination, string? destinationHolds = null)
    {
        if (contributions.Count == 0) throw new ArgumentException("nothing to aggregate", nameof(contributions));
        var ordered = contributions.OrderBy(c => c.Sender, StringComparer.Ordinal).ToArray();
        for (int i = 1; i < ordered.Length; i++)
        {
            if (ordered[i].Sender == ordered[i - 1].Sender) throw new ArgumentException($"sender {ordered[i].Sender} contributes twice");
        }
        long total = ordered.Sum(c => (long)c.SampleCount);
        if (total <= 0) throw new ArgumentException("contributions carry no samples");

        int count = ordered.Length;
        var coefficients = new float[count];
        var handles = new MemoryHandle[count];
        var sources = new float*[count];
        fixed (float* target = destination)
        {
            try
            {
                for (int c = 0; c < count; c++)
                {
                    if (ordered[c].Values.Length != destination.Length)
                    {
                        throw new ArgumentException($"{ordered[c].Sender} sent {ordered[c].Values.Length} values, expected {destination.Length}");
                    }
                    coefficients[c] = (float)ordered[c].SampleCount / total;
                    if (ordered[c].Sender == destinationHolds)
                    {
                        sources[c] = target;
                    }
                    else
                    {
                        handles[c] = ordered[c].Values.Pin();
                        sources[c] = (float*)handles[c].Pointer;
                    }
                }
                // One pass: every contribution is read once and the destination written once; an element is summed
                // in a register (zero, then each sender's product in turn) before it is stored, so the destination
                // may be one of the inputs.
                Average(sources, coefficients, target, destination.Length);
            }
            finally
            {
                foreach (var handle in handles) handle.Dispose();
            }
        }
    }

    private static unsafe void Average(float*[] sources, float[] coefficients, float* target, int length)
    {
        int count = sources.Length;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int width = Vector<float>.Count;
            var scales = new Vector<float>[count];
            for (int c = 0; c < count; c++) scales[c] = new Vector<float>(coefficients[c]);
            for (; i <= length - width; i += width)
            {
                var sum = Vector<float>.Zero;
                for (int c = 0; c < count; c++)
                {
                    var product = Vector.Load(sources[c] + i) * scales[c];
                    sum += product;
                }
                Vector.Store(sum, target + i);
            }
        }
        for (; i < length; i++)
        {
            float sum = 0;
            for (int c = 0; c < count; c++)
            {
                float product = sources[c][i] * coefficients[c];
                sum += product;
            }
            target[i] = sum;
        }
    }
}
