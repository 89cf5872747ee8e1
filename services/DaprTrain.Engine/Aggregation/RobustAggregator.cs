using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Aggregation;

/// <summary>What an aggregation did: the rule that was applied, whether it fell back to the median, and (Krum family) whom it chose.</summary>
public sealed record AggregationOutcome(AggregationRule Applied, string? FallbackReason, IReadOnlyList<string> Selected)
{
    public bool FellBack => FallbackReason is not null;
}

/// <summary>
/// Byzantine-robust aggregation of one round's gradients (or of one slice of them, for the coordinate-wise rules).
/// <para>
/// Replicas stay bit-identical: contributions are taken in ascending ordinal order of sender; every coordinate goes
/// through the same vector code (a tail shorter than a vector is padded and run through it too, so a slice (p2p-scatter)
/// gives the bits the whole vector (p2p) gives at those coordinates whatever its offset); sums run in a fixed order; ties
/// in Krum scores go to the lower sender.
/// </para>
/// <para>
/// Robust rules count every contribution once, whatever its SampleCount: a weight is exactly what a Byzantine sender would
/// inflate, and the papers' rules are unweighted. (The mean stays sample-weighted, as before.)
/// </para>
/// <para>
/// Coordinate-wise rules sort each coordinate's n values with a sorting network (Batcher's odd-even merge sort, pruned to
/// n) applied to whole vectors with min/max, Vector&lt;float&gt;.Count coordinates at once, instead of sorting or
/// selecting per coordinate: for the small n of a job (up to 64) a branch-free network is faster than quickselect's
/// data-dependent branches. For the median and the trimmed mean the network is unrolled into code made for each n, so the
/// values stay in registers (<see cref="CoordinateKernels"/>). Krum's pairwise distances are computed block by block (every pair over a block of 1,024
/// coordinates while the block is in cache), so the inputs are read from memory once, as the mean reads them.
/// </para>
/// </summary>
public static class RobustAggregator
{
    private const int DistanceBlock = 1024;

    /// <summary>
    /// Aggregates into <paramref name="destination"/> by <paramref name="rule"/> (already resolved for the job, see
    /// <see cref="AggregationRule.ForWorkers"/>). With fewer contributions than the rule needs for its f (workers left out
    /// of a round, or dead), it takes the coordinate-wise median of what arrived, which needs no f, and says so in the outcome.
    /// </summary>
    /// <param name="destinationHolds">For the mean only (see <see cref="GradientAggregator.WeightedAverage"/>); robust rules read every contribution from its own values.</param>
    public static AggregationOutcome Aggregate(AggregationRule rule, IReadOnlyList<Contribution> contributions, Span<float> destination, string? destinationHolds = null)
    {
        if (rule.IsMean)
        {
            GradientAggregator.WeightedAverage(contributions, destination, destinationHolds);
            return new AggregationOutcome(rule, null, []);
        }
        var ordered = Ordered(contributions, destination.Length);
        string? fallback = rule.Problem(ordered.Length);
        var applied = fallback is null ? rule : new AggregationRule(AggregatorKind.Median);
        if (fallback is not null) fallback = $"{fallback}: took the coordinate-wise median of the {ordered.Length} contributions instead";
        IReadOnlyList<string> selected = [];
        switch (applied.Kind)
        {
            case AggregatorKind.Median:
                CoordinateWise(ordered, destination, Reduction.Median, 0);
                break;
            case AggregatorKind.TrimmedMean:
                CoordinateWise(ordered, destination, Reduction.Trimmed, applied.Tolerated);
                break;
            case AggregatorKind.Krum:
            case AggregatorKind.MultiKrum:
            {
                int m = applied.Kind == AggregatorKind.Krum ? 1 : applied.M ?? ordered.Length - applied.Tolerated;
                var chosen = KrumSelect(ordered, applied.Tolerated, m);
                selected = chosen.Select(i => ordered[i].Sender).ToList();
                if (chosen.Length == 1) ordered[chosen[0]].Values.Span.CopyTo(destination);
                else GradientAggregator.WeightedAverage(chosen.Select(i => ordered[i] with { SampleCount = 1 }).ToList(), destination);
                break;
            }
            case AggregatorKind.Bulyan:
            {
                var chosen = BulyanSelect(ordered, applied.Tolerated);
                var subset = chosen.Select(i => ordered[i]).ToArray();
                selected = subset.Select(c => c.Sender).ToList();
                CoordinateWise(subset, destination, Reduction.ClosestToMedian, subset.Length - 2 * applied.Tolerated);
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(rule), rule.Kind, "no such aggregator");
        }
        return new AggregationOutcome(applied, fallback, selected);
    }

