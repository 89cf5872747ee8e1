namespace DaprTrain.Cli.Tests;

/// <summary>Issue 14, item 8: nonsense options and inputs are refused with a clear message, not run or silently accepted.</summary>
public sealed class NonsenseInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-nonsense-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("--fault", "drop=NaN", "'NaN' is not a fraction between 0 and 1")]
    [InlineData("--fault", "slow:worker-1=99999999999999999999s", "'99999999999999999999s' is longer than the longest fault duration, 1h")]
    [InlineData("--fault", "delay=0.1:2h", "'2h' is not a duration")]
    [InlineData("--latency-ms", "1e300", "--latency-ms must be between 0 and 60000 ms (got 1E+300)")]
    [InlineData("--latency-ms", "NaN", "--latency-ms must be between 0 and 60000 ms (got NaN)")]
    [InlineData("--bandwidth-mbps", "1e-300", "--bandwidth-mbps must be between 0.01 and 1000000 Mbit/s")]
    [InlineData("--bandwidth-mbps", "1e300", "--bandwidth-mbps must be between 0.01 and 1000000 Mbit/s")]
    public async Task Nonsense_options_exit_1_with_the_reason(string option, string value, string message)
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "1", option, value);
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain(message);
    }

    [Fact]
    public async Task A_price_table_without_vm_prices_is_refused_naming_the_field()
    {
        string file = Path.Combine(_dir, "prices.json");
        File.WriteAllText(file, """{ "source": "s", "date": "2026-12-02", "region": "r", "serverlessPerGbSecond": 0.0000166667, "serverlessPerMillionRequests": 0.2, "vmInstanceType": "m5.large", "workerMemoryGb": 2, "serverMemoryGb": 2 }""");
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "1", "--prices", file);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"price table '{file}' has no 'vmPerHour'");
    }

    [Fact]
    public async Task A_platform_profile_without_a_cold_start_is_refused_naming_the_field()
    {
        string shipped = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "config", "platforms.json"));
        string file = Path.Combine(_dir, "platforms.json");
        File.WriteAllText(file, shipped.Replace("\"coldStartMs\": 1000,", "", StringComparison.Ordinal));
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "1", "--compute", "serverless", "--functions", "2", "--platforms", file);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"platform profile 'aws-lambda' in '{file}' has no 'coldStartMs'");
    }

    [Fact]
    public async Task Resuming_a_job_with_another_topology_or_worker_count_is_refused_naming_both()
    {
        string state = Path.Combine(_dir, "state");
        var first = await CliRun.RunAsync("train", "-t", "p2p", "-n", "2", "--dataset", "synthetic", "--train-samples", "512", "--rounds", "4", "--checkpoint-every", "2", "--state-dir", state);
        first.ExitCode.Should().Be(0, first.Error);

        var other = await CliRun.RunAsync("train", "-t", "ps", "-n", "3", "--dataset", "synthetic", "--train-samples", "512", "--rounds", "6", "--checkpoint-every", "2", "--state-dir", state);
        other.ExitCode.Should().Be(ExitCodes.InvalidInput);
        other.Error.Should().Contain("was checkpointed as p2p, 2 workers, mlp; this run asks for ps, 3 workers, mlp");

        var same = await CliRun.RunAsync("train", "-t", "p2p", "-n", "2", "--dataset", "synthetic", "--train-samples", "512", "--rounds", "6", "--checkpoint-every", "2", "--state-dir", state);
        same.ExitCode.Should().Be(0, same.Error);
        same.Output.Should().Contain("resuming job 'daprtrain' from its latest checkpoint");
    }

    [Fact]
    public async Task A_single_worker_run_that_diverges_stops_with_the_reason()
    {
        var result = await CliRun.RunAsync("train", "-t", "single", "--dataset", "synthetic", "--train-samples", "512", "--epochs", "2", "--lr", "1e30");
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("training diverged").And.Contain("lower --lr");
        result.Output.Should().NotContain("summary:");
    }

    [Theory]
    [InlineData("p2p")]
    [InlineData("ps")]
    public async Task A_distributed_run_that_diverges_stops_with_the_reason(string topology)
    {
        var result = await CliRun.RunAsync("train", "-t", topology, "-n", "2", "--dataset", "synthetic", "--train-samples", "512", "--rounds", "4", "--lr", "1e30");
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("training diverged").And.Contain("lower --lr");
    }

    [Fact]
    public async Task A_scenario_file_with_a_bad_line_exits_2_and_echoes_binary_junk_escaped()
    {
        string file = Path.Combine(_dir, "junk.txt");
        File.WriteAllBytes(file, [.. "drop=0.1\n"u8, .. "kill:\u001b[2J\u0007worker"u8, 0xFF, 0x00, (byte)'\n']);
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "1", "--scenario", file);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"{file}, line 2:").And.Contain("kill:\\x1b[2J\\x07worker\\ufffd\\x00");
        result.Error.Should().NotContain("\u001b").And.NotContain("\u0007").And.NotContain("\0");
    }
}
