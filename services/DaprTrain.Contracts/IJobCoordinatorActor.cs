using Dapr.Actors;

namespace DaprTrain.Contracts;

/// <param name="DecisionKey">The coordinator's public key for its round decisions (base64 SubjectPublicKeyInfo, P-256).</param>
public sealed record MembershipDto(long Version, string[] Members, Dictionary<int, string> ShardOwners, string? CheckpointWriter, string[] Expired, string[]? SyncRequests = null,
    Dictionary<string, string>? Keys = null, int Generation = 0, string? DecisionKey = null);

/// <summary>A join: the member's public key (base64 SubjectPublicKeyInfo, P-256) and an HMAC under the job's secret over job, member and key.</summary>
public sealed record JoinRequestDto(string Member, string PublicKey, string Proof);

/// <summary>A leave, signed by the member's registered key over the view version it leaves from.</summary>
public sealed record LeaveRequestDto(string Member, long Version, string Signature);

public sealed record HeartbeatDto(string Member, long Sequence, string Signature);

/// <summary>The parameter server's key for a generation, with an HMAC under the job's secret over job, generation and key.</summary>
public sealed record ServerKeyDto(int Generation, string PublicKey, string Proof);

/// <summary>
/// <see cref="Caller"/> asks a state for <see cref="Member"/> (pending: only the member itself) or says it has one (the member,
/// or the checkpoint writer that wrote one for it); <see cref="Sequence"/> rises with every sync request of the caller's
/// registration, and <see cref="Signature"/> is the caller's registered key's (DaprTrain.Coordination.Security.SignedCall.SyncRequest).
/// </summary>
public sealed record SyncRequestDto(string Caller, string Member, bool Pending, long Sequence, string Signature);

/// <summary>
/// A replica's weight hash after a round, as 16 hex digits (JSON numbers lose a u64's low bits), signed by the member's
/// registered key (SignedCall.WeightHash): a member states only its own.
/// </summary>
public sealed record WeightHashDto(string Member, long Round, string Hash, string Signature);

public sealed record WeightCheckDto(long Round, bool Complete, string? Majority, string[] Diverged);

/// <summary>
/// A member's report of the senders it holds for a round; <see cref="DeadlineMs"/> only for <see cref="IJobCoordinatorActor.ReportAndTryCloseAsync"/>.
/// <see cref="Sequence"/> rises with every report of the member's registration; <see cref="Signature"/> is its registered
/// key's over the call, every field included (SignedCall.Report, SignedCall.ReportAndTryClose): a member reports only for itself.
/// </summary>
public sealed record RoundReportDto(string Member, int Generation, long Round, string[] Received, int DeadlineMs, long Sequence, string Signature);

/// <summary>
/// A close or a try-close of a round by <see cref="Caller"/>, a member, signed by its registered key (SignedCall.CloseRound,
/// SignedCall.TryCloseRound, the deadline with it); <see cref="DeadlineMs"/> only for <see cref="IJobCoordinatorActor.TryCloseRoundAsync"/>.
/// </summary>
public sealed record RoundKeyDto(string Caller, int Generation, long Round, int DeadlineMs, string Signature);

/// <summary>
/// A round's decision and the view version it was taken under (-1: unknown, so the node fetches the view), with the
/// coordinator's signature over it (base64, DaprTrain.Coordination.Security.DecisionKey): a peer hands it on to the others.
/// </summary>
public sealed record RoundDecisionDto(int Generation, long Round, string[] Included, string[] Reporters, long ViewVersion = -1, string? Signature = null);

/// <summary>
/// One actor per job (the actor id is the job id): membership with leases renewed by heartbeats and expired by a
/// reminder, shard assignment, the checkpoint writer, and the per-round agreement of which gradients count.
/// Turn-based, so no call ever sees another half-done.
/// </summary>
public interface IJobCoordinatorActor : IActor
{
    /// <summary>Only the job's worker ids, with a proof of the job's secret; the key joins the views.</summary>
    Task<MembershipDto> JoinAsync(JoinRequestDto request);

    /// <summary>
    /// Renews the member's lease: signed with its registered key over a sequence number that rises with every heartbeat.
    /// False for a member that is not in the job and for a heartbeat its registered key did not sign (refused, logged):
    /// either way the caller must join again.
    /// </summary>
    Task<bool> HeartbeatAsync(HeartbeatDto heartbeat);

    /// <summary>A member leaves only for itself: signed with its registered key.</summary>
    Task<MembershipDto> LeaveAsync(LeaveRequestDto request);

    /// <summary>The parameter server's key and generation (at start and after each restore), with a proof of the job's secret.</summary>
    Task<MembershipDto> RegisterServerAsync(ServerKeyDto request);

    Task<MembershipDto> GetViewAsync();

    // The round calls below act only when signed by their caller's registered key, and only for a caller that is a member
    // (issue 11: any app with a sidecar can call the actor). A refused call acts on nothing, is logged at most once per
    // caller and call every 10 s with a count, and gets the answer its caller takes in its stride: the neutral one named
    // on each method. Fields out of bounds are refused before anything else with an ArgumentException. A report or sync
    // request whose sequence number is not above the caller's last one (a replay, or a call a newer one overtook) acts on
    // nothing either and is not logged. Under Coordinator:AllowOpenJoins (no job secret) nothing is checked.

    /// <summary>A member's report of the senders it holds. Refused: stores nothing (no error: the round closes without it).</summary>
    Task ReportAsync(RoundReportDto report);

    /// <summary>
    /// A report and, in the same turn, the decision when this report completed the round (or the deadline since the first
    /// report passed); null while it is open. Saves the last reporter a <see cref="TryCloseRoundAsync"/> poll (issue 16).
    /// Refused or replayed: stores and closes nothing, and answers the round's decision if it has one, else null (the
    /// caller polls, as for an open round).
    /// </summary>
    Task<RoundDecisionDto?> ReportAndTryCloseAsync(RoundReportDto report);

    /// <summary>
    /// Closes the round with the reports it has. A round already decided answers its decision to any caller (reading it changes
    /// nothing). Refused: closes nothing and throws (there is no neutral decision to answer); a worker takes the actor's error
    /// as transient and runs the round again with a fresh view, which tells it when it is no longer a member.
    /// </summary>
    Task<RoundDecisionDto> CloseRoundAsync(RoundKeyDto round);

    /// <summary>
    /// The decision once every member reported or the deadline since the first report passed; null before. A round already
    /// decided answers its decision to any caller. Refused: closes nothing and answers null, as for an open round.
    /// </summary>
    Task<RoundDecisionDto?> TryCloseRoundAsync(RoundKeyDto round);

    /// <summary>
    /// A replica's weight hash after a round; the newest complete comparison it took part in. Refused: stores nothing and
    /// answers an incomplete comparison of that round (the caller acts on none).
    /// </summary>
    Task<WeightCheckDto> CompareWeightsAsync(WeightHashDto report);

    /// <summary>A member that joined a running job asks for a state to continue from (pending) or has loaded one. Refused: changes nothing.</summary>
    Task SetSyncRequestAsync(SyncRequestDto request);
}
