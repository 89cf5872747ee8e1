using DaprTrain.Coordination;
using DaprTrain.Simulation;

namespace DaprTrain.Engine.Tests;

public class CoordinatorTests
{
    private readonly VirtualClock _clock = new();

    private JobCoordinator Create(int shards = 4) => new("job", shards, TimeSpan.FromMilliseconds(1000), _clock, workersWriteCheckpoints: true);

    [Fact]
    public void Each_worker_owns_its_own_shard_and_the_lowest_member_writes_checkpoints()
    {
        var c = Create();
        foreach (var w in new[] { "worker-3", "worker-1", "worker-4", "worker-2" }) c.Join(w);
        var view = c.CurrentView();
        view.Members.Should().Equal("worker-1", "worker-2", "worker-3", "worker-4");
        view.ShardOwners.Should().Equal(new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2", [2] = "worker-3", [3] = "worker-4" });
        view.CheckpointWriter.Should().Be("worker-1");
    }

    [Fact]
    public void An_expired_lease_removes_the_member_and_reassigns_its_shard_and_the_writer()
    {
        var c = Create();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3", "worker-4" }) c.Join(w);
        _clock.AdvanceTo(900);
        foreach (var w in new[] { "worker-2", "worker-3", "worker-4" }) c.Heartbeat(w).Should().BeTrue();
        _clock.AdvanceTo(1500);
        var view = c.CurrentView();
        view.Expired.Should().Equal("worker-1");
        view.Members.Should().Equal("worker-2", "worker-3", "worker-4");
        view.ShardOwners[0].Should().Be("worker-2", "the orphan goes to the least loaded, lowest member");
        view.CheckpointWriter.Should().Be("worker-2");
        c.Heartbeat("worker-1").Should().BeFalse("an expired member must join again");

        c.Join("worker-1");
        c.CurrentView().ShardOwners[0].Should().Be("worker-1", "a returning worker gets its shard back");
    }

    [Fact]
    public void A_round_includes_exactly_the_senders_every_reporter_holds()
    {
        var c = Create(3);
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) c.Join(w);
        c.Report("worker-1", 0, 7, ["worker-1", "worker-2", "worker-3"]);
        c.Report("worker-2", 0, 7, ["worker-1", "worker-2"]);
        var decision = c.Close(0, 7);
        decision.Included.Should().Equal("worker-1", "worker-2");
        decision.Reporters.Should().Equal("worker-1", "worker-2");

        c.Report("worker-3", 0, 7, ["worker-3"]);
        c.Close(0, 7).Should().BeSameAs(decision, "a closed round's decision never changes");
    }

    [Fact]
    public void Reports_from_non_members_do_not_count()
    {
        var c = Create(2);
        c.Join("worker-1");
        c.Report("worker-1", 0, 1, ["worker-1"]);
        c.Report("intruder", 0, 1, []);
        c.Close(0, 1).Included.Should().Equal("worker-1");
    }

    [Fact]
    public void A_member_waiting_for_state_neither_writes_checkpoints_nor_holds_up_the_barrier()
    {
        var c = Create(3);
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) c.Join(w);
        c.RequestSync("worker-1");
        var view = c.CurrentView();
        view.PendingSyncs.Should().Equal("worker-1");
        view.CheckpointWriter.Should().Be("worker-2", "the member that waits for a state cannot write it");

        c.Report("worker-2", 0, 4, ["worker-2", "worker-3"]);
        c.Report("worker-3", 0, 4, ["worker-2", "worker-3"]);
        c.TryClose(0, 4, TimeSpan.FromHours(1)).Should().NotBeNull("every member that is not syncing has reported");

