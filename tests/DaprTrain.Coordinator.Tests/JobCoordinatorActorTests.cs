using Dapr.Actors;
using Dapr.Actors.Runtime;
using DaprTrain.Contracts;
using DaprTrain.Coordination.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace DaprTrain.Coordinator.Tests;

public class JobCoordinatorActorTests
{
    private readonly Dictionary<string, string> _store = [];
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _clock = new(Start);
    private readonly CapturingTimerManager _timers = new();
    private const string Secret = "a-test-secret-of-job-1";
    private static readonly CoordinatorOptions Options = new() { Shards = 3, LeaseMs = 1000, WorkersWriteCheckpoints = true, Secret = Secret, Workers = 3 };
    private readonly Dictionary<string, MemberIdentity> _identities = [];
    private TestActorStateManager? _state;
    private readonly CapturingLoggerFactory _logs = new();

    private MemberIdentity Identity(string member, string secret = Secret)
    {
        if (!_identities.TryGetValue(member, out var identity)) _identities[member] = identity = new MemberIdentity(NodeKey.Create(), secret);
        return identity;
    }

    private HeartbeatDto HeartbeatOf(string member, MemberIdentity? signer = null)
    {
        var (sequence, signature) = (signer ?? Identity(member)).NextHeartbeat("job-1", member);
        return new HeartbeatDto(member, sequence, signature);
    }

    // The round calls as a worker signs them (ActorCoordinator); signer: another key, for the forgeries.
    private RoundReportDto ReportOf(string member, long round, string[] received, int deadlineMs = 0, MemberIdentity? signer = null)
    {
        var identity = signer ?? Identity(member);
        long sequence = identity.NextReport();
        var call = deadlineMs == 0
            ? SignedCall.Report("job-1", member, sequence, 0, round, received)
            : SignedCall.ReportAndTryClose("job-1", member, sequence, 0, round, received, TimeSpan.FromMilliseconds(deadlineMs));
        return new RoundReportDto(member, 0, round, received, deadlineMs, sequence, identity.Sign(call));
    }

    private RoundKeyDto CloseOf(string caller, long round, MemberIdentity? signer = null) =>
        new(caller, 0, round, 0, (signer ?? Identity(caller)).Sign(SignedCall.CloseRound("job-1", caller, 0, round)));

    private RoundKeyDto TryCloseOf(string caller, long round, int deadlineMs = 60_000, MemberIdentity? signer = null) =>
        new(caller, 0, round, deadlineMs, (signer ?? Identity(caller)).Sign(SignedCall.TryCloseRound("job-1", caller, 0, round, TimeSpan.FromMilliseconds(deadlineMs))));

