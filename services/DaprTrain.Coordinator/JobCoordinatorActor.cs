using Dapr.Actors.Runtime;
using DaprTrain.Contracts;
using DaprTrain.Coordination;
using DaprTrain.Coordination.Progress;
using DaprTrain.Coordination.Security;
using Microsoft.Extensions.Options;

namespace DaprTrain.Coordinator;

/// <summary>
/// The engine's <see cref="JobCoordinator"/> as a Dapr actor, one per job id. Its whole state is saved after
/// every call, so a deactivated or re-placed actor continues where it was; a reminder (which, unlike a timer,
/// survives deactivation) expires leases of workers that stopped heartbeating.
/// </summary>
public sealed class JobCoordinatorActor : Actor, IJobCoordinatorActor, IRemindable
{
    public const string StateKey = "coordinator";

    /// <summary>Where the job's <see cref="DecisionKey"/> is kept, beside the coordinator's state (written once, at the first activation).</summary>
    public const string DecisionKeyStateKey = "decision-key";
    public const string LeaseReminder = "expire-leases";

    private readonly CoordinatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ProgressEmitter? _progress;
    // Membership events for the dashboard: diffs of the views this activation handed out (a new activation starts
    // with the whole view as "joined" events, which a receiver takes as no change).
    private readonly MembershipChanges _changes = new();
    private readonly HashSet<string> _unrecovered = new(StringComparer.Ordinal);
    private long _lastDecidedRound;
    private JobCoordinator? _coordinator;
    private DecisionKey? _decisionKey;

    public JobCoordinatorActor(ActorHost host, IOptions<CoordinatorOptions> options, TimeProvider time, ProgressEmitter progress)
        : base(host)
    {
        _options = options.Value;
        _time = time;
        _progress = progress;
    }

    /// <summary>For tests: the actor with a state manager of the test's choosing (and, if given, where its progress events go).</summary>
    internal JobCoordinatorActor(ActorHost host, CoordinatorOptions options, TimeProvider time, IActorStateManager stateManager, ProgressEmitter? progress = null)
        : base(host)
    {
        _options = options;
        _time = time;
        StateManager = stateManager;
        _progress = progress;
    }

    /// <summary>For tests: what the runtime does when it activates the actor.</summary>
    internal Task ActivateAsync() => OnActivateAsync();

    private JobCoordinator State => _coordinator ?? throw new InvalidOperationException("the actor is not activated");

    private DecisionKey Signer => _decisionKey ?? throw new InvalidOperationException("the actor is not activated");

    protected override async Task OnActivateAsync()
    {
        var saved = await StateManager.TryGetStateAsync<CoordinatorSnapshot>(StateKey);
        var admission = _options.Admission();
        _coordinator = saved.HasValue
            ? JobCoordinator.Restore(saved.Value, _time, admission)
            : new JobCoordinator(Id.GetId(), _options.Shards, TimeSpan.FromMilliseconds(_options.LeaseMs), _time, _options.WorkersWriteCheckpoints) { Admission = admission };
        _decisionKey = await LoadDecisionKeyAsync(restored: saved.HasValue);
        var period = TimeSpan.FromMilliseconds(Math.Max(_options.LeaseMs / 2, 50));
        await RegisterReminderAsync(LeaseReminder, null, period, period);
    }

