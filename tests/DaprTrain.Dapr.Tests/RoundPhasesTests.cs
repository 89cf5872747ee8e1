using DaprTrain.Coordination;
using DaprTrain.Coordination.Security;
using DaprTrain.Engine.Telemetry;

namespace DaprTrain.Dapr.Tests;

/// <summary>
/// Issue 16's round breakdown (<see cref="RoundPhases"/>) on a clock the test moves: what it adds up, not how fast
/// anything is. A round's phases never add up to more than its wall time; "other" is the rest.
/// </summary>
public sealed class RoundPhasesTests
{
    /// <summary>A clock in whole milliseconds that moves only when told.</summary>
    private sealed class StepClock : TimeProvider
    {
        private long _ms;

        public override long TimestampFrequency => 1000;

        public override long GetTimestamp() => Interlocked.Read(ref _ms);

        public void Advance(long ms) => Interlocked.Add(ref _ms, ms);
    }

    private static (long Count, double Ms) Phase(PhaseSummary summary, string phase) =>
        summary.Phases.Single(p => p.Phase == phase) is var total ? (total.Count, total.Ms) : default;

    [Fact]
    public async Task A_rounds_phases_and_the_rest_add_up_to_its_wall_time_and_every_phase_counts_every_round()
    {
        var clock = new StepClock();
        var phases = new RoundPhases("worker-1", clock);
        long applied = 0;
        for (int round = 1; round <= 3; round++)
        {
            await phases.RunAsync(() =>
            {
                using (phases.Time(RoundPhase.Compute)) clock.Advance(10);
                using (phases.Time(RoundPhase.Wait)) clock.Advance(20);
                clock.Advance(5);
                applied++;
                return Task.CompletedTask;
            }, () => applied);
        }

        var summary = phases.Snapshot();
        summary.Rounds.Should().Be(3);
        summary.WallMs.Should().Be(105);
        summary.Phases.Select(p => p.Phase).Should().Equal("compute", "encode", "publish", "wait", "aggregate", "apply", "coordinator", "checkpoint", "other");
        summary.Phases.Should().AllSatisfy(p => p.Count.Should().Be(3, "every phase is recorded every round, zeros included"));
        Phase(summary, "compute").Ms.Should().Be(30);
        Phase(summary, "wait").Ms.Should().Be(60);
        Phase(summary, "other").Ms.Should().Be(15);
        summary.Accounted.Should().BeApproximately(90.0 / 105, 1e-9);
        summary.Table().Should().Contain("accounted: 86% of 35 ms");
    }

    [Fact]
    public async Task A_phase_timed_inside_another_takes_its_time_from_the_outer_one_so_nothing_counts_twice()
    {
        var clock = new StepClock();
        var phases = new RoundPhases("worker-1", clock);
        var coordinator = new PhasedCoordinator(new SlowCoordinator(clock, 7), phases);
        long applied = 0;

        await phases.RunAsync(async () =>
        {
            using (phases.Time(RoundPhase.Wait, "agreement"))
            {
                clock.Advance(3);
                await coordinator.GetViewAsync();
                clock.Advance(3);
                await coordinator.GetViewAsync();
            }
            applied++;
        }, () => applied);

        var summary = phases.Snapshot();
        Phase(summary, "wait").Ms.Should().Be(6);
        Phase(summary, "coordinator").Ms.Should().Be(14);
        summary.WallMs.Should().Be(20);
        Phase(summary, "other").Ms.Should().Be(0);
        summary.Details.Should().ContainEquivalentOf(new PhaseTotal("coordinator GetView", 2, 14));
        summary.Details.Should().ContainEquivalentOf(new PhaseTotal("wait agreement", 1, 6));
    }

