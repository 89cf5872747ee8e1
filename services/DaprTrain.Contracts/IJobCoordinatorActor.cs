using Dapr.Actors;

namespace DaprTrain.Contracts;

public sealed record MembershipDto(long Version, string[] Members, Dictionary<int, string> ShardOwners, string? CheckpointWriter, string[] Expired, string[]? SyncRequests = null,
    Dictionary<string, string>? Keys = null, int Generation = 0);

/// <summary>A join: the member's public key (base64 SubjectPublicKeyInfo, P-256) and an HMAC under the job's secret over job, member and key.</summary>
public sealed record JoinRequestDto(string Member, string PublicKey, string Proof);

/// <summary>A leave, signed by the member's registered key over the view version it leaves from.</summary>
public sealed record LeaveRequestDto(string Member, long Version, string Signature);

public sealed record HeartbeatDto(string Member, long Sequence, string Signature);

/// <summary>The parameter server's key for a generation, with an HMAC under the job's secret over job, generation and key.</summary>
public sealed record ServerKeyDto(int Generation, string PublicKey, string Proof);

public sealed record SyncRequestDto(string Member, bool Pending);

/// <summary>A replica's weight hash after a round, as 16 hex digits (JSON numbers lose a u64's low bits).</summary>
public sealed record WeightHashDto(string Member, long Round, string Hash);

public sealed record WeightCheckDto(long Round, bool Complete, string? Majority, string[] Diverged);

/// <summary>A member's report of the senders it holds for a round; <see cref="DeadlineMs"/> only for <see cref="IJobCoordinatorActor.ReportAndTryCloseAsync"/>.</summary>
public sealed record RoundReportDto(string Member, int Generation, long Round, string[] Received, int DeadlineMs = 0);

public sealed record RoundKeyDto(int Generation, long Round, int DeadlineMs = 0);

/// <summary>A round's decision and the view version it was taken under (-1: unknown, so the node fetches the view).</summary>
public sealed record RoundDecisionDto(int Generation, long Round, string[] Included, string[] Reporters, long ViewVersion = -1);

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

    Task ReportAsync(RoundReportDto report);

    /// <summary>
    /// A report and, in the same turn, the decision when this report completed the round (or the deadline since the first
    /// report passed); null while it is open. Saves the last reporter a <see cref="TryCloseRoundAsync"/> poll (issue 16).
    /// </summary>
    Task<RoundDecisionDto?> ReportAndTryCloseAsync(RoundReportDto report);

    Task<RoundDecisionDto> CloseRoundAsync(RoundKeyDto round);

    /// <summary>The decision once every member reported or the deadline since the first report passed; null before.</summary>
    Task<RoundDecisionDto?> TryCloseRoundAsync(RoundKeyDto round);

    /// <summary>A replica's weight hash after a round; the newest complete comparison it took part in.</summary>
    Task<WeightCheckDto> CompareWeightsAsync(WeightHashDto report);

    /// <summary>A member that joined a running job asks for a state to continue from (pending) or has loaded one.</summary>
    Task SetSyncRequestAsync(SyncRequestDto request);
}
