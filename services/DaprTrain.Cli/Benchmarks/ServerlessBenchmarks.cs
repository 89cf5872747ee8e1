using DaprTrain.Coordination;
using DaprTrain.Engine.Storage;
using DaprTrain.Simulation;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Compute;
using DaprTrain.Simulation.Faults;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;
using Microsoft.Extensions.Logging.Abstractions;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// Serverless gradient functions against one VM worker (arXiv 2309.14139): a peer's per-round gradient time with K
/// functions sharing a batch of 1,024 (K=16 is the paper's one function per mini-batch of 64), for the MLP and the
/// CNN, and the steady-state cost of a round in each deployment. Compute is measured in this run; the platform
/// (aws-lambda profile) is modelled.
/// </summary>
internal sealed class ServerlessBenchmarks(TextWriter output, bool quick, string? plotFolder = null)
{
    private const int Batch = 1024;
    private static readonly int[] Ks = [1, 2, 4, 8, 16];

    public async Task RunAsync()
    {
        using var data = TrainingData.Synthetic(16384, seed: 1, holdoutCount: 256);
        var platform = PlatformProfile.Load(null, PlatformProfile.DefaultName);
        var prices = PriceTable.Default();
        int rounds = quick ? 4 : 10;
        output.WriteLine("## Serverless gradient functions against one VM worker (modelled platform, measured compute)");
        output.WriteLine();
        output.WriteLine($"One worker, batch {Batch} per round split over K functions; platform '{platform.Name}' ({platform.MemoryMb} MB, {platform.Vcpus:F2} vCPU; " +
                         $"profile of {platform.Date}). Per-round gradient time: median over rounds 2-{rounds} (warm instances), the slowest invocation with its " +
                         "modelled overheads (invoke, weights in and gradient out over the function's bandwidth, CPU scaled to the function's vCPUs) plus " +
                         "the worker's combining. Cost per round, steady state: the VM's price for the round's time; serverless = the VM (peers on instances) " +
                         "+ the functions' billed GB-s and requests, and one Step Functions Express workflow request per fan-out.");
        output.WriteLine();
        output.WriteLine("| model | parameters | VM worker | K=1 | K=2 | K=4 | K=8 | K=16 | K=16 vs VM | cost/round VM | cost/round K=16 | cost multiple |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        var bySize = new List<(string Model, double ComputeMsPerMb, double TimeRatio, double CostMultiple)>();
        foreach (string model in new[] { "mlp", "cnn", "mlp-512", "mlp-2048" })
        {
            var vm = await RunAsync(data, model, ComputeMode.Vm, 1, platform, rounds);
            var byK = new Dictionary<int, RunResult>();
            foreach (int k in Ks) byK[k] = await RunAsync(data, model, ComputeMode.Serverless, k, platform, rounds);
            double vmMs = WarmComputeMs(vm);
            double k16 = WarmComputeMs(byK[16]);
            double vmRoundUsd = prices.VmPerHour / 3_600_000.0 * MeanRoundMs(vm);
            var f = byK[16];
            double slsRoundUsd = prices.VmPerHour / 3_600_000.0 * MeanRoundMs(f) + (f.Billing.FunctionsUsd + f.Billing.OrchestrationUsd) / f.Rounds.Count;
            output.WriteLine($"| {model} | {vm.ParameterCount:N0} | {vmMs:F1} ms | {string.Join(" | ", Ks.Select(k => $"{WarmComputeMs(byK[k]):F1} ms"))} | " +
                             $"{(1 - k16 / vmMs) * 100:F0}% less | ${vmRoundUsd:E2} | ${slsRoundUsd:E2} | {slsRoundUsd / vmRoundUsd:F1}x |");
            bySize.Add((model, vmMs / (vm.ParameterCount * 4 / 1e6), k16 / vmMs, slsRoundUsd / vmRoundUsd));
        }
        output.WriteLine();
        var paying = bySize.Where(m => m.TimeRatio < 1).Select(m => m.Model).ToList();
        output.WriteLine($"Serverless K=16 is faster per round than the VM worker for: {(paying.Count == 0 ? "none" : string.Join(", ", paying))}; " +
                         $"cost multiples from {bySize.Min(m => m.CostMultiple):F1}x to {bySize.Max(m => m.CostMultiple):F1}x (arXiv 2309.14139 reports up to 5.4x).");
        if (plotFolder is not null)
        {
            string path = Path.Combine(plotFolder, "serverless-vs-model-size.png");
            PlotBySize(bySize, path);
            output.WriteLine($"Plot: {path}");
        }
        output.WriteLine();

        output.WriteLine("### Cost multiple per topology (4 workers, MLP, batch 64, K=8, 40 rounds, no faults; modelled)");
        output.WriteLine();
        output.WriteLine("| topology | run time VM | run time K=8 | instances + functions / VM | all functions / VM |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        foreach (var topology in Topologies.All)
        {
            var vm = await RunAsync(data, "mlp", ComputeMode.Vm, 8, platform, quick ? 10 : 40, topology, workers: 4, batch: 64);
            var sls = await RunAsync(data, "mlp", ComputeMode.Serverless, 8, platform, quick ? 10 : 40, topology, workers: 4, batch: 64);
            // Steady state, without the VM's 60 s minimum (which a real job of hours never meets): instance time x price.
            double vmUsd = SteadyVmUsd(vm, prices);
            double instances = SteadyVmUsd(sls, prices) + sls.Billing.FunctionsUsd + sls.Billing.OrchestrationUsd;
            double all = sls.Billing.NodeStepsUsd + sls.Billing.FunctionsUsd + sls.Billing.OrchestrationUsd;
            output.WriteLine($"| {topology.Name()} | {vm.TotalMs / 1000:F2} s | {sls.TotalMs / 1000:F2} s | {instances / vmUsd:F1}x | {all / vmUsd:F1}x |");
        }
        output.WriteLine();
    }

    /// <summary>
    /// Serverless against VM by the model's compute per byte exchanged (what a function's fixed costs, moving the weights in and
    /// the gradient out, are paid against), on a log scale: LambdaML's "pays off only with little communication", on our runs.
    /// </summary>
    private static void PlotBySize(List<(string Model, double ComputeMsPerMb, double TimeRatio, double CostMultiple)> models, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var ordered = models.OrderBy(m => m.ComputeMsPerMb).ToList();
        var plot = new ScottPlot.Plot();
        double[] x = [.. ordered.Select(m => m.ComputeMsPerMb)];
        var time = plot.Add.Scatter(x, [.. ordered.Select(m => Math.Log10(m.TimeRatio))]);
        time.LegendText = "per-round gradient time, K=16 / VM worker";
        var cost = plot.Add.Scatter(x, [.. ordered.Select(m => Math.Log10(m.CostMultiple))]);
        cost.LegendText = "cost per round, K=16 / VM worker (modelled)";
        var even = plot.Add.HorizontalLine(0);
        even.LinePattern = ScottPlot.LinePattern.Dashed;
        even.Text = "break-even";
        foreach (var m in ordered) plot.Add.Text(m.Model, m.ComputeMsPerMb, Math.Log10(m.TimeRatio));
        plot.Title("Where serverless gradient functions pay (batch 1,024, 16 functions, aws-lambda profile)");
        plot.XLabel("VM compute per round per MB of model, ms/MB (batch 1,024)");
        plot.YLabel("log10(serverless / VM); below 0 serverless is lower");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 1000, 560);
    }

    private static double SteadyVmUsd(RunResult run, PriceTable prices) => run.Nodes.Sum(n => n.AliveMs) / 3_600_000.0 * prices.VmPerHour;

    private static double WarmComputeMs(RunResult run)
    {
        var warm = run.Rounds.Skip(1).Select(r => r.ComputeMs).Order().ToArray();
        return warm.Length == 0 ? run.Rounds[0].ComputeMs : warm[warm.Length / 2];
    }

    private static double MeanRoundMs(RunResult run) => run.Rounds.Skip(1).DefaultIfEmpty(run.Rounds[0]).Average(r => r.EndMs - r.StartMs);

    private static async Task<RunResult> RunAsync(TrainingData data, string model, ComputeMode compute, int functions, PlatformProfile platform, int rounds,
        Topology topology = Topology.PeerToPeer, int workers = 1, int batch = Batch)
    {
        var options = new JobOptions($"bench-serverless-{model}-{compute.Name()}-{functions}", topology, workers,
            new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Adam, 1e-3), batch, 1),
            rounds, FaultPlan.None, new NetworkModel(), EvaluateEvery: rounds, RoundDeadlineMs: 5000,
            Compute: compute, Serverless: new ServerlessOptions(functions, platform));
        using var job = new EmbeddedJob(options, data, new InMemoryCheckpointStore(), PriceTable.Default(), NullLoggerFactory.Instance);
        return await job.RunAsync();
    }
}
