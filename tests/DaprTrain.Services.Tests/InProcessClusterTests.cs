using DaprTrain.Tests.Shared;
using System.Text;
using System.Text.Json;
using DaprTrain.Dapr;
using DaprTrain.Dapr.Hosting;
using DaprTrain.Coordination;
using DaprTrain.Coordination.Security;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.ParameterServer;
using DaprTrain.Worker;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace DaprTrain.Services.Tests;

/// <summary>
/// The real worker and server hosts, their training loops and subscription routes, trained together in this
/// process. The test stands in for the sidecars: it delivers every published chunk to every subscriber as the
/// CloudEvent daprd would POST (data_base64), retries on RETRY, and shares one coordinator and one state store.
/// (Separate processes, the Dapr SDK on the wire and killed processes are the end-to-end suite's job.)
/// </summary>
public sealed class InProcessClusterTests : IAsyncDisposable
{
    private const int Rounds = 12;
    private readonly List<IDisposable> _hosts = [];
    private readonly TestBroker _broker = new();
    private readonly InProcessCoordinator _coordinator;
    private readonly InMemoryCheckpointStore _store = new();

    public InProcessClusterTests()
    {
        _coordinator = new InProcessCoordinator(new JobCoordinator("daprtrain", 3, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: true));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts) host.Dispose();
        await Task.CompletedTask;
    }

    private WebApplicationFactory<T> Host<T>(string app, string topology, int workers, Action<IWebHostBuilder> settings, ICoordinator? coordinator = null, int rounds = Rounds,
        ICheckpointStore? store = null) where T : class
    {
        var factory = new WebApplicationFactory<T>().WithWebHostBuilder(b =>
        {
            b.UseSetting("Job:Topology", topology).UseSetting("Job:Workers", workers.ToString(System.Globalization.CultureInfo.InvariantCulture))
             .UseSetting("Job:Rounds", rounds.ToString(System.Globalization.CultureInfo.InvariantCulture)).UseSetting("Job:RoundDeadlineMs", "5000")
             .UseSetting("Job:CheckpointEvery", "5").UseSetting("Job:Holdout", "500").UseSetting("Job:HeartbeatMs", "300");
            settings(b);
            b.ConfigureTestServices(services =>
            {
                services.AddSingleton(coordinator ?? _coordinator);
                services.AddSingleton(store ?? _store);
                services.AddSingleton<IMessagePublisher>(_broker.PublisherFor(app));
            });
        });
        _hosts.Add(factory);
        return factory;
    }

    /// <summary>
    /// Subscribes an app as daprd does: to every topic its GET /dapr/subscribe declares, at the route it names (p2p workers
    /// declare their peers' gradient topics, not one shared topic; see BrokerTopics).
    /// </summary>
    private async Task SubscribeAsDaprdAsync(HttpClient app, string name)
    {
        using var subscriptions = JsonDocument.Parse(await app.GetStringAsync("/dapr/subscribe"));
        foreach (var entry in subscriptions.RootElement.EnumerateArray())
        {
            var fields = entry.EnumerateObject().ToDictionary(p => p.Name, p => p.Value, StringComparer.OrdinalIgnoreCase);
            string route = fields.TryGetValue("route", out var single) && single.ValueKind == JsonValueKind.String
                ? single.GetString()!
                : fields["routes"].EnumerateObject().First(p => p.Name.Equals("default", StringComparison.OrdinalIgnoreCase)).Value.GetString()!;
            _broker.Subscribe(fields["topic"].GetString()!, name, app, route);
        }
    }

    private static async Task WaitUntil(Func<bool> condition, TimeSpan timeout, Func<string>? state = null)
    {
        var until = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException("the cluster did not finish in time: " + state?.Invoke());
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Three_p2p_workers_train_together_and_end_with_identical_weights()
    {
        var workers = Enumerable.Range(1, 3).Select(i => Host<WorkerRuntime>($"worker-{i}", "p2p", 3, b => b.UseSetting("Job:WorkerId", $"worker-{i}"))).ToList();
        for (int i = 0; i < 3; i++) await SubscribeAsDaprdAsync(workers[i].CreateClient(), $"worker-{i + 1}");
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();

        var runtimes = workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();
        await WaitUntil(() => runtimes.All(r => r.Ready && r.Use(n => n.AppliedRound) >= Rounds), TimeSpan.FromMinutes(1), () => string.Join("; ", runtimes.Select(r => r.Ready
            ? r.Use(n => $"{n.Id} applied {n.AppliedRound}, holds [{string.Join(",", n.HeldSenders(n.OpenRound))}] and [{string.Join(",", n.HeldSenders(n.OpenRound + 1))}], counters {n.Counters.Applied}/{n.Counters.Late}/{string.Join(",", n.Counters.Rejected)}")
            : "not ready")));

        runtimes.Select(r => r.Use(n => n.WeightHash)).Distinct().Should().ContainSingle("every replica applied the same decided gradients");
        runtimes.Select(r => r.Use(n => n.Counters.Applied)).Should().OnlyContain(applied => applied >= Rounds, "peers' gradients arrived through the subscription route");
        (await _store.GetAsync("daprtrain/checkpoint/latest")).Should().NotBeNull("the elected writer checkpoints every 5 rounds");
        var status = await workers[0].CreateClient().GetStringAsync("/status");
        JsonDocument.Parse(status).RootElement.GetProperty("appliedRound").GetInt64().Should().BeGreaterThanOrEqualTo(Rounds);
    }

    /// <summary>Trains three workers of <paramref name="topology"/> under their own job id and coordinator; returns their weight hashes.</summary>
    private async Task<ulong[]> TrainThreeAsync(string topology, string compress = "none", string? thirdAttacks = null)
    {
        var coordinator = new InProcessCoordinator(new JobCoordinator(topology, 3, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: true));
        var workers = Enumerable.Range(1, 3).Select(i => Host<WorkerRuntime>($"{topology}/worker-{i}", topology, 3,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:JobId", topology).UseSetting("Job:Compress", compress)
                  .UseSetting("Job:Attack", i == 3 ? thirdAttacks ?? "" : ""), coordinator)).ToList();
        for (int i = 0; i < 3; i++)
        {
            // Every topic the plan declares for this worker, as daprd reads them from GET /dapr/subscribe.
            await SubscribeAsDaprdAsync(workers[i].CreateClient(), $"worker-{i + 1}");
        }
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var runtimes = workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();
        await WaitUntil(() => runtimes.All(r => r.Ready && r.Use(n => n.AppliedRound) >= Rounds), TimeSpan.FromMinutes(1), () => string.Join("; ", runtimes.Select(r => r.Ready
            ? r.Use(n => $"{n.Id} applied {n.AppliedRound}, holds [{string.Join(",", n.HeldSenders(n.OpenRound))}], missing {n.MissingReducedSlices(n.OpenRound)} reduced slices, counters {n.Counters.Applied}/{n.Counters.Late}/{string.Join(",", n.Counters.Rejected)}")
            : "not ready")));
        return [.. runtimes.Select(r => r.Use(n => n.WeightHash))];
    }

    [Fact]
    public async Task Three_p2p_scatter_workers_end_with_exactly_the_weights_of_three_p2p_workers()
    {
        // The same seeded job twice, each round with every member: scatter-reduce must sum the same floats in the same order as p2p's all-gather.
        var scatter = await TrainThreeAsync("p2p-scatter");
        var p2p = await TrainThreeAsync("p2p");
        scatter.Distinct().Should().ContainSingle("every replica applied the same reduced slices");
        scatter.Should().Equal(p2p, "p2p-scatter is an exchange pattern, not a different aggregation");
    }

    [Theory]
    [InlineData("p2p-scatter", "topk:0.05")]
    [InlineData("p2p", "int8")]
    public async Task Workers_that_compress_their_gradients_end_with_identical_weights(string topology, string codec)
    {
        var compressed = await TrainThreeAsync(topology, codec);
        compressed.Distinct().Should().ContainSingle($"every {topology} replica applies what {codec} decodes to, the sender's own included");
    }

    /// <summary>
    /// ALIE in the Dapr worker (issue 11): worker-3 reads the round's two other gradients from the topic before it sends
    /// its own, and what it sends is, bit for bit, mean - z x std of them (z the paper's for n = 3, f = 1), every round.
    /// </summary>
    [Fact]
    public async Task An_alie_worker_sends_mean_minus_z_std_of_the_gradients_it_read_from_its_peers()
    {
        var hashes = await TrainThreeAsync("p2p", thirdAttacks: "alie:1.5");
        hashes.Distinct().Should().ContainSingle("the attacker's own replica aggregates what it sent, like every other replica");
        var gradients = _broker.Published.Where(p => p.Topic.StartsWith("gradients.", StringComparison.Ordinal))
            .Select(p => WireCodec.Decode(p.Message, MessageSignature.MessageLength(p.Message)))
            .GroupBy(m => m.Round).Where(g => g.Select(m => m.Sender).Distinct().Count() == 3).ToList();
        gradients.Should().HaveCountGreaterThanOrEqualTo(Rounds, "every round's three gradients went through the broker");
        var attack = GradientAttack.Parse("alie:1.5");
        foreach (var round in gradients)
        {
            var honest = round.Where(m => m.Sender != "worker-3").OrderBy(m => m.Sender, StringComparer.Ordinal).Select(m => m.Values).ToList();
            var sent = round.First(m => m.Sender == "worker-3").Values.ToArray();
            var expected = new float[sent.Length];
            attack.ApplyAlie(expected, honest, workers: 3, colluding: 1);
            sent.Should().Equal(expected, $"round {round.Key}: worker-3 sends ALIE of what worker-1 and worker-2 sent");
        }
    }

    [Theory]
    [InlineData("ps")]
    [InlineData("p2p-scatter")]
    public async Task Alie_is_refused_where_a_worker_never_receives_its_peers_whole_gradients(string topology)
    {
        var failure = await HostStartup.FailureAsync("DaprTrain.Worker", b => b.AddWorker(), [new("Job:DisableTrainingLoop", "true"), new("Job:Topology", topology), new("Job:Attack", "alie")]);
        failure.Should().BeOfType<OptionsValidationException>().Which.Message.Should().Match($"*alie needs the round's other gradients, which a {topology} worker never receives whole*");
    }

    [Fact]
    public async Task A_parameter_server_and_two_workers_train_together_and_the_workers_hold_the_server_weights()
    {
        var coordinator = new InProcessCoordinator(new JobCoordinator("daprtrain", 2, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: false));
        var server = Host<ServerRuntime>("parameter-server", "ps", 2, _ => { }, coordinator);
        var workers = Enumerable.Range(1, 2).Select(i => Host<WorkerRuntime>($"worker-{i}", "ps", 2,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}"), coordinator)).ToList();
        _broker.Subscribe("gradients", "parameter-server", server.CreateClient(), ServerHosting.GradientsRoute);
        for (int i = 0; i < 2; i++) _broker.Subscribe("weights", $"worker-{i + 1}", workers[i].CreateClient(), WorkerHosting.WeightsRoute);
        var serverRuntime = server.Services.GetRequiredService<ServerRuntime>();
        server.Services.GetRequiredService<SidecarStatus>().MarkReady();
        await WaitUntil(() => serverRuntime.Ready, TimeSpan.FromSeconds(60));
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();

        var runtimes = workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();
        await WaitUntil(() => runtimes.All(r => r.Ready && r.Use(n => n.AppliedRound) >= Rounds), TimeSpan.FromMinutes(2));

        ulong serverHash = serverRuntime.Use(n => n.WeightHash);
        runtimes.Select(r => r.Use(n => n.WeightHash)).Should().OnlyContain(h => h == serverHash);
        serverRuntime.Use(n => n.AppliedRound).Should().BeGreaterThanOrEqualTo(Rounds);
    }

    [Fact]
    public async Task The_parameter_server_goes_on_while_its_checkpoint_is_written_and_writes_the_last_one_before_its_loop_ends()
    {
        var coordinator = new InProcessCoordinator(new JobCoordinator("daprtrain", 2, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: false));
        // The store takes round 5's checkpoint only when the test lets it.
        var store = new HeldCheckpointStore(_store, "/checkpoint/5/");
        var server = Host<ServerRuntime>("parameter-server", "ps", 2, _ => { }, coordinator, store: store);
        var workers = Enumerable.Range(1, 2).Select(i => Host<WorkerRuntime>($"worker-{i}", "ps", 2,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}"), coordinator)).ToList();
        _broker.Subscribe("gradients", "parameter-server", server.CreateClient(), ServerHosting.GradientsRoute);
        for (int i = 0; i < 2; i++) _broker.Subscribe("weights", $"worker-{i + 1}", workers[i].CreateClient(), WorkerHosting.WeightsRoute);
        var serverRuntime = server.Services.GetRequiredService<ServerRuntime>();
        server.Services.GetRequiredService<SidecarStatus>().MarkReady();
        await WaitUntil(() => serverRuntime.Ready, TimeSpan.FromSeconds(60));
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var checkpoints = new JobCheckpoints(_store, "daprtrain");

        // Round 5's write is held, and the rounds go on past it; the store still names the checkpoint of the start.
        await WaitUntil(() => serverRuntime.Use(n => n.AppliedRound) >= 8, TimeSpan.FromMinutes(2), () => $"server at round {serverRuntime.Use(n => n.AppliedRound)}");
        store.Held.Should().BeTrue();
        (await checkpoints.LoadLatestAsync())!.Value.Checkpoint.Round.Should().Be(0);

        // Round 10's write waits for round 5's; once the store takes them, the loop ends with round 10's in the store.
        store.Release();
        var loop = server.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<ServerLoop>().Single();
        await loop.ExecuteTask!.WaitAsync(TimeSpan.FromMinutes(2));
        serverRuntime.Use(n => n.AppliedRound).Should().Be(Rounds);
        (await checkpoints.LoadLatestAsync())!.Value.Checkpoint.Round.Should().Be(10);
    }

    /// <summary>A store whose saves of keys containing <paramref name="held"/> wait until <see cref="Release"/>.</summary>
    private sealed class HeldCheckpointStore(ICheckpointStore inner, string held) : ICheckpointStore
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Held { get; private set; }

        public void Release() => _released.TrySetResult();

        public Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public async Task<bool> TrySaveAsync(string key, byte[] data, string? etag, CancellationToken cancellationToken = default)
        {
            if (key.Contains(held, StringComparison.Ordinal))
            {
                Held = true;
                await _released.Task.WaitAsync(cancellationToken);
            }
            return await inner.TrySaveAsync(key, data, etag, cancellationToken);
        }

        public Task<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default) => inner.TryDeleteAsync(key, etag, cancellationToken);
    }

    /// <param name="admission">
    /// With the job's secret, the coordinator checks what the Dapr actor checks: every join, heartbeat, report, close,
    /// weight hash and sync request signed by the caller's registered key (issue 11). A call it refused would stop the
    /// worker here (in process, a refusal is an exception), so the run shows each kind of call is signed as it is checked,
    /// the restarted worker's new key and its sync requests, and the writer's clearing of them, included.
    /// </param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_worker_started_again_mid_run_takes_the_current_state_and_ends_with_the_others_weights(bool admission)
    {
        const int rounds = 40;
        const string secret = "a-test-secret-of-the-job";
        var coordinator = new InProcessCoordinator(new JobCoordinator("daprtrain", 3, TimeSpan.FromMilliseconds(1500), TimeProvider.System, workersWriteCheckpoints: true)
        {
            Admission = admission ? JobAdmission.ForWorkers(secret, 3) : null,
        });
        WebApplicationFactory<WorkerRuntime> Start(int i) => Host<WorkerRuntime>($"worker-{i}", "p2p", 3, b =>
        {
            b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:RoundDeadlineMs", "1000");
            if (admission) b.UseSetting("Job:Secret", secret);
        }, coordinator, rounds);
        var workers = Enumerable.Range(1, 3).Select(Start).ToList();
        for (int i = 0; i < 3; i++) await SubscribeAsDaprdAsync(workers[i].CreateClient(), $"worker-{i + 1}");
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var runtimes = workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();

        // worker-3's process goes away after round 8; the other two carry on without it.
        await WaitUntil(() => runtimes[2].Ready && runtimes[2].Use(n => n.AppliedRound) >= 8, TimeSpan.FromMinutes(1));
        _broker.Unsubscribe("worker-3");
        workers[2].Dispose();
        await WaitUntil(() => !coordinator.State.CurrentView().Members.Contains("worker-3"), TimeSpan.FromSeconds(30));
        long whenGone = runtimes[0].Use(n => n.AppliedRound);

        // A new worker-3 process starts mid-run.
        var restarted = Start(3);
        await SubscribeAsDaprdAsync(restarted.CreateClient(), "worker-3");
        restarted.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var live = new[] { runtimes[0], runtimes[1], restarted.Services.GetRequiredService<WorkerRuntime>() };
        var loops = new[] { workers[0], workers[1], restarted }.Select(h => h.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<WorkerLoop>().Single()).ToList();

        // Seen once under the whole suite's load (worker-2 stayed at round 8 while the others finished): the state names
        // each worker's loop when it has stopped, and why, so that such a run says what happened.
        await WaitUntil(() => live.All(r => r.Ready && r.Use(n => n.AppliedRound) >= rounds), TimeSpan.FromMinutes(2), () => string.Join("; ", live.Select((r, i) => (r.Ready
            ? r.Use(n => $"{n.Id} applied {n.AppliedRound}, holds [{string.Join(",", n.HeldSenders(n.OpenRound))}]") : "not ready")
            + (loops[i].ExecuteTask is { IsCompleted: true } ended ? $", its loop ended: {ended.Exception?.GetBaseException().ToString() ?? ended.Status.ToString()}" : ""))));
        whenGone.Should().BeLessThan(rounds - 5, "the restarted worker joined a running job");
        live.Select(r => r.Use(n => n.WeightHash)).Distinct().Should().ContainSingle("the restarted replica took a peer's state and then applied the same rounds");
        coordinator.State.CurrentView().Members.Should().Equal("worker-1", "worker-2", "worker-3");
    }

    [Fact]
    public async Task A_worker_whose_lease_runs_out_before_the_job_starts_joins_again_instead_of_waiting_for_ever()
    {
        // Seen in the end-to-end suite on a loaded machine: worker-1 joined, then reading the store took longer than its
        // 2 s lease; its heartbeats answered "not a member" and it waited for the others for ever, and they for it.
        var time = new AdjustableTime();
        var coordinator = new InProcessCoordinator(new JobCoordinator("daprtrain", 2, TimeSpan.FromSeconds(2), time, workersWriteCheckpoints: true));
        WebApplicationFactory<WorkerRuntime> Start(int i) => Host<WorkerRuntime>($"worker-{i}", "p2p", 2, b => b.UseSetting("Job:WorkerId", $"worker-{i}"), coordinator, rounds: 6);
        var first = Start(1);
        await SubscribeAsDaprdAsync(first.CreateClient(), "worker-1");
        first.Services.GetRequiredService<SidecarStatus>().MarkReady();
        await WaitUntil(() => coordinator.GetViewAsync().Result.Members.Contains("worker-1"), TimeSpan.FromMinutes(1));

        time.Advance(TimeSpan.FromSeconds(10)); // worker-1's lease runs out while it waits
        (await coordinator.GetViewAsync()).Members.Should().NotContain("worker-1");
        await WaitUntil(() => coordinator.GetViewAsync().Result.Members.Contains("worker-1"), TimeSpan.FromSeconds(30),
            () => "worker-1 never joined again after its lease ran out");

        var second = Start(2);
        await SubscribeAsDaprdAsync(second.CreateClient(), "worker-2");
        second.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var runtimes = new[] { first, second }.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();
        await WaitUntil(() => runtimes.All(r => r.Ready && r.Use(n => n.AppliedRound) >= 6), TimeSpan.FromMinutes(1));
        runtimes.Select(r => r.Use(n => n.WeightHash)).Distinct().Should().ContainSingle();
    }

    private sealed class AdjustableTime : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;

        public void Advance(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now + (DateTimeOffset.UtcNow - _started);

        private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    }

    [Fact]
    public async Task A_worker_that_comes_back_after_the_job_finished_takes_the_final_state_instead_of_waiting_forever()
    {
        // 20 rounds and a checkpoint every 7: the last checkpoint of the schedule is round 14, so only the writer's
        // final-round checkpoint lets the returning worker end where the others did.
        const int rounds = 20;
        var coordinator = new InProcessCoordinator(new JobCoordinator("daprtrain", 2, TimeSpan.FromMilliseconds(1000), TimeProvider.System, workersWriteCheckpoints: true));
        WebApplicationFactory<WorkerRuntime> Start(int i) => Host<WorkerRuntime>($"worker-{i}", "p2p", 2,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:RoundDeadlineMs", "800").UseSetting("Job:CheckpointEvery", "7"), coordinator, rounds);
        var workers = Enumerable.Range(1, 2).Select(Start).ToList();
        for (int i = 0; i < 2; i++) await SubscribeAsDaprdAsync(workers[i].CreateClient(), $"worker-{i + 1}");
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var first = workers[0].Services.GetRequiredService<WorkerRuntime>();
        var second = workers[1].Services.GetRequiredService<WorkerRuntime>();

        await WaitUntil(() => second.Ready && second.Use(n => n.AppliedRound) >= 3, TimeSpan.FromMinutes(1));
        _broker.Unsubscribe("worker-2");
        workers[1].Dispose();
        await WaitUntil(() => first.FinalAccuracy is not null, TimeSpan.FromMinutes(1), () => $"worker-1 applied {first.Use(n => n.AppliedRound)}, members {string.Join(",", coordinator.State.CurrentView().Members)}, pending {string.Join(",", coordinator.State.CurrentView().PendingSyncs)}, open {first.Use(n => n.OpenRound)} holds {string.Join(",", first.Use(n => n.HeldSenders(n.OpenRound)))}");

        var returning = Start(2);
        await SubscribeAsDaprdAsync(returning.CreateClient(), "worker-2");
        returning.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var returned = returning.Services.GetRequiredService<WorkerRuntime>();
        await WaitUntil(() => returned.FinalAccuracy is not null, TimeSpan.FromMinutes(1), () => returned.Ready ? $"worker-2 applied {returned.Use(n => n.AppliedRound)}" : "worker-2 not ready");

        returned.Use(n => n.AppliedRound).Should().Be(rounds);
        returned.Use(n => n.WeightHash).Should().Be(first.Use(n => n.WeightHash), "it took the final state the writer saved after the last round");
        returned.FinalAccuracy.Should().Be(first.FinalAccuracy);
    }

    /// <summary>
    /// Issue 11: a replica whose weights silently change (a bit flip, a bug, an insider) is found by the weight hashes the
    /// workers compare through the coordinator every few rounds, logged, and resynchronised from the newest checkpoint.
    /// </summary>
    [Fact]
    public async Task A_replica_that_diverges_is_detected_through_the_coordinator_and_resynchronised()
    {
        const int rounds = 30;
        var coordinator = new InProcessCoordinator(new JobCoordinator("daprtrain", 3, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: true));
        var workers = Enumerable.Range(1, 3).Select(i => Host<WorkerRuntime>($"worker-{i}", "p2p", 3,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:CheckpointEvery", "4"), coordinator, rounds)).ToList();
        for (int i = 0; i < 3; i++) await SubscribeAsDaprdAsync(workers[i].CreateClient(), $"worker-{i + 1}");
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var runtimes = workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();
        await WaitUntil(() => runtimes.All(r => r.Ready && r.Use(n => n.AppliedRound) >= 5), TimeSpan.FromMinutes(1));

        // worker-3's replica changes under it: every later round it applies the same decisions to different weights.
        runtimes[2].Use(n => { n.Trainer.Parameters.WeightSpan[0] += 0.5f; return 0; });

        await WaitUntil(() => runtimes.All(r => r.FinalAccuracy is not null), TimeSpan.FromMinutes(2),
            () => string.Join(", ", runtimes.Select(r => r.Use(n => n.AppliedRound))));
        runtimes.Select(r => r.Use(n => n.WeightHash)).Distinct().Should().ContainSingle("the diverged replica took the majority's state");
    }

    [Fact]
    public async Task A_worker_whose_lease_ran_out_while_the_job_waited_for_its_workers_joins_again_and_the_job_starts()
    {
        // As seen through the sidecar double on a loaded machine: worker-1 joined, its lease ran out before its first
        // heartbeat (the heartbeat answered false), and the others waited for a third member that never came back.
        var coordinator = new LeaseRunsOutAfterFirstJoin(new InProcessCoordinator(new JobCoordinator("lease", 3, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: true)), "worker-1");
        var workers = Enumerable.Range(1, 3).Select(i => Host<WorkerRuntime>($"lease/worker-{i}", "p2p", 3,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:JobId", "lease"), coordinator, rounds: 2)).ToList();
        for (int i = 0; i < 3; i++) await SubscribeAsDaprdAsync(workers[i].CreateClient(), $"worker-{i + 1}");
        // worker-1 first, alone, so that it is in the wait for the others when its lease runs out.
        workers[0].Services.GetRequiredService<SidecarStatus>().MarkReady();
        await coordinator.Expired.Task.WaitAsync(TimeSpan.FromMinutes(1));
        foreach (var worker in workers.Skip(1)) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();

        var runtimes = workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();
        await WaitUntil(() => runtimes.All(r => r.Ready && r.Use(n => n.AppliedRound) >= 2), TimeSpan.FromMinutes(1),
            () => $"members {string.Join(",", coordinator.Inner.State.CurrentView().Members)}");
        runtimes.Select(r => r.Use(n => n.WeightHash)).Distinct().Should().ContainSingle();
    }

    [Fact]
    public async Task Under_a_parameter_server_workers_whose_leases_ran_out_join_again_and_go_on_without_waiting_for_a_checkpoint()
    {
        // As seen through the double on a loaded machine: both workers' leases ran out at once; they joined again and
        // waited for a checkpoint newer than the server's latest, which the server, waiting for their gradients, never wrote.
        var inner = new InProcessCoordinator(new JobCoordinator("daprtrain", 2, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: false));
        var coordinator = new LeasesRunOutOnce(inner, ["worker-1", "worker-2"]);
        var server = Host<ServerRuntime>("parameter-server", "ps", 2, b => b.UseSetting("Job:RoundDeadlineMs", "500"), coordinator);
        var workers = Enumerable.Range(1, 2).Select(i => Host<WorkerRuntime>($"worker-{i}", "ps", 2,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:RoundDeadlineMs", "500"), coordinator)).ToList();
        _broker.Subscribe("gradients", "parameter-server", server.CreateClient(), ServerHosting.GradientsRoute);
        for (int i = 0; i < 2; i++) _broker.Subscribe("weights", $"worker-{i + 1}", workers[i].CreateClient(), WorkerHosting.WeightsRoute);
        var serverRuntime = server.Services.GetRequiredService<ServerRuntime>();
        server.Services.GetRequiredService<SidecarStatus>().MarkReady();
        await WaitUntil(() => serverRuntime.Ready, TimeSpan.FromSeconds(60));
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var runtimes = workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();

        await WaitUntil(() => serverRuntime.Use(n => n.AppliedRound) >= 6, TimeSpan.FromMinutes(1));
        coordinator.RunOut();
        await WaitUntil(() => runtimes.All(r => r.Use(n => n.AppliedRound) >= Rounds), TimeSpan.FromMinutes(1),
            () => $"server at {serverRuntime.Use(n => n.AppliedRound)}, workers at {string.Join(",", runtimes.Select(r => r.Use(n => n.AppliedRound)))}");
    }

    /// <summary>Starts <paramref name="count"/> p2p workers, each with its own <see cref="CountingCoordinator"/> over <paramref name="inner"/>.</summary>
    private async Task<(List<WorkerRuntime> Runtimes, List<CountingCoordinator> Coordinators)> StartCountedAsync(InProcessCoordinator inner, string job, int count, int rounds, string deadlineMs, string topology = "p2p")
    {
        var coordinators = Enumerable.Range(1, count).Select(i => new CountingCoordinator(inner, $"worker-{i}", rounds)).ToList();
        var workers = Enumerable.Range(1, count).Select(i => Host<WorkerRuntime>($"{job}/worker-{i}", topology, count,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:JobId", job).UseSetting("Job:RoundDeadlineMs", deadlineMs), coordinators[i - 1], rounds)).ToList();
        for (int i = 0; i < count; i++)
        {
            await SubscribeAsDaprdAsync(workers[i].CreateClient(), $"{job}/worker-{i + 1}");
        }
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        return ([.. workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>())], coordinators);
    }

    /// <summary>
    /// Issue 16: a clean p2p job asks for no view on the round's path after the start, reports once a round through the
    /// call that answers with the decision, and only the members whose report did not complete the round poll for it.
    /// </summary>
    [Fact]
    public async Task Clean_p2p_workers_ask_for_no_view_during_the_rounds_and_the_last_reporter_never_polls()
    {
        const int workers = 3;
        var inner = new InProcessCoordinator(new JobCoordinator("counted", workers, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: true));
        var (runtimes, coordinators) = await StartCountedAsync(inner, "counted", workers, Rounds, "5000");
        await WaitUntil(() => runtimes.All(r => r.FinalAccuracy is not null), TimeSpan.FromMinutes(1), () => string.Join(", ", runtimes.Select(r => r.Ready ? r.Use(n => n.AppliedRound) : 0)));

        foreach (var c in coordinators)
        {
            c.ViewsDuringRounds.Should().Be(0, $"{c.Member}'s view never changed after the start, and every decision said so");
            c.Count("Report").Should().Be(0, "the report that answers with the decision replaces it");
            c.Count("ReportAndTryClose").Should().Be(Rounds);
            c.Count("CompareWeights").Should().Be(Rounds / 5, "weights are compared every checkpoint interval (5)");
            c.Count("CloseRound").Should().Be(0, "no round reached its deadline");
        }
        for (long round = 1; round <= Rounds; round++)
        {
            coordinators.Count(c => c.PolledIn(round)).Should().Be(workers - 1, $"in round {round} one report completed the agreement and answered with the decision; only the others polled");
        }
        runtimes.Select(r => r.Use(n => n.WeightHash)).Distinct().Should().ContainSingle();
    }

    /// <summary>
    /// Issue 16: workers keep their view while the decisions say it has not changed, so a change must reach every one of
    /// them by the next round: a member joins when round 5's first report comes (before its decision), and every worker's
    /// report of round 6 comes from a node whose view names it; it leaves at round 8's first report, and round 9's views
    /// no longer name it. The member sends nothing: rounds with it wait for its gradient and report until the deadline.
    /// </summary>
    [Theory]
    [InlineData("p2p")]
    [InlineData("p2p-scatter")]
    public async Task A_membership_change_reaches_every_peer_by_the_next_round(string topology)
    {
        const int workers = 3, rounds = 12;
        string job = "change-" + topology;
        var inner = new InProcessCoordinator(new JobCoordinator(job, workers, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: true));
        var (runtimes, coordinators) = await StartCountedAsync(inner, job, workers, rounds, "400", topology);
        var seen = new System.Collections.Concurrent.ConcurrentBag<(string Member, long Round, bool NamesGhost)>();
        int joined = 0, left = 0;
        foreach (var (c, runtime) in coordinators.Zip(runtimes))
        {
            c.BeforeReport = async round =>
            {
                if (round == 5 && Interlocked.Exchange(ref joined, 1) == 0) await inner.JoinAsync("worker-9", null);
                if (round == 8 && Interlocked.Exchange(ref left, 1) == 0) await inner.LeaveAsync("worker-9", null);
                seen.Add((c.Member, round, runtime.Use(n => n.Members.Contains("worker-9"))));
            };
        }
        await WaitUntil(() => runtimes.All(r => r.FinalAccuracy is not null), TimeSpan.FromMinutes(2), () => string.Join(", ", runtimes.Select(r => r.Ready ? r.Use(n => n.AppliedRound) : 0)));

        var reports = seen.ToList();
        reports.Where(r => r.Round is 6 or 7 or 8).Should().HaveCount(3 * workers).And.OnlyContain(r => r.NamesGhost, "the decision of round 5 named the new view version");
        reports.Where(r => r.Round is >= 9 or <= 4).Should().OnlyContain(r => !r.NamesGhost, "round 8's decision named the version without it");
        coordinators.Sum(c => c.ViewsDuringRounds).Should().BeInRange(2 * workers, 3 * workers, "each worker asked for the view after each change (and at most once more, for the writer's own sync bookkeeping)");
        runtimes.Select(r => r.Use(n => n.WeightHash)).Distinct().Should().ContainSingle("every replica applied the same decisions");
    }

    /// <summary>
    /// Issue 16: under a parameter server no decision says when the view changed; a worker renews its view once it is a
    /// heartbeat period old (Job:HeartbeatMs, 600 ms here), so it asks for far fewer views than it runs rounds, and still
    /// sees a new member within a few rounds.
    /// </summary>
    [Fact]
    public async Task Parameter_server_workers_renew_their_view_by_age_not_every_round()
    {
        const int rounds = 40;
        var inner = new InProcessCoordinator(new JobCoordinator("ps-views", 2, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: false));
        var server = Host<ServerRuntime>("ps-views/parameter-server", "ps", 2, b => b.UseSetting("Job:JobId", "ps-views").UseSetting("Job:RoundDeadlineMs", "300"), inner, rounds);
        var coordinators = Enumerable.Range(1, 2).Select(i => new CountingCoordinator(inner, $"worker-{i}", rounds)).ToList();
        var workers = Enumerable.Range(1, 2).Select(i => Host<WorkerRuntime>($"ps-views/worker-{i}", "ps", 2,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:JobId", "ps-views").UseSetting("Job:RoundDeadlineMs", "300").UseSetting("Job:HeartbeatMs", "600"),
            coordinators[i - 1], rounds)).ToList();
        _broker.Subscribe("gradients", "ps-views/parameter-server", server.CreateClient(), ServerHosting.GradientsRoute);
        for (int i = 0; i < 2; i++) _broker.Subscribe("weights", $"ps-views/worker-{i + 1}", workers[i].CreateClient(), WorkerHosting.WeightsRoute);
        var serverRuntime = server.Services.GetRequiredService<ServerRuntime>();
        server.Services.GetRequiredService<SidecarStatus>().MarkReady();
        await WaitUntil(() => serverRuntime.Ready, TimeSpan.FromSeconds(60));
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        var runtimes = workers.Select(w => w.Services.GetRequiredService<WorkerRuntime>()).ToList();

        await WaitUntil(() => runtimes.All(r => r.Ready && r.Use(n => n.AppliedRound) >= 10), TimeSpan.FromMinutes(1));
        foreach (var c in coordinators) c.Mark();
        await inner.JoinAsync("worker-9", null);
        long joinedAt = runtimes.Max(r => r.Use(n => n.AppliedRound));
        var started = System.Diagnostics.Stopwatch.StartNew();
        foreach (var runtime in runtimes)
        {
            // The workers' rounds need not slow down (the server, which keeps its own view, learns of worker-9 by age too):
            // each worker's view names worker-9 once it is a heartbeat period (600 ms) old, whatever the rounds do.
            await WaitUntil(() => runtime.Use(n => n.Members.Contains("worker-9")), TimeSpan.FromMinutes(1));
            Console.WriteLine($"worker-9 in the view after {started.ElapsedMilliseconds} ms, {runtime.Use(n => n.AppliedRound) - joinedAt} rounds");
        }
        await inner.LeaveAsync("worker-9", null);
        await WaitUntil(() => runtimes.All(r => r.FinalAccuracy is not null), TimeSpan.FromMinutes(2));

        ulong serverHash = serverRuntime.Use(n => n.WeightHash);
        runtimes.Select(r => r.Use(n => n.WeightHash)).Should().OnlyContain(h => h == serverHash);
        coordinators.Should().OnlyContain(c => c.ViewsSinceMark < (rounds - 10) / 2, $"a view is renewed by age, not every round (views since round 10: {string.Join(", ", coordinators.Select(c => c.ViewsSinceMark))})");
    }

    /// <summary>
    /// The parameter server keeps its view between rounds (issue 16): with a view far younger than its age limit (10
    /// minutes here) and every member's gradient in each round, it asks for none, not even when a member joins that sends
    /// nothing; a round that lacks a member's gradient (worker-2's process gone) makes it ask before the next one.
    /// </summary>
    [Fact]
    public async Task The_parameter_server_asks_for_the_view_after_a_round_that_lacked_a_member_not_while_its_rounds_are_complete()
    {
        const int rounds = 200;
        var inner = new InProcessCoordinator(new JobCoordinator("ps-held", 2, TimeSpan.FromSeconds(60), TimeProvider.System, workersWriteCheckpoints: false));
        var serverCalls = new CountingCoordinator(inner, "parameter-server", rounds);
        var server = Host<ServerRuntime>("ps-held/parameter-server", "ps", 2, b => b.UseSetting("Job:JobId", "ps-held").UseSetting("Job:HeartbeatMs", "600000"), serverCalls, rounds);
        var workers = Enumerable.Range(1, 2).Select(i => Host<WorkerRuntime>($"ps-held/worker-{i}", "ps", 2,
            b => b.UseSetting("Job:WorkerId", $"worker-{i}").UseSetting("Job:JobId", "ps-held"), inner, rounds)).ToList();
        _broker.Subscribe("gradients", "ps-held/parameter-server", server.CreateClient(), ServerHosting.GradientsRoute);
        for (int i = 0; i < 2; i++) _broker.Subscribe("weights", $"ps-held/worker-{i + 1}", workers[i].CreateClient(), WorkerHosting.WeightsRoute);
        var serverRuntime = server.Services.GetRequiredService<ServerRuntime>();
        server.Services.GetRequiredService<SidecarStatus>().MarkReady();
        await WaitUntil(() => serverRuntime.Ready, TimeSpan.FromSeconds(60));
        foreach (var worker in workers) worker.Services.GetRequiredService<SidecarStatus>().MarkReady();
        long Applied() => serverRuntime.Use(n => n.AppliedRound);
        // Past the first rounds, in which the workers' first gradients may come from senders the view did not name yet.
        await WaitUntil(() => Applied() >= 10 && serverRuntime.LastContributors.Count == 2, TimeSpan.FromMinutes(1));

        serverCalls.Mark();
        await inner.JoinAsync("worker-9", null);
        long marked = Applied();
        await WaitUntil(() => Applied() >= marked + 10, TimeSpan.FromMinutes(1));
        serverCalls.ViewsSinceMark.Should().Be(0, "a young view, and every round brought both members' gradients (round deadline 5 s)");

        _broker.Unsubscribe("ps-held/worker-2");
        workers[1].Dispose();
        long gone = Applied();
        // worker-2's gradient of the round open when it went may be in already: the first round it misses is gone + 2 at the
        // latest, closed at its deadline, and the server asks for the view before it closes the next one, gone + 3.
        await WaitUntil(() => Applied() >= gone + 3, TimeSpan.FromMinutes(1));
        serverCalls.ViewsSinceMark.Should().BePositive("a round without a member's gradient says the view may have changed, however young it is");
    }

    /// <summary>
    /// One worker's coordinator calls, counted by method; the views it asks for between its first and its last report;
    /// the rounds in which it polled for a decision; and a hook before each of its reports.
    /// </summary>
    private sealed class CountingCoordinator(InProcessCoordinator inner, string member, long rounds) : ICoordinator
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
        private readonly System.Collections.Concurrent.ConcurrentDictionary<long, bool> _polled = new();
        private long _lastReported;
        private int _viewsDuringRounds;
        private int _viewsSinceMark;
        private bool _marked;

        /// <summary>From now on, views are counted in <see cref="ViewsSinceMark"/> (a parameter server's workers make no reports).</summary>
        public void Mark() => Volatile.Write(ref _marked, true);

        public int ViewsSinceMark => Volatile.Read(ref _viewsSinceMark);

        public string Member => member;

        public Func<long, Task>? BeforeReport { get; set; }

        public int Count(string method) => _calls.GetValueOrDefault(method);

        public bool PolledIn(long round) => _polled.ContainsKey(round);

        /// <summary>Views asked for after the first report and before the last round's report.</summary>
        public int ViewsDuringRounds => Volatile.Read(ref _viewsDuringRounds);

        private void Called(string method) => _calls.AddOrUpdate(method, 1, (_, n) => n + 1);

        public Task<MembershipView> JoinAsync(string joining, MemberIdentity? identity) { Called("Join"); return inner.JoinAsync(joining, identity); }

        public Task<bool> HeartbeatAsync(string beating, DaprTrain.Coordination.Security.MemberIdentity? identity) => inner.HeartbeatAsync(beating, identity);

        public Task<MembershipView> LeaveAsync(string leaving, MemberIdentity? identity) { Called("Leave"); return inner.LeaveAsync(leaving, identity); }

        public Task<MembershipView> RegisterServerAsync(int generation, MemberIdentity? identity) => inner.RegisterServerAsync(generation, identity);

        public Task<MembershipView> GetViewAsync()
        {
            Called("GetView");
            long reported = Interlocked.Read(ref _lastReported);
            if (reported > 0 && reported < rounds) Interlocked.Increment(ref _viewsDuringRounds);
            if (Volatile.Read(ref _marked)) Interlocked.Increment(ref _viewsSinceMark);
            return inner.GetViewAsync();
        }

        public Task ReportAsync(string reporting, int generation, long round, IReadOnlyList<string> received, MemberIdentity? identity)
        {
            Called("Report");
            Interlocked.Exchange(ref _lastReported, round);
            return inner.ReportAsync(reporting, generation, round, received, identity);
        }

        public async Task<RoundDecision?> ReportAndTryCloseAsync(string reporting, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, MemberIdentity? identity)
        {
            Called("ReportAndTryClose");
            if (BeforeReport is { } hook) await hook(round);
            var decision = await inner.ReportAndTryCloseAsync(reporting, generation, round, received, deadline, identity);
            Interlocked.Exchange(ref _lastReported, round);
            return decision;
        }

        public Task<RoundDecision> CloseRoundAsync(string caller, int generation, long round, MemberIdentity? identity)
        {
            Called("CloseRound");
            return inner.CloseRoundAsync(caller, generation, round, identity);
        }

        public Task<RoundDecision?> TryCloseRoundAsync(string caller, int generation, long round, TimeSpan deadline, MemberIdentity? identity)
        {
            Called("TryCloseRound");
            _polled[round] = true;
            return inner.TryCloseRoundAsync(caller, generation, round, deadline, identity);
        }

        public Task SetSyncRequestAsync(string caller, string syncing, bool pending, MemberIdentity? identity)
        {
            Called("SetSyncRequest");
            return inner.SetSyncRequestAsync(caller, syncing, pending, identity);
        }

        public Task<WeightCheck> CompareWeightsAsync(string comparing, long round, ulong hash, MemberIdentity? identity)
        {
            Called("CompareWeights");
            return inner.CompareWeightsAsync(comparing, round, hash, identity);
        }
    }

    /// <summary>A coordinator that, once told, removes <paramref name="members"/> and answers each one's next heartbeat false.</summary>
    private sealed class LeasesRunOutOnce(InProcessCoordinator inner, string[] members) : ICoordinator
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _expired = new();

        public void RunOut()
        {
            foreach (string member in members)
            {
                inner.LeaveAsync(member, null).GetAwaiter().GetResult();
                _expired[member] = true;
            }
        }

        public Task<MembershipView> JoinAsync(string joining, MemberIdentity? identity) => inner.JoinAsync(joining, identity);

        public Task<bool> HeartbeatAsync(string beating, DaprTrain.Coordination.Security.MemberIdentity? identity) =>
            _expired.TryRemove(beating, out _) ? Task.FromResult(false) : inner.HeartbeatAsync(beating, identity);

        public Task<MembershipView> LeaveAsync(string leaving, MemberIdentity? identity) => inner.LeaveAsync(leaving, identity);

        public Task<MembershipView> RegisterServerAsync(int generation, MemberIdentity? identity) => inner.RegisterServerAsync(generation, identity);

        public Task<MembershipView> GetViewAsync() => inner.GetViewAsync();

        public Task ReportAsync(string reporting, int generation, long round, IReadOnlyList<string> received, MemberIdentity? identity) =>
            inner.ReportAsync(reporting, generation, round, received, identity);

        public Task<RoundDecision?> ReportAndTryCloseAsync(string reporting, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, MemberIdentity? identity) =>
            inner.ReportAndTryCloseAsync(reporting, generation, round, received, deadline, identity);

        public Task<RoundDecision> CloseRoundAsync(string caller, int generation, long round, MemberIdentity? identity) => inner.CloseRoundAsync(caller, generation, round, identity);

        public Task<RoundDecision?> TryCloseRoundAsync(string caller, int generation, long round, TimeSpan deadline, MemberIdentity? identity) =>
            inner.TryCloseRoundAsync(caller, generation, round, deadline, identity);

        public Task SetSyncRequestAsync(string caller, string syncing, bool pending, MemberIdentity? identity) => inner.SetSyncRequestAsync(caller, syncing, pending, identity);

        public Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash, MemberIdentity? identity) => inner.CompareWeightsAsync(member, round, hash, identity);
    }

    /// <summary>A coordinator whose lease for <paramref name="member"/> runs out right after its first join.</summary>
    private sealed class LeaseRunsOutAfterFirstJoin(InProcessCoordinator inner, string member) : ICoordinator
    {
        public InProcessCoordinator Inner => inner;

        public TaskCompletionSource Expired { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<MembershipView> JoinAsync(string joining, MemberIdentity? identity)
        {
            var view = await inner.JoinAsync(joining, identity);
            if (joining == member && !Expired.Task.IsCompleted)
            {
                await inner.LeaveAsync(joining, null);
                Expired.TrySetResult();
            }
            return view;
        }

        public Task<bool> HeartbeatAsync(string beating, DaprTrain.Coordination.Security.MemberIdentity? identity) => inner.HeartbeatAsync(beating, identity);

        public Task<MembershipView> LeaveAsync(string leaving, MemberIdentity? identity) => inner.LeaveAsync(leaving, identity);

        public Task<MembershipView> RegisterServerAsync(int generation, MemberIdentity? identity) => inner.RegisterServerAsync(generation, identity);

        public Task<MembershipView> GetViewAsync() => inner.GetViewAsync();

        public Task ReportAsync(string reporting, int generation, long round, IReadOnlyList<string> received, MemberIdentity? identity) =>
            inner.ReportAsync(reporting, generation, round, received, identity);

        public Task<RoundDecision?> ReportAndTryCloseAsync(string reporting, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, MemberIdentity? identity) =>
            inner.ReportAndTryCloseAsync(reporting, generation, round, received, deadline, identity);

        public Task<RoundDecision> CloseRoundAsync(string caller, int generation, long round, MemberIdentity? identity) => inner.CloseRoundAsync(caller, generation, round, identity);

        public Task<RoundDecision?> TryCloseRoundAsync(string caller, int generation, long round, TimeSpan deadline, MemberIdentity? identity) =>
            inner.TryCloseRoundAsync(caller, generation, round, deadline, identity);

        public Task SetSyncRequestAsync(string caller, string syncing, bool pending, MemberIdentity? identity) => inner.SetSyncRequestAsync(caller, syncing, pending, identity);

        public Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash, MemberIdentity? identity) => inner.CompareWeightsAsync(member, round, hash, identity);
    }

    /// <summary>
    /// Plays the sidecars' pub/sub: a publish returns at once, and each subscriber gets every chunk of the topic, in
    /// order, as a binary CloudEvent, redelivered while it answers RETRY (as a broker would, with backoff).
    /// </summary>
    private sealed class TestBroker
    {
        private readonly Lock _gate = new();
        private readonly Dictionary<string, List<Subscriber>> _subscribers = [];

        /// <summary>Every message published, copied as it was published (a node's send buffers are reused).</summary>
        public System.Collections.Concurrent.ConcurrentQueue<(string Topic, string App, byte[] Message)> Published { get; } = new();

        public void Subscribe(string topic, string app, HttpClient client, string route)
        {
            lock (_gate)
            {
                if (!_subscribers.TryGetValue(topic, out var list)) _subscribers[topic] = list = [];
                list.Add(new Subscriber(app, client, route));
            }
        }

        public IMessagePublisher PublisherFor(string app) => new Publisher(this, app);

        public void Unsubscribe(string app)
        {
            lock (_gate)
            {
                foreach (var list in _subscribers.Values) list.RemoveAll(s => s.App == app);
            }
        }

        private void Enqueue(string topic, string publisher, byte[] message)
        {
            List<Subscriber> targets;
            lock (_gate) targets = _subscribers.TryGetValue(topic, out var list) ? [.. list] : [];
            Published.Enqueue((topic, publisher, [.. message]));
            foreach (var chunk in ChunkCodec.Split(message))
            {
                foreach (var target in targets) target.Queue.Writer.TryWrite(CloudEvent(topic, publisher, chunk));
            }
        }

        private sealed class Subscriber
        {
            public Subscriber(string app, HttpClient client, string route)
            {
                App = app;
                _ = Task.Run(async () =>
                {
                    await foreach (var body in Queue.Reader.ReadAllAsync())
                    {
                        for (int attempt = 0; attempt < 200; attempt++)
                        {
                            try
                            {
                                using var response = await client.PostAsync(route, new StringContent(body, Encoding.UTF8, "application/cloudevents+json"));
                                using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                                if (answer.RootElement.GetProperty("status").GetString() != "RETRY") break;
                            }
                            catch (Exception ex) when (ex is HttpRequestException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
                            {
                                return;
                            }
                            await Task.Delay(50);
                        }
                    }
                });
            }

            public string App { get; }

            public System.Threading.Channels.Channel<string> Queue { get; } = System.Threading.Channels.Channel.CreateUnbounded<string>();
        }

        private static string CloudEvent(string topic, string source, byte[] data)
        {
            var envelope = new Dictionary<string, object>
            {
                ["id"] = Guid.NewGuid().ToString(), ["specversion"] = "1.0", ["source"] = source, ["type"] = "com.dapr.event.sent",
                ["topic"] = topic, ["pubsubname"] = "gradients", ["datacontenttype"] = "application/octet-stream", ["data_base64"] = Convert.ToBase64String(data),
            };
            return JsonSerializer.Serialize(envelope);
        }

        private sealed class Publisher(TestBroker broker, string app) : IMessagePublisher
        {
            public Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default)
            {
                broker.Enqueue(topic, app, message);
                return Task.CompletedTask;
            }
        }
    }
}
