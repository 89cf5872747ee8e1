using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Tests;

/// <summary>Each robust rule on hand-made vectors whose answer is known (19 coordinates: more than a vector and a tail).</summary>
public class AggregatorTests
{
    private const int Length = 19;

    private static Contribution Constant(string sender, float value, int samples = 64) =>
        new(sender, samples, Enumerable.Repeat(value, Length).ToArray());

    /// <summary>Coordinate i of sender k is values[k] + i, so every coordinate has the same order and a known answer.</summary>
    private static List<Contribution> Ramp(params float[] values) =>
        [.. values.Select((v, k) => new Contribution($"worker-{k + 1}", 64, Enumerable.Range(0, Length).Select(i => v + i).ToArray()))];

    private static float[] Aggregate(string rule, IReadOnlyList<Contribution> contributions, int? workers = null, int length = Length)
    {
        var destination = new float[length];
        RobustAggregator.Aggregate(AggregationRule.Parse(rule).ForWorkers(workers ?? contributions.Count), contributions, destination).FellBack.Should().BeFalse();
        return destination;
    }

    [Fact]
    public void The_sorting_networks_sort_every_zero_one_input_and_random_ones()
    {
        // The 0-1 principle: a comparator network that sorts every 0/1 sequence sorts every sequence.
        for (int n = 1; n <= 14; n++)
        {
            var network = SortingNetworks.For(n);
            for (int bits = 0; bits < 1 << n; bits++)
            {
                var values = Enumerable.Range(0, n).Select(i => (bits >> i) & 1).ToArray();
                for (int p = 0; p < network.Length; p += 2)
                {
                    if (values[network[p]] > values[network[p + 1]]) (values[network[p]], values[network[p + 1]]) = (values[network[p + 1]], values[network[p]]);
                }
                values.Should().BeInAscendingOrder($"the network for {n} must sort {bits}");
            }
        }
        var random = new Random(5);
        foreach (int n in new[] { 15, 16, 17, 31, 33, 64 })
        {
            var network = SortingNetworks.For(n);
            for (int trial = 0; trial < 200; trial++)
            {
                var values = Enumerable.Range(0, n).Select(_ => random.Next(100)).ToArray();
                for (int p = 0; p < network.Length; p += 2)
                {
                    if (values[network[p]] > values[network[p + 1]]) (values[network[p]], values[network[p + 1]]) = (values[network[p + 1]], values[network[p]]);
                }
                values.Should().BeInAscendingOrder();
            }
        }
    }

    [Fact]
    public void The_median_of_known_values()
    {
        var odd = Aggregate("median", Ramp(5, -3, 100, 1, 2));
        odd.Should().Equal(Enumerable.Range(0, Length).Select(i => 2f + i));
        var even = Aggregate("median", Ramp(5, -3, 100, 1));
        even.Should().Equal(Enumerable.Range(0, Length).Select(i => ((1f + i) + (5f + i)) * 0.5f));
    }

    [Fact]
    public void The_trimmed_mean_drops_the_extremes()
    {
        // f = 1 of 5: -1000 and 1000 go, the mean of 1, 2, 3 stays.
        var result = Aggregate("trimmed-mean:1", [Constant("a", 1000), Constant("b", 1), Constant("c", -1000), Constant("d", 2), Constant("e", 3)]);
        result.Should().OnlyContain(v => v == 2f);
        // f = 2 of 5 is the median.
        Aggregate("trimmed-mean:2", [Constant("a", 1000), Constant("b", 1), Constant("c", -1000), Constant("d", 2), Constant("e", 3)]).Should().OnlyContain(v => v == 2f);
    }