    /// <summary>
    /// The job's decision key: the one kept with the state this activation restored, else a new one, kept at once (before
    /// any decision is signed with it). A coordinator that starts without a state (a new job, or a state deleted) makes a new
    /// key even where an old one is still stored: its rounds count from 1 again, and decisions of the earlier run signed by
    /// the old key must not pass for this run's. A kept key that does not import is replaced, loudly: the members' views
    /// then carry the new key, and until a member renews its view the decisions its peers hand on fail its check (it renews
    /// the view before its next round, and asks the coordinator for the decision at its poll meanwhile).
    /// </summary>
    private async Task<DecisionKey> LoadDecisionKeyAsync(bool restored)
    {
        if (restored)
        {
            var saved = await StateManager.TryGetStateAsync<string>(DecisionKeyStateKey);
            if (saved.HasValue)
            {
                if (DecisionKey.TryImport(saved.Value, out string? problem) is { } kept) return kept;
                Logger.LogWarning("job {Job}: the kept decision key does not import ({Problem}); signing with a new one", Id.GetId(), problem);
            }
        }
        var key = DecisionKey.Create();
        try
        {
            await StateManager.SetStateAsync(DecisionKeyStateKey, key.Export());
            await StateManager.SaveStateAsync();
            return key;
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    protected override Task OnDeactivateAsync()
    {
        _decisionKey?.Dispose();
        _decisionKey = null;
        return Task.CompletedTask;
    }

    public async Task<MembershipDto> JoinAsync(JoinRequestDto request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string member = request.Member;
        if (string.IsNullOrWhiteSpace(member) || member.Length > 128) throw new ArgumentException("member id must be 1 to 128 characters");
        MembershipView view;
        try
        {
            view = State.Join(member, request.PublicKey, request.Proof);
        }
        catch (UnauthorizedAccessException ex)
        {
            // Any app that can reach the actor can call it: a refused join is news for whoever runs the job.
            Logger.LogWarning("job {Job}: refused a join: {Reason}", Id.GetId(), ex.Message);
            throw;
        }
        await SaveAsync();
        Tell(view);
        return ToDto(view);
    }

    public async Task<MembershipDto> RegisterServerAsync(ServerKeyDto request)
    {
        ArgumentNullException.ThrowIfNull(request);
        MembershipView view;
        try
        {
            view = State.RegisterServer(request.Generation, request.PublicKey, request.Proof);
        }
        catch (UnauthorizedAccessException ex)
        {
            Logger.LogWarning("job {Job}: refused a parameter server key: {Reason}", Id.GetId(), ex.Message);
            throw;
        }
        await SaveAsync();
        Tell(view);
        return ToDto(view);
    }

    public async Task<bool> HeartbeatAsync(HeartbeatDto heartbeat)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        bool known;
        try
        {
            known = State.Heartbeat(heartbeat.Member, heartbeat.Sequence, heartbeat.Signature);
        }
        catch (UnauthorizedAccessException ex)
        {
            // Renews nothing, and answers as for a member that is not (or no longer) in the job: a worker restarted with a new
            // key while its old registration's lease still runs gets here, and must keep joining until that lease ran out and
            // its new key is taken. A forger learns nothing it did not know.
            LogRefused("heartbeat", heartbeat.Member, ex.Message);
            return false;
        }
        if (known) await SaveAsync();
        return known;
    }

    // Refused heartbeats and round calls are logged at most once per caller and call per interval, with how many were not:
    // any caller of the actor can send them, a restarted worker sends a heartbeat a period until its old lease ran out, and a
    // worker whose lease was expired polls until it learns it.
    private static readonly TimeSpan RefusalLogInterval = TimeSpan.FromSeconds(10);
    private readonly Dictionary<string, (DateTimeOffset Logged, int Since)> _refusals = new(StringComparer.Ordinal);

    private void LogRefused(string call, string? caller, string reason)
    {
        var now = _time.GetUtcNow();
        caller ??= "";
        // Ids that are none of the job's workers share one entry: an attacker rotating made-up ids would otherwise get a
        // line a call (and clear the table for the real ids every 1,024 of them).
        string who = _coordinator?.Admission?.Admits(caller) == false ? "(not one of the job's workers)" : caller;
        string key = call + "\n" + (who.Length <= 128 ? who : who[..128]);
        if (_refusals.TryGetValue(key, out var last) && now - last.Logged < RefusalLogInterval)
        {
            _refusals[key] = (last.Logged, last.Since + 1);
            return;
        }
        if (_refusals.Count >= 1024 && !_refusals.ContainsKey(key)) _refusals.Clear();
        Logger.LogWarning("job {Job}: refused a {Call}: {Reason} ({Suppressed} more refused for this id since the last report)", Id.GetId(), call, reason, last.Since);
        _refusals[key] = (now, 0);
    }

    public async Task<MembershipDto> LeaveAsync(LeaveRequestDto request)
    {
        ArgumentNullException.ThrowIfNull(request);
        MembershipView view;
        try
        {
            view = State.Leave(request.Member, request.Version, request.Signature);
        }
        catch (UnauthorizedAccessException ex)
        {
            Logger.LogWarning("job {Job}: refused a leave: {Reason}", Id.GetId(), ex.Message);
            throw;
        }
        await SaveAsync();
        Tell(view);
        return ToDto(view);
    }

    public async Task<MembershipDto> GetViewAsync()
    {
        var view = State.CurrentView();
        if (view.Expired.Count > 0) await SaveAsync();
        Tell(view);
        return ToDto(view);
    }

    /// <summary>The most senders a report may name: far above any job's workers (Job:Workers is at most 64), far below a state bloat.</summary>
    public const int MaxReportedSenders = 1024;

    /// <summary>The longest deadline a report may ask for, the most Job:RoundDeadlineMs allows.</summary>
    public const int MaxDeadlineMs = 600_000;

    public async Task ReportAsync(RoundReportDto report)
    {
        Validate(report, withDeadline: false);
        try
        {
            State.Report(report.Member, report.Generation, report.Round, report.Received ?? [], report.Sequence, report.Signature);
        }
        catch (UnauthorizedAccessException ex)
        {
            LogRefused("report", report.Member, ex.Message);
            return;
        }
        await SaveAsync();
    }

    public async Task<RoundDecisionDto?> ReportAndTryCloseAsync(RoundReportDto report)
    {
        Validate(report, withDeadline: true);
        // Leases that ran out are expired first, as GetView would (the dashboard hears of it as it would from GetView).
        var view = State.CurrentView();
        RoundDecision? decision;
        try
        {
            decision = State.ReportAndTryClose(report.Member, report.Generation, report.Round, report.Received ?? [], TimeSpan.FromMilliseconds(report.DeadlineMs),
                report.Sequence, report.Signature);
        }
        catch (UnauthorizedAccessException ex)
        {
            LogRefused("report", report.Member, ex.Message);
            if (view.Expired.Count > 0) await SaveAsync();
            Tell(view);
            return State.DecisionOf(report.Generation, report.Round) is { } known ? ToDto(known) : null;
        }
        await SaveAsync();
        Tell(view);
        Decided(decision);
        return decision is null ? null : ToDto(decision);
    }

    public async Task<RoundDecisionDto> CloseRoundAsync(RoundKeyDto round)
    {
        Validate(round, withDeadline: false);
        // A decision already taken (and saved) is answered as it is: no state write for a call that changes nothing.
        if (State.DecisionOf(round.Generation, round.Round) is { } known) return ToDto(known);
        RoundDecision decision;
        try
        {
            decision = State.Close(round.Generation, round.Round, round.Caller, round.Signature);
        }
        catch (UnauthorizedAccessException ex)
        {
            LogRefused("close", round.Caller, ex.Message);
            throw;
        }
        await SaveAsync();
        Decided(decision);
        return ToDto(decision);
    }

    public async Task<RoundDecisionDto?> TryCloseRoundAsync(RoundKeyDto round)
    {
        Validate(round, withDeadline: true);
        // The others' polls end with a decision the last report already took and saved: answered without a state write.
        if (State.DecisionOf(round.Generation, round.Round) is { } known) return ToDto(known);
        // TryClose expires leases that ran out; the view says whether it did (then saved, and told, even with no decision yet).
        var view = State.CurrentView();
        if (view.Expired.Count > 0) Tell(view);
        RoundDecision? decision;
        try
        {
            decision = State.TryClose(round.Generation, round.Round, TimeSpan.FromMilliseconds(round.DeadlineMs), round.Caller, round.Signature);
        }
        catch (UnauthorizedAccessException ex)
        {
            LogRefused("try-close", round.Caller, ex.Message);
            decision = null;
        }
        if (decision is null)
        {
            if (view.Expired.Count > 0) await SaveAsync();
            return null;
        }
        await SaveAsync();
        Decided(decision);
        return ToDto(decision);
    }

    /// <summary>
    /// Any app that can reach the actor can call it: a report is bounded before it is stored (member and sender ids of at
    /// most 128 characters, at most <see cref="MaxReportedSenders"/> of them, no negative generation, rounds from 1, and
    /// where it closes the round a deadline of 1 ms to <see cref="MaxDeadlineMs"/>).
    /// </summary>
    private static void Validate(RoundReportDto report, bool withDeadline)
    {
        ArgumentNullException.ThrowIfNull(report);
        ValidateId(report.Member, "member");
        ValidateRound(report.Generation, report.Round);
        var received = report.Received ?? [];
        if (received.Length > MaxReportedSenders) throw new ArgumentException($"a report names {received.Length} senders; at most {MaxReportedSenders}");
        if (received.Any(s => string.IsNullOrWhiteSpace(s) || s.Length > 128)) throw new ArgumentException("sender ids must be 1 to 128 characters");
        if (withDeadline) ValidateDeadline(report.DeadlineMs);
    }

    /// <summary>A close or try-close is bounded as a report is (its deadline only where it is used, the try-close's).</summary>
    private static void Validate(RoundKeyDto round, bool withDeadline)
    {
        ArgumentNullException.ThrowIfNull(round);
        ValidateId(round.Caller, "caller");
        ValidateRound(round.Generation, round.Round);
        if (withDeadline) ValidateDeadline(round.DeadlineMs);
    }

    private static void ValidateId(string? id, string what)
    {
        if (string.IsNullOrWhiteSpace(id) || id.Length > 128) throw new ArgumentException($"{what} id must be 1 to 128 characters");
    }

    private static void ValidateRound(int generation, long round)
    {
        if (generation < 0) throw new ArgumentException($"generation {generation} is negative");
        if (round < 1) throw new ArgumentException($"round {round} is not a round (they start at 1)");
    }

    private static void ValidateDeadline(int deadlineMs)
    {
        if (deadlineMs < 1 || deadlineMs > MaxDeadlineMs) throw new ArgumentException($"deadline {deadlineMs} ms is not 1 to {MaxDeadlineMs} ms");
    }

    /// <summary>Signed as it is answered (about 25 us): the answer is what a peer may hand on to the others.</summary>
    private RoundDecisionDto ToDto(RoundDecision decision) =>
        new(decision.Generation, decision.Round, [.. decision.Included], [.. decision.Reporters], decision.ViewVersion, Convert.ToBase64String(Signer.Sign(Id.GetId(), decision)));

    public async Task<WeightCheckDto> CompareWeightsAsync(WeightHashDto report)
    {
        ArgumentNullException.ThrowIfNull(report);
        ValidateId(report.Member, "member");
        if (!ulong.TryParse(report.Hash, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out ulong hash))
        {
            throw new ArgumentException($"weight hash '{report.Hash}' is not 16 hex digits");
        }
        WeightCheck check;
        try
        {
            check = State.CompareWeights(report.Member, report.Round, hash, report.Signature);
        }
        catch (UnauthorizedAccessException ex)
        {
            // Nothing stored, and nothing the caller acts on: an incomplete comparison of its round.
            LogRefused("weight hash", report.Member, ex.Message);
            return new WeightCheckDto(report.Round, false, null, []);
        }
        // Once per comparison, by whoever completes it: the job's replicas no longer agree.
        if (check.Complete && check.Round == report.Round && check.Diverged.Count > 0)
        {
            Logger.LogError("job {Job}: REPLICAS DIVERGED after round {Round}: {Members} differ from the majority's weight hash {Majority:x16}; they resynchronise from the newest checkpoint",
                Id.GetId(), check.Round, string.Join(", ", check.Diverged), check.Majority);
        }
        else if (check.Complete && check.Round == report.Round && check.Majority is null)
        {
            Logger.LogError("job {Job}: REPLICAS DISAGREE after round {Round} and no weight hash has a majority: none is resynchronised (two replicas, or a tie; see README, \"Trust model\")",
                Id.GetId(), check.Round);
        }
        await SaveAsync();
        return new WeightCheckDto(check.Round, check.Complete, check.Majority?.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), [.. check.Diverged]);
    }

