using Dapr.Actors;

namespace DaprTrain.Contracts;

public sealed record MembershipDto(long Version, string[] Members, Dictionary<int, string> ShardOwners, string? CheckpointWriter, string[] Expired, string[]? SyncRequests = null);

public sealed record SyncRequestDto(string Member, bool Pending);

public sealed record RoundReportDto(string Member, int Generation, long Round, string[] Received);

public sealed record RoundKeyDto(int Generation, long Round, int DeadlineMs = 0);

public sealed record RoundDecisionDto(int Generation, long Round, string[] Included, string[] Reporters);

/// <summary>
/// One actor per job (the actor id is the job id): membership with leases renewed by heartbeats and expired by a
/// reminder, shard assignment, the checkpoint writer, and the per-round agreement of which gradients count.
/// Turn-based, so no call ever sees another half-done.
/// </summary>
public interface IJobCoordinatorActor : IActor
{
    Task<MembershipDto> JoinAsync(string member);

    Task<bool> HeartbeatAsync(string member);

    Task<MembershipDto> LeaveAsync(string member);

    Task<MembershipDto> GetViewAsync();

    Task ReportAsync(RoundReportDto report);

    Task<RoundDecisionDto> CloseRoundAsync(RoundKeyDto round);

    /// <summary>The decision once every member reported or the deadline since the first report passed; null before.</summary>
    Task<RoundDecisionDto?> TryCloseRoundAsync(RoundKeyDto round);

    /// <summary>A member that joined a running job asks for a state to continue from (pending) or has loaded one.</summary>
    Task SetSyncRequestAsync(SyncRequestDto request);
}