        c.CompleteSync("worker-1");
        c.CurrentView().CheckpointWriter.Should().Be("worker-1");
        c.Report("worker-2", 0, 5, ["worker-2"]);
        c.TryClose(0, 5, TimeSpan.FromHours(1)).Should().BeNull("worker-1 and worker-3 have not reported and the deadline has not passed");
        _clock.AdvanceTo(_clock.NowMs + 10);
        c.TryClose(0, 5, TimeSpan.FromMilliseconds(5))!.Included.Should().Equal("worker-2");
    }

    [Fact]
    public void Weight_hashes_compared_through_the_coordinator_name_the_replicas_that_diverged()
    {
        var c = new JobCoordinator("job", 3, TimeSpan.FromSeconds(10), TimeProvider.System, workersWriteCheckpoints: true);
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) c.Join(w);

        c.CompareWeights("worker-1", 10, 0xAA).Complete.Should().BeFalse("worker-2 and worker-3 have not reported yet");
        c.CompareWeights("worker-2", 10, 0xAA).Complete.Should().BeFalse();
        var last = c.CompareWeights("worker-3", 10, 0xBB);

        last.Should().BeEquivalentTo(new WeightCheck(10, true, 0xAA, ["worker-3"]));
        // The others learn it with their next report, from the newest complete comparison they took part in.
        c.CompareWeights("worker-1", 20, 0xCC).Diverged.Should().Equal("worker-3");
        c.CompareWeights("worker-2", 20, 0xCC).Round.Should().Be(10);
        c.CompareWeights("worker-3", 20, 0xCC).Should().BeEquivalentTo(new WeightCheck(20, true, 0xCC, []));
    }

    /// <summary>What a view holds, apart from the version and the leases this call expired.</summary>
    private static string Content(MembershipView v) => string.Join(" | ",
        string.Join(",", v.Members), string.Join(",", v.ShardOwners.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}")), v.CheckpointWriter,
        string.Join(",", v.PendingSyncs), string.Join(",", v.PublicKeys.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value}")), v.Generation);

    [Fact]
    public void The_view_version_changes_whenever_anything_a_view_holds_changes()
    {
        // Issue 16: nodes keep their view while round decisions name its version, so no change may leave the version alone.
        // Random operations of every kind, seeded; after each, a view of the same version must hold the same as before.
        var random = new Random(16);
        var c = Create(3);
        var previous = c.CurrentView();
        string[] ids = ["worker-1", "worker-2", "worker-3", "worker-4"];
        for (int step = 0; step < 3000; step++)
        {
            string member = ids[random.Next(ids.Length)];
            switch (random.Next(9))
            {
                case 0: c.Join(member, "key-" + random.Next(3)); break;
                case 1: c.Heartbeat(member); break;
                case 2: c.Leave(member); break;
                case 3: c.RequestSync(member); break;
                case 4: c.CompleteSync(member); break;
                case 5: c.RegisterServer(c.Generation + random.Next(2), random.Next(2) == 0 ? null : "server-key-" + random.Next(2)); break;
                case 6: _clock.AdvanceTo(_clock.NowMs + random.Next(600)); break;
                case 7: c.ReportAndTryClose(member, 0, step, ids, TimeSpan.FromMilliseconds(random.Next(1, 500))); break;
                default: c.TryClose(0, step - random.Next(3), TimeSpan.FromMilliseconds(random.Next(1, 500))); break;
            }
            var view = c.CurrentView();
            if (view.Version == previous.Version) Content(view).Should().Be(Content(previous), $"step {step} left the version at {view.Version}");
            else view.Version.Should().BeGreaterThan(previous.Version);
            previous = view;
        }
    }

    [Fact]
    public void A_member_that_joins_again_with_a_new_key_before_its_lease_was_removed_changes_the_view_version()
    {
        var c = Create(2);
        c.Join("worker-1", "old-key");
        c.Join("worker-2", "key-2");
        long before = c.CurrentView().Version;
        _clock.AdvanceTo(1500); // worker-1's lease ran out; nobody expired it yet
        c.Heartbeat("worker-2");
        c.Join("worker-1", "new-key"); // a restarted process, in before the lease reminder ran
        var view = c.CurrentView();
        view.PublicKeys["worker-1"].Should().Be("new-key");
        view.Version.Should().BeGreaterThan(before, "its peers must take its messages under the new key");
    }

    [Fact]
    public void The_report_that_completes_a_round_answers_with_the_decision_and_the_view_version_it_was_taken_under()
    {
        var c = Create(3);
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) c.Join(w);
        long version = c.CurrentView().Version;
        c.ReportAndTryClose("worker-1", 0, 1, ["worker-1", "worker-2", "worker-3"], TimeSpan.FromHours(1)).Should().BeNull("two members have not reported");
        c.ReportAndTryClose("worker-2", 0, 1, ["worker-1", "worker-2"], TimeSpan.FromHours(1)).Should().BeNull();
        var decision = c.ReportAndTryClose("worker-3", 0, 1, ["worker-1", "worker-2", "worker-3"], TimeSpan.FromHours(1));
        decision.Should().NotBeNull("the last report completes the round");
        decision!.Included.Should().Equal("worker-1", "worker-2");
        decision.ViewVersion.Should().Be(version);
        c.TryClose(0, 1, TimeSpan.FromHours(1)).Should().BeSameAs(decision, "the others poll the same decision");

        // The membership changes after the decision: the decision keeps the version it was taken under, and the next
        // round's decision names the new one, so every replica learns of the change from the same round.
        c.RequestSync("worker-3");
        c.Close(0, 1).ViewVersion.Should().Be(version);
        var restored = JobCoordinator.Restore(c.Snapshot(), _clock);
        restored.TryClose(0, 1, TimeSpan.FromHours(1))!.ViewVersion.Should().Be(version, "the version is part of the actor's saved state");
        c.ReportAndTryClose("worker-1", 0, 2, ["worker-1", "worker-2"], TimeSpan.FromHours(1)).Should().BeNull();
        var next = c.ReportAndTryClose("worker-2", 0, 2, ["worker-1", "worker-2"], TimeSpan.FromHours(1));
        next!.ViewVersion.Should().Be(c.CurrentView().Version).And.NotBe(version);
    }

    [Fact]
    public void A_lease_that_ran_out_does_not_hold_a_round_open_until_the_reminder_runs()
    {
        var c = Create(3);
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) c.Join(w);
        _clock.AdvanceTo(900);
        c.Heartbeat("worker-1");
        c.Heartbeat("worker-2");
        _clock.AdvanceTo(1200); // worker-3 stopped: its lease ran out at 1000
        c.ReportAndTryClose("worker-1", 0, 4, ["worker-1", "worker-2"], TimeSpan.FromHours(1)).Should().BeNull();
        var decision = c.ReportAndTryClose("worker-2", 0, 4, ["worker-1", "worker-2"], TimeSpan.FromHours(1));
        decision.Should().NotBeNull("the report expired worker-3's lease, so every member has reported");
        decision!.Reporters.Should().Equal("worker-1", "worker-2");
        decision.ViewVersion.Should().Be(c.CurrentView().Version, "the decision names the view without worker-3");
        c.CurrentView().Members.Should().Equal("worker-1", "worker-2");
    }

    [Fact]
    public void A_report_from_a_member_whose_lease_ran_out_has_no_say()
    {
        var c = Create(2);
        c.Join("worker-1");
        c.Join("worker-2");
        _clock.AdvanceTo(900);
        c.Heartbeat("worker-1");
        _clock.AdvanceTo(1200);
        c.ReportAndTryClose("worker-2", 0, 3, ["worker-2"], TimeSpan.FromHours(1)).Should().BeNull("worker-2 is no member any more; worker-1 has not reported");
        c.ReportAndTryClose("worker-1", 0, 3, ["worker-1", "worker-2"], TimeSpan.FromHours(1))!.Reporters.Should().Equal("worker-1");
    }
}
