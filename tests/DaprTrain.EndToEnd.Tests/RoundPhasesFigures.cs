using System.Text;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// Issue 16's breakdown: clean jobs through the sidecar double, p2p and ps at N = 2 and 4 (MLP, batch 64), and where each
/// node's round goes (its /status phases, rounds <see cref="From"/> to <see cref="Rounds"/>, so start-up and the first
/// rounds' JIT are left out) beside the double's own work over the same stretch. Prints the tables for BENCHMARKS.md.
/// </summary>
[Trait("Category", "Figures")]
public sealed class RoundPhasesFigures
{
    private const int Rounds = 40;
    private const int From = 10;

    [FiguresFact]
    public async Task Where_a_Dapr_rounds_time_goes_p2p_and_ps_at_2_and_4_workers()
    {
        var tables = new StringBuilder();
        string[] topologies = Environment.GetEnvironmentVariable("DAPRTRAIN_FIGURES_TOPOLOGIES") is { Length: > 0 } only ? only.Split(',') : ["p2p", "ps"];
        foreach (string topology in topologies)
        {
            foreach (int workers in new[] { 2, 4 })
            {
                string table = await MeasureAsync(topology, workers);
                Console.WriteLine(table);
                tables.Append(table).Append('\n');
                File.WriteAllText(Path.Combine(Path.GetTempPath(), "daprtrain-phase-figures.md"), tables.ToString());
            }
        }
    }

    private static async Task<string> MeasureAsync(string topology, int workers)
    {
        // Clean: deadlines and leases no healthy round reaches on a loaded machine, so every round has every gradient.
        var job = EndToEndScenarios.Job(topology, workers, Rounds, deadlineMs: 20_000, leaseMs: 30_000);
        var sidecars = new DoubleSidecars();
        await using var cluster = new Cluster(job, sidecars);
        await cluster.StartAsync("coordinator", "DaprTrain.Coordinator");
        bool ps = topology == "ps";
        if (ps) await cluster.StartAsync("parameter-server", "DaprTrain.ParameterServer");
        var ids = Enumerable.Range(1, workers).Select(i => $"worker-{i}").ToList();
        foreach (var id in ids) await cluster.StartAsync(id, "DaprTrain.Worker", new() { ["Job__WorkerId"] = id });
        var nodes = ps ? [.. ids, "parameter-server"] : ids;

        // Each node's reading once it has passed round From, and the double's when the last of them has.
        var first = new Dictionary<string, PhaseReading>();
        await cluster.WaitUntilAsync(async () =>
        {
            foreach (var node in nodes.Where(n => !first.ContainsKey(n)))
            {
                var status = await cluster.StatusAsync(node);
                if (status.ValueKind == System.Text.Json.JsonValueKind.Object && status.GetProperty("appliedRound").GetInt64() >= From) first[node] = PhaseReading.From(status);
            }
            return first.Count == nodes.Count;
        }, TimeSpan.FromMinutes(5), $"round {From}");
        var doubleFirst = DoubleReading.From(sidecars.Components);
        long jobRoundFirst = await cluster.AppliedRoundAsync(nodes[^1]);

        await cluster.FinishedAsync(ids, TimeSpan.FromMinutes(10));
        if (ps) await cluster.WaitUntilAsync(async () => await cluster.AppliedRoundAsync("parameter-server") >= Rounds, TimeSpan.FromMinutes(1), "the server to finish");
        var doubleLast = DoubleReading.From(sidecars.Components);
        var last = new Dictionary<string, PhaseReading>();
        foreach (var node in nodes) last[node] = PhaseReading.From(await cluster.StatusAsync(node));

        var readings = nodes.ToDictionary(n => n, n => last[n].Since(first[n]));
        string title = $"{topology}, {workers} workers, rounds {From}-{Rounds} ({Environment.ProcessorCount} cores)";
        return PhaseTables.Render(title, [.. ids.Select(i => readings[i])], ps ? readings["parameter-server"] : null, doubleLast.Since(doubleFirst), Rounds - jobRoundFirst);
    }
}
