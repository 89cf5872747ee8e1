using Dapr.Actors;
using Dapr.Actors.Client;
using DaprTrain.Contracts;
using DaprTrain.Coordination;
using DaprTrain.Coordination.Security;

namespace DaprTrain.Dapr;

/// <summary>The coordinator port over the job's actor (Dapr actor proxy, JSON serialisation).</summary>
public sealed class ActorCoordinator(IActorProxyFactory proxies, string jobId) : ICoordinator
{
    private readonly IJobCoordinatorActor _actor = proxies.CreateActorProxy<IJobCoordinatorActor>(new ActorId(jobId), DaprActorTypes.JobCoordinator);

    public async Task<MembershipView> JoinAsync(string member, MemberIdentity? identity)
    {
        var proven = Required(identity);
        return ToView(await _actor.JoinAsync(new JoinRequestDto(member, proven.Key.PublicKey, proven.JoinProof(jobId, member))));
    }

    public Task<bool> HeartbeatAsync(string member, MemberIdentity? identity)
    {
        var (sequence, signature) = Required(identity).NextHeartbeat(jobId, member);
        return _actor.HeartbeatAsync(new HeartbeatDto(member, sequence, signature));
    }

    /// <summary>Signed over the version of the view it leaves from (read first: a leave signed for an old view is refused).</summary>
    public async Task<MembershipView> LeaveAsync(string member, MemberIdentity? identity)
    {
        var proven = Required(identity);
        long version = (await _actor.GetViewAsync()).Version;
        return ToView(await _actor.LeaveAsync(new LeaveRequestDto(member, version, proven.LeaveProof(jobId, member, version))));
    }

    public async Task<MembershipView> RegisterServerAsync(int generation, MemberIdentity? identity)
    {
        var proven = Required(identity);
        return ToView(await _actor.RegisterServerAsync(new ServerKeyDto(generation, proven.Key.PublicKey, proven.ServerProof(jobId, generation))));
    }

    private static MemberIdentity Required(MemberIdentity? identity) =>
        identity ?? throw new ArgumentNullException(nameof(identity), "the coordinator actor takes no join, heartbeat, leave or server key without the node's key");

    public async Task<MembershipView> GetViewAsync() => ToView(await _actor.GetViewAsync());

    public Task ReportAsync(string member, int generation, long round, IReadOnlyList<string> received) =>
        _actor.ReportAsync(new RoundReportDto(member, generation, round, [.. received]));

    public async Task<RoundDecision?> ReportAndTryCloseAsync(string member, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline)
    {
        var decision = await _actor.ReportAndTryCloseAsync(new RoundReportDto(member, generation, round, [.. received], DeadlineMs(deadline)));
        return decision is null ? null : ToDecision(decision);
    }

    public async Task<RoundDecision> CloseRoundAsync(int generation, long round) => ToDecision(await _actor.CloseRoundAsync(new RoundKeyDto(generation, round)));

    public async Task<RoundDecision?> TryCloseRoundAsync(int generation, long round, TimeSpan deadline)
    {
        var decision = await _actor.TryCloseRoundAsync(new RoundKeyDto(generation, round, DeadlineMs(deadline)));
        return decision is null ? null : ToDecision(decision);
    }

    public async Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash)
    {
        var check = await _actor.CompareWeightsAsync(new WeightHashDto(member, round, hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture)));
        return new WeightCheck(check.Round, check.Complete,
            check.Majority is null ? null : ulong.Parse(check.Majority, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture), check.Diverged);
    }

    public Task SetSyncRequestAsync(string member, bool pending) => _actor.SetSyncRequestAsync(new SyncRequestDto(member, pending));

    private static MembershipView ToView(MembershipDto dto) =>
        new(dto.Version, dto.Members, dto.ShardOwners, dto.CheckpointWriter, dto.Expired, dto.SyncRequests ?? [], dto.Keys ?? [], dto.Generation);

    private static RoundDecision ToDecision(RoundDecisionDto dto) => new(dto.Generation, dto.Round, dto.Included, dto.Reporters, dto.ViewVersion);

    private static int DeadlineMs(TimeSpan deadline) => (int)Math.Clamp(deadline.TotalMilliseconds, 1, int.MaxValue);
}
