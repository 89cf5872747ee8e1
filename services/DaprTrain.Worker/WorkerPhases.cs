using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Telemetry;

namespace DaprTrain.Worker;

/// <summary>The worker's own splits of a round's phases (issue 16), kept out of the loop.</summary>
internal static class WorkerPhases
{
    /// <summary>Applies the round (aggregate, then the optimizer step): the step's time goes to apply, the rest to aggregate.</summary>
    public static bool Apply(this RoundPhases phases, WorkerRuntime runtime, Func<WorkerNode, bool> apply) => runtime.Use(node =>
    {
        double stepped = node.OptimizerMs;
        bool applied;
        using (phases.Time(RoundPhase.Aggregate)) applied = apply(node);
        phases.Move(RoundPhase.Aggregate, RoundPhase.Apply, node.OptimizerMs - stepped);
        return applied;
    });
}
