using System.Globalization;
using System.Text;
using DaprTrain.Simulation;
using ScottPlot;

namespace DaprTrain.Cli.Reports;

/// <summary>The topology x compute-mode grid of a comparison: a table, the time-vs-cost plot with its Pareto front, the planner's choice.</summary>
public static class GridReport
{
    public const string PlotFile = "time-vs-cost.png";

    public static string Markdown(IReadOnlyList<RunResult> runs, IReadOnlyList<GridPoint> points, double? targetTimeMs, double? budgetUsd)
    {
        var front = GridPlanner.ParetoFront(points);
        var md = new StringBuilder();
        md.AppendLine("## Topology x compute mode (no faults)");
        md.AppendLine();
        var serverless = runs.FirstOrDefault(r => r.Functions is not null)?.Functions;
        var first = runs[0];
        md.AppendLine("Time is virtual (measured compute plus the network model; for serverless, the measured compute of every function invocation " +
                      "plus the platform profile's modelled overheads). Every cost is modelled: VM instances billed per second with a " +
                      $"{first.Prices.VmMinimumBilledSeconds.ToString(CultureInfo.InvariantCulture)} s minimum ({first.Prices.VmInstanceType}, ${first.Prices.VmPerHour.ToString(CultureInfo.InvariantCulture)}/h), " +
                      $"the exchange channel ({first.Prices.ChannelType}, ${first.Prices.ChannelPerHour.ToString(CultureInfo.InvariantCulture)}/h) in every row" +
                      (serverless is null ? "." : $", functions on the profile '{serverless.Platform}' ({serverless.Date}; {serverless.Source})."));
        md.AppendLine("\"peers on instances\": the peers and the server run on VMs and fan gradients out to functions (arXiv 2309.14139); " +
                      "\"all functions\": every node's round is a function invocation too, its wait at the round's barrier billed (SPIRT, LambdaML). " +
                      "The whole run is priced, to its last round.");
        md.AppendLine();
        md.AppendLine("| configuration | final accuracy | time to target | run time | cost USD | x VM of its topology | cold starts | retries | Pareto |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |");
        foreach (var point in points)
        {
            var run = runs.First(r => GridPoint.Of(r).Contains(point));
            var vm = points.FirstOrDefault(p => p.Topology == point.Topology && p.Compute == Coordination.ComputeMode.Vm);
            string multiple = vm is null || vm.CostUsd <= 0 ? "-" : $"{point.CostUsd / vm.CostUsd:F2}x";
            md.AppendLine($"| {point.Label} | {point.FinalAccuracy * 100:F2}% | {(point.TimeToTargetMs is double t ? $"{t / 1000:F2} s" : "not reached")} | {point.TotalMs / 1000:F2} s | " +
                          $"{point.CostUsd:F6} | {multiple} | {run.Functions?.ColdStarts.ToString(CultureInfo.InvariantCulture) ?? "-"} | {run.Functions?.Retries.ToString(CultureInfo.InvariantCulture) ?? "-"} | {(front.Contains(point) ? "yes" : "")} |");
        }
        md.AppendLine();
        md.AppendLine($"![time to target against cost]({PlotFile})");
        md.AppendLine();
        md.AppendLine(PlannerLine(points, targetTimeMs, budgetUsd));
        md.AppendLine();
        return md.ToString();
    }

    public static string PlannerLine(IReadOnlyList<GridPoint> points, double? targetTimeMs, double? budgetUsd)
    {
        string within = (targetTimeMs is double t ? $" within {t / 1000:F2} s" : "") + (budgetUsd is double b ? $" for at most ${b:F6}" : "");
        var choice = GridPlanner.Cheapest(points, targetTimeMs, budgetUsd);
        return choice is null
            ? $"Planner: no configuration of the grid reaches the target accuracy{within}."
            : $"Planner: the cheapest configuration that reaches the target accuracy{within} is **{choice.Label}**: " +
              $"{choice.TimeToTargetMs!.Value / 1000:F2} s to target, ${choice.CostUsd:F6} (modelled).";
    }

    public static void Plot(IReadOnlyList<GridPoint> points, string path)
    {
        var plot = new Plot();
        var reached = points.Where(p => p.TimeToTargetMs is not null).ToList();
        var palette = new ScottPlot.Palettes.Category10();
        int color = 0;
        foreach (var group in reached.GroupBy(p => (p.Compute, p.Layout)))
        {
            var scatter = plot.Add.ScatterPoints(group.Select(p => p.TimeToTargetMs!.Value / 1000).ToArray(), group.Select(p => p.CostUsd).ToArray());
            scatter.Color = palette.GetColor(color++);
            scatter.MarkerSize = 9;
            scatter.LegendText = group.Key.Compute == Coordination.ComputeMode.Vm ? "vm" : $"serverless, {group.Key.Layout}";
            foreach (var p in group)
            {
                var label = plot.Add.Text(p.Label.Split(" (", StringSplitOptions.None)[0], p.TimeToTargetMs!.Value / 1000, p.CostUsd);
                label.LabelFontSize = 9;
            }
        }
        var front = GridPlanner.ParetoFront(points);
        if (front.Count > 0)
        {
            var line = plot.Add.Scatter(front.Select(p => p.TimeToTargetMs!.Value / 1000).ToArray(), front.Select(p => p.CostUsd).ToArray());
            line.LinePattern = LinePattern.Dashed;
            line.MarkerSize = 0;
            line.Color = Colors.Black;
            line.LegendText = "Pareto front";
        }
        plot.Title("Time to target accuracy against cost (modelled), no faults");
        plot.XLabel("time to target, s (virtual)");
        plot.YLabel("cost of the run, USD (modelled)");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, 1000, 600);
    }
}
