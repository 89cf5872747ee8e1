using DaprTrain.Coordination;
using DaprTrain.Simulation;

namespace DaprTrain.Cli.Reports;

/// <summary>
/// One deployment of the compare grid: a topology, a compute mode (with K functions for serverless), and for serverless
/// runs the layout that is billed: peers on instances with gradients in functions, or everything in functions.
/// </summary>
public sealed record GridPoint(string Label, Topology Topology, ComputeMode Compute, int Functions, string Layout, double FinalAccuracy,
    double? TimeToTargetMs, double TotalMs, double CostUsd)
{
    public const string InstancesLayout = "instances";
    public const string AllFunctionsLayout = "all-functions";

    /// <summary>The points of one run: a VM run is one deployment; a serverless run is billed in both layouts.</summary>
    public static IEnumerable<GridPoint> Of(RunResult run)
    {
        var o = run.Options;
        string name = o.Compute == ComputeMode.Serverless ? $"{o.Topology.Name()} serverless K={o.Serverless!.Functions}" : $"{o.Topology.Name()} vm";
        int k = o.Compute == ComputeMode.Serverless ? o.Serverless!.Functions : 0;
        yield return new GridPoint(o.Compute == ComputeMode.Serverless ? name + " (peers on instances)" : name, o.Topology, o.Compute, k, InstancesLayout,
            run.FinalAccuracy, run.TimeToTargetMs, run.TotalMs, run.Billing.InstancesUsd);
        if (o.Compute == ComputeMode.Serverless)
        {
            yield return new GridPoint(name + " (all functions)", o.Topology, o.Compute, k, AllFunctionsLayout, run.FinalAccuracy, run.TimeToTargetMs, run.TotalMs, run.Billing.AllFunctionsUsd);
        }
    }
}

/// <summary>The Pareto front of time against cost, and the planner's answer to "the cheapest configuration that reaches the target in time".</summary>
public static class GridPlanner
{
    /// <summary>Points that reached the target accuracy and that no other such point beats on both time to target and cost.</summary>
    public static IReadOnlyList<GridPoint> ParetoFront(IEnumerable<GridPoint> points)
    {
        var reached = points.Where(p => p.TimeToTargetMs is not null).ToList();
        return [.. reached.Where(p => !reached.Any(q => Dominates(q, p))).OrderBy(p => p.TimeToTargetMs).ThenBy(p => p.CostUsd)];
    }

    /// <summary>
    /// The cheapest point that reaches the target accuracy, within <paramref name="targetTimeMs"/> when given and within
    /// <paramref name="budgetUsd"/> when given; ties go to the faster. Null when no point qualifies.
    /// </summary>
    public static GridPoint? Cheapest(IEnumerable<GridPoint> points, double? targetTimeMs, double? budgetUsd) => points
        .Where(p => p.TimeToTargetMs is double t && (targetTimeMs is null || t <= targetTimeMs) && (budgetUsd is null || p.CostUsd <= budgetUsd))
        .OrderBy(p => p.CostUsd).ThenBy(p => p.TimeToTargetMs).ThenBy(p => p.Label, StringComparer.Ordinal)
        .FirstOrDefault();

    private static bool Dominates(GridPoint a, GridPoint b) =>
        a.TimeToTargetMs <= b.TimeToTargetMs && a.CostUsd <= b.CostUsd && (a.TimeToTargetMs < b.TimeToTargetMs || a.CostUsd < b.CostUsd);
}
