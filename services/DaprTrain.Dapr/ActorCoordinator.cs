using Dapr.Actors;
using Dapr.Actors.Client;
using DaprTrain.Contracts;
using DaprTrain.Coordination;

namespace DaprTrain.Dapr;

/// <summary>The coordinator port over the job's actor (Dapr actor proxy, JSON serialisation).</summary>
public sealed class ActorCoordinator(IActorProxyFactory proxies, string jobId) : ICoordinator
{
    private readonly IJobCoordinatorActor _actor = proxies.CreateActorProxy<IJobCoordinatorActor>(new ActorId(jobId), DaprActorTypes.JobCoordinator);

    public async Task<MembershipView> JoinAsync(string member) => ToView(await _actor.JoinAsync(member));

    public Task<bool> HeartbeatAsync(string member) => _actor.HeartbeatAsync(member);

    public async Task<MembershipView> LeaveAsync(string member) => ToView(await _actor.LeaveAsync(member));

    public async Task<MembershipView> GetViewAsync() => ToView(await _actor.GetViewAsync());

    public Task ReportAsync(string member, int generation, long round, IReadOnlyList<string> received) =>
        _actor.ReportAsync(new RoundReportDto(member, generation, round, [.. received]));

    public async Task<RoundDecision> CloseRoundAsync(int generation, long round) => ToDecision(await _actor.CloseRoundAsync(new RoundKeyDto(generation, round)));

    public async Task<RoundDecision?> TryCloseRoundAsync(int generation, long round, TimeSpan deadline)
    {
        var decision = await _actor.TryCloseRoundAsync(new RoundKeyDto(generation, round, (int)deadline.TotalMilliseconds));
        return decision is null ? null : ToDecision(decision);
    }

    public Task SetSyncRequestAsync(string member, bool pending) => _actor.SetSyncRequestAsync(new SyncRequestDto(member, pending));

    private static MembershipView ToView(MembershipDto dto) =>
        new(dto.Version, dto.Members, dto.ShardOwners, dto.CheckpointWriter, dto.Expired, dto.SyncRequests ?? []);

    private static RoundDecision ToDecision(RoundDecisionDto dto) => new(dto.Generation, dto.Round, dto.Included, dto.Reporters);
}
