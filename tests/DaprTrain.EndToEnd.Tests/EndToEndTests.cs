namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// Coordinator, parameter server and workers as separate processes, each with its own sidecar double, the real
/// Dapr SDK on the wire (gRPC for pub/sub and state, HTTP for actors), training on synthetic data.
/// </summary>
public class EndToEndTests
{
    private static Dictionary<string, string> Job(string topology, int workers, int rounds) => new()
    {
        ["Job__JobId"] = "e2e",
        ["Job__Topology"] = topology,
        ["Job__Workers"] = workers.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Job__Rounds"] = rounds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Job__RoundDeadlineMs"] = "1500",
        ["Job__CheckpointEvery"] = "5",
        ["Job__Holdout"] = "500",
        ["Coordinator__Shards"] = workers.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Coordinator__LeaseMs"] = "2000",
    };

    [Fact]
    public async Task P2p_finishes_with_identical_replicas_while_a_worker_process_is_killed()
    {
        const int rounds = 30;
        await using var cluster = new Cluster(Job("p2p", 3, rounds));
        await cluster.StartAsync("coordinator", "DaprTrain.Coordinator");
        var workers = new List<ServiceProcess>();
        for (int i = 1; i <= 3; i++) workers.Add(await cluster.StartAsync($"worker-{i}", "DaprTrain.Worker", new() { ["Job__WorkerId"] = $"worker-{i}" }));

        await cluster.WaitUntilAsync(async () => await cluster.AppliedRoundAsync("worker-3") >= 8, TimeSpan.FromSeconds(40), "round 8");
        workers[2].Kill();

        await cluster.WaitUntilAsync(async () => await cluster.AppliedRoundAsync("worker-1") >= rounds && await cluster.AppliedRoundAsync("worker-2") >= rounds,
            TimeSpan.FromMinutes(3), "the survivors to finish");
        var one = await cluster.StatusAsync("worker-1");
        var two = await cluster.StatusAsync("worker-2");
        one.GetProperty("weightHash").GetString().Should().Be(two.GetProperty("weightHash").GetString(), cluster.Logs);
        cluster.Components.Reminders.Fired.Should().BePositive("the coordinator's lease reminder fired through the double");
    }
}
