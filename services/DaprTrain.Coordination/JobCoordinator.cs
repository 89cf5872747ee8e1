using DaprTrain.Coordination.Security;

namespace DaprTrain.Coordination;

public sealed record ReportSnapshot(string Member, int Generation, long Round, string[] Received);

/// <param name="ViewVersion">The view version when the round was decided (-1 in a snapshot written before decisions carried it).</param>
/// <param name="Confirmed">Members whose report of the round came after it was decided (they reached it; see JobCoordinator.AgreedRound).</param>
public sealed record DecisionSnapshot(int Generation, long Round, string[] Included, string[] Reporters, long ViewVersion = -1, string[]? Confirmed = null);

public sealed record CoordinatorSnapshot(
    string JobId,
    int ShardCount,
    long LeaseMs,
    bool WorkersWriteCheckpoints,
    long Version,
    Dictionary<string, long> LeaseExpiries,
    Dictionary<int, string> ShardOwners,
    List<ReportSnapshot> Reports,
    List<DecisionSnapshot> Decisions,
    List<string>? SyncRequests = null,
    Dictionary<string, string>? Keys = null,
    int Generation = 0,
    Dictionary<long, Dictionary<string, ulong>>? WeightHashes = null,
    Dictionary<string, long>? HeartbeatSequences = null,
    Dictionary<string, long>? ReportSequences = null,
    Dictionary<string, long>? SyncSequences = null,
    long AgreedRound = -1);

/// <summary>
/// Membership, leases, data-shard assignment, checkpoint-writer election and the per-round agreement of
/// which gradients count. A plain state machine with no I/O and no locks: in embedded mode one instance
/// sits behind <see cref="InProcessCoordinator"/>; in Dapr mode a turn-based actor holds it, which is why
/// every call is a complete step.
/// </summary>
public sealed class JobCoordinator
{
    private readonly Dictionary<string, DateTimeOffset> _leases = new(StringComparer.Ordinal);

    /// <summary>
    /// The newest round decided with reports from more than half the members (-1: none yet). Under admission a member may
    /// report, close or state a weight hash only for rounds up to <see cref="AgreementLead"/> past it: one insider cannot
    /// decide rounds far ahead (a decision prunes the kept ones 16 rounds behind it, so the others' pollers would find
    /// theirs gone and close it again, empty), nor fill the weight comparisons with rounds nobody else reaches.
    /// </summary>
    private long _agreedRound = -1;

    /// <summary>
    /// Members whose report of a round came after it was decided (late: a peer behind, back from a sidecar outage). The
    /// decision stays as it was, but they reached the round: counted with its reporters for the window. Without them two
    /// rounds closed by the deadline before a live peer's reports left the window two rounds behind every member for ever.
    /// </summary>
    private readonly Dictionary<(int Generation, long Round), HashSet<string>> _lateReports = new();

    /// <summary>How far past the last round agreed by a majority a member's round calls may go: the next round, and one more.</summary>
    public const long AgreementLead = 2;

