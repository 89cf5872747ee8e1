using DaprTrain.Coordination;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using DaprTrain.Simulation;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;
using DaprTrain.Training.Tests;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DaprTrain.Engine.Tests;

internal static class Jobs
{
    public static readonly PriceTable Prices = new("test", "2026-11-25", "test", 0.0000166667, 0.2, "vm", 0.096, 2, 2);

    public static JobOptions Options(Topology topology, long rounds, params string[] faults) => new(
        "test-job", topology, 4,
        new TrainerOptions("mlp", new OptimizerSettings(OptimizerKind.Adam, 2e-3), 64, 11),
        rounds, FaultPlan.Parse(faults), new NetworkModel(), CheckpointEvery: 10, EvaluateEvery: 10);

    public static async Task<RunResult> RunAsync(JobOptions options, ICheckpointStore? store = null, ILoggerFactory? loggers = null)
    {
        using var job = new EmbeddedJob(options, TestData.Mnist8k2k, store ?? new InMemoryCheckpointStore(), Prices, loggers ?? NullLoggerFactory.Instance);
        return await job.RunAsync();
    }
}
