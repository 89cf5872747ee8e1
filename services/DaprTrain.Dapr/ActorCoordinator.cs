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
        identity ?? throw new ArgumentNullException(nameof(identity), "the coordinator actor takes no call of a member or the server without the node's key");

    public async Task<MembershipView> GetViewAsync() => ToView(await _actor.GetViewAsync());

    public Task ReportAsync(string member, int generation, long round, IReadOnlyList<string> received, MemberIdentity? identity)
    {
        var proven = Required(identity);
        long sequence = proven.NextReport();
        string signature = proven.Sign(SignedCall.Report(jobId, member, sequence, generation, round, received));
        return _actor.ReportAsync(new RoundReportDto(member, generation, round, [.. received], 0, sequence, signature));
    }

    public async Task<RoundDecision?> ReportAndTryCloseAsync(string member, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, MemberIdentity? identity)
    {
        var proven = Required(identity);
        long sequence = proven.NextReport();
        string signature = proven.Sign(SignedCall.ReportAndTryClose(jobId, member, sequence, generation, round, received, deadline));
        var decision = await _actor.ReportAndTryCloseAsync(new RoundReportDto(member, generation, round, [.. received], SignedCall.DeadlineMs(deadline), sequence, signature));
        return decision is null ? null : ToDecision(decision);
    }

    public async Task<RoundDecision> CloseRoundAsync(string caller, int generation, long round, MemberIdentity? identity)
    {
        string signature = Required(identity).Sign(SignedCall.CloseRound(jobId, caller, generation, round));
        return ToDecision(await _actor.CloseRoundAsync(new RoundKeyDto(caller, generation, round, 0, signature)));
    }

    public async Task<RoundDecision?> TryCloseRoundAsync(string caller, int generation, long round, TimeSpan deadline, MemberIdentity? identity)
    {
        string signature = Required(identity).Sign(SignedCall.TryCloseRound(jobId, caller, generation, round, deadline));
        var decision = await _actor.TryCloseRoundAsync(new RoundKeyDto(caller, generation, round, SignedCall.DeadlineMs(deadline), signature));
        return decision is null ? null : ToDecision(decision);
    }

    public async Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash, MemberIdentity? identity)
    {
        string signature = Required(identity).Sign(SignedCall.WeightHash(jobId, member, round, hash));
        var check = await _actor.CompareWeightsAsync(new WeightHashDto(member, round, hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), signature));
        return new WeightCheck(check.Round, check.Complete,
            check.Majority is null ? null : ulong.Parse(check.Majority, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture), check.Diverged);
    }

    public Task SetSyncRequestAsync(string caller, string member, bool pending, MemberIdentity? identity)
    {
        var proven = Required(identity);
        long sequence = proven.NextSyncRequest();
        return _actor.SetSyncRequestAsync(new SyncRequestDto(caller, member, pending, sequence, proven.Sign(SignedCall.SyncRequest(jobId, caller, sequence, member, pending))));
    }

    private static MembershipView ToView(MembershipDto dto) =>
        new(dto.Version, dto.Members, dto.ShardOwners, dto.CheckpointWriter, dto.Expired, dto.SyncRequests ?? [], dto.Keys ?? [], dto.Generation) { DecisionKey = dto.DecisionKey };

    /// <summary>The signature as it came (a malformed one is none: the decision is then not handed on, and peers ask for it).</summary>
    private static RoundDecision ToDecision(RoundDecisionDto dto) =>
        new(dto.Generation, dto.Round, dto.Included, dto.Reporters, dto.ViewVersion) { Signature = Signature(dto.Signature) };

    private static byte[]? Signature(string? base64)
    {
        if (base64 is null || base64.Length > 128) return null;
        var bytes = new byte[96];
        return Convert.TryFromBase64String(base64, bytes, out int written) && written == NodeKey.SignatureBytes ? bytes[..written] : null;
    }
}
