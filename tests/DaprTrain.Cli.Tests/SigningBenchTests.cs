namespace DaprTrain.Cli.Tests;

/// <summary>Issue 11's signing goal is measured by `daprtrain bench --only signing`; the section runs and prints its tables (no timing is asserted).</summary>
public sealed class SigningBenchTests
{
    [Fact]
    public async Task Bench_only_signing_prints_the_per_message_costs_and_the_same_run_ratios()
    {
        var result = await CliRun.RunAsync("bench", "--quick", "--only", "signing");

        result.ExitCode.Should().Be(ExitCodes.Success, result.Error);
        result.Output.Should().Contain("## Signing every message (ECDSA P-256)")
            .And.Contain("Per message, median: sign")
            .And.Contain("| p2p | 4 |")
            .And.Contain("| p2p-scatter | 4 |")
            .And.Contain("signing / exchange");
    }
}
