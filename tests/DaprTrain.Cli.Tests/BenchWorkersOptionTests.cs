namespace DaprTrain.Cli.Tests;

/// <summary>Issue 16: bench --workers (the pytorch section's worker counts, one at a time from tools/bench-dapr-vs-ddp.sh) is bounded before any work.</summary>
public sealed class BenchWorkersOptionTests
{
    [Theory]
    [InlineData("0")]
    [InlineData("65")]
    public async Task Bench_refuses_worker_counts_outside_1_to_64(string workers)
    {
        var result = await CliRun.RunAsync("bench", "--only", "pytorch", "--quick", "--workers", "2", workers);
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain($"--workers must be between 1 and 64 (got {workers})");
    }
}