    [Fact]
    public async Task Work_beside_the_round_is_reported_apart_and_never_in_the_rounds_phases()
    {
        var clock = new StepClock();
        var phases = new RoundPhases("worker-1", clock);
        var coordinator = new PhasedCoordinator(new SlowCoordinator(clock, 4), phases);
        long applied = 0;

        // A heartbeat on its own timer, started outside the round's flow, and a delivery handled beside it.
        await coordinator.HeartbeatAsync("worker-1", null);
        phases.RecordOffPath("receive /messages/gradients", 2.5);
        await phases.RunAsync(async () =>
        {
            using (phases.Time(RoundPhase.Aggregate)) clock.Advance(10);
            phases.Move(RoundPhase.Aggregate, RoundPhase.Apply, 6);
            applied++;
            await Task.CompletedTask;
        }, () => applied);

        var summary = phases.Snapshot();
        Phase(summary, "coordinator").Ms.Should().Be(0);
        Phase(summary, "aggregate").Ms.Should().Be(4);
        Phase(summary, "apply").Ms.Should().Be(6);
        summary.OffPath.Should().BeEquivalentTo([new PhaseTotal("coordinator Heartbeat", 1, 4), new PhaseTotal("receive /messages/gradients", 1, 2.5)]);
        summary.WallMs.Should().Be(10, "the round's clock starts with its first attempt, not with what ran before it");
    }

    [Fact]
    public async Task An_attempt_that_completes_no_round_folds_into_the_next_one()
    {
        var clock = new StepClock();
        var phases = new RoundPhases("worker-1", clock);
        long applied = 0;

        await phases.RunAsync(() => { using (phases.Time(RoundPhase.Coordinator)) clock.Advance(8); return Task.CompletedTask; }, () => applied);
        phases.Snapshot().Rounds.Should().Be(0);
        clock.Advance(500);  // the loop's pause after a failed attempt
        await phases.RunAsync(() => { using (phases.Time(RoundPhase.Compute)) clock.Advance(12); applied++; return Task.CompletedTask; }, () => applied);

        var summary = phases.Snapshot();
        summary.Rounds.Should().Be(1);
        summary.WallMs.Should().Be(520);
        Phase(summary, "coordinator").Ms.Should().Be(8);
        Phase(summary, "compute").Ms.Should().Be(12);
        Phase(summary, "other").Ms.Should().Be(500);
    }

    [Fact]
    public void Other_is_not_a_phase_anyone_times()
    {
        var phases = new RoundPhases("worker-1");
        var timing = () => phases.Time(RoundPhase.Other);
        timing.Should().Throw<ArgumentException>();
    }

    /// <summary>A coordinator whose calls take a fixed time on the test's clock; only the calls the tests make.</summary>
    private sealed class SlowCoordinator(StepClock clock, long ms) : ICoordinator
    {
        private static readonly MembershipView View = new(1, ["worker-1"], new Dictionary<int, string>(), "worker-1", [], [], new Dictionary<string, string>(), 0);

        public Task<MembershipView> GetViewAsync()
        {
            clock.Advance(ms);
            return Task.FromResult(View);
        }

        public Task<bool> HeartbeatAsync(string member, DaprTrain.Coordination.Security.MemberIdentity? identity)
        {
            clock.Advance(ms);
            return Task.FromResult(true);
        }

        public Task<MembershipView> JoinAsync(string member, MemberIdentity? identity) => throw new NotSupportedException();

        public Task<MembershipView> LeaveAsync(string member, MemberIdentity? identity) => throw new NotSupportedException();

        public Task<MembershipView> RegisterServerAsync(int generation, MemberIdentity? identity) => throw new NotSupportedException();

        public Task ReportAsync(string member, int generation, long round, IReadOnlyList<string> received, MemberIdentity? identity) => throw new NotSupportedException();

        public Task<RoundDecision?> ReportAndTryCloseAsync(string member, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, MemberIdentity? identity) =>
            throw new NotSupportedException();

        public Task<RoundDecision> CloseRoundAsync(string caller, int generation, long round, MemberIdentity? identity) => throw new NotSupportedException();

        public Task<RoundDecision?> TryCloseRoundAsync(string caller, int generation, long round, TimeSpan deadline, MemberIdentity? identity) => throw new NotSupportedException();

        public Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash, MemberIdentity? identity) => throw new NotSupportedException();

        public Task SetSyncRequestAsync(string caller, string member, bool pending, MemberIdentity? identity) => throw new NotSupportedException();
    }
}
