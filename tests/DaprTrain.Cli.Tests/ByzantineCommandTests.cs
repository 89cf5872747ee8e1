namespace DaprTrain.Cli.Tests;

/// <summary>--aggregator, byzantine: faults and compare --scenario byzantine from the command line.</summary>
public sealed class ByzantineCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-byzantine-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("krum:1", "4", "krum needs n > 2f + 2 does not hold for n = 4, f = 1")]
    [InlineData("bulyan:1", "6", "bulyan needs n >= 4f + 3")]
    [InlineData("trimmed-mean:2", "4", "trimmed-mean needs 2f < n")]
    [InlineData("average", "4", "aggregator 'average' is not known")]
    public async Task A_rule_that_cannot_hold_for_the_workers_is_refused_before_anything_runs(string rule, string workers, string problem)
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "2", "--workers", workers, "--aggregator", rule);
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("--aggregator").And.Contain(problem);
        result.Output.Should().NotContain("data:");
    }

    [Fact]
    public async Task A_whole_vector_rule_is_refused_for_p2p_scatter_with_the_reason()
    {
        var result = await CliRun.RunAsync("train", "-t", "p2p-scatter", "--dataset", "synthetic", "--rounds", "2", "--aggregator", "krum");
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("whole gradients").And.Contain("p2p-scatter");
    }

    [Fact]
    public async Task A_bad_attack_shows_the_grammar()
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "2", "--fault", "byzantine:worker-2=signflip:-10");
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("the scale S must be above 0").And.Contain("byzantine:worker-N=ATTACK");
    }

    [Fact]
    public async Task Train_with_a_robust_rule_and_an_attacker_runs_and_names_them()
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--train-samples", "1024", "--holdout", "256", "--rounds", "6",
            "--aggregator", "trimmed-mean", "--fault", "byzantine:worker-3=gaussian");
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("scenario 'byzantine:worker-3=gaussian'");
    }

    [Fact]
    public async Task Compare_byzantine_writes_a_table_per_configuration_and_a_plot_per_attack()
    {
        string report = Path.Combine(_dir, "byzantine");
        var result = await CliRun.RunAsync("compare", "--scenario", "byzantine", "--dataset", "synthetic", "--train-samples", "1024", "--holdout", "256",
            "--rounds", "4", "--aggregators", "mean", "krum", "--attacks", "signflip", "--out", report);
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("f=1/4 krum:0").And.Contain("f=2/7 krum:2");

        string markdown = File.ReadAllText(Path.Combine(report, "report.md"));
        markdown.Should().Contain("## f = 1 Byzantine of 4 workers").And.Contain("## f = 2 Byzantine of 7 workers")
            .And.Contain("| aggregator | none | signflip |").And.Contain("krum needs n > 2f + 2 does not hold for n = 4, f = 1; ran with f = 0");
        foreach (string png in new[] { "byzantine-f1-of-4-signflip.png", "byzantine-f2-of-7-signflip.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(report, png));
            bytes.Take(4).Should().Equal(0x89, (byte)'P', (byte)'N', (byte)'G');
        }
        File.ReadAllText(Path.Combine(report, "results.json")).Should().Contain("\"attack\": \"signflip\"");
    }

    [Fact]
    public async Task Compare_byzantine_refuses_an_attack_it_cannot_parse()
    {
        var result = await CliRun.RunAsync("compare", "--scenario", "byzantine", "--dataset", "synthetic", "--attacks", "explode", "--out", Path.Combine(_dir, "x"));
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("--attacks").And.Contain("'explode' is not known");
    }
}
