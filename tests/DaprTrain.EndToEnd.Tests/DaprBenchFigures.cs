using System.Globalization;
using System.Text.Json;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// One clean Dapr job through the sidecar double for tools/bench-dapr-vs-ddp.sh, which runs it between PyTorch DDP and the
/// embedded mode so that the three are measured under the same load (issue 16). Which job comes from the environment:
/// DAPRTRAIN_BENCH_TOPOLOGY (p2p, ps), DAPRTRAIN_BENCH_WORKERS, DAPRTRAIN_BENCH_SETTINGS (semicolon-separated
/// NAME=VALUE, the services' environment, e.g. Job__TorchThreads=1); the result, a JSON object with the workers' (and the
/// server's) ms a round and their phases, goes to DAPRTRAIN_BENCH_OUT, the phase table beside it (.md).
/// </summary>
[Trait("Category", "Figures")]
public sealed class DaprBenchFigures
{
    [FiguresFact]
    public async Task One_Dapr_job_over_the_double_for_the_bench_script()
    {
        string topology = Environment.GetEnvironmentVariable("DAPRTRAIN_BENCH_TOPOLOGY") ?? "p2p";
        int workers = int.Parse(Environment.GetEnvironmentVariable("DAPRTRAIN_BENCH_WORKERS") ?? "2", CultureInfo.InvariantCulture);
        string output = Environment.GetEnvironmentVariable("DAPRTRAIN_BENCH_OUT") ?? Path.Combine(Path.GetTempPath(), "daprtrain-dapr-bench.json");
        var settings = (Environment.GetEnvironmentVariable("DAPRTRAIN_BENCH_SETTINGS") ?? "")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(pair => pair.Split('=', 2))
            // Keyed as the configuration reads environment variables: case aside, and ':' written as '__'.
            .ToDictionary(pair => pair[0].Replace(":", "__", StringComparison.Ordinal), pair => pair.Length == 2 ? pair[1] : throw new ArgumentException($"DAPRTRAIN_BENCH_SETTINGS: '{pair[0]}' is not NAME=VALUE"),
                StringComparer.OrdinalIgnoreCase);
        // The services' own defaults for what the end-to-end scenarios set tighter to see faults quickly (a checkpoint every 5
        // rounds, a heartbeat every 400 ms): a user's job checkpoints every 10 rounds and renews its lease every second.
        // (TrainingJobOptions' defaults; this project runs the services, it does not reference them.)
        settings.TryAdd("Job__CheckpointEvery", "10");
        settings.TryAdd("Job__HeartbeatMs", "1000");

        // DAPRTRAIN_BENCH_ROUNDS and DAPRTRAIN_BENCH_FROM: the job's rounds and the first measured (the rounds before it are
        // warm-up: the services' JIT and tiered compilation, the first connections).
        // Unset, the script's defaults: 400 rounds, measured from round 200.
        int rounds = int.Parse(Environment.GetEnvironmentVariable("DAPRTRAIN_BENCH_ROUNDS") ?? "400", CultureInfo.InvariantCulture);
        int from = int.Parse(Environment.GetEnvironmentVariable("DAPRTRAIN_BENCH_FROM") ?? "200", CultureInfo.InvariantCulture);
        if (from < 1 || rounds - from < 20) throw new ArgumentException($"DAPRTRAIN_BENCH_FROM ({from}) must be at least 1 and at least 20 rounds below DAPRTRAIN_BENCH_ROUNDS ({rounds})");
        var (table, workerReadings, server, cpu) = await RoundPhasesFigures.MeasureAsync(topology, workers, wakeOnDelivery: true, settings: settings, rounds: rounds, from: from);
        Console.WriteLine(table);

        static Dictionary<string, double> Phases(IReadOnlyList<PhaseReading> readings) =>
            readings.SelectMany(r => r.Phases.Keys).Distinct().ToDictionary(p => p, p => Math.Round(readings.Average(r => r.MsPerRound(p)), 2));
        var result = new Dictionary<string, object?>
        {
            ["topology"] = topology,
            ["workers"] = workers,
            ["rounds"] = $"{from}-{rounds}",
            ["settings"] = settings,
            ["workersRoundMs"] = Math.Round(workerReadings.Average(w => w.WallMs / w.Rounds), 2),
            ["workersPhases"] = Phases(workerReadings),
            ["serverRoundMs"] = server is null ? null : Math.Round(server.WallMs / server.Rounds, 2),
            ["serverPhases"] = server is null ? null : Phases([server]),
            // CPU ms a round of each process (the doubles: this test process), over the job's rounds in the measured stretch.
            ["cores"] = Environment.ProcessorCount,
            ["cpuMsPerRound"] = cpu.Processes.ToDictionary(p => p.Key, p => Math.Round(p.Value.TotalMilliseconds / Math.Max(1, cpu.Rounds), 2)),
        };
        File.WriteAllText(output, JsonSerializer.Serialize(result));
        File.WriteAllText(Path.ChangeExtension(output, ".md"), table);
        Assert.True(workerReadings.All(w => w.Rounds > 0), "every worker applied rounds in the measured stretch");
    }
}