    /// <summary>Rounds back from the agreed one whose weight hashes are still taken (the decisions kept are 16 back).</summary>
    public const long WeightHashLag = 16;
    private readonly Dictionary<int, string> _shardOwners = [];
    private readonly Dictionary<(int Generation, long Round), Dictionary<string, HashSet<string>>> _reports = [];
    private readonly Dictionary<(int Generation, long Round), RoundDecision> _decisions = [];
    private readonly Dictionary<(int Generation, long Round), DateTimeOffset> _firstReport = [];
    private readonly HashSet<string> _syncRequests = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _keys = new(StringComparer.Ordinal);
    private readonly SortedDictionary<long, Dictionary<string, ulong>> _weightHashes = [];
    private readonly Dictionary<string, long> _heartbeatSequences = new(StringComparer.Ordinal);
    // The last report and sync request sequence numbers taken from each caller's registration: a replay acts on nothing.
    private readonly Dictionary<string, long> _reportSequences = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _syncSequences = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public JobCoordinator(string jobId, int shardCount, TimeSpan leaseDuration, TimeProvider time, bool workersWriteCheckpoints)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shardCount);
        if (leaseDuration <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(leaseDuration), "lease duration must be positive");
        JobId = jobId;
        ShardCount = shardCount;
        LeaseDuration = leaseDuration;
        WorkersWriteCheckpoints = workersWriteCheckpoints;
        _time = time;
    }

    public string JobId { get; }

    public int ShardCount { get; }

    public TimeSpan LeaseDuration { get; }

    public bool WorkersWriteCheckpoints { get; }

    /// <summary>
    /// The version of the view: it changes whenever anything a view holds changes (members, shards, the checkpoint writer,
    /// the members waiting for a state, the keys, the server's generation), so a node that holds a view of the version a
    /// round's decision names holds what <see cref="CurrentView"/> would answer, and needs no new one (issue 16).
    /// </summary>
    public long Version { get; private set; }

    /// <summary>
    /// Who may join and how they prove it (Dapr mode: always); with it, every later call of a member (heartbeat, leave,
    /// report, close, weight hash, sync request) must be signed by the key it registered. Null only where every caller is
    /// this process's own code (the embedded mode and unit tests): then ids and keys are taken as given.
    /// </summary>
    public JobAdmission? Admission { get; init; }

    /// <summary>The parameter server's generation, as it registered it; the one every weights message must carry.</summary>
    public int Generation { get; private set; }

    /// <summary>Under "ps" in the views' keys: the parameter server's key for <see cref="Generation"/>.</summary>
    public const string ServerKeyName = "ps";

    /// <summary>A worker's shard when every worker is present: worker-1 owns shard 0, and so on.</summary>
    public static int PreferredShard(string member) =>
        member.StartsWith("worker-", StringComparison.Ordinal) && int.TryParse(member.AsSpan(7), out int n) && n >= 1 ? n - 1 : -1;

    public MembershipView Join(string member, string? publicKey = null, string? proof = null)
    {
        if (string.IsNullOrWhiteSpace(member)) throw new ArgumentException("member id must not be empty", nameof(member));
        if (Admission?.CheckJoin(JobId, member, publicKey, proof) is { } refused) throw new UnauthorizedAccessException(refused);
        bool isNew = !_leases.ContainsKey(member);
        bool leaseAlive = !isNew && _leases[member] >= _time.GetUtcNow();
        if (publicKey is not null && _keys.TryGetValue(member, out var registered) && registered != publicKey && leaseAlive)
        {
            // A live member keeps the key it joined with: someone else who knows the job's secret cannot take over its id
            // while it runs. A restarted worker (a new key) gets in once its old lease has run out; it keeps asking until then.
            return View([]);
        }
        _leases[member] = _time.GetUtcNow() + LeaseDuration;
        // A member whose lease ran out but was not removed yet comes back with a new key (a restarted process): the views
        // change (its peers must take its messages under the new key) though the members do not.
        bool newKey = publicKey is not null && _keys.TryGetValue(member, out var before) && before != publicKey;
        // A new registration counts its heartbeats, reports and sync requests from 1 again; the old key's calls no longer verify.
        if (publicKey is not null && (!_keys.TryGetValue(member, out var previous) || previous != publicKey))
        {
            _heartbeatSequences.Remove(member);
            _reportSequences.Remove(member);
            _syncSequences.Remove(member);
        }
        if (publicKey is not null) _keys[member] = publicKey;
        if (isNew) Reassign();
        else if (newKey) Version++;
        return View([]);
    }

    /// <summary>The parameter server registers its key for a generation; a generation lower than the current one is refused.</summary>
    public MembershipView RegisterServer(int generation, string? publicKey, string? proof = null)
    {
        if (Admission?.CheckServer(JobId, generation, publicKey, proof) is { } refused) throw new UnauthorizedAccessException(refused);
        if (generation < Generation) throw new ArgumentException($"generation {generation} is older than the registered {Generation}");
        Generation = generation;
        // Without a key (an embedded run that does not sign) only the generation is registered.
        if (publicKey is not null) _keys[ServerKeyName] = publicKey;
        Version++;
        return View([]);
    }

    /// <summary>
    /// Renews the lease; false when the member is unknown (its lease already expired: it must join again). Under admission
    /// a heartbeat is signed by the member's registered key over its sequence number, which rises with every heartbeat of
    /// that registration: an insider can neither keep another member's lease alive nor replay one of its heartbeats. A
    /// validly signed heartbeat whose number is not above the last one renews nothing (a newer one got here first, or it is
    /// a replay) and still answers true, so two heartbeats of one member that cross on the way do not make it rejoin.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException">Under admission, a heartbeat that is not signed by the member's registered key over its sequence.</exception>
    public bool Heartbeat(string member, long sequence = 0, string? signature = null)
    {
        if (!_leases.ContainsKey(member)) return false;
        if (Admission is not null)
        {
            if (Admission.CheckHeartbeat(JobId, member, sequence, _keys.GetValueOrDefault(member), signature) is { } refused) throw new UnauthorizedAccessException(refused);
            if (sequence <= _heartbeatSequences.GetValueOrDefault(member)) return true;
            _heartbeatSequences[member] = sequence;
        }
        _leases[member] = _time.GetUtcNow() + LeaseDuration;
        return true;
    }

    /// <param name="version">The view version the member leaves from (signed with it, so a recorded leave cannot be replayed).</param>
    /// <param name="signature">Under admission: the member's signature (<see cref="JobAdmission.LeaveProof"/>); a member leaves only for itself.</param>
    public MembershipView Leave(string member, long version = -1, string? signature = null)
    {
        if (Admission is not null)
        {
            if (version != Version) throw new UnauthorizedAccessException($"leave of {member} signed for view version {version}; the current one is {Version}");
            if (JobAdmission.CheckLeave(JobId, member, version, _keys.GetValueOrDefault(member), signature) is { } refused) throw new UnauthorizedAccessException(refused);
        }
        bool wasSyncing = _syncRequests.Remove(member);
        if (_leases.Remove(member)) Reassign();
        else if (wasSyncing) Version++;
        return View([]);
    }

    /// <summary>The current view after expiring leases that ran out (the reminder's job in Dapr mode).</summary>
    public MembershipView CurrentView() => View(ExpireLapsedLeases());

    /// <summary>Removes the members whose lease ran out (a new view version when there are any); the removed, in order.</summary>
    private List<string> ExpireLapsedLeases()
    {
        var now = _time.GetUtcNow();
        var expired = _leases.Where(l => l.Value < now).Select(l => l.Key).OrderBy(m => m, StringComparer.Ordinal).ToList();
        foreach (var member in expired)
        {
            _leases.Remove(member);
            _syncRequests.Remove(member);
        }
        if (expired.Count > 0)
        {
            Reassign();
            // Fewer voters may make the last rounds a majority: counted now, while the caller saves the view.
            AgreedRound();
        }
        return expired;
    }

    /// <summary>A member that joined a running job asks the checkpoint writer for a state it can continue from.</summary>
    /// <param name="caller">Who asks (the member when null): under admission only the member itself.</param>
    /// <param name="sequence">Under admission: the caller's next sync request number (<see cref="MemberIdentity.NextSyncRequest"/>).</param>
    /// <param name="signature">Under admission: the caller's signature over <see cref="SignedCall.SyncRequest"/>.</param>
    /// <exception cref="UnauthorizedAccessException">Under admission, a request its caller's registered key did not sign, of a caller that is not a member, or for another member.</exception>
    public void RequestSync(string member, string? caller = null, long sequence = 0, string? signature = null)
    {
        caller ??= member;
        if (Admission is not null)
        {
            var call = SignedCall.SyncRequest(JobId, caller, sequence, member, pending: true);
            Authenticate(call, signature);
            // A member that waits for a state neither counts in the rounds nor writes checkpoints: nobody else may say it waits.
            if (caller != member) throw new UnauthorizedAccessException($"{Shorten(caller)} may not ask a state for {Shorten(member)}: a member asks only for itself");
            if (!Fresh(call, sequence, _syncSequences)) return;
        }
        if (_leases.ContainsKey(member) && _syncRequests.Add(member))
        {
            Version++;
            // One voter fewer may make the last rounds a majority: counted now, while the caller saves.
            AgreedRound();
        }
    }

    /// <summary>The member has a state to continue from: said by the member, or by the checkpoint writer that wrote one for it.</summary>
    /// <param name="caller">Who says it (the member when null): under admission the member itself or the current checkpoint writer.</param>
    /// <exception cref="UnauthorizedAccessException">Under admission, a call its caller's registered key did not sign, or of another caller.</exception>
    public void CompleteSync(string member, string? caller = null, long sequence = 0, string? signature = null)
    {
        caller ??= member;
        if (Admission is not null)
        {
            var call = SignedCall.SyncRequest(JobId, caller, sequence, member, pending: false);
            Authenticate(call, signature);
            // Anyone else clearing it would make the others wait for the gradients of a member that is still loading a state.
            if (caller != member && caller != Writer())
            {
                throw new UnauthorizedAccessException($"{Shorten(caller)} may not clear {Shorten(member)}'s sync request: only {Shorten(member)} or the checkpoint writer ({Writer() ?? "none"}) may");
            }
            if (!Fresh(call, sequence, _syncSequences)) return;
        }
        if (_syncRequests.Remove(member)) Version++;
    }

    /// <summary>
    /// Under admission, whether a round call may act: throws when it is not signed by its caller's registered key or the
    /// caller is not a member; false (act on nothing) when it carries a sequence number not above the caller's last one,
    /// a replay or a call a newer one overtook.
    /// </summary>
    private bool Admit(SignedCall call, string? signature, long sequence, Dictionary<string, long> sequences)
    {
        Authenticate(call, signature);
        return Fresh(call, sequence, sequences);
    }

    /// <summary>Under admission only: throws unless the caller is a member and the call is signed by its registered key.</summary>
    private void Authenticate(SignedCall call, string? signature)
    {
        var admission = Admission ?? throw new InvalidOperationException("round calls are authenticated only under admission");
        // Only members act on a round: a worker whose lease was expired learns it from its heartbeats and joins again.
        if (!_leases.ContainsKey(call.Caller)) throw new UnauthorizedAccessException($"{call.Name} of {Shorten(call.Caller)}, which is not a member of the job");
        if (admission.CheckCall(call, _keys.GetValueOrDefault(call.Caller), signature) is { } refused) throw new UnauthorizedAccessException(refused);
    }

    private static bool Fresh(SignedCall call, long sequence, Dictionary<string, long> sequences)
    {
        if (sequence < 1) throw new UnauthorizedAccessException($"{call.Name} of {Shorten(call.Caller)} without a sequence number (got {sequence})");
        if (sequence <= sequences.GetValueOrDefault(call.Caller)) return false;
        sequences[call.Caller] = sequence;
        return true;
    }

    private static string Shorten(string id) => id.Length <= 64 ? id : id[..64] + "...";

    /// <summary>Under admission: refuses a round call beyond the agreement window (see <see cref="_agreedRound"/>), or of another generation than the server's.</summary>
    private void CheckWindow(string call, string caller, int generation, long round)
    {
        if (Admission is null) return;
        if (generation != Generation) throw new UnauthorizedAccessException($"{call} of {Shorten(caller)} for generation {generation}; the job's is {Generation}");
        if (round < 0) throw new UnauthorizedAccessException($"{call} of {Shorten(caller)} for round {round}");
        if (round <= AgreedRound() + AgreementLead) return;
        // Members whose leases ran out may be all that kept the last rounds from a majority (two of four workers dead):
        // once they are expired, those rounds' reporters are a majority of who is left, and the window moves on.
        ExpireLapsedLeases();
        long agreed = AgreedRound();
        if (agreed >= 0 && round > agreed + AgreementLead)
        {
            throw new UnauthorizedAccessException($"{call} of {Shorten(caller)} for round {round}, beyond round {agreed + AgreementLead} (the last round a majority agreed on is {agreed})");
        }
    }

    /// <summary>
    /// The newest round decided with reports from more than half the members that do not wait for a state, counted
    /// against the members when it is decided and again at each call (-1: none yet): members expired since may make it a
    /// majority later. Kept as a high-water mark, so rounds pruned from the decisions still count.
    /// </summary>
    private long AgreedRound()
    {
        // Voters: members with a lease that do not wait for a state; only they count among a round's reporters too (a member
        // that asked a state for itself counted as a reporter but not as a voter, and alone made a majority of a pair).
        bool Votes(string member) => _leases.ContainsKey(member) && !_syncRequests.Contains(member);
        int voters = _leases.Keys.Count(Votes);
        foreach (var decision in _decisions.Values)
        {
            if (decision.Round <= _agreedRound) continue;
            var reached = decision.Reporters.Where(Votes).ToHashSet(StringComparer.Ordinal);
            if (_lateReports.TryGetValue((decision.Generation, decision.Round), out var late)) reached.UnionWith(late.Where(Votes));
            if (reached.Count * 2 > voters) _agreedRound = decision.Round;
        }
        return _agreedRound;
    }

    /// <summary>A member states which senders' gradients it holds for the round (a later report of the round replaces it).</summary>
    /// <param name="sequence">Under admission: the member's next report number (<see cref="MemberIdentity.NextReport"/>).</param>
    /// <param name="signature">Under admission: the member's signature over <see cref="SignedCall.Report"/>; a member reports only for itself.</param>
    /// <exception cref="UnauthorizedAccessException">Under admission, a report its registered key did not sign, or of a caller that is not a member.</exception>
    public void Report(string member, int generation, long round, IReadOnlyList<string> received, long sequence = 0, string? signature = null)
    {
        if (Admission is not null && !Admit(SignedCall.Report(JobId, member, sequence, generation, round, received), signature, sequence, _reportSequences)) return;
        CheckWindow("report", member, generation, round);
        Record(member, generation, round, received);
    }

    private void Record(string member, int generation, long round, IReadOnlyList<string> received)
    {
        if (!_leases.ContainsKey(member)) return;
        if (_decisions.ContainsKey((generation, round)))
        {
            if (!_lateReports.TryGetValue((generation, round), out var late)) _lateReports[(generation, round)] = late = new(StringComparer.Ordinal);
            if (late.Add(member)) AgreedRound();
            return;
        }
        if (!_reports.TryGetValue((generation, round), out var reports)) _reports[(generation, round)] = reports = new(StringComparer.Ordinal);
        _firstReport.TryAdd((generation, round), _time.GetUtcNow());
        reports[member] = new HashSet<string>(received, StringComparer.Ordinal);
    }

    /// <summary>
    /// The barrier for services that run in real time: the round's decision once every member has reported, or
    /// once <paramref name="deadline"/> has passed since the first report; null while it is still open. Leases that ran
    /// out are expired first (as <see cref="CurrentView"/> does), so a dead member does not hold the round until the
    /// lease reminder runs.
    /// </summary>
    /// <param name="caller">Under admission: a member, whose signature over <see cref="SignedCall.TryCloseRound"/> is <paramref name="signature"/>.</param>
    /// <exception cref="UnauthorizedAccessException">Under admission, when the round is still open and the call is not signed by a member's registered key.</exception>
    public RoundDecision? TryClose(int generation, long round, TimeSpan deadline, string? caller = null, string? signature = null)
    {
        // A decision already taken is answered to any caller: it is what every member applies, and reading it changes nothing.
        if (_decisions.TryGetValue((generation, round), out var decided)) return decided;
        // The deadline is the caller's: without the check anyone could close a round a millisecond after its first report.
        if (Admission is not null) Authenticate(SignedCall.TryCloseRound(JobId, caller ?? "", generation, round, deadline), signature);
        CheckWindow("try-close", caller ?? "", generation, round);
        return TryDecide(generation, round, deadline);
    }

    private RoundDecision? TryDecide(int generation, long round, TimeSpan deadline)
    {
        if (_decisions.TryGetValue((generation, round), out var decided)) return decided;
        ExpireLapsedLeases();
        var reports = _reports.GetValueOrDefault((generation, round));
        bool everyone = reports is not null && _leases.Keys.Where(m => !_syncRequests.Contains(m)).All(reports.ContainsKey);
        bool late = _firstReport.TryGetValue((generation, round), out var first) && _time.GetUtcNow() - first >= deadline;
        return everyone || late ? Decide(generation, round) : null;
    }

    /// <summary>The round's decision if it was taken (and is still kept), without changing anything.</summary>
    public RoundDecision? DecisionOf(int generation, long round) => _decisions.GetValueOrDefault((generation, round));

    /// <summary>
    /// A member's report and, in the same step, the round's decision when that report completed it (or the deadline since
    /// the first report has passed): what the last reporter would otherwise poll <see cref="TryClose"/> for (issue 16).
    /// Leases that ran out are expired first, so a member whose lease ran out has no say in the round.
    /// </summary>
    /// <remarks>
    /// Under admission the report is signed as <see cref="SignedCall.ReportAndTryClose"/> (the deadline with it); one whose
    /// sequence number was taken already (a replay) acts on nothing and answers the decision if the round has one.
    /// </remarks>
    /// <exception cref="UnauthorizedAccessException">Under admission, a report its registered key did not sign, or of a caller that is not a member.</exception>
    public RoundDecision? ReportAndTryClose(string member, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, long sequence = 0, string? signature = null)
    {
        if (Admission is not null && !Admit(SignedCall.ReportAndTryClose(JobId, member, sequence, generation, round, received, deadline), signature, sequence, _reportSequences))
        {
            return DecisionOf(generation, round);
        }
        CheckWindow("report", member, generation, round);
        ExpireLapsedLeases();
        Record(member, generation, round, received);
        return TryDecide(generation, round, deadline);
    }

    /// <summary>
    /// Closes the round: the included senders are those every reporting member holds, so every replica
    /// aggregates the same set. Idempotent: closing again returns the same decision (to any caller, as <see cref="TryClose"/>).
    /// </summary>
    /// <param name="caller">Under admission: a member, whose signature over <see cref="SignedCall.CloseRound"/> is <paramref name="signature"/>.</param>
    /// <exception cref="UnauthorizedAccessException">Under admission, when the round is still open and the call is not signed by a member's registered key.</exception>
    public RoundDecision Close(int generation, long round, string? caller = null, string? signature = null)
    {
        if (_decisions.TryGetValue((generation, round), out var decided)) return decided;
        // Closing leaves out whoever has not reported yet: only a member may, or anyone could exclude the real ones.
        if (Admission is not null) Authenticate(SignedCall.CloseRound(JobId, caller ?? "", generation, round), signature);
        CheckWindow("close", caller ?? "", generation, round);
        return Decide(generation, round);
    }

    private RoundDecision Decide(int generation, long round)
    {
        if (_decisions.TryGetValue((generation, round), out var decided)) return decided;
        _reports.Remove((generation, round), out var reports);
        _firstReport.Remove((generation, round));
        reports ??= new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        HashSet<string>? common = null;
        foreach (var received in reports.Values)
        {
            if (common is null) common = new HashSet<string>(received, StringComparer.Ordinal);
            else common.IntersectWith(received);
        }
        var decision = new RoundDecision(generation, round,
            (common ?? []).OrderBy(s => s, StringComparer.Ordinal).ToList(),
            reports.Keys.OrderBy(s => s, StringComparer.Ordinal).ToList(), Version);
        _decisions[(generation, round)] = decision;
        // Counted against the voters now, when it is decided: counted only at a later call, against the voters then, a round a
        // member decided alone while the other waited for a state was no majority once that one was back, and the window
        // stuck behind every member's next round for ever.
        AgreedRound();
        // Keep a short history for late or repeated Close calls; older rounds can never be asked about again.
        foreach (var old in _decisions.Keys.Where(k => k.Generation < generation || k.Round < round - 16).ToList())
        {
            _decisions.Remove(old);
            _lateReports.Remove(old);
        }
        return decision;
    }

    /// <summary>
    /// A replica's weight hash after <paramref name="round"/> (peer topologies, every few rounds). Returns the newest
    /// complete comparison this member took part in (this round's when it was the last to report, else an earlier one),
    /// so every replica learns within two comparisons whether it diverged. The last few rounds are kept.
    /// </summary>
    /// <param name="signature">Under admission: the member's signature over <see cref="SignedCall.WeightHash"/>; a member states only its own hash.</param>
    /// <exception cref="UnauthorizedAccessException">Under admission, a hash its registered key did not sign, or of a caller that is not a member.</exception>
    public WeightCheck CompareWeights(string member, long round, ulong hash, string? signature = null)
    {
        // Without the check anyone could state a false hash for a member and have it marked diverged (and resynchronised).
        if (Admission is not null) Authenticate(SignedCall.WeightHash(JobId, member, round, hash), signature);
        if (!_leases.ContainsKey(member)) return WeightCheck.None;
        CheckWindow("weight hash", member, Generation, round);
        if (Admission is not null && AgreedRound() is >= 0 and long agreed && round < agreed - WeightHashLag)
        {
            throw new UnauthorizedAccessException($"weight hash of {Shorten(member)} for round {round}, more than {WeightHashLag} rounds before the last agreed one ({agreed})");
        }
        if (!_weightHashes.TryGetValue(round, out var hashes)) _weightHashes[round] = hashes = new(StringComparer.Ordinal);
        hashes[member] = hash;
        // The newest rounds stay (not the first stated): with the window above, rounds ahead of the others take at most
        // two of the four places, so a member cannot push the rounds everyone compares out.
        while (_weightHashes.Count > 4) _weightHashes.Remove(_weightHashes.Keys.Min());
        foreach (var (checkedRound, reported) in _weightHashes.Reverse())
        {
            if (!reported.ContainsKey(member)) continue;
            var check = Compare(checkedRound, reported);
            if (check.Complete) return check;
        }
        return new WeightCheck(round, false, null, []);
    }

    private WeightCheck Compare(long round, Dictionary<string, ulong> reported)
    {
        var expected = _leases.Keys.Where(m => !_syncRequests.Contains(m)).ToList();
        if (!expected.All(reported.ContainsKey)) return new WeightCheck(round, false, null, []);
        var largest = reported.Values.GroupBy(h => h).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First();
        // Only a strict majority names the diverged: on a tie (two replicas, or two against two) no hash outvotes the
        // other, and marking either side would let one insider's false hash send an honest replica to resynchronise.
        if (largest.Count() * 2 <= reported.Count) return new WeightCheck(round, true, null, []);
        ulong majority = largest.Key;
        return new WeightCheck(round, true, majority, reported.Where(r => r.Value != majority).Select(r => r.Key).OrderBy(m => m, StringComparer.Ordinal).ToList());
    }

    /// <summary>Shards stay with their preferred worker while it is a member; orphans go to the members holding fewest (then lowest id).</summary>
    private void Reassign()
    {
        Version++;
        var members = _leases.Keys.OrderBy(m => m, StringComparer.Ordinal).ToList();
        _shardOwners.Clear();
        if (members.Count == 0) return;
        var load = members.ToDictionary(m => m, _ => 0, StringComparer.Ordinal);
        var orphans = new List<int>();
        for (int shard = 0; shard < ShardCount; shard++)
        {
            string? preferred = members.FirstOrDefault(m => PreferredShard(m) == shard);
            if (preferred is null) { orphans.Add(shard); continue; }
            _shardOwners[shard] = preferred;
            load[preferred]++;
        }
        foreach (int shard in orphans)
        {
            string owner = members.OrderBy(m => load[m]).ThenBy(m => m, StringComparer.Ordinal).First();
            _shardOwners[shard] = owner;
            load[owner]++;
        }
    }

    /// <summary>Everything the coordinator knows, as plain data: what an actor keeps in its state store.</summary>
    public CoordinatorSnapshot Snapshot() => new(
        JobId, ShardCount, (long)LeaseDuration.TotalMilliseconds, WorkersWriteCheckpoints, Version,
        _leases.ToDictionary(l => l.Key, l => l.Value.ToUnixTimeMilliseconds()),
        new Dictionary<int, string>(_shardOwners),
        _reports.SelectMany(r => r.Value.Select(m => new ReportSnapshot(m.Key, r.Key.Generation, r.Key.Round, [.. m.Value]))).ToList(),
        _decisions.Values.Select(d => new DecisionSnapshot(d.Generation, d.Round, [.. d.Included], [.. d.Reporters], d.ViewVersion,
            _lateReports.TryGetValue((d.Generation, d.Round), out var late) ? [.. late.Order(StringComparer.Ordinal)] : null)).ToList(),
        [.. _syncRequests],
        new Dictionary<string, string>(_keys, StringComparer.Ordinal),
        Generation,
        _weightHashes.ToDictionary(h => h.Key, h => new Dictionary<string, ulong>(h.Value, StringComparer.Ordinal)),
        new Dictionary<string, long>(_heartbeatSequences, StringComparer.Ordinal),
        new Dictionary<string, long>(_reportSequences, StringComparer.Ordinal),
        new Dictionary<string, long>(_syncSequences, StringComparer.Ordinal),
        _agreedRound);

    public static JobCoordinator Restore(CoordinatorSnapshot snapshot, TimeProvider time, JobAdmission? admission = null)
    {
        var coordinator = new JobCoordinator(snapshot.JobId, snapshot.ShardCount, TimeSpan.FromMilliseconds(snapshot.LeaseMs), time, snapshot.WorkersWriteCheckpoints)
        {
            Version = snapshot.Version,
            Admission = admission,
            Generation = snapshot.Generation,
            _agreedRound = snapshot.AgreedRound,
        };
        foreach (var (member, key) in snapshot.Keys ?? []) coordinator._keys[member] = key;
        foreach (var (round, hashes) in snapshot.WeightHashes ?? []) coordinator._weightHashes[round] = new Dictionary<string, ulong>(hashes, StringComparer.Ordinal);
        foreach (var (member, expiry) in snapshot.LeaseExpiries) coordinator._leases[member] = DateTimeOffset.FromUnixTimeMilliseconds(expiry);
        foreach (var (shard, owner) in snapshot.ShardOwners) coordinator._shardOwners[shard] = owner;
        foreach (var report in snapshot.Reports)
        {
            var key = (report.Generation, report.Round);
            if (!coordinator._reports.TryGetValue(key, out var reports)) coordinator._reports[key] = reports = new(StringComparer.Ordinal);
            reports[report.Member] = new HashSet<string>(report.Received, StringComparer.Ordinal);
        }
        foreach (var d in snapshot.Decisions)
        {
            coordinator._decisions[(d.Generation, d.Round)] = new RoundDecision(d.Generation, d.Round, d.Included, d.Reporters, d.ViewVersion);
            if (d.Confirmed is { Length: > 0 } confirmed) coordinator._lateReports[(d.Generation, d.Round)] = new HashSet<string>(confirmed, StringComparer.Ordinal);
        }
        foreach (var member in snapshot.SyncRequests ?? []) coordinator._syncRequests.Add(member);
        foreach (var (member, sequence) in snapshot.HeartbeatSequences ?? []) coordinator._heartbeatSequences[member] = sequence;
        foreach (var (member, sequence) in snapshot.ReportSequences ?? []) coordinator._reportSequences[member] = sequence;
        foreach (var (member, sequence) in snapshot.SyncSequences ?? []) coordinator._syncSequences[member] = sequence;
        return coordinator;
    }

    /// <summary>The checkpoint writer a view names: the first member that does not wait for a state (it cannot write one), or the server.</summary>
    private string? Writer() =>
        WorkersWriteCheckpoints ? _leases.Keys.Where(m => !_syncRequests.Contains(m)).Order(StringComparer.Ordinal).FirstOrDefault() : "ps";

    private MembershipView View(IReadOnlyList<string> expired)
    {
        var members = _leases.Keys.OrderBy(m => m, StringComparer.Ordinal).ToList();
        string? writer = Writer();
        // The keys of the members and of the server; a key whose member has left stays out of the view, so its messages are dropped.
        var keys = _keys.Where(k => k.Key == ServerKeyName || _leases.ContainsKey(k.Key)).ToDictionary(k => k.Key, k => k.Value, StringComparer.Ordinal);
        return new MembershipView(Version, members, new Dictionary<int, string>(_shardOwners), writer, expired,
            _syncRequests.OrderBy(m => m, StringComparer.Ordinal).ToList(), keys, Generation);
    }
}
