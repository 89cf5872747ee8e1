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
            .ToDictionary(pair => pair[0], pair => pair.Length == 2 ? pair[1] : throw new ArgumentException($"DAPRTRAIN_BENCH_SETTINGS: '{pair[0]}' is not NAME=VALUE"));

        var (table, workerReadings, server) = await RoundPhasesFigures.MeasureAsync(topology, workers, wakeOnDelivery: true, settings: settings);
        Console.WriteLine(table);

        static Dictionary<string, double> Phases(IReadOnlyList<PhaseReading> readings) =>
            readings.SelectMany(r => r.Phases.Keys).Distinct().ToDictionary(p => p, p => Math.Round(readings.Average(r => r.MsPerRound(p)), 2));
        var result = new Dictionary<string, object?>
        {
            ["topology"] = topology,
            ["workers"] = workers,
            ["rounds"] = $"{RoundPhasesFigures.From}-{RoundPhasesFigures.Rounds}",
            ["settings"] = settings,
            ["workersRoundMs"] = Math.Round(workerReadings.Average(w => w.WallMs / w.Rounds), 2),
            ["workersPhases"] = Phases(workerReadings),
            ["serverRoundMs"] = server is null ? null : Math.Round(server.WallMs / server.Rounds, 2),
            ["serverPhases"] = server is null ? null : Phases([server]),
        };
        File.WriteAllText(output, JsonSerializer.Serialize(result));
        File.WriteAllText(Path.ChangeExtension(output, ".md"), table);
        Assert.True(workerReadings.All(w => w.Rounds > 0), "every worker applied rounds in the measured stretch");
    }
}