    /// <summary>The Krum score of each contribution (in ordinal order of sender): the sum of its n - f - 2 smallest squared distances to the others.</summary>
    public static double[] KrumScores(IReadOnlyList<Contribution> contributions, int f)
    {
        var ordered = Ordered(contributions, contributions[0].Values.Length);
        var distances = SquaredDistances(ordered);
        return Scores(distances, ordered.Length, Enumerable.Range(0, ordered.Length).ToArray(), f);
    }

    private static Contribution[] Ordered(IReadOnlyList<Contribution> contributions, int length)
    {
        if (contributions.Count == 0) throw new ArgumentException("nothing to aggregate", nameof(contributions));
        var ordered = contributions.OrderBy(c => c.Sender, StringComparer.Ordinal).ToArray();
        for (int i = 0; i < ordered.Length; i++)
        {
            if (i > 0 && ordered[i].Sender == ordered[i - 1].Sender) throw new ArgumentException($"sender {ordered[i].Sender} contributes twice");
            if (ordered[i].Values.Length != length) throw new ArgumentException($"{ordered[i].Sender} sent {ordered[i].Values.Length} values, expected {length}");
        }
        return ordered;
    }

    // ---- Krum, Multi-Krum, Bulyan's selection -------------------------------------------------------------------------

    private static int[] KrumSelect(Contribution[] ordered, int f, int m)
    {
        int n = ordered.Length;
        var all = Enumerable.Range(0, n).ToArray();
        var scores = Scores(SquaredDistances(ordered), n, all, f);
        // The m best scores; a tie goes to the lower sender (the stable order of the ordinal sort), then back in sender order.
        return [.. all.OrderBy(i => scores[i]).ThenBy(i => i).Take(m).Order()];
    }

    /// <summary>Bulyan's first phase: Krum applied again and again to what is left, until n - 2f are chosen.</summary>
    private static int[] BulyanSelect(Contribution[] ordered, int f)
    {
        int n = ordered.Length;
        var distances = SquaredDistances(ordered);
        var remaining = Enumerable.Range(0, n).ToList();
        var chosen = new List<int>();
        while (chosen.Count < n - 2 * f)
        {
            var scores = Scores(distances, n, [.. remaining], f);
            int best = 0;
            for (int r = 1; r < remaining.Count; r++) if (scores[r] < scores[best]) best = r;
            chosen.Add(remaining[best]);
            remaining.RemoveAt(best);
        }
        chosen.Sort();
        return [.. chosen];
    }

    /// <summary>Scores of the members of <paramref name="set"/> among themselves (indexed like <paramref name="set"/>).</summary>
    private static double[] Scores(double[] distances, int n, int[] set, int f)
    {
        int neighbours = Math.Max(0, set.Length - f - 2);
        var scores = new double[set.Length];
        var row = new double[Math.Max(0, set.Length - 1)];
        for (int a = 0; a < set.Length; a++)
        {
            int k = 0;
            for (int b = 0; b < set.Length; b++) if (b != a) row[k++] = distances[set[a] * n + set[b]];
            Array.Sort(row);
            double score = 0;
            for (int j = 0; j < neighbours; j++) score += row[j];
            scores[a] = score;
        }
        return scores;
    }

    /// <summary>All pairwise squared Euclidean distances, n x n, block by block so each block of every input is read once from memory.</summary>
    private static unsafe double[] SquaredDistances(Contribution[] ordered)
    {
        int n = ordered.Length;
        int length = ordered[0].Values.Length;
        var distances = new double[n * n];
        var handles = new MemoryHandle[n];
        var sources = new float*[n];
        try
        {
            for (int c = 0; c < n; c++)
            {
                handles[c] = ordered[c].Values.Pin();
                sources[c] = (float*)handles[c].Pointer;
            }
            for (int start = 0; start < length; start += DistanceBlock)
            {
                int count = Math.Min(DistanceBlock, length - start);
                for (int a = 0; a < n; a++)
                {
                    for (int b = a + 1; b < n; b++) distances[a * n + b] += PartialSquaredDistance(sources[a] + start, sources[b] + start, count);
                }
            }
        }
        finally
        {
            foreach (var handle in handles) handle.Dispose();
        }
        for (int a = 0; a < n; a++)
        {
            for (int b = a + 1; b < n; b++) distances[b * n + a] = distances[a * n + b];
        }
        return distances;
    }

