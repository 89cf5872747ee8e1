using Dapr.Actors;
using Dapr.Actors.Runtime;
using DaprTrain.Contracts;
using Microsoft.Extensions.Time.Testing;

namespace DaprTrain.Coordinator.Tests;

public class JobCoordinatorActorTests
{
    private readonly Dictionary<string, string> _store = [];
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _clock = new(Start);
    private readonly CapturingTimerManager _timers = new();
    private static readonly CoordinatorOptions Options = new() { Shards = 3, LeaseMs = 1000, WorkersWriteCheckpoints = true };

    private async Task<JobCoordinatorActor> ActivateAsync()
    {
        var host = ActorHost.CreateForTest<JobCoordinatorActor>(new ActorTestOptions { ActorId = new ActorId("job-1"), TimerManager = _timers });
        var actor = new JobCoordinatorActor(host, Options, _clock, new TestActorStateManager(_store));
        await actor.ActivateAsync();
        return actor;
    }

    private async Task FireLeaseReminderAsync(JobCoordinatorActor actor)
    {
        var reminder = _timers.Reminders.Single(r => r.Name == JobCoordinatorActor.LeaseReminder);
        await actor.ReceiveReminderAsync(reminder.Name, reminder.State, reminder.DueTime, reminder.Period);
    }

    [Fact]
    public async Task Join_assigns_shards_and_the_checkpoint_writer_and_registers_the_lease_reminder()
    {
        var actor = await ActivateAsync();
        await actor.JoinAsync("worker-2");
        await actor.JoinAsync("worker-1");
        var view = await actor.JoinAsync("worker-3");

        view.Members.Should().Equal("worker-1", "worker-2", "worker-3");
        view.ShardOwners.Should().Equal(new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2", [2] = "worker-3" });
        view.CheckpointWriter.Should().Be("worker-1");
        _timers.Reminders.Should().ContainSingle(r => r.Name == JobCoordinatorActor.LeaseReminder && r.Period == TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public async Task The_reminder_expires_a_lease_that_heartbeats_did_not_renew_and_reassigns_its_shard()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(w);
        _clock.SetUtcNow(Start.AddMilliseconds(800));
        (await actor.HeartbeatAsync("worker-2")).Should().BeTrue();
        (await actor.HeartbeatAsync("worker-3")).Should().BeTrue();
        _clock.SetUtcNow(Start.AddMilliseconds(1200));

        await FireLeaseReminderAsync(actor);

        var view = await actor.GetViewAsync();
        view.Members.Should().Equal("worker-2", "worker-3");
        view.ShardOwners[0].Should().Be("worker-2");
        view.CheckpointWriter.Should().Be("worker-2");
        (await actor.HeartbeatAsync("worker-1")).Should().BeFalse("an expired worker must join again");
    }

    [Fact]
    public async Task The_round_barrier_releases_with_every_member_and_without_a_missing_one()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(w);
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" })
        {
            await actor.ReportAsync(new RoundReportDto(w, 0, 1, ["worker-1", "worker-2", "worker-3"]));
        }
        (await actor.CloseRoundAsync(new RoundKeyDto(0, 1))).Included.Should().Equal("worker-1", "worker-2", "worker-3");

        // Round 2: worker-3 is gone; the others received nothing from it.
        await actor.ReportAsync(new RoundReportDto("worker-1", 0, 2, ["worker-1", "worker-2"]));
        await actor.ReportAsync(new RoundReportDto("worker-2", 0, 2, ["worker-1", "worker-2"]));
        var decision = await actor.CloseRoundAsync(new RoundKeyDto(0, 2));
        decision.Included.Should().Equal("worker-1", "worker-2");
        decision.Reporters.Should().Equal("worker-1", "worker-2");
    }

    [Fact]
    public async Task State_survives_deactivation_and_reactivation()
    {
        var first = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await first.JoinAsync(w);
        await first.ReportAsync(new RoundReportDto("worker-1", 0, 5, ["worker-1", "worker-3"]));
        var decided = await first.CloseRoundAsync(new RoundKeyDto(0, 5));
        await first.LeaveAsync("worker-2");

        var second = await ActivateAsync();
        var view = await second.GetViewAsync();
        view.Members.Should().Equal("worker-1", "worker-3");
        view.ShardOwners[1].Should().Be("worker-1");
        (await second.CloseRoundAsync(new RoundKeyDto(0, 5))).Should().BeEquivalentTo(decided, "a closed round's decision is kept");
        _store.Should().ContainKey(JobCoordinatorActor.StateKey);
    }

    [Fact]
    public async Task A_returning_worker_gets_its_shard_back()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(w);
        await actor.LeaveAsync("worker-3");
        (await actor.GetViewAsync()).ShardOwners[2].Should().Be("worker-1");
        (await actor.JoinAsync("worker-3")).ShardOwners[2].Should().Be("worker-3");
    }

    [Fact]
    public async Task An_empty_member_id_is_rejected()
    {
        var actor = await ActivateAsync();
        var act = () => actor.JoinAsync(" ");
        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*member id*");
    }
}
