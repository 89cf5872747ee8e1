using DaprTrain.Coordination;
using DaprTrain.Engine.Aggregation;
using System.CommandLine;
using System.Diagnostics;
using DaprTrain.Cli.Reports;
using DaprTrain.Simulation.Faults;
using DaprTrain.Simulation.Compute;
using DaprTrain.Simulation;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

internal static class CompareCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var common = new CommonOptions();
        var distributed = new DistributedOptions();
        var topologies = new Option<string[]>("--topologies")
        {
            Description = "Topologies to compare: " + string.Join(", ", Topologies.Names) + ".",
            DefaultValueFactory = _ => [.. Topologies.Names],
            AllowMultipleArgumentsPerToken = true,
        }.AcceptOnlyFromAmong([.. Topologies.Names]);
        var scenarios = new Option<string[]>("--scenarios")
        {
            Description = "Built-in fault scenarios: " + string.Join(", ", Scenarios.Names) + ". Faults sit at fixed fractions of the run.",
            DefaultValueFactory = _ => [.. Scenarios.Names],
            AllowMultipleArgumentsPerToken = true,
        }.AcceptOnlyFromAmong([.. Scenarios.Names]);
        var scenarioFiles = new Option<string[]>("--scenario-file") { Description = "Add a scenario from a file (repeatable; see train --scenario)." };
        var outFolder = new Option<string?>("--out", "-o") { Description = "Report folder (default: ./daprtrain-report-<date>-<time>)." };
        var gridFunctions = new Option<int[]>("--grid-functions")
        {
            Description = "The grid's serverless runs: functions per worker (K) to try beside --compute vm, for every topology, without faults. None: no grid.",
            DefaultValueFactory = _ => [2, 8],
            AllowMultipleArgumentsPerToken = true,
        };
        var scenarioSet = new Option<string>("--scenario")
        {
            Description = "faults: every topology under the fault scenarios (and the grid). byzantine: instead, every --aggregators rule against every --attacks attack " +
                          "with f = 1 Byzantine worker of 4 and f = 2 of 7, beside the clean run, on --byzantine-topology; a table and a plot per attack. " +
                          "compression: instead, every --codecs codec on every --topologies topology without faults: bytes per worker per round and accuracy against none.",
            DefaultValueFactory = _ => "faults",
        }.AcceptOnlyFromAmong("faults", "byzantine", "compression");
        var codecs = new Option<string[]>("--codecs")
        {
            Description = "--scenario compression: the codecs to compare (" + DaprTrain.Engine.Compression.CompressionSpec.Grammar + "); none is always run as the baseline.",
            DefaultValueFactory = _ => [.. CompressionComparison.DefaultCodecs],
            AllowMultipleArgumentsPerToken = true,
        };
        codecs.Validators.Add(r =>
        {
            foreach (string codec in r.GetValueOrDefault<string[]>() ?? [])
            {
                if (!DaprTrain.Engine.Compression.CompressionSpec.TryParse(codec, out _, out string? problem)) r.AddError($"--codecs: {problem}");
            }
        });
        var aggregators = new Option<string[]>("--aggregators")
        {
            Description = "--scenario byzantine: the aggregators to compare (" + string.Join(", ", AggregationRule.Names) + "); f is the configuration's, or the most the rule allows.",
            DefaultValueFactory = _ => [.. AggregationRule.Names],
            AllowMultipleArgumentsPerToken = true,
        }.AcceptOnlyFromAmong([.. AggregationRule.Names]);
        var attacks = new Option<string[]>("--attacks")
        {
            Description = "--scenario byzantine: the attacks every Byzantine worker runs, one at a time (" + GradientAttack.Grammar + ", without @round).",
            DefaultValueFactory = _ => [.. ByzantineComparison.DefaultAttacks],
            AllowMultipleArgumentsPerToken = true,
        };
        attacks.Validators.Add(r =>
        {
            foreach (string attack in r.GetValueOrDefault<string[]>() ?? [])
            {
                try
                {
                    if (GradientAttack.Parse(attack).FromRound != 1) r.AddError($"--attacks: '{attack}': attacks here run from round 1 (no @round)");
                }
                catch (ArgumentException ex)
                {
                    r.AddError($"--attacks: {ex.Message}");
                }
            }
        });
        var byzantineTopology = new Option<string>("--byzantine-topology")
        {
            Description = "--scenario byzantine: the topology (ps: the server aggregates; p2p: every replica; p2p-scatter: per slice, coordinate-wise rules only).",
            DefaultValueFactory = _ => Topology.PeerToPeer.Name(),
        }.AcceptOnlyFromAmong([.. Topologies.Names]);
        var targetTime = new Option<double?>("--target-time") { Description = "Planner: seconds (virtual) within which --target-accuracy must be reached." };
        var budget = new Option<double?>("--budget") { Description = "Planner: the most a run may cost, USD (modelled)." };
        gridFunctions.Validators.Add(r =>
        {
            foreach (int k in r.GetValueOrDefault<int[]>() ?? [])
            {
                if (k < 1 || k > ServerlessOptions.MaxFunctions) r.AddError($"--grid-functions: {k} is not between 1 and {ServerlessOptions.MaxFunctions}.");
            }
        });
        targetTime.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double?>() is double v && !(v > 0)) r.AddError($"--target-time must be a positive number of seconds (got {v}).");
        });
        budget.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double?>() is double v && !(v > 0)) r.AddError($"--budget must be a positive number of USD (got {v}).");
        });

        var command = new Command("compare", "Run every topology under every fault scenario on the same data and seed; write report.md, results.json and PNG plots.");
        foreach (var option in common.All) command.Options.Add(option);
        foreach (var option in distributed.All.Where(o => o != distributed.Faults && o != distributed.ScenarioFile)) command.Options.Add(option);
        command.Options.Add(topologies);
        command.Options.Add(scenarios);
        command.Options.Add(scenarioFiles);
        command.Options.Add(outFolder);
        command.Options.Add(gridFunctions);
        command.Options.Add(targetTime);
        command.Options.Add(scenarioSet);
        command.Options.Add(aggregators);
        command.Options.Add(attacks);
        command.Options.Add(byzantineTopology);
        command.Options.Add(codecs);
        command.Options.Add(budget);
        common.Epochs.DefaultValueFactory = _ => 3;

        command.SetAction((result, cancellationToken) => CommandErrors.RunAsync(error, async () =>
        {
            var custom = (result.GetValue(scenarioFiles) ?? []).Select(FaultPlan.ParseFile).ToList();
            var prices = distributed.LoadPrices(result);
            string folder = result.GetValue(outFolder) ?? $"daprtrain-report-{DateTime.Now:yyyyMMdd-HHmmss}";
            // The report folder is checked (and made) before the comparison whose results it is to hold.
            OutputPaths.CheckFolder(folder, "--out");
            TorchRuntime.EnsureInitialised(result.GetValue(common.Threads));
            using var data = await DataLoading.LoadAsync(result, common, output, cancellationToken);
            if (result.GetValue(scenarioSet) == "byzantine")
            {
                string line = "daprtrain " + string.Join(' ', result.Tokens.Select(t => t.Value));
                var byzantineTemplate = distributed.BuildJobOptions(result, common, data, Topology.PeerToPeer, FaultPlan.None, "byzantine") with { Aggregator = null };
                return await ByzantineComparison.RunAsync(byzantineTemplate, Topologies.Parse(result.GetValue(byzantineTopology)!),
                    [.. (result.GetValue(aggregators) ?? []).Distinct()], [.. (result.GetValue(attacks) ?? []).Distinct()], data, prices, folder, line, output, cancellationToken);
            }
            var chosen = (result.GetValue(topologies) ?? []).Distinct().Select(Topologies.Parse).ToList();
            if (result.GetValue(scenarioSet) == "compression")
            {
                string line = "daprtrain " + string.Join(' ', result.Tokens.Select(t => t.Value));
                var compressionTemplate = distributed.BuildJobOptions(result, common, data, Topology.PeerToPeer, FaultPlan.None, "compression");
                return await CompressionComparison.RunAsync(compressionTemplate, chosen, [.. (result.GetValue(codecs) ?? []).Distinct()], data, prices, folder, line, output, cancellationToken);
            }
            var template = distributed.BuildJobOptions(result, common, data, Topology.PeerToPeer, FaultPlan.None, "compare");
            var plans = (result.GetValue(scenarios) ?? []).Distinct().Select(name => Scenarios.Create(name, template.Rounds)).Concat(custom).ToList();

            // Every run's options (its fault plan above all) are checked before the first run starts.
            foreach (var plan in plans)
            {
                foreach (var topology in chosen.Where(t => Scenarios.AppliesTo(plan, t == Topology.ParameterServer)))
                {
                    (template with { JobId = $"compare-{topology.Name()}", Topology = topology, Faults = plan }).Validate();
                }
            }

            output.WriteLine($"data: {data.Description}");
            output.WriteLine($"comparing {string.Join(", ", chosen.Select(t => t.Name()))} under {plans.Count} scenarios: {template.Workers} workers, {template.Trainer.Model}, {template.Rounds} rounds each, seed {template.Trainer.Seed}");
            var cells = new List<ComparisonCell>();
            var total = Stopwatch.StartNew();
            foreach (var plan in plans)
            {
                foreach (var topology in chosen)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (!Scenarios.AppliesTo(plan, topology == Topology.ParameterServer))
                    {
                        cells.Add(new ComparisonCell(plan.Name, topology.Name(), null, "no parameter server in this topology"));
                        continue;
                    }
                    var options = template with { JobId = $"compare-{topology.Name()}", Topology = topology, Faults = plan };
                    options.Validate();
                    var run = await DistributedRun.RunAsync(options, data, new InMemoryCheckpointStore(), prices, output, quiet: true, cancellationToken);
                    Divergence.Check(run);
                    cells.Add(new ComparisonCell(plan.Name, topology.Name(), run, null));
                    output.WriteLine($"  {plan.Name,-16} {topology.Name(),-12} accuracy {run.FinalAccuracy * 100,6:F2}%  time {run.TotalMs / 1000,7:F2} s  " +
                                     $"lost {run.RoundsLost,3}  left out {run.GradientsDropped,4}  serverless ${run.Cost.ServerlessUsd:F6}  ({run.WallMs / 1000:F1} s wall)");
                }
            }
            // The grid: every topology on VMs and with K gradient functions, without faults; its time-vs-cost plot and the planner.
            var gridRuns = new List<RunResult>();
            var ks = (result.GetValue(gridFunctions) ?? []).Distinct().Order().ToList();
            if (ks.Count > 0)
            {
                output.WriteLine($"grid: {string.Join(", ", chosen.Select(t => t.Name()))} x vm, serverless K={string.Join(",", ks)} on {template.Serverless!.Platform.Name} (no faults)");
                foreach (var topology in chosen)
                {
                    var modes = new List<JobOptions> { template with { Topology = topology, Faults = FaultPlan.None, Compute = ComputeMode.Vm } };
                    modes.AddRange(ks.Select(k => template with { Topology = topology, Faults = FaultPlan.None, Compute = ComputeMode.Serverless, Serverless = template.Serverless! with { Functions = k } }));
                    foreach (var options in modes)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var named = options with { JobId = $"grid-{topology.Name()}-{options.Compute.Name()}" };
                        named.Validate();
                        var run = await DistributedRun.RunAsync(named, data, new InMemoryCheckpointStore(), prices, output, quiet: true, cancellationToken);
                        Divergence.Check(run);
                        gridRuns.Add(run);
                        foreach (var point in GridPoint.Of(run))
                        {
                            output.WriteLine($"  {point.Label,-44} accuracy {run.FinalAccuracy * 100,6:F2}%  to target {(point.TimeToTargetMs is double t ? $"{t / 1000,7:F2} s" : "    -    ")}  cost ${point.CostUsd:F6} (modelled)");
                        }
                    }
                }
            }
            var points = gridRuns.SelectMany(GridPoint.Of).ToList();
            double? targetMs = result.GetValue(targetTime) * 1000;
            string? grid = points.Count == 0 ? null : GridReport.Markdown(gridRuns, points, targetMs, result.GetValue(budget));
            if (points.Count > 0) output.WriteLine(GridReport.PlannerLine(points, targetMs, result.GetValue(budget)).Replace("**", "", StringComparison.Ordinal));

            string commandLine = "daprtrain " + string.Join(' ', result.Tokens.Select(t => t.Value));
            var files = ComparisonReport.Write(folder, cells, commandLine, data.Description, grid, points);
            output.WriteLine($"report: {Path.GetFullPath(folder)} ({string.Join(", ", files)}) in {total.Elapsed.TotalSeconds:F0} s");
            return ExitCodes.Success;
        }));
        return command;
    }
}
