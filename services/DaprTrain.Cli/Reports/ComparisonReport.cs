using DaprTrain.Coordination;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DaprTrain.Simulation;
using ScottPlot;

namespace DaprTrain.Cli.Reports;

/// <summary>One cell of the comparison matrix: a run, or why there is none.</summary>
public sealed record ComparisonCell(string Scenario, string Topology, RunResult? Result, string? NotApplicable);

/// <summary>Writes report.md, results.json and the PNG plots of a comparison into a folder.</summary>
public static class ComparisonReport
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<ComparisonCell> cells, string commandLine, string dataDescription,
        string? gridMarkdown = null, IReadOnlyList<GridPoint>? gridPoints = null)
    {
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        var scenarios = cells.Select(c => c.Scenario).Distinct().ToList();
        var topologies = cells.Select(c => c.Topology).Distinct().ToList();

        foreach (var scenario in scenarios)
        {
            string file = $"accuracy-{Slug(scenario)}.png";
            AccuracyPlot(cells.Where(c => c.Scenario == scenario && c.Result is not null).ToList(), scenario, Path.Combine(folder, file));
            written.Add(file);
        }
        BarPlot(cells, scenarios, topologies, "bytes-per-worker.png", "MB per worker per round (sent + received)",
            r => (r.BytesPerWorkerPerRound(true) + r.BytesPerWorkerPerRound(false)) / 1e6, Path.Combine(folder, "bytes-per-worker.png"));
        written.Add("bytes-per-worker.png");
        BarPlot(cells, scenarios, topologies, "cost.png", "serverless cost, USD (busy GB-s + requests)",
            r => r.Cost.ServerlessUsd, Path.Combine(folder, "cost.png"));
        written.Add("cost.png");

        if (gridPoints is { Count: > 0 })
        {
            GridReport.Plot(gridPoints, Path.Combine(folder, GridReport.PlotFile));
            written.Add(GridReport.PlotFile);
        }

        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(Results(cells), Json));
        written.Add("results.json");
        if (gridPoints is { Count: > 0 })
        {
            File.WriteAllText(Path.Combine(folder, "grid.json"), JsonSerializer.Serialize(gridPoints, Json));
            written.Add("grid.json");
        }
        File.WriteAllText(Path.Combine(folder, "report.md"), Markdown(cells, scenarios, commandLine, dataDescription) + (gridMarkdown is null ? "" : Environment.NewLine + gridMarkdown));
        written.Add("report.md");
        return written;
    }

    private static string Markdown(IReadOnlyList<ComparisonCell> cells, IReadOnlyList<string> scenarios, string commandLine, string dataDescription)
    {
        var first = cells.First(c => c.Result is not null).Result!;
        var o = first.Options;
        var p = first.Prices;
        var md = new StringBuilder();
        md.AppendLine("# DaprTrain comparison");
        md.AppendLine();
        md.AppendLine($"Command: `{commandLine}`");
        md.AppendLine();
        md.AppendLine("## Assumptions");
        md.AppendLine();
        md.AppendLine($"- Data: {dataDescription}. Model {o.Trainer.Model}, {o.Workers} workers, batch {o.Trainer.BatchSize} per worker, {o.Trainer.Optimizer.Kind} lr {o.Trainer.Optimizer.LearningRate.ToString(CultureInfo.InvariantCulture)}, seed {o.Trainer.Seed}, {o.Rounds} rounds, {o.Sharding} sharding.");
        md.AppendLine($"- Embedded mode: every node runs in this process. Times are virtual: the measured compute of each step, plus injected delays, plus a network model of {o.Network.LatencyMs} ms per hop and {o.Network.BandwidthMbps} Mbit/s per node link (the busiest link of each phase sets its duration). Wall time is reported beside it.");
        md.AppendLine($"- Rounds close after {o.RoundDeadlineMs} ms without the missing gradients; a worker without a heartbeat for {o.LeaseMs} ms leaves the membership; a killed parameter server runs again after {o.ParameterServerRestartMs} ms and restores its latest checkpoint (every {o.CheckpointEvery} rounds).");
        md.AppendLine($"- Recovery time: from the fault to the end of the next completed round. Detection: from the fault to the lease expiry (or the server's restart).");
        md.AppendLine($"- Cost: serverless = busy GB-seconds x ${p.ServerlessPerGbSecond.ToString(CultureInfo.InvariantCulture)} + requests x ${p.ServerlessPerMillionRequests.ToString(CultureInfo.InvariantCulture)}/million (worker {p.WorkerMemoryGb} GB, server and coordinator {p.ServerMemoryGb} GB; a request is a delivered message, a coordinator call or a state operation); VM = one {p.VmInstanceType} per node (workers, server, coordinator) for the whole run at ${p.VmPerHour.ToString(CultureInfo.InvariantCulture)}/h. Prices: {p.Source} ({p.Region}, {p.Date}).");
        md.AppendLine($"- Time to target: first evaluation (every {o.EvaluateEvery} rounds) at or above {o.TargetAccuracy * 100:F0}% held-out accuracy.");
        md.AppendLine();

        foreach (var scenario in scenarios)
        {
            md.AppendLine($"## Scenario: {scenario}");
            md.AppendLine();
            var any = cells.First(c => c.Scenario == scenario && c.Result is not null).Result!;
            if (!any.Options.Faults.IsEmpty) md.AppendLine($"Faults: `{string.Join(" ", any.Options.Faults.NodeFaults.Select(f => f.ToString()))}{BusText(any)}`");
            md.AppendLine();
            md.AppendLine("| topology | final accuracy | time (virtual) | time to target | rounds lost | gradients left out | recovery | detection | MB/worker/round sent | MB/worker/round received | serverless USD | VM USD | wall |");
            md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var cell in cells.Where(c => c.Scenario == scenario))
            {
                if (cell.Result is not RunResult r)
                {
                    md.AppendLine($"| {cell.Topology} | n/a: {cell.NotApplicable} | | | | | | | | | | | |");
                    continue;
                }
                string recovery = r.Faults.Count == 0 ? "-" : string.Join(", ", r.Faults.Select(f => f.RecoveryMs is double ms ? $"{ms:F0} ms" : "none"));
                string detection = r.Faults.Count == 0 ? "-" : string.Join(", ", r.Faults.Select(f => f.DetectionMs is double ms ? $"{ms:F0} ms" : "-"));
                md.AppendLine($"| {cell.Topology} | {r.FinalAccuracy * 100:F2}% | {r.TotalMs / 1000:F2} s | {(r.TimeToTargetMs is double t ? $"{t / 1000:F2} s" : "not reached")} | {r.RoundsLost} | {r.GradientsDropped} | {recovery} | {detection} | " +
                              $"{r.BytesPerWorkerPerRound(true) / 1e6:F3} | {r.BytesPerWorkerPerRound(false) / 1e6:F3} | {r.Cost.ServerlessUsd:F6} | {r.Cost.VmUsd:F6} | {r.WallMs / 1000:F1} s |");
            }
            md.AppendLine();
            md.AppendLine($"![accuracy over time, {scenario}](accuracy-{Slug(scenario)}.png)");
            md.AppendLine();
        }
        md.AppendLine("## Bytes and cost");
        md.AppendLine();
        md.AppendLine("![bytes per worker](bytes-per-worker.png)");
        md.AppendLine();
        md.AppendLine("![serverless cost](cost.png)");
        md.AppendLine();
        md.AppendLine("Per-run details, every round and every node, are in results.json.");
        return md.ToString();
    }

    private static string BusText(RunResult r)
    {
        var b = r.Options.Faults.Bus;
        var parts = new List<string>();
        if (b.DropProbability > 0) parts.Add($"drop={b.DropProbability.ToString(CultureInfo.InvariantCulture)}");
        if (b.DuplicateProbability > 0) parts.Add($"duplicate={b.DuplicateProbability.ToString(CultureInfo.InvariantCulture)}");
        if (b.DelayProbability > 0) parts.Add($"delay={b.DelayProbability.ToString(CultureInfo.InvariantCulture)}:{b.DelayMs.ToString(CultureInfo.InvariantCulture)}ms");
        if (b.Reorder) parts.Add("reorder");
        return parts.Count == 0 ? "" : (r.Options.Faults.NodeFaults.Count > 0 ? " " : "") + string.Join(" ", parts);
    }

    private static void AccuracyPlot(IReadOnlyList<ComparisonCell> cells, string scenario, string path)
    {
        var plot = new Plot();
        foreach (var cell in cells)
        {
            var points = cell.Result!.Rounds.Where(r => r.Accuracy is not null).ToList();
            var line = plot.Add.Scatter(points.Select(r => r.EndMs / 1000).ToArray(), points.Select(r => r.Accuracy!.Value * 100).ToArray());
            line.LegendText = cell.Topology;
            foreach (var fault in cell.Result.Faults)
            {
                var marker = plot.Add.VerticalLine(fault.AtMs / 1000);
                marker.LinePattern = LinePattern.Dashed;
                marker.Color = line.Color;
                marker.Text = fault.Fault.Split('@')[0];
            }
        }
        plot.Title($"Held-out accuracy, scenario: {scenario}");
        plot.XLabel("time, s (virtual)");
        plot.YLabel("accuracy, %");
        plot.ShowLegend(Alignment.LowerRight);
        plot.SavePng(path, 900, 520);
    }

    private static void BarPlot(IReadOnlyList<ComparisonCell> cells, IReadOnlyList<string> scenarios, IReadOnlyList<string> topologies, string name, string label, Func<RunResult, double> value, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (int s = 0; s < scenarios.Count; s++)
        {
            double groupStart = s * (topologies.Count + 1);
            for (int t = 0; t < topologies.Count; t++)
            {
                var cell = cells.FirstOrDefault(c => c.Scenario == scenarios[s] && c.Topology == topologies[t]);
                if (cell?.Result is null) continue;
                bars.Add(new Bar { Position = groupStart + t, Value = value(cell.Result), FillColor = palette.GetColor(t) });
            }
            ticks.Add(new Tick(groupStart + (topologies.Count - 1) / 2.0, scenarios[s]));
        }
        plot.Add.Bars(bars);
        for (int t = 0; t < topologies.Count; t++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = topologies[t], FillColor = palette.GetColor(t) });
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Margins(bottom: 0);
        plot.Title(name.Replace(".png", "", StringComparison.Ordinal).Replace('-', ' '));
        plot.YLabel(label);
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, 1000, 520);
    }

    private static object Results(IReadOnlyList<ComparisonCell> cells) => cells.Select(c => c.Result is not RunResult r
        ? (object)new { scenario = c.Scenario, topology = c.Topology, notApplicable = c.NotApplicable }
        : new
        {
            scenario = c.Scenario,
            topology = c.Topology,
            faults = r.Options.Faults.NodeFaults.Select(f => f.ToString()),
            bus = r.Options.Faults.Bus,
            options = new { r.Options.Workers, r.Options.Rounds, model = r.Options.Trainer.Model, r.Options.Trainer.BatchSize, seed = r.Options.Trainer.Seed, r.Options.RoundDeadlineMs, r.Options.LeaseMs, r.Options.ParameterServerRestartMs, r.Options.CheckpointEvery, r.Options.Network },
            finalAccuracy = r.FinalAccuracy,
            finalLoss = r.FinalLoss,
            totalMs = r.TotalMs,
            wallMs = r.WallMs,
            timeToTargetMs = r.TimeToTargetMs,
            roundsLost = r.RoundsLost,
            gradientsLeftOut = r.GradientsDropped,
            lateMessages = r.LateMessages,
            duplicatesIgnored = r.DuplicatesIgnored,
            rejected = r.Rejected,
            requests = r.Requests,
            cost = r.Cost,
            billing = r.Billing,
            functions = r.Functions,
            prices = r.Prices,
            faultRecords = r.Faults.Select(f => new { f.Fault, f.Round, f.AtMs, f.DetectedAtMs, f.RecoveredAtMs, f.RecoveryMs, f.DetectionMs, f.RoundsLost }),
            nodes = r.Nodes,
            rounds = r.Rounds,
        }).ToList();

    private static string Slug(string text) => new(text.Select(ch => char.IsAsciiLetterOrDigit(ch) ? char.ToLowerInvariant(ch) : '-').ToArray());
}
