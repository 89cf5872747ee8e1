using System.Text.Json;
using DaprTrain.Coordination;
using DaprTrain.Engine.Storage;
using DaprTrain.Coordination.Progress;
using DaprTrain.Simulation;
using DaprTrain.Training.Tests;
using FluentAssertions;
using Json.Schema;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace DaprTrain.Engine.Tests;

/// <summary>
/// The progress events' contract (issue 15): what the C# side writes validates against schemas/progress-event.schema.json,
/// the schema the dashboard checks every event with, and an embedded run's events tell the story the run's result tells
/// (the fault's round, the dead worker, the final accuracy), so a dashboard that shows them shows the truth.
/// </summary>
public sealed class ProgressEventTests
{
    private static readonly Lazy<JsonSchema> Schema = new(() => JsonSchema.FromText(File.ReadAllText(RepositoryFiles.PathOf("schemas", "progress-event.schema.json"))));

    private sealed class Recorded : IProgressSink
    {
        public List<ProgressEvent> Events { get; } = [];

        public void Write(ProgressEvent progress) => Events.Add(progress);
    }

    private static async Task<(RunResult Run, List<ProgressEvent> Events)> RunAsync(JobOptions options)
    {
        var sink = new Recorded();
        using var job = new EmbeddedJob(options, TestData.Mnist8k2k, new InMemoryCheckpointStore(), Jobs.Prices, NullLoggerFactory.Instance, events: sink);
        var run = await job.RunAsync();
        return (run, sink.Events);
    }