    /// <summary>
    /// The squared distance over one block: four accumulators (an add waits for the previous one, so one accumulator would
    /// run at the adder's latency, not its throughput), summed in a fixed order. Fused multiply-add is correctly rounded
    /// wherever it runs (in hardware or in software), so every platform gets the same bits.
    /// </summary>
    private static unsafe double PartialSquaredDistance(float* x, float* y, int count)
    {
        int i = 0;
        double sum = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int width = Vector<float>.Count;
            Vector<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i <= count - 4 * width; i += 4 * width)
            {
                var d0 = Vector.Load(x + i) - Vector.Load(y + i);
                var d1 = Vector.Load(x + i + width) - Vector.Load(y + i + width);
                var d2 = Vector.Load(x + i + 2 * width) - Vector.Load(y + i + 2 * width);
                var d3 = Vector.Load(x + i + 3 * width) - Vector.Load(y + i + 3 * width);
                a0 = Vector.FusedMultiplyAdd(d0, d0, a0);
                a1 = Vector.FusedMultiplyAdd(d1, d1, a1);
                a2 = Vector.FusedMultiplyAdd(d2, d2, a2);
                a3 = Vector.FusedMultiplyAdd(d3, d3, a3);
            }
            for (; i <= count - width; i += width)
            {
                var d = Vector.Load(x + i) - Vector.Load(y + i);
                a0 = Vector.FusedMultiplyAdd(d, d, a0);
            }
            var total = (a0 + a1) + (a2 + a3);
            for (int lane = 0; lane < width; lane++) sum += total[lane];
        }
        for (; i < count; i++)
        {
            float difference = x[i] - y[i];
            sum += difference * difference;
        }
        return sum;
    }

    // ---- Coordinate-wise rules ----------------------------------------------------------------------------------------

    private enum Reduction
    {
        Median,
        Trimmed,
        ClosestToMedian,
    }

    /// <summary>
    /// Sorts each coordinate's values across the contributions and reduces them: the median; the mean of the middle
    /// n - 2·<paramref name="parameter"/>; or the mean of the <paramref name="parameter"/> values closest to the median.
    /// The median and the trimmed mean run as code made for n (<see cref="CoordinateKernels"/>); Bulyan's reduction,
    /// which has no vector form, interprets the network.
    /// </summary>
    private static unsafe void CoordinateWise(Contribution[] ordered, Span<float> destination, Reduction reduction, int parameter)
    {
        int n = ordered.Length;
        int length = destination.Length;
        int width = Vector<float>.Count;
        CoordinateKernel? kernel = reduction switch
        {
            Reduction.Median => CoordinateKernels.For(n, CoordinateKernels.Rule.Median, 0),
            Reduction.Trimmed => CoordinateKernels.For(n, CoordinateKernels.Rule.Trimmed, parameter),
            _ => null,
        };
        var handles = new MemoryHandle[n];
        float** sources = stackalloc float*[n];
        float* padded = stackalloc float[n * width];
        float** paddedSources = stackalloc float*[n];
        float* paddedTarget = stackalloc float[width];
        fixed (float* target = destination)
        {
            try
            {
                for (int c = 0; c < n; c++)
                {
                    handles[c] = ordered[c].Values.Pin();
                    sources[c] = (float*)handles[c].Pointer;
                    paddedSources[c] = padded + c * width;
                }
                int whole = length - length % width;
                Reduce(kernel, sources, target, whole, n, reduction, parameter);
                if (whole < length)
                {
                    // The tail goes through the same vector code, padded with zeros, so every coordinate's bits come from
                    // one code path whatever the length or offset of what is aggregated.
                    int rest = length - whole;
                    for (int c = 0; c < n; c++)
                    {
                        for (int lane = 0; lane < width; lane++) paddedSources[c][lane] = lane < rest ? sources[c][whole + lane] : 0f;
                    }
                    Reduce(kernel, paddedSources, paddedTarget, width, n, reduction, parameter);
                    for (int lane = 0; lane < rest; lane++) target[whole + lane] = paddedTarget[lane];
                }
            }
            finally
            {
                foreach (var handle in handles) handle.Dispose();
            }
        }
    }

    /// <summary>Reduces <paramref name="length"/> coordinates (whole vectors) with the kernel, or by interpreting the network when there is none.</summary>
    private static unsafe void Reduce(CoordinateKernel? kernel, float** sources, float* target, int length, int n, Reduction reduction, int parameter)
    {
        if (kernel is not null)
        {
            kernel(sources, target, length);
            return;
        }
        var network = SortingNetworks.For(n);
        int width = Vector<float>.Count;
        Vector<float>* values = stackalloc Vector<float>[n];
        float* spill = stackalloc float[n * width];
        fixed (int* pairs = network)
        {
            for (int i = 0; i <= length - width; i += width)
            {
                for (int c = 0; c < n; c++) values[c] = Canonical(Vector.Load(sources[c] + i));
                for (int p = 0; p < network.Length; p += 2)
                {
                    Vector<float>* a = values + pairs[p];
                    Vector<float>* b = values + pairs[p + 1];
                    var low = *a;
                    var high = *b;
                    *a = Vector.MinNative(low, high);
                    *b = Vector.MaxNative(low, high);
                }
                Vector.Store(ClosestToMedian(values, n, parameter, spill), target + i);
            }
        }
    }

    /// <summary>
    /// -0 becomes +0 (x + 0 is x for every other finite x; receivers drop non-finite gradients). With no -0 and no NaN left,
    /// the hardware's plain min and max are exact and give the same bits on every platform, and they are several times
    /// cheaper than IEEE 754-2019 minimum and maximum, which must order -0 below +0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> Canonical(Vector<float> value) => value + Vector<float>.Zero;

    /// <summary>
    /// Bulyan's second phase, per coordinate of sorted values: the mean of the <paramref name="beta"/> values closest to
    /// the median. In sorted order they are a window around the middle, grown one value at a time towards the nearer
    /// neighbour (the lower one on a tie) and summed from its lowest value up.
    /// </summary>
    private static unsafe Vector<float> ClosestToMedian(Vector<float>* values, int n, int beta, float* spill)
    {
        int width = Vector<float>.Count;
        for (int c = 0; c < n; c++) Vector.Store(values[c], spill + c * width);
        var result = stackalloc float[width];
        for (int lane = 0; lane < width; lane++)
        {
            float* column = spill + lane; // value c of this coordinate is column[c * width]
            float median = (n & 1) == 1 ? column[n / 2 * width] : (column[(n / 2 - 1) * width] + column[n / 2 * width]) * 0.5f;
            int low = (n - 1) / 2, high = n / 2 + 1; // the window [low, high): the middle value, or the middle two
            if (high - low > beta) high = low + beta;
            while (high - low < beta)
            {
                bool takeLow = high >= n || (low > 0 && median - column[(low - 1) * width] <= column[high * width] - median);
                if (takeLow) low--;
                else high++;
            }
            float sum = 0;
            for (int c = low; c < high; c++) sum += column[c * width];
            result[lane] = sum / beta;
        }
        return Vector.Load(result);
    }
}

