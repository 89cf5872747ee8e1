namespace DaprTrain.Cli.Tests;

/// <summary>Issue 14, item 4: --threads is bounded by the machine's cores in every command that takes it.</summary>
public sealed class ThreadsOptionTests
{
    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("100000")]
    public async Task Bench_refuses_threads_outside_the_machines_cores(string threads)
    {
        var result = await CliRun.RunAsync("bench", "--quick", "--threads", threads);
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain($"--threads must be between 1 and {Environment.ProcessorCount}").And.Contain($"(got {threads})");
    }

    [Theory]
    [InlineData("train", "-t", "single")]
    [InlineData("train", "-t", "p2p")]
    [InlineData("compare", "--scenarios", "none")]
    public async Task Training_commands_refuse_more_threads_than_cores_before_any_work(string command, string option, string value)
    {
        // A missing data folder would exit 2 after the threads were set: the threads must be refused first.
        var result = await CliRun.RunAsync(command, option, value, "--data-dir", "/no/such/mnist", "--threads", "100000");
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain($"--threads must be between 1 and {Environment.ProcessorCount}, the cores of this machine (got 100000)");
    }
}
