using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// What one aggregation of N MLP-sized gradients costs under each rule, against the mean of the same gradients (the
/// issue's goals: trimmed mean and median at most 4x the mean, Krum at most N x).
/// </summary>
internal static class AggregatorBenchmarks
{
    private const int Values = 101_770;

    public static void Run(TextWriter output, bool quick)
    {
        int[] sizes = [4, 8, 16];
        string[] rules = ["median", "trimmed-mean", "krum", "multi-krum", "bulyan"];
        var rows = new List<(int N, string Rule, double Seconds, double Ratio)>();
        foreach (int n in sizes)
        {
            var random = new Random(n);
            var contributions = Enumerable.Range(1, n).Select(k => new Contribution($"worker-{k}", 64,
                Enumerable.Range(0, Values).Select(_ => (float)(random.NextDouble() - 0.5) * 1e-2f).ToArray())).ToList();
            var destination = new float[Values];
            int calls = quick ? 10 : 40;
            double mean = Measure.SecondsPerCall(() => RobustAggregator.Aggregate(AggregationRule.Mean, contributions, destination), calls);
            rows.Add((n, "mean", mean, 1));
            foreach (string name in rules)
            {
                var rule = AggregationRule.Parse(name).ForWorkers(n);
                double seconds = Measure.SecondsPerCall(() => RobustAggregator.Aggregate(rule, contributions, destination), calls);
                rows.Add((n, rule.ToString(), seconds, seconds / mean));
            }
        }
        output.WriteLine($"## Aggregation of N gradients (MLP, {Values:N0} values each), by rule");
        output.WriteLine();
        output.WriteLine("f is the default for N (floor((N-1)/3), lowered to what the rule allows). Goals: median and trimmed mean at most 4x the mean, Krum at most N x.");
        output.WriteLine();
        output.WriteLine("| N | rule | time | / mean | goal |");
        output.WriteLine("| ---: | --- | ---: | ---: | --- |");
        foreach (var (n, rule, seconds, ratio) in rows)
        {
            string goal = rule.StartsWith("median", StringComparison.Ordinal) || rule.StartsWith("trimmed-mean", StringComparison.Ordinal)
                ? (ratio <= 4 ? "<= 4x: met" : "<= 4x: NOT met")
                : rule.StartsWith("krum", StringComparison.Ordinal) ? (ratio <= n ? $"<= {n}x: met" : $"<= {n}x: NOT met") : "";
            output.WriteLine($"| {n} | {rule} | {Measure.Micros(seconds)} | {ratio:F2}x | {goal} |");
        }
        output.WriteLine();
    }
}
