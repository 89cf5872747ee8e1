using System.Text.Json;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// Issue 15: the dashboard as one more app of a Dapr job. The coordinator, the workers (and under ps the server) publish
/// progress events on the pub/sub topic `progress` through their sidecars; the dashboard, a Node.js process with its own
/// sidecar double, subscribes to it and keeps each job's state, which its browser side serves at /api/state. What it
/// shows must be what happened: the workers, the one killed as dead, rounds up to the last, the final accuracy the
/// workers themselves report, and nothing it could not read.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class DashboardEndToEndTests
{
    private static async Task<JsonElement> JobStateAsync(Cluster cluster, int uiPort, string job)
    {
        using var json = JsonDocument.Parse(await cluster.Http.GetStringAsync(new Uri($"http://127.0.0.1:{uiPort}/api/state")));
        return json.RootElement.GetProperty("jobs").TryGetProperty(job, out var state) ? state.Clone() : default;
    }

    [Fact]
    public async Task The_dashboard_shows_a_p2p_job_through_the_double_with_the_killed_worker_dead_and_the_workers_final_accuracy()
    {
        const int rounds = 30;
        var job = EndToEndScenarios.Job("p2p", 3, rounds);
        string jobId = job["Job__JobId"];
        await using var cluster = new Cluster(job, new DoubleSidecars());
        int uiPort = DaprTrain.SidecarDouble.Sidecar.FreePort();
        await cluster.StartDashboardAsync(uiPort);
        await cluster.StartAsync("coordinator", "DaprTrain.Coordinator");
        var workers = new List<ServiceProcess>();
        for (int i = 1; i <= 3; i++) workers.Add(await cluster.StartAsync($"worker-{i}", "DaprTrain.Worker", new() { ["Job__WorkerId"] = $"worker-{i}" }));

        await cluster.WaitUntilAsync(async () => await cluster.AppliedRoundAsync("worker-3") >= 6, TimeSpan.FromMinutes(2), "round 6");
        workers[2].Kill();
        var accuracies = await cluster.FinishedAsync(["worker-1", "worker-2"], TimeSpan.FromMinutes(3));

        JsonElement state = default;
        await cluster.WaitUntilAsync(async () =>
        {
            state = await JobStateAsync(cluster, uiPort, jobId);
            return state.ValueKind == JsonValueKind.Object && state.TryGetProperty("finished", out _)
                && state.GetProperty("nodes").GetProperty("worker-3").GetProperty("state").GetString() == "dead";
        }, TimeSpan.FromSeconds(30), "the dashboard to show the job finished and worker-3 dead");

        state.GetProperty("topology").GetString().Should().Be("p2p");
        state.GetProperty("mode").GetString().Should().Be("dapr");
        state.GetProperty("clock").GetString().Should().Be("wall", "the services' times are measured, not modelled");
        var nodes = state.GetProperty("nodes");
        nodes.EnumerateObject().Select(n => n.Name).Should().Contain(["worker-1", "worker-2", "worker-3"]);
        nodes.GetProperty("worker-1").GetProperty("state").GetString().Should().Be("alive");
        nodes.GetProperty("worker-1").GetProperty("lastRound").GetInt64().Should().Be(rounds, "every round a worker applied was published");
        state.GetProperty("members").EnumerateArray().Select(m => m.GetString()).Should().BeEquivalentTo(["worker-1", "worker-2"],
            "the coordinator's view after worker-3's lease expired");
        state.GetProperty("finished").GetProperty("accuracy").GetDouble().Should().Be(accuracies[0], "the dashboard's final accuracy is the workers' own");
        state.GetProperty("evals").GetArrayLength().Should().BeGreaterThan(1, "the checkpoint writer evaluates at its checkpoints");
        state.GetProperty("checkpoints").GetInt32().Should().BePositive();
        state.GetProperty("bytes").GetArrayLength().Should().BePositive();

        using var health = JsonDocument.Parse(await cluster.Http.GetStringAsync(new Uri($"http://127.0.0.1:{uiPort}/health")));
        health.RootElement.GetProperty("malformed").GetInt32().Should().Be(0, "every event the services published follows the schema");
    }
}
