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
    internal const int Rounds = 40;
    internal const int From = 10;

    [FiguresFact]
    public async Task Where_a_Dapr_rounds_time_goes_p2p_and_ps_at_2_and_4_workers()
    {
        var tables = new StringBuilder();
        string[] topologies = Environment.GetEnvironmentVariable("DAPRTRAIN_FIGURES_TOPOLOGIES") is { Length: > 0 } only ? only.Split(',') : ["p2p", "ps"];
        // DAPRTRAIN_FIGURES_COMPARE=1: each configuration twice in a row, the waits on the 10 ms poll alone (as before issue
        // 16's change) and woken by deliveries, so that the two are measured under the same load.
        // DAPRTRAIN_FIGURES_COMPARE=calls: each configuration twice in a row, the coordinator calls of before issue 16's cut
        // (a view every round, the decision by polling alone: Job:FewerCoordinatorCalls=false) and after it.
        string? compareWhat = Environment.GetEnvironmentVariable("DAPRTRAIN_FIGURES_COMPARE");
        bool compare = compareWhat == "1";
        bool compareCalls = compareWhat == "calls";
        var summary = new StringBuilder(compareCalls
            ? "| configuration | coordinator calls | workers' calls a round (GetView, report, polls) | workers' coordinator ms a round | workers' round ms | ps calls a round | ps coordinator ms a round | ps round ms |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            : "| configuration | waits | workers' round ms | workers' wait ms a round | workers' waits: ms from the delivery to the wait seeing it | ps round ms | ps wait ms a round | ps: ms from the delivery to the wait seeing it |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        foreach (string topology in topologies)
        {
            foreach (int workers in new[] { 2, 4 })
            {
                // DAPRTRAIN_FIGURES_REPEAT=R: the pair (or the one run) R times over, interleaved, to show the spread on a shared machine.
                int repeat = int.TryParse(Environment.GetEnvironmentVariable("DAPRTRAIN_FIGURES_REPEAT"), out int r) && r > 0 ? r : 1;
                foreach (bool variant in Enumerable.Repeat(compare || compareCalls ? new[] { false, true } : [true], repeat).SelectMany(w => w))
                {
                    bool wake = !compare || variant;
                    bool fewerCalls = !compareCalls || variant;
                    var (table, workerReadings, server, _) = await MeasureAsync(topology, workers, wake, fewerCalls);
                    string waits = wake ? "woken by deliveries" : "10 ms poll only";
                    string calls = fewerCalls ? "view on change, decision from the report" : "view every round, decision by polling";
                    Console.WriteLine(table);
                    tables.Append(compare ? $"({waits})\n\n" : compareCalls ? $"({calls})\n\n" : "").Append(table).Append('\n');
                    if (compareCalls)
                    {
                        summary.Append(System.Globalization.CultureInfo.InvariantCulture, $"| {topology}, N={workers} | {calls} | {Calls(workerReadings)} | {workerReadings.Average(w => w.MsPerRound("coordinator")):F1} | {workerReadings.Average(w => w.WallMs / w.Rounds):F1} | ");
                        summary.Append(server is null ? "- | - | - |\n" : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Calls([server])} | {server.MsPerRound("coordinator"):F1} | {server.WallMs / server.Rounds:F1} |\n"));
                    }
                    else
                    {
                        summary.Append(System.Globalization.CultureInfo.InvariantCulture, $"| {topology}, N={workers} | {waits} | {workerReadings.Average(w => w.WallMs / w.Rounds):F1} | {workerReadings.Average(w => w.MsPerRound("wait")):F1} | {Seen(workerReadings)} | ");
                        summary.Append(server is null ? "- | - | - |\n" : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{server.WallMs / server.Rounds:F1} | {server.MsPerRound("wait"):F1} | {Seen([server])} |\n"));
                    }
                    File.WriteAllText(Path.Combine(Path.GetTempPath(), "daprtrain-phase-figures.md"), tables.ToString() + "\n" + summary);
                }
            }
        }
        Console.WriteLine(summary);
    }

    /// <summary>Mean ms from the latest delivery to a wait seeing its condition hold, over the waits that had to sleep, and how many a round.</summary>
    private static string Seen(IReadOnlyList<PhaseReading> readings)
    {
        const string Name = "wait saw a delivery after";
        long count = readings.Sum(r => r.Details.GetValueOrDefault(Name).Count);
        double ms = readings.Sum(r => r.Details.GetValueOrDefault(Name).Ms);
        return count == 0 ? "-" : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{ms / count:F2} ({(double)count / readings.Sum(r => r.Rounds):F1} a round)");
    }

    /// <summary>Coordinator calls on the round's path a round, mean over the nodes: all of them, then the views, the reports and the polls for the decision.</summary>
    private static string Calls(IReadOnlyList<PhaseReading> readings)
    {
        double PerRound(Func<string, bool> which) => readings.Average(r => (double)r.Details.Where(d => d.Key.StartsWith("coordinator ", StringComparison.Ordinal) && which(d.Key["coordinator ".Length..])).Sum(d => d.Value.Count) / Math.Max(1, r.Rounds));
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{PerRound(_ => true):F2} ({PerRound(m => m == "GetView"):F2}, {PerRound(m => m is "Report" or "ReportAndTryClose"):F2}, {PerRound(m => m == "TryCloseRound"):F2})");
    }

    /// <summary>
    /// One clean job and its phase table; <paramref name="settings"/> (environment names, Job__TorchThreads=1 and the like)
    /// go to every service after the defaults, so a measurement can change any of them.
    /// </summary>
    /// <summary>How long a job of <paramref name="rounds"/> may take to get there: start-up, then a second a round at most.</summary>
    private static TimeSpan Timeout(int rounds) => TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(rounds);

    internal static async Task<(string Table, IReadOnlyList<PhaseReading> Workers, PhaseReading? Server, CpuReading Cpu)> MeasureAsync(string topology, int workers, bool wakeOnDelivery,
        bool fewerCoordinatorCalls = true, IReadOnlyDictionary<string, string>? settings = null, int rounds = Rounds, int from = From)
    {
        // Clean: deadlines and leases no healthy round reaches on a loaded machine, so every round has every gradient.
        var job = EndToEndScenarios.Job(topology, workers, rounds, deadlineMs: 20_000, leaseMs: 30_000);
        job["Job__WakeOnDelivery"] = wakeOnDelivery ? "true" : "false";
        job["Job__FewerCoordinatorCalls"] = fewerCoordinatorCalls ? "true" : "false";
        foreach (var (name, value) in settings ?? new Dictionary<string, string>()) job[name] = value;
        // DAPRTRAIN_FIGURES_TORCH_THREADS=N: every service's torch on N threads (Job:TorchThreads; 0 is libtorch's default).
        string? threads = Environment.GetEnvironmentVariable("DAPRTRAIN_FIGURES_TORCH_THREADS");
        if (!string.IsNullOrEmpty(threads)) job["Job__TorchThreads"] = threads;
        var sidecars = new DoubleSidecars();
        await using var cluster = new Cluster(job, sidecars);
        var services = new List<ServiceProcess> { await cluster.StartAsync("coordinator", "DaprTrain.Coordinator") };
        bool ps = topology == "ps";
        if (ps) services.Add(await cluster.StartAsync("parameter-server", "DaprTrain.ParameterServer"));
        var ids = Enumerable.Range(1, workers).Select(i => $"worker-{i}").ToList();
        var processes = new List<ServiceProcess>();
        foreach (var id in ids) processes.Add(await cluster.StartAsync(id, "DaprTrain.Worker", new() { ["Job__WorkerId"] = id }));
        services.AddRange(processes);
        var nodes = ps ? [.. ids, "parameter-server"] : ids;

        // Each node's reading once it has passed round `from`, and the double's when the last of them has.
        var first = new Dictionary<string, PhaseReading>();
        await cluster.WaitUntilAsync(async () =>
        {
            foreach (var node in nodes.Where(n => !first.ContainsKey(n)))
            {
                var status = await cluster.StatusAsync(node);
                if (status.ValueKind == System.Text.Json.JsonValueKind.Object && status.GetProperty("appliedRound").GetInt64() >= from) first[node] = PhaseReading.From(status);
            }
            return first.Count == nodes.Count;
        }, Timeout(from), $"round {from}");
        // The double's and the processes' CPU readings bracket whole rounds of the job: the round is read first, and the closing
        // readings are taken a few rounds before the end, so that neither the start nor what follows the last round (the
        // held-out evaluation, the final events) is divided by rounds it did not belong to.
        long jobRoundFirst = await cluster.AppliedRoundAsync(nodes[^1]);
        var doubleFirst = DoubleReading.From(sidecars.Components);
        var cpuFirst = CpuReading.Of(services);
        long closeAt = rounds - Math.Max(2, (rounds - from) / 10);
        await cluster.WaitUntilAsync(async () => await cluster.AppliedRoundAsync(nodes[^1]) >= closeAt, Timeout(rounds), $"round {closeAt}");
        long jobRoundLast = await cluster.AppliedRoundAsync(nodes[^1]);
        var doubleLast = DoubleReading.From(sidecars.Components);
        var cpu = CpuReading.Of(services).Since(cpuFirst) with { Rounds = jobRoundLast - jobRoundFirst };

        await cluster.FinishedAsync(ids, Timeout(rounds));
        if (ps) await cluster.WaitUntilAsync(async () => await cluster.AppliedRoundAsync("parameter-server") >= rounds, TimeSpan.FromMinutes(1), "the server to finish");
        var last = new Dictionary<string, PhaseReading>();
        foreach (var node in nodes) last[node] = PhaseReading.From(await cluster.StatusAsync(node));

        var readings = nodes.ToDictionary(n => n, n => last[n].Since(first[n]));
        string extra = settings is { Count: > 0 } ? ", " + string.Join(", ", settings.Select(s => $"{s.Key}={s.Value}")) : "";
        string title = $"{topology}, {workers} workers, rounds {from}-{rounds} ({Environment.ProcessorCount} cores{(string.IsNullOrEmpty(threads) ? "" : $", Job:TorchThreads={threads}")}{extra}, waits {(wakeOnDelivery ? "woken by deliveries" : "on the 10 ms poll only")}{(fewerCoordinatorCalls ? "" : ", a view every round and the decision by polling")})";
        var workerReadings = ids.Select(i => readings[i]).ToList();
        var server = ps ? readings["parameter-server"] : null;
        string table = PhaseTables.Render(title, workerReadings, server, doubleLast.Since(doubleFirst), jobRoundLast - jobRoundFirst);
        table += cpu.Table(jobRoundLast - jobRoundFirst, workerReadings.Average(w => w.WallMs / Math.Max(1, w.Rounds)));
        // What worker-1 printed at the end of the job (all its rounds, the first ones included), once it has.
        await cluster.WaitUntilAsync(() => Task.FromResult(processes[0].Output.Any(l => l.Contains("accounted: ", StringComparison.Ordinal))), TimeSpan.FromSeconds(30), "worker-1's table");
        var printed = processes[0].Output.SkipWhile(l => !l.Contains("worker-1: where a round's time went", StringComparison.Ordinal)).TakeWhile(l => !l.Contains("Application is shutting down", StringComparison.Ordinal)).Take(40);
        table += "\nworker-1's log at the end of the job:\n\n```\n" + string.Join("\n", printed) + "\n```\n";
        return (table, workerReadings, server, cpu);
    }
}
