using System.CommandLine;
using DaprTrain.Cli.Benchmarks;
using DaprTrain.Training;

namespace DaprTrain.Cli;

internal static class BenchCommand
{
    public static Command Create(TextWriter output)
    {
        var quick = new Option<bool>("--quick") { Description = "Fewer repetitions (a smoke run; figures are noisier)." };
        var threads = new Option<int?>("--threads") { Description = "Torch intra-op threads, 1 to this machine's cores (default: all cores)." };
        CommonOptions.BoundThreads(threads);
        var plots = new Option<string?>("--plots") { Description = "A folder for the benchmarks' plots (serverless-vs-model-size.png); none by default." };
        string[] sections = ["training", "codec", "compression", "aggregation", "chunking", "engine", "engine-resnet", "serverless", "signing", "pytorch"];
        var only = new Option<string[]>("--only")
        {
            Description = "Run only these sections (repeatable): " + string.Join(", ", sections) + ". Default: all of them.",
            AllowMultipleArgumentsPerToken = true,
        }.AcceptOnlyFromAmong(sections);
        var workers = new Option<int[]>("--workers")
        {
            Description = "The pytorch section's worker counts (repeatable; default 2 4 8). tools/bench-dapr-vs-ddp.sh runs one at a time, between the Dapr jobs.",
            AllowMultipleArgumentsPerToken = true,
        };
        workers.Validators.Add(r =>
        {
            foreach (int n in r.GetValueOrDefault<int[]>() ?? [])
            {
                if (n is < 1 or > 64) r.AddError($"--workers must be between 1 and 64 (got {n}).");
            }
        });
        var command = new Command("bench", "Measure training throughput, gradient exchange (the MLP's and the residual CNN's), aggregation rules, the services' chunking and checkpoint codec cost, signing; prints Markdown for BENCHMARKS.md.");
        command.Options.Add(quick);
        command.Options.Add(threads);
        command.Options.Add(plots);
        command.Options.Add(only);
        command.Options.Add(workers);
        command.SetAction(async (result, cancellationToken) =>
        {
            TorchRuntime.EnsureInitialised(result.GetValue(threads));
            var chosen = result.GetValue(only) is { Length: > 0 } named ? named.ToHashSet() : sections.ToHashSet();
            if (chosen.Contains("training")) new TrainingBenchmarks(output, result.GetValue(quick)).Run();
            if (chosen.Contains("codec")) CodecProbe.Run(output, result.GetValue(quick));
            if (chosen.Contains("compression")) CompressionBenchmarks.Run(output, result.GetValue(quick));
            if (chosen.Contains("aggregation")) AggregatorBenchmarks.Run(output, result.GetValue(quick));
            if (chosen.Contains("chunking")) ChunkingBenchmarks.Run(output, result.GetValue(quick));
            if (chosen.Contains("engine")) await new EngineBenchmarks(output, result.GetValue(quick)).RunAsync();
            if (chosen.Contains("engine-resnet")) await new EngineBenchmarks(output, result.GetValue(quick)).RunResNetAsync();
            if (chosen.Contains("signing")) await SigningBenchmarks.RunAsync(output, result.GetValue(quick));
            if (chosen.Contains("serverless")) await new ServerlessBenchmarks(output, result.GetValue(quick), result.GetValue(plots)).RunAsync();
            if (chosen.Contains("pytorch")) await new PyTorchBenchmarks(output, result.GetValue(quick), result.GetValue(workers) is { Length: > 0 } counts ? counts : [2, 4, 8]).RunAsync();
            return ExitCodes.Success;
        });
        return command;
    }
}
