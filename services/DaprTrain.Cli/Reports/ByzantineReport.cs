using DaprTrain.Coordination;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DaprTrain.Simulation;
using ScottPlot;

namespace DaprTrain.Cli.Reports;

/// <summary>One run of the Byzantine comparison: a configuration (n workers, f attackers), an aggregator, an attack ("none": clean).</summary>
public sealed record ByzantineCell(int Workers, int Byzantine, string Aggregator, string Rule, string Attack, RunResult? Result, string? Note);

/// <summary>Writes the Byzantine comparison: report.md (a table per configuration), results.json and an accuracy plot per configuration and attack.</summary>
public static class ByzantineReport
{
    // A collapsed run's loss may be infinite: written as "Infinity" rather than failing the report.
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<ByzantineCell> cells, string commandLine, string dataDescription)
    {
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        var configurations = cells.Select(c => (c.Workers, c.Byzantine)).Distinct().ToList();
        var attacks = cells.Select(c => c.Attack).Distinct().ToList();
        foreach (var (workers, byzantine) in configurations)
        {
            foreach (string attack in attacks.Where(a => a != "none"))
            {
                string file = PlotFile(workers, byzantine, attack);
                Plot(cells.Where(c => c.Workers == workers && c.Byzantine == byzantine).ToList(), attack, Path.Combine(folder, file));
                written.Add(file);
            }
        }
        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(Results(cells), Json));
        written.Add("results.json");
        File.WriteAllText(Path.Combine(folder, "report.md"), Markdown(cells, configurations, attacks, commandLine, dataDescription));
        written.Add("report.md");
        return written;
    }

    private static string PlotFile(int workers, int byzantine, string attack) => $"byzantine-f{byzantine}-of-{workers}-{attack}.png";

    private static string Markdown(IReadOnlyList<ByzantineCell> cells, IReadOnlyList<(int Workers, int Byzantine)> configurations, IReadOnlyList<string> attacks,
        string commandLine, string dataDescription)
    {
        var first = cells.First(c => c.Result is not null).Result!;
        var o = first.Options;
        var md = new StringBuilder();
        md.AppendLine("# DaprTrain: Byzantine-robust aggregation");
        md.AppendLine();
        md.AppendLine($"Command: `{commandLine}`");
        md.AppendLine();
        md.AppendLine($"- Data: {dataDescription}. Model {o.Trainer.Model}, batch {o.Trainer.BatchSize} per worker, {o.Trainer.Optimizer.Kind} lr {o.Trainer.Optimizer.LearningRate.ToString(CultureInfo.InvariantCulture)}, " +
                      $"seed {o.Trainer.Seed}, {o.Rounds} rounds, topology {o.Topology.Name()}, embedded mode.");
        md.AppendLine("- Attackers are worker-1 .. worker-f, all running the same attack from round 1; `none` is the same configuration without attackers. " +
                      "signflip sends -10 x its gradient; gaussian sends N(0, 100^2) noise instead; noise adds N(0, 1); labelflip trains on labels 9 - y; " +
                      "alie (Baruch et al. 2019) sends mean - z x std of the round's honest gradients (the colluders see them all), z = the paper's z_max for n and f (0 for f = 1 of 4: it then sends the honest mean).");
        md.AppendLine("- Robust rules count every gradient once (no sample weighting). The clean reference of a configuration is the mean without attackers.");
        md.AppendLine();
        foreach (var (workers, byzantine) in configurations)
        {
            var mine = cells.Where(c => c.Workers == workers && c.Byzantine == byzantine).ToList();
            double? clean = mine.FirstOrDefault(c => c.Aggregator == "mean" && c.Attack == "none")?.Result?.FinalAccuracy;
            md.AppendLine($"## f = {byzantine} Byzantine of {workers} workers");
            md.AppendLine();
            md.AppendLine($"Final held-out accuracy (difference from the clean mean, {(clean is double c ? $"{c * 100:F2}%" : "not run")}, in points):");
            md.AppendLine();
            md.AppendLine("| aggregator | " + string.Join(" | ", attacks) + " |");
            md.AppendLine("| --- |" + string.Concat(attacks.Select(_ => " ---: |")));
            foreach (var aggregator in mine.Select(c => c.Aggregator).Distinct())
            {
                var row = mine.Where(c => c.Aggregator == aggregator).ToList();
                string rule = row[0].Rule;
                var line = new StringBuilder($"| {rule}{(row[0].Note is string note && row[0].Result is not null ? $" ({note})" : "")} |");
                foreach (string attack in attacks)
                {
                    var cell = row.FirstOrDefault(c => c.Attack == attack);
                    if (cell?.Result is not RunResult r)
                    {
                        line.Append(cell?.Note is string why ? $" n/a: {why} |" : " - |");
                        continue;
                    }
                    string delta = clean is double baseline ? $" ({(r.FinalAccuracy - baseline) * 100:+0.00;-0.00;0.00})" : "";
                    line.Append($" {r.FinalAccuracy * 100:F2}%{delta} |");
                }
                md.AppendLine(line.ToString());
            }
            md.AppendLine();
            var best = attacks.Where(a => a != "none").Select(a => (Attack: a, Best: mine.Where(c => c.Attack == a && c.Aggregator != "mean" && c.Result is not null)
                .OrderByDescending(c => c.Result!.FinalAccuracy).FirstOrDefault())).Where(p => p.Best is not null).ToList();
            if (clean is double reference && best.Count > 0)
            {
                md.AppendLine("Best robust rule per attack: " + string.Join("; ", best.Select(p =>
                    $"{p.Attack}: {p.Best!.Rule} {p.Best.Result!.FinalAccuracy * 100:F2}% ({((p.Best.Result.FinalAccuracy - reference) * 100):+0.00;-0.00;0.00} points{(reference - p.Best.Result.FinalAccuracy <= 0.02 ? ", within 2" : ", NOT within 2")})")) + ".");
                md.AppendLine();
            }
            var cleanRuns = mine.Where(c => c.Attack == "none" && c.Result is not null).ToList();
            var meanRun = cleanRuns.FirstOrDefault(c => c.Aggregator == "mean")?.Result;
            if (meanRun is not null)
            {
                md.AppendLine("Whole-run cost of each rule without attackers (virtual time: measured compute and aggregation plus the network model; wall: this process):");
                md.AppendLine();
                md.AppendLine("| aggregator | virtual time | vs mean | wall | vs mean |");
                md.AppendLine("| --- | ---: | ---: | ---: | ---: |");
                foreach (var cell in cleanRuns)
                {
                    var r = cell.Result!;
                    md.AppendLine($"| {cell.Rule} | {r.TotalMs / 1000:F2} s | {r.TotalMs / meanRun.TotalMs:F2}x | {r.WallMs / 1000:F1} s | {r.WallMs / meanRun.WallMs:F2}x |");
                }
                md.AppendLine();
            }
            foreach (string attack in attacks.Where(a => a != "none"))
            {
                md.AppendLine($"![f = {byzantine} of {workers}, {attack}]({PlotFile(workers, byzantine, attack)})");
            }
            md.AppendLine();
        }
        md.AppendLine("Every run's accuracy over rounds is in results.json.");
        return md.ToString();
    }

    private static void Plot(IReadOnlyList<ByzantineCell> cells, string attack, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var aggregators = cells.Select(c => c.Aggregator).Distinct().ToList();
        var clean = cells.FirstOrDefault(c => c.Aggregator == "mean" && c.Attack == "none")?.Result;
        if (clean is not null)
        {
            var points = clean.Rounds.Where(r => r.Accuracy is not null).ToList();
            var line = plot.Add.Scatter(points.Select(r => (double)r.Round).ToArray(), points.Select(r => r.Accuracy!.Value * 100).ToArray());
            line.LegendText = "clean (mean, no attacker)";
            line.Color = Colors.Black;
            line.LinePattern = LinePattern.Dashed;
            line.MarkerSize = 0;
        }
        for (int a = 0; a < aggregators.Count; a++)
        {
            var cell = cells.FirstOrDefault(c => c.Aggregator == aggregators[a] && c.Attack == attack);
            if (cell?.Result is not RunResult r) continue;
            var points = r.Rounds.Where(x => x.Accuracy is not null).ToList();
            var line = plot.Add.Scatter(points.Select(x => (double)x.Round).ToArray(), points.Select(x => x.Accuracy!.Value * 100).ToArray());
            line.LegendText = cell.Rule;
            line.Color = palette.GetColor(a);
            line.MarkerSize = 3;
        }
        var any = cells.First(c => c.Result is not null);
        plot.Title($"Held-out accuracy: {attack}, f = {any.Byzantine} Byzantine of {any.Workers} workers");
        plot.XLabel("round");
        plot.YLabel("accuracy, %");
        plot.Axes.SetLimitsY(0, 100);
        // Middle right: robust runs end near the top and collapsed ones near the bottom, so the legend hides neither.
        plot.ShowLegend(Alignment.MiddleRight);
        plot.SavePng(path, 900, 520);
    }

    private static object Results(IReadOnlyList<ByzantineCell> cells) => cells.Select(c => new
    {
        workers = c.Workers,
        byzantine = c.Byzantine,
        aggregator = c.Rule,
        attack = c.Attack,
        note = c.Note,
        finalAccuracy = c.Result?.FinalAccuracy,
        finalLoss = c.Result?.FinalLoss,
        totalMs = c.Result?.TotalMs,
        wallMs = c.Result?.WallMs,
        faults = c.Result?.Options.Faults.Attacks.Select(a => a.ToString()),
        accuracy = c.Result?.Rounds.Where(r => r.Accuracy is not null).Select(r => new { round = r.Round, accuracy = r.Accuracy, loss = r.Loss }),
    }).ToList();
}