    private static IReadOnlyList<string> Violations(string json)
    {
        using var document = JsonDocument.Parse(json);
        var results = Schema.Value.Evaluate(document.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (results.IsValid) return [];
        var errors = (results.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")).ToList();
        return errors.Count > 0 ? errors : ["invalid"];
    }

    [Fact]
    public async Task A_p2p_run_with_a_killed_and_restarted_worker_writes_events_that_validate_and_tell_what_happened()
    {
        var (run, events) = await RunAsync(Jobs.Options(Topology.PeerToPeer, 60, "kill:worker-4@round=20", "restart:worker-4@round=40") with { EvaluateEvery = 5 });

        foreach (var e in events) Violations(e.ToJson()).Should().BeEmpty($"every event the C# side writes follows the schema ({e.ToJson()})");

        events[0].Kind.Should().Be("job-started");
        events[0].Clock.Should().Be("virtual", "embedded times are modelled and say so");
        events[^1].Kind.Should().Be("job-finished");
        events[^1].Accuracy.Should().Be(run.FinalAccuracy, "the last event carries the run's final accuracy");
        events.Last(e => e.Kind == "evaluation").Accuracy.Should().Be(run.FinalAccuracy, "the accuracy curve ends where the run ends");

        events.Should().Contain(e => e.Kind == "fault" && e.Phase == "injected" && e.Round == 20 && e.Node == "worker-4");
        events.Should().Contain(e => e.Kind == "node-state" && e.Node == "worker-4" && e.State == "dead" && e.Round == 20);
        var expired = events.Single(e => e.Kind == "membership" && e.Change == "lease-expired");
        expired.Node.Should().Be("worker-4");
        expired.Members.Should().Equal(["worker-1", "worker-2", "worker-3"], "a membership event carries the whole view after the change");
        events.Should().Contain(e => e.Kind == "fault" && e.Phase == "detected" && e.Node == "worker-4");
        events.Should().Contain(e => e.Kind == "node-state" && e.Node == "worker-4" && e.State == "rejoining" && e.Round == 40);
        events.Should().Contain(e => e.Kind == "membership" && e.Change == "joined" && e.Node == "worker-4" && e.TimeMs > expired.TimeMs);

        // Round events: one per live worker per round, with that worker's bytes; none from worker-4 while it was dead.
        var rounds = events.Where(e => e.Kind == "round-completed").ToList();
        rounds.Where(e => e.Source == "worker-1").Select(e => e.Round).Should().Equal(Enumerable.Range(1, 60).Select(r => (long?)r));
        rounds.Where(e => e.Source == "worker-4" && e.Round is > 20 and < 40).Should().BeEmpty("a dead worker completes no rounds");
        rounds.Should().OnlyContain(e => e.Bytes > 0, "every worker sends and receives gradients every round it completes");
        events.Where(e => e.Kind == "cost").Should().OnlyContain(e => e.Prices!.StartsWith("modelled", StringComparison.Ordinal), "costs are labelled modelled");

        // The envelope: one job, and per source a sequence n, n + 1, ... from the process's start in microseconds (a second
        // run into the same file continues above the first), with non-decreasing times (the virtual clock).
        events.Select(e => e.Job).Distinct().Should().Equal(["test-job"]);
        foreach (var source in events.GroupBy(e => e.Source))
        {
            long first = source.First().Seq;
            first.Should().BeGreaterThan(1_700_000_000_000_000, "sequences start at the process's start in microseconds since the epoch");
            source.Select(e => e.Seq).Should().Equal(Enumerable.Range(0, source.Count()).Select(i => first + i), $"{source.Key}'s sequence has no gap");
        }
        var last = events.Last(e => e.Kind == "cost");
        last.VmUsd.Should().BeApproximately(run.Billing.InstancesUsd, 1e-12, "the running cost at the last round is the run's bill (coordinator included)");
        last.ServerlessUsd.Should().BeApproximately(run.Billing.AllFunctionsUsd, 1e-12);
        events.Select(e => e.TimeMs).Should().BeInAscendingOrder("the embedded job writes in virtual-time order");
    }

    [Fact]
    public async Task A_killed_parameter_server_shows_as_dead_then_alive_under_a_new_generation()
    {
        var (_, events) = await RunAsync(Jobs.Options(Topology.ParameterServer, 30, "kill:ps@round=15") with { EvaluateEvery = 10 });

        foreach (var e in events) Violations(e.ToJson()).Should().BeEmpty(e.ToJson());
        var ps = events.Where(e => e.Kind == "node-state" && e.Node == "ps").Select(e => e.State).ToList();
        ps.Should().Equal(["dead", "rejoining", "alive"]);
        var generations = events.Where(e => e.Kind == "round-completed" && e.Source == "ps").Select(e => e.Generation).Distinct().ToList();
        generations.Should().HaveCount(2, "the restored server opens a new generation").And.BeInAscendingOrder();
        events.Should().Contain(e => e.Kind == "fault" && e.Phase == "recovered" && e.RoundsLost != null);
    }

    [Theory]
    [InlineData("""{"schema":1,"kind":"evaluation","job":"j","source":"job","seq":0,"timeMs":0,"round":3,"accuracy":1.5}""", "accuracy")]
    [InlineData("""{"schema":1,"kind":"evaluation","job":"j","source":"job","seq":0,"timeMs":0,"round":3}""", "accuracy")]
    [InlineData("""{"schema":2,"kind":"evaluation","job":"j","source":"job","seq":0,"timeMs":0,"round":3,"accuracy":0.5}""", "schema")]
    [InlineData("""{"schema":1,"kind":"round-completed","job":"j","source":"worker 1","seq":0,"timeMs":0,"round":1,"generation":0,"durationMs":1,"bytes":1,"contributors":1}""", "source")]
    [InlineData("""{"schema":1,"kind":"node-state","job":"j","source":"job","seq":0,"timeMs":0,"node":"worker-1","state":"sleepy"}""", "state")]
    [InlineData("""{"schema":1,"kind":"evaluation","job":"j","source":"job","seq":0,"timeMs":0,"round":3,"accuracy":0.5,"extra":1}""", "extra")]
    public void The_schema_refuses_what_the_dashboard_must_not_believe(string json, string field)
    {
        Violations(json).Should().NotBeEmpty($"the event is wrong in '{field}'");
    }

    [Fact]
    public void Free_text_is_clipped_to_the_schemas_bound_and_still_validates()
    {
        var e = ProgressEvent.FaultEvent("injected", new string('x', 1000), "worker-1", 3) with { Job = "j", Source = "job" };
        e.Fault!.Length.Should().BeLessThanOrEqualTo(300);
        Violations(e.ToJson()).Should().BeEmpty();
    }
}
