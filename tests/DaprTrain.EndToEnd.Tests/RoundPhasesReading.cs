using System.Globalization;
using System.Text;
using System.Text.Json;
using DaprTrain.SidecarDouble;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>A node's round breakdown as its /status serves it (field phases), or the difference of two such readings.</summary>
internal sealed record PhaseReading(string Node, long Rounds, double WallMs, IReadOnlyDictionary<string, (long Count, double Ms)> Phases,
    IReadOnlyDictionary<string, (long Count, double Ms)> Details, IReadOnlyDictionary<string, (long Count, double Ms)> OffPath)
{
    public static readonly string[] PhaseNames = ["compute", "encode", "publish", "wait", "aggregate", "apply", "coordinator", "checkpoint", "other"];

    public static PhaseReading From(JsonElement status)
    {
        var phases = status.GetProperty("phases");
        return new PhaseReading(phases.GetProperty("node").GetString()!, phases.GetProperty("rounds").GetInt64(), phases.GetProperty("wallMs").GetDouble(),
            Figures(phases.GetProperty("phases")), Figures(phases.GetProperty("details")), Figures(phases.GetProperty("offPath")));
    }

    private static Dictionary<string, (long, double)> Figures(JsonElement list) =>
        list.EnumerateArray().ToDictionary(p => p.GetProperty("phase").GetString()!, p => (p.GetProperty("count").GetInt64(), p.GetProperty("ms").GetDouble()), StringComparer.Ordinal);

    /// <summary>What happened between <paramref name="earlier"/> and this reading.</summary>
    public PhaseReading Since(PhaseReading earlier) => new(Node, Rounds - earlier.Rounds, WallMs - earlier.WallMs,
        Minus(Phases, earlier.Phases), Minus(Details, earlier.Details), Minus(OffPath, earlier.OffPath));

    private static Dictionary<string, (long, double)> Minus(IReadOnlyDictionary<string, (long Count, double Ms)> later, IReadOnlyDictionary<string, (long Count, double Ms)> earlier) =>
        later.ToDictionary(p => p.Key, p => (p.Value.Count - earlier.GetValueOrDefault(p.Key).Count, p.Value.Ms - earlier.GetValueOrDefault(p.Key).Ms), StringComparer.Ordinal);

    public double MsPerRound(string phase) => Rounds == 0 ? 0 : Phases.GetValueOrDefault(phase).Ms / Rounds;

    public double Accounted => WallMs <= 0 ? 0 : Phases.Where(p => p.Key != "other").Sum(p => p.Value.Ms) / WallMs;
}

/// <summary>The double's own figures (<see cref="DoubleTimings"/>), or the difference of two readings.</summary>
internal sealed record DoubleReading(IReadOnlyDictionary<string, (long Count, double Ms)> Steps)
{
    public static DoubleReading From(SharedComponents components) =>
        new(components.Timings.Snapshot().ToDictionary(s => s.Step, s => (s.Count, s.Ms), StringComparer.Ordinal));

    public DoubleReading Since(DoubleReading earlier) =>
        new(Steps.ToDictionary(s => s.Key, s => (s.Value.Count - earlier.Steps.GetValueOrDefault(s.Key).Count, s.Value.Ms - earlier.Steps.GetValueOrDefault(s.Key).Ms), StringComparer.Ordinal));
}

