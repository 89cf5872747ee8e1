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
        var command = new Command("bench", "Measure training throughput, gradient exchange (the MLP's and the residual CNN's), the services' chunking and checkpoint codec cost; prints Markdown for BENCHMARKS.md.");
        command.Options.Add(quick);
        command.Options.Add(threads);
        command.Options.Add(plots);
        command.SetAction(async (result, cancellationToken) =>
        {
            TorchRuntime.EnsureInitialised(result.GetValue(threads));
            new TrainingBenchmarks(output, result.GetValue(quick)).Run();
            CodecProbe.Run(output, result.GetValue(quick));
            ChunkingBenchmarks.Run(output, result.GetValue(quick));
            await new EngineBenchmarks(output, result.GetValue(quick)).RunAsync();
            await new ServerlessBenchmarks(output, result.GetValue(quick), result.GetValue(plots)).RunAsync();
            return ExitCodes.Success;
        });
        return command;
    }
}