/// <summary>
/// Sorting networks for n inputs: Batcher's odd-even merge sort for the next power of two, without the comparators that
/// touch an index past n (padding with +infinity would leave those comparators without effect), as flat (low, high) pairs.
/// </summary>
public static class SortingNetworks
{
    private static readonly int[]?[] Cache = new int[]?[AggregationRule.MaxContributions + 1];

    public static int[] For(int n)
    {
        if (n < 1 || n > AggregationRule.MaxContributions) throw new ArgumentOutOfRangeException(nameof(n), n, $"a sorting network is built for 1 to {AggregationRule.MaxContributions} inputs");
        return Cache[n] ??= Build(n);
    }

    private static int[] Build(int n)
    {
        int size = 1;
        while (size < n) size <<= 1;
        var pairs = new List<int>();
        for (int p = 1; p < size; p <<= 1)
        {
            for (int k = p; k >= 1; k >>= 1)
            {
                for (int j = k % p; j + k < size; j += 2 * k)
                {
                    for (int i = 0; i < Math.Min(k, size - j - k); i++)
                    {
                        int a = i + j, b = i + j + k;
                        if (a / (2 * p) == b / (2 * p) && b < n)
                        {
                            pairs.Add(a);
                            pairs.Add(b);
                        }
                    }
                }
            }
        }
        return [.. pairs];
    }
}
