using System.Text.Json;
using DaprTrain.Training.Tests;

namespace DaprTrain.Cli.Tests;

public sealed class DistributedCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-dist-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Train_p2p_with_a_killed_worker_reports_the_fault_and_its_recovery()
    {
        var result = await CliRun.RunAsync("train", "--data-dir", TestData.MnistDirectory, "--rounds", "30", "--fault", "kill:worker-2@round=10");
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("job: daprtrain, p2p, 4 workers");
        result.Output.Should().Contain("event: killed worker-2 at round 10");
        result.Output.Should().Contain("event: lease of worker-2 expired");
        result.Output.Should().MatchRegex(@"fault kill:worker-2@round=10 at [0-9.]+ s: detected after [0-9]+ ms, next round completed after [0-9]+ ms");
        result.Output.Should().MatchRegex(@"summary: p2p, 4 workers, 30 rounds, scenario 'kill:worker-2@round=10': held-out accuracy [0-9.]+%");
        result.Output.Should().Contain("cost: serverless $");
    }

    [Fact]
    public async Task A_run_with_a_state_dir_continues_after_the_process_is_gone()
    {
        string state = Path.Combine(_dir, "state");
        var first = await CliRun.RunAsync("train", "-t", "ps", "--dataset", "synthetic", "--rounds", "20", "--checkpoint-every", "5", "--state-dir", state);
        first.ExitCode.Should().Be(0, first.Error);
        first.Output.Should().NotContain("resuming");

        var second = await CliRun.RunAsync("train", "-t", "ps", "--dataset", "synthetic", "--rounds", "30", "--checkpoint-every", "5", "--state-dir", state);
        second.ExitCode.Should().Be(0, second.Error);
        second.Output.Should().Contain("resuming job 'daprtrain' from its latest checkpoint");
        second.Output.Should().Contain("event: resuming job daprtrain from its checkpoint of round 20");
    }

    [Fact]
    public async Task Compare_on_a_tiny_configuration_writes_the_report_the_json_and_decodable_pngs()
    {
        string report = Path.Combine(_dir, "report");
        var result = await CliRun.RunAsync("compare", "--dataset", "synthetic", "--train-samples", "1024", "--holdout", "256", "--workers", "2",
            "--rounds", "8", "--scenarios", "none", "kill-ps", "--out", report);
        result.ExitCode.Should().Be(0, result.Error);

        File.ReadAllText(Path.Combine(report, "report.md")).Should()
            .Contain("## Assumptions").And.Contain("## Scenario: none").And.Contain("## Scenario: kill-ps")
            .And.Contain("| p2p | n/a: no parameter server in this topology").And.Contain("Prices:");

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(report, "results.json")));
        json.RootElement.GetArrayLength().Should().Be(6);
        json.RootElement.EnumerateArray().Count(e => e.TryGetProperty("finalAccuracy", out _)).Should().Be(4);

        foreach (var png in new[] { "accuracy-none.png", "accuracy-kill-ps.png", "bytes-per-worker.png", "cost.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(report, png));
            bytes.AsSpan(0, 8).ToArray().Should().Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], png);
            using var image = SkiaSharp.SKBitmap.Decode(bytes);
            image.Should().NotBeNull($"{png} decodes");
            image.Width.Should().BeGreaterThan(500);
        }
    }

    [Fact]
    public async Task Compare_rejects_an_unknown_scenario()
    {
        var result = await CliRun.RunAsync("compare", "--dataset", "synthetic", "--scenarios", "meteor-strike");
        result.ExitCode.Should().NotBe(0);
        result.Error.Should().Contain("'meteor-strike'");
    }
}