    private WeightHashDto HashOf(string member, long round, ulong hash, MemberIdentity? signer = null) =>
        new(member, round, hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), (signer ?? Identity(member)).Sign(SignedCall.WeightHash("job-1", member, round, hash)));

    private SyncRequestDto SyncOf(string caller, string member, bool pending, MemberIdentity? signer = null)
    {
        var identity = signer ?? Identity(caller);
        long sequence = identity.NextSyncRequest();
        return new SyncRequestDto(caller, member, pending, sequence, identity.Sign(SignedCall.SyncRequest("job-1", caller, sequence, member, pending)));
    }

    private JoinRequestDto JoinOf(string member) => new(member, Identity(member).Key.PublicKey, Identity(member).JoinProof("job-1", member));

    private async Task<LeaveRequestDto> LeaveOf(JobCoordinatorActor actor, string member, MemberIdentity? signer = null)
    {
        long version = (await actor.GetViewAsync()).Version;
        return new LeaveRequestDto(member, version, (signer ?? Identity(member)).LeaveProof("job-1", member, version));
    }

    private async Task<JobCoordinatorActor> ActivateAsync()
    {
        var host = ActorHost.CreateForTest<JobCoordinatorActor>(new ActorTestOptions { ActorId = new ActorId("job-1"), TimerManager = _timers, LoggerFactory = _logs });
        _state = new TestActorStateManager(_store);
        var actor = new JobCoordinatorActor(host, Options, _clock, _state);
        await actor.ActivateAsync();
        return actor;
    }

    // ECDSA signatures are randomised: an answer of the same decision carries another signature (each verifies, below).
    private static FluentAssertions.Equivalency.EquivalencyAssertionOptions<RoundDecisionDto> Unsigned(FluentAssertions.Equivalency.EquivalencyAssertionOptions<RoundDecisionDto> options) => options.Excluding(d => d.Signature);

    private async Task FireLeaseReminderAsync(JobCoordinatorActor actor)
    {
        var reminder = _timers.Reminders.Single(r => r.Name == JobCoordinatorActor.LeaseReminder);
        await actor.ReceiveReminderAsync(reminder.Name, reminder.State, reminder.DueTime, reminder.Period);
    }

    [Fact]
    public async Task Join_assigns_shards_and_the_checkpoint_writer_and_registers_the_lease_reminder()
    {
        var actor = await ActivateAsync();
        await actor.JoinAsync(JoinOf("worker-2"));
        await actor.JoinAsync(JoinOf("worker-1"));
        var view = await actor.JoinAsync(JoinOf("worker-3"));

        view.Members.Should().Equal("worker-1", "worker-2", "worker-3");
        view.ShardOwners.Should().Equal(new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2", [2] = "worker-3" });
        view.CheckpointWriter.Should().Be("worker-1");
        _timers.Reminders.Should().ContainSingle(r => r.Name == JobCoordinatorActor.LeaseReminder && r.Period == TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public async Task The_reminder_expires_a_lease_that_heartbeats_did_not_renew_and_reassigns_its_shard()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        _clock.SetUtcNow(Start.AddMilliseconds(800));
        (await actor.HeartbeatAsync(HeartbeatOf("worker-2"))).Should().BeTrue();
        (await actor.HeartbeatAsync(HeartbeatOf("worker-3"))).Should().BeTrue();
        _clock.SetUtcNow(Start.AddMilliseconds(1200));

        await FireLeaseReminderAsync(actor);

        var view = await actor.GetViewAsync();
        view.Members.Should().Equal("worker-2", "worker-3");
        view.ShardOwners[0].Should().Be("worker-2");
        view.CheckpointWriter.Should().Be("worker-2");
        (await actor.HeartbeatAsync(HeartbeatOf("worker-1"))).Should().BeFalse("an expired worker must join again");
    }

    [Fact]
    public async Task A_heartbeat_renews_only_when_signed_by_the_members_own_key_and_never_twice_for_one_sequence()
    {
        // Issue 11: heartbeats were unsigned, so an insider could keep a dead member's lease alive.
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        _clock.SetUtcNow(Start.AddMilliseconds(800));

        // Refused with the reason in the coordinator's log, and answered as for a non-member: nothing is renewed.
        (await actor.HeartbeatAsync(HeartbeatOf("worker-1", signer: Identity("worker-2")))).Should().BeFalse("worker-2's key did not sign for worker-1");
        (await actor.HeartbeatAsync(new HeartbeatDto("worker-1", 7, ""))).Should().BeFalse("an unsigned heartbeat");
        (await actor.HeartbeatAsync(new HeartbeatDto("worker-1", 0, "AAAA"))).Should().BeFalse("no sequence number");
        (await actor.HeartbeatAsync(new HeartbeatDto("worker-1", 8, new string('A', 100_000)))).Should().BeFalse("not a signature: too long to be one");
        var admission = JobAdmission.ForWorkers(new string('s', JobAdmission.MinSecretLength), 3);
        admission.CheckHeartbeat("job-1", "worker-1", 7, Identity("worker-1").Key.PublicKey, "").Should().Contain("not signed by worker-1's registered key");
        admission.CheckHeartbeat("job-1", "worker-1", 0, Identity("worker-1").Key.PublicKey, "AAAA").Should().Contain("without a sequence number");
        admission.CheckHeartbeat("job-1", "worker-1", 8, Identity("worker-1").Key.PublicKey, new string('A', 100_000)).Should().Contain("carries no signature");

        // worker-1's own heartbeat, captured and replayed later: accepted once; the replay renews nothing.
        var captured = HeartbeatOf("worker-1");
        (await actor.HeartbeatAsync(captured)).Should().BeTrue();
        (await actor.HeartbeatAsync(HeartbeatOf("worker-2"))).Should().BeTrue();
        (await actor.HeartbeatAsync(HeartbeatOf("worker-3"))).Should().BeTrue();
        _clock.SetUtcNow(Start.AddMilliseconds(1600));
        (await actor.HeartbeatAsync(HeartbeatOf("worker-2"))).Should().BeTrue();
        (await actor.HeartbeatAsync(HeartbeatOf("worker-3"))).Should().BeTrue();
        // The replay reaches the actor after it was deactivated and activated again: the sequences are in its stored state.
        var reactivated = await ActivateAsync();
        (await reactivated.HeartbeatAsync(captured)).Should().BeTrue("a valid heartbeat that a newer one overtook is not an error");
        _clock.SetUtcNow(Start.AddMilliseconds(2000));
        await FireLeaseReminderAsync(reactivated);
        (await reactivated.GetViewAsync()).Members.Should().Equal(["worker-2", "worker-3"], "the replayed heartbeat renewed nothing: worker-1's lease ran out at 1800 ms");
    }

    [Fact]
    public async Task A_heartbeat_signed_by_another_key_keeps_no_lease_alive()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        _clock.SetUtcNow(Start.AddMilliseconds(800));
        // worker-2, an insider, keeps heartbeating for worker-1 (dead) with its own key and ever new sequence numbers.
        (await actor.HeartbeatAsync(HeartbeatOf("worker-1", signer: Identity("worker-2")))).Should().BeFalse();
        (await actor.HeartbeatAsync(HeartbeatOf("worker-2"))).Should().BeTrue();
        (await actor.HeartbeatAsync(HeartbeatOf("worker-3"))).Should().BeTrue();
        _clock.SetUtcNow(Start.AddMilliseconds(1200));
        (await actor.HeartbeatAsync(HeartbeatOf("worker-1", signer: Identity("worker-2")))).Should().BeFalse();
        await FireLeaseReminderAsync(actor);
        (await actor.GetViewAsync()).Members.Should().Equal(["worker-2", "worker-3"], "worker-1's lease ran out at 1000 ms: forged heartbeats renewed nothing");
    }

    // Issue 11's remaining hole: reports, closes, weight hashes and sync requests named a member (or nobody) and proved
    // nothing, so any app with a sidecar could report for another member, close a round early and leave real members out,
    // have a member marked diverged, or mark and clear sync requests. Each test below failed before they were signed.

    [Fact]
    public async Task A_report_counts_only_when_signed_by_the_members_own_key()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        string[] all = ["worker-1", "worker-2", "worker-3"];
        string saved = _store[JobCoordinatorActor.StateKey];

        // Reports for worker-2 and worker-3 that hold only worker-1: counted, they would complete the round without the
        // others' gradients (the decision takes what every reporter holds).
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, ["worker-1"], 60_000, signer: Identity("worker-1")))).Should().BeNull();
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-3", 1, ["worker-1"], 60_000) with { Signature = "" })).Should().BeNull();
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-3", 1, ["worker-1"], 60_000) with { Signature = "@@ not base64 @@" })).Should().BeNull();
        await actor.ReportAsync(ReportOf("worker-2", 1, ["worker-1"], signer: Identity("worker-3")));
        // Signed, but for other fields than it carries: a signature covers every one.
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, all, 60_000) with { Received = ["worker-1"] })).Should().BeNull();
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, ["worker-1"], 60_000) with { DeadlineMs = 1 })).Should().BeNull();
        // And mallory, who has a key of its own but is no member (it could not join).
        (await actor.ReportAndTryCloseAsync(ReportOf("mallory", 1, ["worker-1"], 60_000))).Should().BeNull();
        _store[JobCoordinatorActor.StateKey].Should().Be(saved, "a refused report stores nothing");

        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 1, all, 60_000))).Should().BeNull("worker-2 and worker-3 have not reported: the forgeries did not count");
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, all, 60_000))).Should().BeNull();
        var decision = await actor.ReportAndTryCloseAsync(ReportOf("worker-3", 1, all, 60_000));
        decision.Should().NotBeNull();
        decision!.Included.Should().Equal(all, "only the members' own reports decided the round");
        _logs.Messages.Should().Contain(m => m.Contains("refused a report: report of worker-2 is not signed by worker-2's registered key"))
            .And.Contain(m => m.Contains("refused a report: report of worker-3 carries no signature"))
            .And.Contain(m => m.Contains("refused a report: report of mallory, which is not a member of the job"));
    }

    [Fact]
    public async Task A_replayed_report_does_not_replace_the_members_newer_report_even_after_reactivation()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        string[] all = ["worker-1", "worker-2", "worker-3"];
        // worker-1 reported round 1 holding only itself, then (its round retried after an error) holding everyone.
        var first = ReportOf("worker-1", 1, ["worker-1"], 60_000);
        (await actor.ReportAndTryCloseAsync(first)).Should().BeNull();
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 1, all, 60_000))).Should().BeNull();

        // The first, recorded and sent again, after the actor was deactivated: validly signed, but its number was taken.
        var reactivated = await ActivateAsync();
        (await reactivated.ReportAndTryCloseAsync(first)).Should().BeNull();
        await reactivated.ReportAsync(first with { DeadlineMs = 0, Signature = Identity("worker-1").Sign(SignedCall.Report("job-1", "worker-1", first.Sequence, 0, 1, ["worker-1"])) });

        (await reactivated.ReportAndTryCloseAsync(ReportOf("worker-2", 1, all, 60_000))).Should().BeNull();
        var decision = await reactivated.ReportAndTryCloseAsync(ReportOf("worker-3", 1, all, 60_000));
        decision!.Included.Should().Equal(all, "worker-1's newer report stands: the replay would have left worker-2 and worker-3 out");
    }

    [Fact]
    public async Task Only_a_member_closes_a_round_and_only_with_its_own_signature()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        string[] all = ["worker-1", "worker-2", "worker-3"];
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 1, all, 60_000))).Should().BeNull();
        _clock.SetUtcNow(Start.AddMilliseconds(50));
        var mallory = Identity("mallory");

        // Closing now would decide the round with worker-1's report alone: worker-2 and worker-3 left out of it.
        var closeByStranger = () => actor.CloseRoundAsync(CloseOf("mallory", 1));
        var closeForged = () => actor.CloseRoundAsync(CloseOf("worker-2", 1, signer: mallory));
        var closeUnsigned = () => actor.CloseRoundAsync(CloseOf("worker-2", 1) with { Signature = "" });
        await closeByStranger.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*mallory, which is not a member*");
        await closeForged.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*not signed by worker-2's registered key*");
        await closeUnsigned.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*carries no signature*");
        // A try-close with a deadline of 1 ms (one past since the first report) is a close too.
        (await actor.TryCloseRoundAsync(TryCloseOf("mallory", 1, deadlineMs: 1))).Should().BeNull("mallory is no member");
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-2", 1, deadlineMs: 1, signer: mallory))).Should().BeNull("not worker-2's key");
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-2", 1) with { DeadlineMs = 1 })).Should().BeNull("signed for a deadline of 60 s, not 1 ms");

        (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 1))).Should().BeNull("the round is still open");
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, all, 60_000))).Should().BeNull();
        var decision = await actor.ReportAndTryCloseAsync(ReportOf("worker-3", 1, all, 60_000));
        decision!.Reporters.Should().Equal(all, "nobody closed the round before the members reported");
        (await actor.CloseRoundAsync(CloseOf("mallory", 1))).Should().BeEquivalentTo(decision, Unsigned, "a decision taken is answered to anyone: reading it changes nothing");
    }

    [Fact]
    public async Task A_forged_weight_hash_does_not_mark_another_member_diverged()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        foreach (var w in new[] { "worker-1", "worker-2" }) (await actor.CompareWeightsAsync(HashOf(w, 10, 0xAA))).Complete.Should().BeFalse();
        (await actor.CompareWeightsAsync(HashOf("worker-3", 10, 0xAA))).Diverged.Should().BeEmpty();

        // A false hash for worker-2's round 10, after its real one: counted, it would replace it, and worker-2 would learn at
        // its next comparison that it diverged and throw its state away for a checkpoint.
        var forged = await actor.CompareWeightsAsync(HashOf("worker-2", 10, 0xBB, signer: Identity("worker-1")));
        var unsigned = await actor.CompareWeightsAsync(HashOf("worker-2", 10, 0xBB) with { Signature = "" });
        var tampered = await actor.CompareWeightsAsync(HashOf("worker-2", 10, 0xAA) with { Hash = "00000000000000bb" });

        foreach (var refused in new[] { forged, unsigned, tampered }) refused.Should().BeEquivalentTo(new WeightCheckDto(10, false, null, []), "refused: an incomplete comparison");
        var next = await actor.CompareWeightsAsync(HashOf("worker-2", 20, 0xCC));
        next.Round.Should().Be(10, "round 20's comparison is incomplete: worker-2 learns round 10's");
        next.Diverged.Should().BeEmpty("worker-2's own hash for round 10 stands");
    }

    /// <summary>
    /// An insider (a member, with its own key) closing a round far ahead: decided, it would prune the decisions kept 16
    /// rounds behind it, the current round's among them, so the members still polling that round would find nothing and
    /// close it again, empty, and skip a round the others applied (found in review). Round calls go at most
    /// <see cref="JobCoordinator.AgreementLead"/> past the last round a majority agreed on.
    /// </summary>
    [Fact]
    public async Task A_member_cannot_decide_rounds_far_ahead_of_the_last_one_a_majority_agreed_on()
    {
        var actor = await ActivateAsync();
        string[] all = ["worker-1", "worker-2", "worker-3"];
        foreach (var w in all) await actor.JoinAsync(JoinOf(w));
        for (long round = 1; round <= 3; round++)
        {
            foreach (var w in all) await actor.ReportAndTryCloseAsync(ReportOf(w, round, all, 60_000));
        }

        var farClose = () => actor.CloseRoundAsync(CloseOf("worker-3", 1000));
        await farClose.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*round 1000, beyond round 5 (the last round a majority agreed on is 3)*");
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-3", 1000, all, 1))).Should().BeNull("a report far ahead is refused");
        _clock.SetUtcNow(Start.AddSeconds(1));
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-3", 999, deadlineMs: 1))).Should().BeNull("a try-close far ahead is refused");
        var otherGeneration = () => actor.CloseRoundAsync(new RoundKeyDto("worker-3", 7, 4, 0, Identity("worker-3").Sign(SignedCall.CloseRound("job-1", "worker-3", 7, 4))));
        await otherGeneration.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*generation 7; the job's is 0*");

        (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 3)))!.Reporters.Should().Equal(all, "round 3's decision is still the one every poller gets");
        foreach (var w in all.SkipLast(1)) (await actor.ReportAndTryCloseAsync(ReportOf(w, 4, all, 60_000))).Should().BeNull();
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-3", 4, all, 60_000)))!.Included.Should().Equal(all, "the next round goes on as before");
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 6, all, 60_000))).Should().BeNull("two past the agreed round 4 is still taken");
    }

    /// <summary>
    /// The window must not stop a job whose majority died: with two of three workers dead, worker-1's rounds are decided by
    /// the deadline with its report alone, no majority of three; the third such round waits, and goes once the dead
    /// members' leases have run out and worker-1 is a majority of who is left.
    /// </summary>
    [Fact]
    public async Task The_window_moves_on_once_the_members_that_kept_rounds_from_a_majority_have_expired()
    {
        var actor = await ActivateAsync();
        string[] all = ["worker-1", "worker-2", "worker-3"];
        foreach (var w in all) await actor.JoinAsync(JoinOf(w));
        foreach (var w in all) await actor.ReportAndTryCloseAsync(ReportOf(w, 1, all, 60_000));

        // worker-2 and worker-3 are gone: worker-1 alone reports, and each round closes by its 5 ms deadline.
        for (long round = 2; round <= 3; round++)
        {
            (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", round, ["worker-1"], 5))).Should().BeNull();
            _clock.Advance(TimeSpan.FromMilliseconds(10));
            (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", round, deadlineMs: 5)))!.Reporters.Should().Equal("worker-1");
        }
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 4, ["worker-1"], 5))).Should().BeNull("round 4 is three past round 1, the last a majority of three agreed on");
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 4, deadlineMs: 5))).Should().BeNull("refused, not decided");

        // Leases of 1 s from the joins: worker-1 renews its own, the others' run out.
        _clock.SetUtcNow(Start.AddMilliseconds(900));
        (await actor.HeartbeatAsync(HeartbeatOf("worker-1"))).Should().BeTrue();
        _clock.SetUtcNow(Start.AddMilliseconds(1200));
        var decision = await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 4, ["worker-1"], 5));
        decision.Should().NotBeNull("worker-2's and worker-3's leases ran out: worker-1 is every member left, and rounds 2 and 3 were its");
        decision!.Included.Should().Equal("worker-1");
    }

    /// <summary>
    /// A round decided while the other member waited for a state (its sync request out, so no voter) was a majority of the
    /// voters then, and stays agreed when that member is back: counted only later against the members then, it was not, and
    /// with one more round decided by the deadline without the returning member's report, every member's next report was
    /// refused for ever (the window stuck two rounds behind them: an end-to-end run with a sidecar down found it).
    /// </summary>
    [Fact]
    public async Task Rounds_decided_while_a_member_waited_for_a_state_stay_agreed_when_it_is_back()
    {
        var actor = await ActivateAsync();
        string[] two = ["worker-1", "worker-2"];
        foreach (var w in two) await actor.JoinAsync(JoinOf(w));
        foreach (var w in two) await actor.ReportAndTryCloseAsync(ReportOf(w, 1, two, 60_000));

        // worker-2 fell behind and asks for a state: worker-1, every voter left, decides rounds 2 and 3 alone.
        await actor.SetSyncRequestAsync(SyncOf("worker-2", "worker-2", pending: true));
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 2, ["worker-1"], 60_000)))!.Reporters.Should().Equal("worker-1");
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 3, ["worker-1"], 60_000)))!.Reporters.Should().Equal("worker-1");
        // It took the state of round 3 and votes again; round 4 closes by the deadline before its report came.
        await actor.SetSyncRequestAsync(SyncOf("worker-2", "worker-2", pending: false));
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 4, ["worker-1"], 5))).Should().BeNull();
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 4, deadlineMs: 5)))!.Reporters.Should().Equal("worker-1");

        // Round 3 was agreed when it was decided: round 5 is within the window, and both take part in it.
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 5, two, 60_000))).Should().BeNull("worker-1 has not reported yet");
        var decision = await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 5, two, 60_000));
        decision.Should().NotBeNull("round 5 is two past round 3, which a majority of the voters then agreed on");
        decision!.Reporters.Should().Equal(two);
    }

    /// <summary>
    /// A live peer behind by more than two deadlines (its sidecar away for a while, its lease still renewed): two rounds closed
    /// by the deadline with the other's report alone, no majority of two. Its reports of those rounds come late, after the
    /// decisions; they change no decision, but they say it reached the rounds, and the window moves on. Before, nothing could
    /// move it and every member's next round was refused for ever (found in review).
    /// </summary>
    [Fact]
    public async Task Late_reports_of_decided_rounds_let_the_window_move_on()
    {
        var actor = await ActivateAsync();
        string[] two = ["worker-1", "worker-2"];
        foreach (var w in two) await actor.JoinAsync(JoinOf(w));
        foreach (var w in two) await actor.ReportAndTryCloseAsync(ReportOf(w, 1, two, 60_000));
        for (long round = 2; round <= 3; round++)
        {
            (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", round, ["worker-1"], 5))).Should().BeNull();
            _clock.Advance(TimeSpan.FromMilliseconds(10));
            (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", round, deadlineMs: 5)))!.Reporters.Should().Equal("worker-1");
        }
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 4, two, 60_000))).Should().BeNull("round 4 is three past round 1, the last a majority agreed on");

        // worker-2 is back: its reports of rounds 2 and 3 get the decisions as they were, and count as having reached them.
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 2, ["worker-2"], 60_000)))!.Included.Should().Equal(["worker-1"], "a late report changes no decision");
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 3, ["worker-2"], 60_000)))!.Reporters.Should().Equal("worker-1");
        // Kept in the actor's state: the same from a new activation.
        actor = await ActivateAsync();
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 4, two, 60_000))).Should().BeNull("worker-2 has not reported round 4 yet");
        var decision = await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 4, two, 60_000));
        decision.Should().NotBeNull("both reached round 3, so round 4 is within the window");
        decision!.Reporters.Should().Equal(two);
    }

    /// <summary>
    /// A member that asked a state for itself is no voter, and no reporter that counts either: alone it is not a majority of a
    /// pair, so it cannot move the window ahead by itself (found in review: counted as a reporter but not as a voter, it was).
    /// </summary>
    [Fact]
    public async Task A_member_that_asked_a_state_for_itself_cannot_move_the_window_alone()
    {
        var actor = await ActivateAsync();
        string[] two = ["worker-1", "worker-2"];
        foreach (var w in two) await actor.JoinAsync(JoinOf(w));
        foreach (var w in two) await actor.ReportAndTryCloseAsync(ReportOf(w, 1, two, 60_000));
        await actor.SetSyncRequestAsync(SyncOf("worker-1", "worker-1", pending: true));
        for (long round = 2; round <= 3; round++)
        {
            (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", round, ["worker-1"], 5))).Should().BeNull();
            _clock.Advance(TimeSpan.FromMilliseconds(10));
            (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", round, deadlineMs: 5)))!.Reporters.Should().Equal("worker-1");
        }
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 4, ["worker-1"], 5))).Should().BeNull();
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 4, deadlineMs: 5))).Should().BeNull("round 4 is three past round 1: its rounds 2 and 3 were no voter's");
    }

    /// <summary>
    /// Weight comparisons name the diverged only by a strict majority: with two replicas (or a tie) one insider's false hash
    /// would otherwise mark the honest one, whichever hash sorted first. And hashes for rounds far ahead are refused: the
    /// four newest rounds are the ones compared, so a member could otherwise push every real round out.
    /// </summary>
    [Fact]
    public async Task A_tie_marks_nobody_diverged_and_hashes_far_ahead_cannot_push_the_real_rounds_out()
    {
        var actor = await ActivateAsync();
        string[] two = ["worker-1", "worker-2"];
        foreach (var w in two) await actor.JoinAsync(JoinOf(w));
        foreach (var w in two) await actor.ReportAndTryCloseAsync(ReportOf(w, 1, two, 60_000));

        (await actor.CompareWeightsAsync(HashOf("worker-1", 1, 0xAA))).Complete.Should().BeFalse();
        var tie = await actor.CompareWeightsAsync(HashOf("worker-2", 1, 0x01));
        tie.Complete.Should().BeTrue();
        tie.Diverged.Should().BeEmpty("one hash against one: neither is the majority's");
        tie.Majority.Should().BeNull();
        _logs.Messages.Should().Contain(e => e.Contains("no weight hash has a majority", StringComparison.Ordinal));

        foreach (long far in new long[] { 1000, 1001, 1002, 1003 })
        {
            (await actor.CompareWeightsAsync(HashOf("worker-2", far, 0xBB))).Should().BeEquivalentTo(new WeightCheckDto(far, false, null, []), "refused");
        }
        (await actor.CompareWeightsAsync(HashOf("worker-1", 2, 0xCC))).Round.Should().Be(1, "round 2 is still incomplete: worker-1 learns round 1's");
        var real = await actor.CompareWeightsAsync(HashOf("worker-2", 2, 0xCC));
        real.Round.Should().Be(2, "round 2's hashes were kept and compared");
        real.Complete.Should().BeTrue();
        real.Diverged.Should().BeEmpty();
    }

    [Fact]
    public async Task A_sync_request_is_the_members_own_and_a_replayed_one_does_not_flip_the_state_back()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));

        // Nobody asks a state for another member (it would stop counting in the rounds and could not write checkpoints).
        await actor.SetSyncRequestAsync(SyncOf("worker-1", "worker-2", pending: true));
        await actor.SetSyncRequestAsync(SyncOf("worker-2", "worker-2", pending: true, signer: Identity("worker-1")));
        await actor.SetSyncRequestAsync(SyncOf("mallory", "worker-1", pending: true));
        (await actor.GetViewAsync()).SyncRequests.Should().BeEmpty();

        var asked = SyncOf("worker-3", "worker-3", pending: true);
        await actor.SetSyncRequestAsync(asked);
        (await actor.GetViewAsync()).SyncRequests.Should().Equal("worker-3");
        // Only worker-3 or the checkpoint writer (worker-1) that wrote it a state clears it; worker-2 is neither.
        await actor.SetSyncRequestAsync(SyncOf("worker-2", "worker-3", pending: false));
        (await actor.GetViewAsync()).SyncRequests.Should().Equal("worker-3");
        await actor.SetSyncRequestAsync(SyncOf("worker-1", "worker-3", pending: false));
        (await actor.GetViewAsync()).SyncRequests.Should().BeEmpty("the checkpoint writer served it");

        // worker-3's request, recorded and sent again, and again after the actor was deactivated: its number was taken.
        await actor.SetSyncRequestAsync(asked);
        (await actor.GetViewAsync()).SyncRequests.Should().BeEmpty("a replay does not make worker-3 wait for a state again");
        var reactivated = await ActivateAsync();
        await reactivated.SetSyncRequestAsync(asked);
        (await reactivated.GetViewAsync()).SyncRequests.Should().BeEmpty("the numbers taken are in the actor's stored state");
        await reactivated.SetSyncRequestAsync(SyncOf("worker-3", "worker-3", pending: true));
        (await reactivated.GetViewAsync()).SyncRequests.Should().Equal(["worker-3"], "its next request, with a new number, counts");
    }

    [Fact]
    public async Task Refused_calls_are_logged_once_per_caller_and_call_every_ten_seconds_with_a_count()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2" }) await actor.JoinAsync(JoinOf(w));
        for (int i = 0; i < 5; i++) await actor.ReportAsync(ReportOf("worker-2", 1, [], signer: Identity("worker-1")));
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-2", 1, signer: Identity("worker-1")))).Should().BeNull();
        _clock.SetUtcNow(Start.AddSeconds(11));
        await actor.ReportAsync(ReportOf("worker-2", 1, [], signer: Identity("worker-1")));

        var refusals = _logs.Messages.Where(m => m.Contains("refused a")).ToList();
        refusals.Should().HaveCount(3, "one report refusal, one try-close refusal (another call), one report refusal 11 s later");
        refusals[2].Should().Contain("(4 more refused for this id since the last report)");

        // Made-up ids are one entry between them: 200 of them within 10 s make one line, not 200.
        for (int i = 0; i < 200; i++) (await actor.TryCloseRoundAsync(TryCloseOf($"mallory-{i}", 1))).Should().BeNull();
        _logs.Messages.Count(m => m.Contains("refused a try-close", StringComparison.Ordinal) && m.Contains("mallory", StringComparison.Ordinal)).Should().Be(1);
    }

    [Fact]
    public async Task The_round_barrier_releases_with_every_member_and_without_a_missing_one()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" })
        {
            await actor.ReportAsync(ReportOf(w, 1, ["worker-1", "worker-2", "worker-3"]));
        }
        (await actor.CloseRoundAsync(CloseOf("worker-1", 1))).Included.Should().Equal("worker-1", "worker-2", "worker-3");

        // Round 2: worker-3 is gone; the others received nothing from it.
        await actor.ReportAsync(ReportOf("worker-1", 2, ["worker-1", "worker-2"]));
        await actor.ReportAsync(ReportOf("worker-2", 2, ["worker-1", "worker-2"]));
        var decision = await actor.CloseRoundAsync(CloseOf("worker-2", 2));
        decision.Included.Should().Equal("worker-1", "worker-2");
        decision.Reporters.Should().Equal("worker-1", "worker-2");
    }

    [Fact]
    public async Task State_survives_deactivation_and_reactivation()
    {
        var first = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await first.JoinAsync(JoinOf(w));
        await first.ReportAsync(ReportOf("worker-1", 5, ["worker-1", "worker-3"]));
        var decided = await first.CloseRoundAsync(CloseOf("worker-1", 5));
        await first.LeaveAsync(await LeaveOf(first, "worker-2"));

        var second = await ActivateAsync();
        var view = await second.GetViewAsync();
        view.Members.Should().Equal("worker-1", "worker-3");
        view.ShardOwners[1].Should().Be("worker-1");
        (await second.CloseRoundAsync(CloseOf("worker-3", 5))).Should().BeEquivalentTo(decided, Unsigned, "a closed round's decision is kept");
        _store.Should().ContainKey(JobCoordinatorActor.StateKey);
    }

    [Fact]
    public async Task A_returning_worker_gets_its_shard_back()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        await actor.LeaveAsync(await LeaveOf(actor, "worker-3"));
        (await actor.GetViewAsync()).ShardOwners[2].Should().Be("worker-1");
        (await actor.JoinAsync(JoinOf("worker-3"))).ShardOwners[2].Should().Be("worker-3");
    }

    [Fact]
    public async Task An_empty_member_id_is_rejected()
    {
        var actor = await ActivateAsync();
        var act = () => actor.JoinAsync(new JoinRequestDto(" ", "", ""));
        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*member id*");
    }

    // Issue 11's holes: any app could call JoinAsync("mallory") (mallory became the checkpoint writer and every round waited
    // for it) and LeaveAsync("worker-2") (a real worker evicted, its shard given away).

    [Fact]
    public async Task Only_the_jobs_worker_ids_may_join()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));

        var mallory = () => actor.JoinAsync(JoinOf("mallory"));

        await mallory.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*'mallory' is not one of the job's workers*");
        var view = await actor.GetViewAsync();
        view.Members.Should().Equal("worker-1", "worker-2", "worker-3");
        view.CheckpointWriter.Should().Be("worker-1");
    }

    [Fact]
    public async Task A_join_without_the_jobs_secret_is_refused()
    {
        var actor = await ActivateAsync();
        var outsider = new MemberIdentity(NodeKey.Create(), "not-the-secret-of-job-1");

        var join = () => actor.JoinAsync(new JoinRequestDto("worker-1", outsider.Key.PublicKey, outsider.JoinProof("job-1", "worker-1")));

        await join.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*without a valid proof of the job's secret*");
        (await actor.GetViewAsync()).Members.Should().BeEmpty();
    }

    [Fact]
    public async Task A_member_leaves_only_for_itself()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));

        var evict = async () => await actor.LeaveAsync(await LeaveOf(actor, "worker-2", signer: Identity("worker-1")));
        var unsigned = () => actor.LeaveAsync(new LeaveRequestDto("worker-2", 3, ""));

        await evict.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*not signed by worker-2's registered key*");
        await unsigned.Should().ThrowAsync<UnauthorizedAccessException>();
        var view = await actor.GetViewAsync();
        view.Members.Should().Equal("worker-1", "worker-2", "worker-3");
        view.ShardOwners[1].Should().Be("worker-2");
        (await actor.LeaveAsync(await LeaveOf(actor, "worker-2"))).Members.Should().Equal("worker-1", "worker-3");
    }

    [Fact]
    public async Task A_recorded_leave_cannot_be_replayed_after_the_member_joined_again()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        var recorded = await LeaveOf(actor, "worker-2");
        await actor.LeaveAsync(recorded);
        await actor.JoinAsync(JoinOf("worker-2"));

        var replay = () => actor.LeaveAsync(recorded);

        await replay.Should().ThrowAsync<UnauthorizedAccessException>().WithMessage("*signed for view version*");
        (await actor.GetViewAsync()).Members.Should().Contain("worker-2");
    }

    [Fact]
    public async Task A_live_members_id_keeps_its_key_and_views_carry_the_registered_keys()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        // An insider who knows the secret tries to take over worker-2's id with a key of its own.
        var impostor = new MemberIdentity(NodeKey.Create(), Secret);

        var view = await actor.JoinAsync(new JoinRequestDto("worker-2", impostor.Key.PublicKey, impostor.JoinProof("job-1", "worker-2")));

        view.Keys.Should().NotBeNull();
        view.Keys!["worker-2"].Should().Be(Identity("worker-2").Key.PublicKey, "a member keeps the key it joined with while its lease lives");
        view.Keys.Keys.Should().BeEquivalentTo(["worker-1", "worker-2", "worker-3"]);
    }

    [Fact]
    public async Task The_parameter_server_registers_its_key_and_generation_with_the_secret_and_never_goes_back()
    {
        var actor = await ActivateAsync();
        var server = new MemberIdentity(NodeKey.Create(), Secret);
        var forged = new MemberIdentity(NodeKey.Create(), "not-the-secret-of-job-1");

        var view = await actor.RegisterServerAsync(new ServerKeyDto(2, server.Key.PublicKey, server.ServerProof("job-1", 2)));
        var forge = () => actor.RegisterServerAsync(new ServerKeyDto(int.MaxValue, forged.Key.PublicKey, forged.ServerProof("job-1", int.MaxValue)));
        var back = () => actor.RegisterServerAsync(new ServerKeyDto(1, server.Key.PublicKey, server.ServerProof("job-1", 1)));

        view.Generation.Should().Be(2);
        view.Keys!["ps"].Should().Be(server.Key.PublicKey);
        await forge.Should().ThrowAsync<UnauthorizedAccessException>();
        await back.Should().ThrowAsync<ArgumentException>().WithMessage("*older than the registered 2*");
        (await actor.GetViewAsync()).Generation.Should().Be(2);
    }

    [Fact]
    public async Task The_last_report_answers_with_the_decision_and_its_view_version_which_survive_reactivation()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        long version = (await actor.GetViewAsync()).Version;
        string[] all = ["worker-1", "worker-2", "worker-3"];

        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 1, all, 60_000))).Should().BeNull("the others have not reported");
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 1))).Should().BeNull();
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, all, 60_000))).Should().BeNull();
        var decision = await actor.ReportAndTryCloseAsync(ReportOf("worker-3", 1, ["worker-1", "worker-3"], 60_000));

        decision.Should().NotBeNull("worker-3's report completed the round");
        decision!.Included.Should().Equal("worker-1", "worker-3");
        decision.ViewVersion.Should().Be(version);
        (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 1))).Should().BeEquivalentTo(decision, Unsigned, "the others poll the same decision");
        var again = await ActivateAsync();
        (await again.CloseRoundAsync(CloseOf("worker-2", 1))).Should().BeEquivalentTo(decision, Unsigned, "the decision and its version are saved");
    }

    private static bool SignedBy(string? decisionKey, RoundDecisionDto dto, string job = "job-1")
    {
        using var key = PublicKeys.TryImport(decisionKey, out _);
        var decision = new DaprTrain.Coordination.RoundDecision(dto.Generation, dto.Round, dto.Included, dto.Reporters, dto.ViewVersion);
        return key is not null && dto.Signature is not null && DecisionKey.Verify(key, job, decision, Convert.FromBase64String(dto.Signature));
    }

    [Fact]
    public async Task Decisions_are_signed_with_the_key_the_views_carry_and_a_reactivated_actor_signs_with_the_same_key()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2" }) await actor.JoinAsync(JoinOf(w));
        string? key = (await actor.GetViewAsync()).DecisionKey;
        key.Should().NotBeNullOrEmpty("a peer verifies what another hands on with the key its view carries");
        await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 1, ["worker-1", "worker-2"], 60_000));
        var decision = (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, ["worker-1"], 60_000)))!;

        SignedBy(key, decision).Should().BeTrue("the closer's answer is what it hands on");
        SignedBy(key, decision with { Included = ["worker-1", "worker-2"] }).Should().BeFalse("the signature covers the included senders");
        SignedBy(key, decision with { Reporters = ["worker-2"] }).Should().BeFalse("and the reporters");
        SignedBy(key, decision with { ViewVersion = decision.ViewVersion + 1 }).Should().BeFalse("and the view version");
        SignedBy(key, decision with { Round = 2 }).Should().BeFalse("and the round");
        SignedBy(key, decision, job: "job-2").Should().BeFalse("and the job: jobs may share a broker");

        var again = await ActivateAsync();
        (await again.GetViewAsync()).DecisionKey.Should().Be(key, "the key is kept with the state: the members' views stay right");
        SignedBy(key, await again.TryCloseRoundAsync(TryCloseOf("worker-1", 1)) ?? throw new InvalidOperationException("decided")).Should().BeTrue();
    }

    [Fact]
    public async Task A_kept_decision_key_that_does_not_import_is_replaced_loudly_and_the_views_carry_the_new_one()
    {
        var actor = await ActivateAsync();
        await actor.JoinAsync(JoinOf("worker-1"));
        string? first = (await actor.GetViewAsync()).DecisionKey;
        _store[JobCoordinatorActor.DecisionKeyStateKey] = System.Text.Json.JsonSerializer.Serialize("bm90IGEga2V5");
        var again = await ActivateAsync();
        string? second = (await again.GetViewAsync()).DecisionKey;
        second.Should().NotBeNullOrEmpty().And.NotBe(first);
        _logs.Messages.Should().Contain(m => m.Contains("decision key does not import", StringComparison.Ordinal));
        var third = await ActivateAsync();
        (await third.GetViewAsync()).DecisionKey.Should().Be(second, "the new key was kept");
    }

    [Fact]
    public async Task A_coordinator_that_starts_without_a_state_signs_with_a_new_key_even_where_an_old_one_is_stored()
    {
        var actor = await ActivateAsync();
        await actor.JoinAsync(JoinOf("worker-1"));
        string? first = (await actor.GetViewAsync()).DecisionKey;
        _store.Remove(JobCoordinatorActor.StateKey);
        var fresh = await ActivateAsync();
        (await fresh.GetViewAsync()).DecisionKey.Should().NotBe(first, "its rounds count from 1 again: the earlier run's signed decisions must not pass for this run's");
    }

    [Fact]
    public async Task Polls_answered_with_a_decision_already_taken_write_no_state()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2" }) await actor.JoinAsync(JoinOf(w));
        await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 1, ["worker-1", "worker-2"], 60_000));
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, ["worker-1", "worker-2"], 60_000))).Should().NotBeNull();
        int saves = _state!.Saves;

        (await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 1))).Should().NotBeNull();
        (await actor.CloseRoundAsync(CloseOf("worker-1", 1))).Round.Should().Be(1);

        _state.Saves.Should().Be(saves, "nothing changed: the decision was saved when it was taken");
    }

    [Fact]
    public async Task A_poll_expires_a_lease_that_ran_out_so_the_round_closes_without_waiting_for_the_reminder()
    {
        var actor = await ActivateAsync();
        foreach (var w in new[] { "worker-1", "worker-2", "worker-3" }) await actor.JoinAsync(JoinOf(w));
        long version = (await actor.GetViewAsync()).Version;
        _clock.SetUtcNow(Start.AddMilliseconds(800));
        await actor.HeartbeatAsync(HeartbeatOf("worker-1"));
        await actor.HeartbeatAsync(HeartbeatOf("worker-2"));
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-1", 1, ["worker-1", "worker-2"], 60_000))).Should().BeNull();
        (await actor.ReportAndTryCloseAsync(ReportOf("worker-2", 1, ["worker-1", "worker-2"], 60_000))).Should().BeNull("worker-3's lease is still alive");
        _clock.SetUtcNow(Start.AddMilliseconds(1200));

        var decision = await actor.TryCloseRoundAsync(TryCloseOf("worker-1", 1));

        decision.Should().NotBeNull("the poll expired worker-3, and every member left has reported");
        decision!.ViewVersion.Should().BeGreaterThan(version, "the decision names the view without worker-3: every worker asks for it");
        (await (await ActivateAsync()).GetViewAsync()).Members.Should().Equal("worker-1", "worker-2");
    }

    public static TheoryData<RoundReportDto, string> HostileReports => new()
    {
        { new RoundReportDto("", 0, 1, [], 1000, 1, ""), "*member id*" },
        { new RoundReportDto(new string('w', 129), 0, 1, [], 1000, 1, ""), "*member id*" },
        { new RoundReportDto("worker-1", -1, 1, [], 1000, 1, ""), "*negative*" },
        { new RoundReportDto("worker-1", 0, 0, [], 1000, 1, ""), "*round 0*" },
        { new RoundReportDto("worker-1", 0, 1, [.. Enumerable.Range(0, JobCoordinatorActor.MaxReportedSenders + 1).Select(i => $"s{i}")], 1000, 1, ""), "*senders*" },
        { new RoundReportDto("worker-1", 0, 1, ["worker-1", new string('s', 129)], 1000, 1, ""), "*sender ids*" },
        { new RoundReportDto("worker-1", 0, 1, ["worker-1", " "], 1000, 1, ""), "*sender ids*" },
        { new RoundReportDto("worker-1", 0, 1, [], 0, 1, ""), "*deadline*" },
        { new RoundReportDto("worker-1", 0, 1, [], JobCoordinatorActor.MaxDeadlineMs + 1, 1, ""), "*deadline*" },
    };

    [Theory]
    [MemberData(nameof(HostileReports))]
    public async Task A_report_out_of_bounds_is_refused_before_anything_is_stored(RoundReportDto report, string reason)
    {
        // Any app that can reach the actor can call it.
        var actor = await ActivateAsync();
        await actor.JoinAsync(JoinOf("worker-1"));
        string saved = _store[JobCoordinatorActor.StateKey];

        var closing = () => actor.ReportAndTryCloseAsync(report);

        await closing.Should().ThrowAsync<ArgumentException>().WithMessage(reason);
        _store[JobCoordinatorActor.StateKey].Should().Be(saved, "nothing was stored");
        if (report.DeadlineMs is >= 1 and <= JobCoordinatorActor.MaxDeadlineMs)
        {
            var reporting = () => actor.ReportAsync(report);
            await reporting.Should().ThrowAsync<ArgumentException>().WithMessage(reason, "the plain report takes the same bounds");
        }
    }

    private sealed class CapturingLoggerFactory : ILoggerFactory, ILogger
    {
        private readonly List<string> _messages = [];

        public IReadOnlyList<string> Messages
        {
            get { lock (_messages) return [.. _messages]; }
        }

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_messages) _messages.Add(formatter(state, exception));
        }

        public void Dispose()
        {
        }
    }
}
