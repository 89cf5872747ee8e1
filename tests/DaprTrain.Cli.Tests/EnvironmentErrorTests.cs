using DaprTrain.Training.Tests;

namespace DaprTrain.Cli.Tests;

/// <summary>Issue 14, item 6: a bad fault plan or a bad environment ends with a message and an exit code, never a stack trace.</summary>
public sealed class EnvironmentErrorTests
{
    // /sys takes no new files or folders, even for root (EACCES/EPERM: UnauthorizedAccessException).
    private const string Unwritable = "/sys/kernel";

    [Fact]
    public async Task Killing_a_dead_worker_again_is_refused_before_the_run()
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "6", "--fault", "kill:worker-1@round=2", "--fault", "kill:worker-1@round=4");
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("kill:worker-1@round=4: worker-1 is not running at round 4 (killed at round 2");
        result.Output.Should().NotContain("event:");
    }

    [Fact]
    public async Task An_unwritable_state_dir_exits_2_with_a_message()
    {
        string state = Path.Combine(Unwritable, "daprtrain-state");
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "2", "--state-dir", state);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().StartWith($"error: --state-dir '{state}'").And.NotContain("   at ");
    }

    [Fact]
    public async Task Export_onnx_into_an_unwritable_folder_exits_2_with_a_message()
    {
        string path = Path.Combine(Unwritable, "model.onnx");
        var result = await CliRun.RunAsync("train", "-t", "single", "--dataset", "synthetic", "--train-samples", "256", "--epochs", "1", "--export-onnx", path);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().StartWith($"error: --export-onnx '{path}': cannot write into '{Unwritable}'").And.NotContain("   at ");
    }

    [Fact]
    public async Task A_compare_report_folder_that_cannot_be_made_exits_2_with_a_message()
    {
        string report = Path.Combine(Unwritable, "report");
        var result = await CliRun.RunAsync("compare", "--dataset", "synthetic", "--train-samples", "256", "--workers", "2", "--rounds", "2", "--scenarios", "none",
            "--out", report);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().StartWith($"error: --out '{report}'");
    }

    [Theory]
    [InlineData("train", "--workers", "abc")]
    [InlineData("train", "--threads", "abc")]
    [InlineData("compare", "--grid-functions", "abc")]
    [InlineData("bench", "--threads", "x")]
    public async Task A_value_that_is_no_number_exits_1_with_a_message(string command, string option, string value)
    {
        var result = await CliRun.RunAsync(command, option, value);
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain($"Cannot parse argument '{value}' for option '{option}'");
    }
}
