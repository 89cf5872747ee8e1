using System.Text.Json;

namespace DaprTrain.Cli.Tests;

/// <summary>Issue 15: <c>train --events FILE</c> writes the job's progress events one a line, and its path is checked first.</summary>
public sealed class EventsOptionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-events-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_distributed_run_writes_one_event_a_line_from_job_started_to_job_finished()
    {
        string path = Path.Combine(_dir, "run.jsonl");
        var result = await CliRun.RunAsync("train", "-t", "p2p", "-n", "2", "--dataset", "synthetic", "--train-samples", "512", "--rounds", "12",
            "--eval-every", "4", "--events", path);
        result.ExitCode.Should().Be(ExitCodes.Success, result.Error);
        var lines = File.ReadAllLines(path);
        result.Output.Should().Contain($"events: {lines.Length} progress events written to {path}");
        var kinds = lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("kind").GetString()).ToList();
        kinds[0].Should().Be("job-started");
        kinds[^1].Should().Be("job-finished");
        kinds.Count(k => k == "round-completed").Should().Be(2 * 12, "each of the 2 workers completes each of the 12 rounds");
        kinds.Count(k => k == "evaluation").Should().Be(3, "rounds 4, 8 and 12");
    }

    [Fact]
    public async Task Events_into_a_missing_folder_fail_before_training()
    {
        string path = Path.Combine(_dir, "missing", "run.jsonl");
        var result = await CliRun.RunAsync("train", "-t", "p2p", "-n", "2", "--dataset", "synthetic", "--train-samples", "256", "--rounds", "4", "--events", path);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"--events '{path}': the folder '{Path.Combine(_dir, "missing")}' does not exist");
        result.Output.Should().NotContain("summary:");
    }

    [Fact]
    public async Task Events_of_a_single_worker_are_refused_with_the_reason()
    {
        var result = await CliRun.RunAsync("train", "-t", "single", "--dataset", "synthetic", "--train-samples", "256", "--epochs", "1",
            "--events", Path.Combine(_dir, "run.jsonl"));
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions, "the options contradict each other");
        result.Error.Should().Contain("--events applies to distributed topologies");
        File.Exists(Path.Combine(_dir, "run.jsonl")).Should().BeFalse();
    }
}