/// <summary>The breakdown tables BENCHMARKS.md shows: per phase the mean ms a round and its share of the round, per node kind.</summary>
internal static class PhaseTables
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static string Render(string title, IReadOnlyList<PhaseReading> workers, PhaseReading? server, DoubleReading sidecar, long rounds)
    {
        var text = new StringBuilder();
        text.Append(C, $"#### {title}\n\n");
        text.Append("| phase | workers: ms a round (mean) | share | " + (server is null ? "" : "ps: ms a round | share |") + "\n");
        text.Append("| --- | ---: | ---: | " + (server is null ? "" : "---: | ---: |") + "\n");
        double workerWall = workers.Average(w => w.WallMs / Math.Max(1, w.Rounds));
        foreach (string phase in PhaseReading.PhaseNames)
        {
            double mean = workers.Average(w => w.MsPerRound(phase));
            text.Append(C, $"| {phase} | {mean:F1} | {100 * mean / workerWall:F0}% | ");
            if (server is not null) text.Append(C, $"{server.MsPerRound(phase):F1} | {100 * server.MsPerRound(phase) / (server.WallMs / Math.Max(1, server.Rounds)):F0}% |");
            text.Append('\n');
        }
        text.Append(C, $"| **round (wall)** | **{workerWall:F1}** | | ");
        if (server is not null) text.Append(C, $"**{server.WallMs / Math.Max(1, server.Rounds):F1}** | |");
        text.Append('\n');
        text.Append(C, $"| accounted | {100 * workers.Average(w => w.Accounted):F0}% | | ");
        if (server is not null) text.Append(C, $"{100 * server.Accounted:F0}% | |");
        text.Append("\n\n");

        // Named parts of the phases (the coordinator's methods, the agreement's polling) and what ran beside the round.
        var nodes = server is null ? workers : [.. workers, server];
        text.Append("Inside the phases, and beside the round (per round of each node, mean over the nodes; count a round in brackets):\n\n");
        foreach (var name in nodes.SelectMany(n => n.Details.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            text.Append(C, $"- {name}: {Describe(nodes.Where(n => n.Details.ContainsKey(name)).Select(n => (n.Node, n.Details[name], n.Rounds)))}\n");
        }
        foreach (var name in nodes.SelectMany(n => n.OffPath.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            text.Append(C, $"- off the path, {name}: {Describe(nodes.Where(n => n.OffPath.ContainsKey(name)).Select(n => (n.Node, n.OffPath[name], n.Rounds)))}\n");
        }
        text.Append("\nThe sidecar double's own work (all sidecars of the job; per occurrence, and per round of the job):\n\n");
        text.Append("| step | count a round | ms each | ms a round (summed over sidecars) |\n| --- | ---: | ---: | ---: |\n");
        foreach (var (step, (count, ms)) in sidecar.Steps.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            if (count <= 0) continue;
            text.Append(C, $"| {step} | {(double)count / rounds:F1} | {ms / count:F2} | {ms / rounds:F1} |\n");
        }
        return text.ToString();
    }

    private static string Describe(IEnumerable<(string Node, (long Count, double Ms) Figure, long Rounds)> figures)
    {
        var list = figures.Where(f => f.Rounds > 0).ToList();
        if (list.Count == 0) return "-";
        double perRound = list.Average(f => f.Figure.Ms / f.Rounds);
        double count = list.Average(f => (double)f.Figure.Count / f.Rounds);
        double each = list.Sum(f => f.Figure.Ms) / Math.Max(1, list.Sum(f => f.Figure.Count));
        return string.Create(C, $"{perRound:F2} ms a round ({count:F1} a round, {each:F2} ms each; {string.Join(", ", list.Select(f => f.Node))})");
    }
}

/// <summary>
/// CPU time (user + system) of each service process and of this test process, which hosts every sidecar double, between two
/// moments: whether a round is bound by the machine's cores (their sum near cores x wall) or by waiting (issue 16).
/// </summary>
internal sealed record CpuReading(IReadOnlyDictionary<string, TimeSpan> Processes)
{
    /// <summary>The job's rounds between the two readings (set by the figures that take them).</summary>
    public long Rounds { get; init; }

    public const string Doubles = "the sidecar doubles (this test process)";

    public static CpuReading Of(IEnumerable<ServiceProcess> services)
    {
        var cpu = services.ToDictionary(s => s.Name, s => s.Cpu, StringComparer.Ordinal);
        cpu[Doubles] = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        return new CpuReading(cpu);
    }

    public CpuReading Since(CpuReading earlier) =>
        new(Processes.ToDictionary(p => p.Key, p => p.Value - earlier.Processes.GetValueOrDefault(p.Key), StringComparer.Ordinal));

    /// <param name="rounds">The job's rounds between the two readings.</param>
    /// <param name="wallMs">The workers' mean wall ms a round.</param>
    public string Table(long rounds, double wallMs)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder("\nCPU time a round, by process (user + system from /proc, between the same two readings; the doubles' figure includes this test's polling of /status):\n\n");
        text.Append("| process | CPU ms a round |\n| --- | ---: |\n");
        double total = 0;
        foreach (var (name, cpu) in Processes.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            double ms = cpu.TotalMilliseconds / Math.Max(1, rounds);
            total += ms;
            text.Append(c, $"| {name} | {ms:F1} |\n");
        }
        text.Append(c, $"| **all** | **{total:F1}** ({total / (Environment.ProcessorCount * wallMs):P0} of {Environment.ProcessorCount} cores x {wallMs:F1} ms) |\n");
        return text.ToString();
    }
}