    [Fact]
    public void The_median_and_trimmed_mean_give_the_bits_of_a_scalar_reference_that_sorts_each_coordinate_for_every_n()
    {
        // The rules run as code made for each n (CoordinateKernels). Whatever the network, each coordinate's sorted values
        // are fixed, so the median is one of them (or the mean of two, (a + b) * 0.5) and the trimmed mean adds them from 0
        // in ascending position: a scalar float reference gives the same bits. Values include -0 (counted as +0), ties, an
        // outlier that would overflow a sum of all values, and lengths with a tail shorter than a vector.
        var random = new Random(17);
        for (int n = 1; n <= AggregationRule.MaxContributions; n++)
        {
            int length = 3 * System.Numerics.Vector<float>.Count + random.Next(1, System.Numerics.Vector<float>.Count);
            var contributions = Enumerable.Range(0, n).Select(k => new Contribution($"w{k:D2}", 64, Enumerable.Range(0, length).Select(i =>
                (i % 11) switch
                {
                    0 => -0f,
                    1 => 0f,
                    2 => (float)random.Next(3),
                    3 when k == n - 1 => 3e38f,
                    _ => (float)random.NextGaussian(),
                }).ToArray())).ToList();
            var fs = new[] { 0, (n - 1) / 3, (n - 1) / 2 }.Distinct();
            var sorted = new float[n];
            var median = new float[length];
            RobustAggregator.Aggregate(new AggregationRule(AggregatorKind.Median), contributions, median);
            foreach (int f in fs)
            {
                var trimmed = new float[length];
                RobustAggregator.Aggregate(new AggregationRule(AggregatorKind.TrimmedMean, f), contributions, trimmed).FellBack.Should().BeFalse();
                for (int i = 0; i < length; i++)
                {
                    for (int k = 0; k < n; k++) sorted[k] = contributions[k].Values.Span[i] + 0f;
                    Array.Sort(sorted);
                    float sum = 0f;
                    for (int k = f; k < n - f; k++) sum += sorted[k];
                    float expectedTrimmed = sum / (n - 2 * f);
                    BitConverter.SingleToInt32Bits(trimmed[i]).Should().Be(BitConverter.SingleToInt32Bits(expectedTrimmed), $"trimmed-mean:{f} of {n}, coordinate {i} of {length}");
                    if (f != 0) continue;
                    float expectedMedian = (n & 1) == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) * 0.5f;
                    BitConverter.SingleToInt32Bits(median[i]).Should().Be(BitConverter.SingleToInt32Bits(expectedMedian), $"median of {n}, coordinate {i} of {length}");
                }
            }
        }
    }

    [Fact]
    public void Robust_rules_ignore_the_sample_count_a_sender_claims()
    {
        var honest = new[] { Constant("worker-1", 1), Constant("worker-2", 2), Constant("worker-3", 3) };
        var inflated = honest.Append(Constant("worker-4", 500, samples: 1_000_000)).ToList();
        var fair = honest.Append(Constant("worker-4", 500)).ToList();
        Aggregate("median", inflated).Should().Equal(Aggregate("median", fair));
        Aggregate("trimmed-mean:1", inflated).Should().Equal(Aggregate("trimmed-mean:1", fair));
    }

    [Fact]
    public void Krum_picks_a_gradient_of_the_honest_cluster_and_multi_krum_averages_the_best()
    {
        var random = new Random(3);
        var honest = Enumerable.Range(1, 5).Select(k => new Contribution($"worker-{k}", 64,
            Enumerable.Range(0, Length).Select(_ => 1f + (float)random.NextDouble() * 0.01f).ToArray())).ToList();
        var attacker = new Contribution("worker-6", 64, Enumerable.Repeat(-10f, Length).ToArray());
        var all = honest.Append(attacker).ToList();

        var destination = new float[Length];
        var outcome = RobustAggregator.Aggregate(AggregationRule.Parse("krum:1").ForWorkers(6), all, destination);
        outcome.Selected.Should().ContainSingle().Which.Should().NotBe("worker-6");
        destination.Should().Equal(honest.Single(c => c.Sender == outcome.Selected[0]).Values.ToArray());

        var scores = RobustAggregator.KrumScores(all, 1);
        scores[5].Should().BeGreaterThan(scores.Take(5).Max() * 100);

        var multi = RobustAggregator.Aggregate(AggregationRule.Parse("multi-krum:1,3").ForWorkers(6), all, destination);
        multi.Selected.Should().HaveCount(3).And.NotContain("worker-6");
        destination.Should().OnlyContain(v => v > 0.99f && v < 1.02f);
    }

    [Fact]
    public void Krum_ties_go_to_the_lowest_sender_whatever_the_order_of_arrival()
    {
        var same = new[] { "worker-3", "worker-1", "worker-2", "worker-4", "worker-5" }.Select(s => Constant(s, 7)).ToList();
        var rule = AggregationRule.Parse("krum:1").ForWorkers(5);
        var outcome = RobustAggregator.Aggregate(rule, same, new float[Length]);
        outcome.Selected.Should().Equal("worker-1");

        var random = new Random(9);
        var varied = Enumerable.Range(1, 7).Select(k => new Contribution($"worker-{k}", 64, Enumerable.Range(0, Length).Select(_ => (float)random.NextDouble()).ToArray())).ToList();
        foreach (var name in new[] { "median", "trimmed-mean:2", "krum:2", "multi-krum:2,3", "bulyan:1" })
        {
            var forward = Aggregate(name, varied);
            var backward = Aggregate(name, Enumerable.Reverse(varied).ToList());
            backward.Should().Equal(forward, $"{name} must not depend on the order contributions arrive in");
        }
    }

    [Fact]
    public void Bulyan_leaves_the_outliers_out()
    {
        var random = new Random(4);
        var honest = Enumerable.Range(1, 6).Select(k => new Contribution($"worker-{k}", 64,
            Enumerable.Range(0, Length).Select(_ => 1f + (float)random.NextDouble() * 0.01f).ToArray())).ToList();
        var all = honest.Append(new Contribution("worker-7", 64, Enumerable.Repeat(1e4f, Length).ToArray())).ToList();
        var destination = new float[Length];
        var outcome = RobustAggregator.Aggregate(AggregationRule.Parse("bulyan:1").ForWorkers(7), all, destination);
        outcome.Selected.Should().HaveCount(5).And.NotContain("worker-7");
        destination.Should().OnlyContain(v => v >= 1f && v <= 1.01f);
    }

    [Fact]
    public void A_slice_aggregates_to_the_bits_of_the_same_coordinates_of_the_whole_vector()
    {
        var random = new Random(2);
        var whole = Enumerable.Range(1, 5).Select(k => new Contribution($"worker-{k}", 64, Enumerable.Range(0, 101).Select(_ => (float)random.NextGaussian()).ToArray())).ToList();
        foreach (var name in new[] { "median", "trimmed-mean:1" })
        {
            var all = Aggregate(name, whole, length: 101);
            foreach (var (offset, count) in new[] { (0, 34), (34, 34), (68, 33), (3, 5) })
            {
                var slice = whole.Select(c => c with { Values = c.Values.Slice(offset, count) }).ToList();
                Aggregate(name, slice, workers: 5, length: count).Should().Equal(all.Skip(offset).Take(count), $"{name}, slice at {offset}");
            }
        }
    }

    [Fact]
    public void Fewer_contributions_than_the_rule_needs_take_their_median_and_say_so()
    {
        var rule = AggregationRule.Parse("krum:1").ForWorkers(5);
        var arrived = Ramp(1, 2, 3, 40);
        var destination = new float[Length];
        var outcome = RobustAggregator.Aggregate(rule, arrived, destination);
        outcome.FellBack.Should().BeTrue();
        outcome.FallbackReason.Should().Contain("n > 2f + 2").And.Contain("median");
        destination.Should().Equal(Enumerable.Range(0, Length).Select(i => ((2f + i) + (3f + i)) * 0.5f));
    }

    [Theory]
    [InlineData("trimmed-mean", 4, "trimmed-mean:1")]
    [InlineData("trimmed-mean", 7, "trimmed-mean:2")]
    [InlineData("krum", 4, "krum:0")]
    [InlineData("krum", 7, "krum:2")]
    [InlineData("multi-krum", 7, "multi-krum:2,5")]
    [InlineData("multi-krum:1", 7, "multi-krum:1,6")]
    [InlineData("bulyan", 7, "bulyan:1")]
    [InlineData("bulyan", 4, "bulyan:0")]
    [InlineData("median", 4, "median")]
    public void Defaults_follow_the_workers(string rule, int workers, string resolved) =>
        AggregationRule.Parse(rule).ForWorkers(workers).ToString().Should().Be(resolved);

    [Theory]
    [InlineData("krum:1", 4, "krum needs n > 2f + 2")]
    [InlineData("multi-krum:1,5", 5, "m <= n - f")]
    [InlineData("bulyan:1", 6, "bulyan needs n >= 4f + 3")]
    [InlineData("trimmed-mean:2", 4, "trimmed-mean needs 2f < n")]
    [InlineData("krum", 2, "krum needs n > 2f + 2")]
    public void A_rule_whose_condition_cannot_hold_is_refused_naming_it(string rule, int workers, string condition)
    {
        var act = () => AggregationRule.Parse(rule).ForWorkers(workers);
        act.Should().Throw<ArgumentException>().WithMessage($"*{condition}*");
    }

    [Theory]
    [InlineData("avg", "not known")]
    [InlineData("median:1", "takes no f")]
    [InlineData("krum:x", "f 'x' must be a whole number")]
    [InlineData("krum:-1", "must be a whole number")]
    [InlineData("trimmed-mean:1,2", "takes one number")]
    [InlineData("multi-krum:1,0", "m '0' must be")]
    [InlineData("", "not known")]
    public void Bad_rules_are_named(string rule, string problem)
    {
        AggregationRule.TryParse(rule, out _, out string? error).Should().BeFalse();
        error.Should().Contain(problem).And.Contain("aggregators: mean | median");
    }
}

internal static class RandomExtensions
{
    public static double NextGaussian(this Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
