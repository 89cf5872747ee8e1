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

    /// <summary>Seconds per call of <paramref name="rule"/> and of <paramref name="baseline"/>, each the fastest of its batches, the batches alternating.</summary>
    private static (double Rule, double Baseline) Interleaved(Action rule, Action baseline, int calls, int rounds)
    {
        var warmUp = System.Diagnostics.Stopwatch.StartNew();
        while (warmUp.ElapsedMilliseconds < 500)
        {
            rule();
            baseline();
        }
        double best = double.MaxValue, bestBaseline = double.MaxValue;
        for (int r = 0; r < rounds; r++)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            for (int i = 0; i < calls; i++) baseline();
            bestBaseline = Math.Min(bestBaseline, watch.Elapsed.TotalSeconds / calls);
            watch.Restart();
            for (int i = 0; i < calls; i++) rule();
            best = Math.Min(best, watch.Elapsed.TotalSeconds / calls);
        }
        return (best, bestBaseline);
    }

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
            int calls = quick ? 5 : 20;
            int rounds = quick ? 5 : 25;
            Action mean = () => RobustAggregator.Aggregate(AggregationRule.Mean, contributions, destination);
            double meanSeconds = double.MaxValue;
            var measured = new List<(string Rule, double Seconds)>();
            foreach (string name in rules)
            {
                var rule = AggregationRule.Parse(name).ForWorkers(n);
                var (ruleSeconds, meanHere) = Interleaved(() => RobustAggregator.Aggregate(rule, contributions, destination), mean, calls, rounds);
                meanSeconds = Math.Min(meanSeconds, meanHere);
                measured.Add((rule.ToString(), ruleSeconds));
            }
            rows.Add((n, "mean", meanSeconds, 1));
            rows.AddRange(measured.Select(m => (n, m.Rule, m.Seconds, m.Seconds / meanSeconds)));
        }
        output.WriteLine($"## Aggregation of N gradients (MLP, {Values:N0} values each), by rule");
        output.WriteLine();
        output.WriteLine("Each rule is timed in turns with the mean (batches of calls, alternating) and each keeps its fastest batch: on a shared machine the fastest batch is the one least disturbed by other processes, and alternating exposes both to the same conditions. " +
                         "f is the default for N (floor((N-1)/3), lowered to what the rule allows). Goals: median and trimmed mean at most 4x the mean, Krum at most N x.");
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
