using System.Text.Json;
using DaprTrain.Cli.Reports;
using DaprTrain.Coordination;

namespace DaprTrain.Cli.Tests;

public sealed class ServerlessCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-serverless-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Train_serverless_shows_round_time_cold_starts_retries_and_both_costs()
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "12", "--compute", "serverless", "--functions", "4",
            "--fault", "fail:function@p=0.2");
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("compute serverless (4 functions per worker on aws-lambda, 3008 MB)");
        result.Output.Should().MatchRegex(@"serverless compute \(modelled on 'aws-lambda', [0-9-]+; compute measured\): 4 functions per worker per round");
        // 4 workers x 4 functions start cold in round 1; crashed instances are replaced by new (cold) ones.
        result.Output.Should().MatchRegex(@"invocations [0-9,]+: cold starts (1[6-9]|[2-9][0-9]|[0-9]{3,}), warm [0-9,]+, retries [1-9][0-9]* \([1-9][0-9]* crashed, 0 timed out\)");
        result.Output.Should().MatchRegex(@"cost \(modelled; prices [0-9-]+\): instances \+ gradient functions \$[0-9.]+ .*functions \$[0-9.]+, orchestration \$[0-9.]+.*all in functions \$[0-9.]+");
    }

    [Theory]
    [InlineData("--compute", "gpu", "'gpu'")]
    [InlineData("--functions", "0", "--functions must be between 1 and 256 (got 0)")]
    [InlineData("--function-memory", "64", "--function-memory must be 128 to 65536 MB (got 64)")]
    [InlineData("--platform", "gcp-run", "no platform 'gcp-run'")]
    [InlineData("--platforms", "/no/such/platforms.json", "platform profiles '/no/such/platforms.json' do not exist")]
    [InlineData("--fault", "fail:function@p=0.1", "function faults (fail:function, timeout:function, coldstart) need --compute serverless")]
    public async Task Bad_serverless_options_exit_non_zero_naming_the_option(string option, string value, string message)
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "2", option, value);
        result.ExitCode.Should().NotBe(0);
        result.Error.Should().Contain(message);
    }

    [Fact]
    public async Task More_functions_than_samples_in_a_batch_is_refused_with_the_reason()
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "2", "--compute", "serverless", "--functions", "100");
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("100 functions cannot share a batch of 64 samples");
    }

    [Fact]
    public async Task A_platform_file_with_a_profile_that_names_no_source_is_refused()
    {
        string file = Path.Combine(_dir, "platforms.json");
        File.WriteAllText(file, """{ "platforms": [ { "name": "x", "source": "", "date": "2026-12-02", "memoryMb": 1024, "mbPerVcpu": 1769, "maxVcpus": 6, "timeoutMs": 3000, "maxTimeoutMs": 900000, "billingGranularityMs": 1, "concurrencyLimit": 10, "bandwidthMbps": 100 } ] }""");
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "2", "--compute", "serverless", "--platforms", file, "--platform", "x");
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain("platform profile 'x'").And.Contain("must name its source and date");
    }

    [Fact]
    public async Task Compare_covers_the_topology_by_compute_grid_with_its_pareto_plot_and_the_planner()
    {
        string report = Path.Combine(_dir, "report");
        var result = await CliRun.RunAsync("compare", "--dataset", "synthetic", "--train-samples", "1024", "--holdout", "256", "--workers", "2",
            "--rounds", "8", "--scenarios", "none", "--grid-functions", "2", "--target-accuracy", "0.1", "--out", report);
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("Planner: the cheapest configuration that reaches the target accuracy is");

        string md = File.ReadAllText(Path.Combine(report, "report.md"));
        md.Should().Contain("## Topology x compute mode (no faults)").And.Contain("p2p-scatter serverless K=2 (all functions)").And.Contain("Planner:");
        using var grid = JsonDocument.Parse(File.ReadAllText(Path.Combine(report, "grid.json")));
        // 3 topologies x (vm + serverless K=2 in two billed layouts).
        grid.RootElement.GetArrayLength().Should().Be(9);
        var png = File.ReadAllBytes(Path.Combine(report, GridReport.PlotFile));
        using var image = SkiaSharp.SKBitmap.Decode(png);
        image.Should().NotBeNull();
    }

    [Fact]
    public void The_planner_picks_the_cheapest_point_that_reaches_the_target_in_time_and_within_budget()
    {
        GridPoint P(string label, double? toTarget, double cost) => new(label, Topology.PeerToPeer, ComputeMode.Vm, 0, GridPoint.InstancesLayout, 0.9, toTarget, 10_000, cost);
        var points = new[] { P("fast-dear", 1_000, 0.50), P("slow-cheap", 9_000, 0.10), P("middle", 4_000, 0.20), P("never", null, 0.01), P("dominated", 5_000, 0.30) };

        GridPlanner.Cheapest(points, null, null)!.Label.Should().Be("slow-cheap", "'never' is cheapest but never reaches the target");
        GridPlanner.Cheapest(points, 5_000, null)!.Label.Should().Be("middle");
        GridPlanner.Cheapest(points, 2_000, null)!.Label.Should().Be("fast-dear");
        GridPlanner.Cheapest(points, 2_000, 0.40).Should().BeNull("nothing reaches the target within 2 s for $0.40");
        GridPlanner.ParetoFront(points).Select(p => p.Label).Should().Equal("fast-dear", "middle", "slow-cheap");
    }
}
