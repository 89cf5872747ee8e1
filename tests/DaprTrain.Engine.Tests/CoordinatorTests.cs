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
}
