using System.Diagnostics;
using DaprTrain.Cli.Reports;
using DaprTrain.Coordination;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Storage;
using DaprTrain.Simulation;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

/// <summary>
/// compare --scenario byzantine: every aggregator against every attack, with f = 1 Byzantine worker of 4 and f = 2 of 7,
/// beside the clean run (the mean without attackers) of each configuration, on the same data and seed.
/// </summary>
internal static class ByzantineComparison
{
    /// <summary>The configurations the issue asks for: n workers of which f are Byzantine (f &lt; n / 3).</summary>
    public static IReadOnlyList<(int Workers, int Byzantine)> Configurations { get; } = [(4, 1), (7, 2)];

    public static IReadOnlyList<string> DefaultAttacks { get; } = ["signflip", "gaussian", "noise", "labelflip", "alie"];

    /// <summary>
    /// The rule a configuration runs: the rule with f set to the configuration's number of attackers where its condition
    /// allows that, otherwise the largest f it allows (Krum with 4 workers: f = 0), said in <c>Note</c>.
    /// </summary>
    public static (AggregationRule Rule, string? Note) RuleFor(string name, int workers, int byzantine)
    {
        var kind = AggregationRule.Parse(name).Kind;
        if (kind is AggregatorKind.Mean or AggregatorKind.Median) return (new AggregationRule(kind), null);
        try
        {
            return (new AggregationRule(kind, byzantine).ForWorkers(workers), null);
        }
        catch (ArgumentException ex)
        {
            var fallback = new AggregationRule(kind).ForWorkers(workers);
            // Multi-Krum with a lowered f still averages only as many gradients as there are honest workers.
            if (kind == AggregatorKind.MultiKrum) fallback = fallback with { M = workers - byzantine };
            return (fallback, $"{ex.Message.Split(": ", 2)[^1]}; ran with f = {fallback.Tolerated}");
        }
    }

    /// <summary>The attackers of a configuration: worker-1 .. worker-f, all with the same attack (colluding, for ALIE).</summary>
    public static FaultPlan Attack(string attack, int byzantine) => attack == "none"
        ? FaultPlan.Parse([], "none")
        : FaultPlan.Parse([.. Enumerable.Range(1, byzantine).Select(k => $"byzantine:worker-{k}={attack}")], attack);

    public static async Task<int> RunAsync(JobOptions template, Topology topology, IReadOnlyList<string> aggregators, IReadOnlyList<string> attacks,
        TrainingData data, PriceTable prices, string folder, string commandLine, TextWriter output, CancellationToken cancellationToken)
    {
        var runs = new List<(int Workers, int Byzantine, string Aggregator, AggregationRule Rule, string? Note, string Attack)>();
        foreach (var (workers, byzantine) in Configurations)
        {
            foreach (string aggregator in aggregators)
            {
                var (rule, note) = RuleFor(aggregator, workers, byzantine);
                foreach (string attack in attacks.Prepend("none")) runs.Add((workers, byzantine, aggregator, rule, note, attack));
            }
        }
        // Every run's options are checked before the first run starts (a whole-vector rule on p2p-scatter is named, not run).
        var refused = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var run in runs)
        {
            try
            {
                Options(template, topology, run.Workers, run.Rule, Attack(run.Attack, run.Byzantine)).Validate();
            }
            catch (ArgumentException ex)
            {
                refused[run.Aggregator] = ex.Message;
            }
        }

        output.WriteLine($"data: {data.Description}");
        output.WriteLine($"byzantine: {topology.Name()}, {string.Join(" and ", Configurations.Select(c => $"f = {c.Byzantine} of {c.Workers}"))}; " +
                         $"aggregators {string.Join(", ", aggregators)} x attacks none, {string.Join(", ", attacks)}; {template.Trainer.Model}, {template.Rounds} rounds each, seed {template.Trainer.Seed}");
        var cells = new List<ByzantineCell>();
        var total = Stopwatch.StartNew();
        foreach (var run in runs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (refused.TryGetValue(run.Aggregator, out string? why))
            {
                cells.Add(new ByzantineCell(run.Workers, run.Byzantine, run.Aggregator, run.Rule.ToString(), run.Attack, null, why));
                continue;
            }
            var options = Options(template, topology, run.Workers, run.Rule, Attack(run.Attack, run.Byzantine));
            var result = await DistributedRun.RunAsync(options, data, new InMemoryCheckpointStore(), prices, output, quiet: true, cancellationToken);
            cells.Add(new ByzantineCell(run.Workers, run.Byzantine, run.Aggregator, run.Rule.ToString(), run.Attack, result, run.Note));
            output.WriteLine($"  f={run.Byzantine}/{run.Workers} {run.Rule,-16} {run.Attack,-10} accuracy {result.FinalAccuracy * 100,6:F2}%  " +
                             $"time {result.TotalMs / 1000,7:F2} s  ({result.WallMs / 1000:F1} s wall)");
        }
        var files = ByzantineReport.Write(folder, cells, commandLine, data.Description);
        output.WriteLine($"report: {Path.GetFullPath(folder)} ({string.Join(", ", files)}) in {total.Elapsed.TotalSeconds:F0} s");
        return ExitCodes.Success;
    }

    private static JobOptions Options(JobOptions template, Topology topology, int workers, AggregationRule rule, FaultPlan attack) =>
        template with { JobId = $"byzantine-{topology.Name()}-{workers}", Topology = topology, Workers = workers, Aggregator = rule, Faults = attack };
}
