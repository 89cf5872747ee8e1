using DaprTrain.Simulation.Faults;

namespace DaprTrain.Cli;

/// <summary>The built-in fault scenarios of compare, placed relative to the run's length.</summary>
internal static class Scenarios
{
    public static IReadOnlyList<string> Names { get; } = ["none", "kill-worker", "kill-ps", "restart-worker", "slow-worker", "flaky-network"];

    public static FaultPlan Create(string name, long rounds)
    {
        long third = Math.Max(1, rounds / 3);
        long quarter = Math.Max(1, rounds / 4);
        long half = Math.Max(quarter + 1, rounds / 2);
        return name switch
        {
            "none" => FaultPlan.Parse([], "none"),
            "kill-worker" => FaultPlan.Parse([$"kill:worker-2@round={third}"], "kill-worker"),
            "kill-ps" => FaultPlan.Parse([$"kill:ps@round={half}"], "kill-ps"),
            "restart-worker" => FaultPlan.Parse([$"kill:worker-2@round={quarter}", $"restart:worker-2@round={half}"], "restart-worker"),
            "slow-worker" => FaultPlan.Parse(["slow:worker-1=400ms"], "slow-worker"),
            "flaky-network" => FaultPlan.Parse(["drop=0.05", "duplicate=0.1", "reorder"], "flaky-network"),
            _ => throw new ArgumentException($"unknown scenario '{name}' (built in: {string.Join(", ", Names)}; or pass a file with --scenario)"),
        };
    }

    public static bool AppliesTo(FaultPlan plan, bool hasParameterServer) => hasParameterServer || plan.NodeFaults.All(f => f.Node != "ps");
}