    public async Task SetSyncRequestAsync(SyncRequestDto request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ValidateId(request.Caller, "caller");
        ValidateId(request.Member, "member");
        try
        {
            if (request.Pending) State.RequestSync(request.Member, request.Caller, request.Sequence, request.Signature);
            else State.CompleteSync(request.Member, request.Caller, request.Sequence, request.Signature);
        }
        catch (UnauthorizedAccessException ex)
        {
            LogRefused("sync request", request.Caller, ex.Message);
            return;
        }
        await SaveAsync();
    }

    public async Task ReceiveReminderAsync(string reminderName, byte[] state, TimeSpan dueTime, TimeSpan period)
    {
        if (reminderName != LeaseReminder) return;
        var view = State.CurrentView();
        if (view.Expired.Count > 0)
        {
            Logger.LogInformation("job {Job}: leases of {Members} expired; shards reassigned", Id.GetId(), string.Join(", ", view.Expired));
            await SaveAsync();
        }
        Tell(view);
    }

    private void Tell(MembershipView view)
    {
        if (_progress is null) return;
        foreach (var change in _changes.Next(view))
        {
            _progress.Emit(DaprApps.Coordinator, change, Id.GetId());
            // A lease that ran out is how a Dapr job detects a dead or cut-off node: a fault, for the dashboard's markers.
            if (change.Change == "lease-expired" && change.Node is { } node)
            {
                _unrecovered.Add(node);
                _progress.Emit(DaprApps.Coordinator, ProgressEvent.FaultEvent("detected", $"lease-expired:{node}", node, _lastDecidedRound), Id.GetId());
            }
        }
    }

    /// <summary>The first round decided with contributions after a lease expired recovers that fault (between peers; a server's rounds do not pass here).</summary>
    private void Decided(RoundDecision? decision)
    {
        if (decision is null) return;
        _lastDecidedRound = Math.Max(_lastDecidedRound, decision.Round);
        if (_progress is null || decision.Included.Count == 0 || _unrecovered.Count == 0) return;
        foreach (string node in _unrecovered.Order(StringComparer.Ordinal))
        {
            _progress.Emit(DaprApps.Coordinator, ProgressEvent.FaultEvent("recovered", $"lease-expired:{node}", node, decision.Round), Id.GetId());
        }
        _unrecovered.Clear();
    }

    private async Task SaveAsync()
    {
        await StateManager.SetStateAsync(StateKey, State.Snapshot());
        await StateManager.SaveStateAsync();
    }

    private MembershipDto ToDto(MembershipView view) =>
        new(view.Version, [.. view.Members], new Dictionary<int, string>(view.ShardOwners), view.CheckpointWriter, [.. view.Expired], [.. view.PendingSyncs],
            new Dictionary<string, string>(view.PublicKeys), view.Generation, Signer.PublicKey);
}
