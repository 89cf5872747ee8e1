namespace DaprTrain.Coordination;

/// <summary>The coordinator port. Embedded: <see cref="InProcessCoordinator"/>; Dapr: an actor proxy.</summary>
public interface ICoordinator
{
    /// <param name="identity">The key the member registers and, in a job with admission, the secret that proves it may join.</param>
    Task<MembershipView> JoinAsync(string member, Security.MemberIdentity? identity);

    /// <param name="identity">Signs the heartbeat (a rising sequence number): no one renews another member's lease.</param>
    Task<bool> HeartbeatAsync(string member, Security.MemberIdentity? identity);

    /// <param name="identity">Signs the leave: a member leaves only for itself.</param>
    Task<MembershipView> LeaveAsync(string member, Security.MemberIdentity? identity);

    /// <summary>The parameter server registers its public key for <paramref name="generation"/> (at start and after every restore).</summary>
    Task<MembershipView> RegisterServerAsync(int generation, Security.MemberIdentity? identity);

    Task<MembershipView> GetViewAsync();

    // The round calls below are signed with the caller's identity where the coordinator checks them (the Dapr actor, always;
    // an embedded coordinator with admission): a member reports, closes and states its hash only as itself (issue 11).

    /// <param name="identity">Signs the report (<see cref="Security.SignedCall.Report"/>) with a rising report number.</param>
    Task ReportAsync(string member, int generation, long round, IReadOnlyList<string> received, Security.MemberIdentity? identity);

    /// <summary>
    /// A report and, in the same call, the decision when this report completed the round (or <paramref name="deadline"/>
    /// passed since the first report); null while the round is open, when the others poll <see cref="TryCloseRoundAsync"/>.
    /// The decision names the view version it was taken under (<see cref="RoundDecision.ViewVersion"/>).
    /// </summary>
    Task<RoundDecision?> ReportAndTryCloseAsync(string member, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, Security.MemberIdentity? identity);

    /// <param name="caller">The member that closes the round (signed by its <paramref name="identity"/>).</param>
    Task<RoundDecision> CloseRoundAsync(string caller, int generation, long round, Security.MemberIdentity? identity);

    /// <summary>The decision once every member reported or <paramref name="deadline"/> passed since the first report; null before.</summary>
    Task<RoundDecision?> TryCloseRoundAsync(string caller, int generation, long round, TimeSpan deadline, Security.MemberIdentity? identity);

    /// <summary>A replica's weight hash after a round; the newest complete comparison it took part in (<see cref="JobCoordinator.CompareWeights"/>).</summary>
    Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash, Security.MemberIdentity? identity);

    /// <summary>
    /// Asks the checkpoint writer for a state to continue from (a member that joined a running job), or says it has one:
    /// <paramref name="caller"/> is <paramref name="member"/> itself, or the checkpoint writer that wrote a state for it (pending false).
    /// </summary>
    Task SetSyncRequestAsync(string caller, string member, bool pending, Security.MemberIdentity? identity);
}

/// <summary>One <see cref="JobCoordinator"/> behind a lock: the turn-based access a Dapr actor gives, in process.</summary>
public sealed class InProcessCoordinator(JobCoordinator coordinator) : ICoordinator
{
    private readonly Lock _turn = new();

    public long Calls { get; private set; }

    public JobCoordinator State => coordinator;

    public Task<MembershipView> JoinAsync(string member, Security.MemberIdentity? identity) => Turn(() => identity is not null
        ? coordinator.Join(member, identity.Key.PublicKey, identity.JoinProof(coordinator.JobId, member))
        : coordinator.Join(member));

    public Task<bool> HeartbeatAsync(string member, Security.MemberIdentity? identity) => Turn(() =>
    {
        // Signed only where the coordinator checks (a job with admission): an embedded run that signs its messages has no job secret.
        if (identity is null || coordinator.Admission is null) return coordinator.Heartbeat(member);
        var (sequence, signature) = identity.NextHeartbeat(coordinator.JobId, member);
        return coordinator.Heartbeat(member, sequence, signature);
    });

    public Task<MembershipView> LeaveAsync(string member, Security.MemberIdentity? identity) => Turn(() => identity is not null
        ? coordinator.Leave(member, coordinator.Version, identity.LeaveProof(coordinator.JobId, member, coordinator.Version))
        : coordinator.Leave(member));

    public Task<MembershipView> RegisterServerAsync(int generation, Security.MemberIdentity? identity) => Turn(() => identity is not null
        ? coordinator.RegisterServer(generation, identity.Key.PublicKey, identity.ServerProof(coordinator.JobId, generation))
        : coordinator.RegisterServer(generation, null));

    public Task<MembershipView> GetViewAsync() => Turn(coordinator.CurrentView);

    // As heartbeats: signed only where the coordinator checks (a job with admission); an embedded run has no job secret.
    private Security.MemberIdentity? Signer(Security.MemberIdentity? identity) => coordinator.Admission is null ? null : identity;

    public Task ReportAsync(string member, int generation, long round, IReadOnlyList<string> received, Security.MemberIdentity? identity) => Turn(() =>
    {
        if (Signer(identity) is not { } signer) coordinator.Report(member, generation, round, received);
        else
        {
            long sequence = signer.NextReport();
            coordinator.Report(member, generation, round, received, sequence, signer.Sign(Security.SignedCall.Report(coordinator.JobId, member, sequence, generation, round, received)));
        }
        return true;
    });

    public Task<RoundDecision?> ReportAndTryCloseAsync(string member, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, Security.MemberIdentity? identity) =>
        Turn(() =>
        {
            if (Signer(identity) is not { } signer) return coordinator.ReportAndTryClose(member, generation, round, received, deadline);
            long sequence = signer.NextReport();
            return coordinator.ReportAndTryClose(member, generation, round, received, deadline, sequence,
                signer.Sign(Security.SignedCall.ReportAndTryClose(coordinator.JobId, member, sequence, generation, round, received, deadline)));
        });

    public Task<RoundDecision> CloseRoundAsync(string caller, int generation, long round, Security.MemberIdentity? identity) => Turn(() =>
        coordinator.Close(generation, round, caller, Signer(identity)?.Sign(Security.SignedCall.CloseRound(coordinator.JobId, caller, generation, round))));

    public Task<RoundDecision?> TryCloseRoundAsync(string caller, int generation, long round, TimeSpan deadline, Security.MemberIdentity? identity) => Turn(() =>
        coordinator.TryClose(generation, round, deadline, caller, Signer(identity)?.Sign(Security.SignedCall.TryCloseRound(coordinator.JobId, caller, generation, round, deadline))));

    public Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash, Security.MemberIdentity? identity) => Turn(() =>
        coordinator.CompareWeights(member, round, hash, Signer(identity)?.Sign(Security.SignedCall.WeightHash(coordinator.JobId, member, round, hash))));

    public Task SetSyncRequestAsync(string caller, string member, bool pending, Security.MemberIdentity? identity) => Turn(() =>
    {
        var signer = Signer(identity);
        long sequence = signer?.NextSyncRequest() ?? 0;
        string? signature = signer?.Sign(Security.SignedCall.SyncRequest(coordinator.JobId, caller, sequence, member, pending));
        if (pending) coordinator.RequestSync(member, caller, sequence, signature);
        else coordinator.CompleteSync(member, caller, sequence, signature);
        return true;
    });

    private Task<T> Turn<T>(Func<T> call)
    {
        lock (_turn)
        {
            Calls++;
            return Task.FromResult(call());
        }
    }
}
