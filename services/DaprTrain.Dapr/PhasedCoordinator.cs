using DaprTrain.Coordination;
using DaprTrain.Coordination.Security;
using DaprTrain.Engine.Telemetry;

namespace DaprTrain.Dapr;

/// <summary>
/// The coordinator port with every call timed as the <see cref="RoundPhase.Coordinator"/> phase, under the method's name
/// (issue 16). Calls on a round's path count toward it; the heartbeat timer's calls are off the path and reported apart.
/// </summary>
public sealed class PhasedCoordinator(ICoordinator inner, RoundPhases phases) : ICoordinator
{
    public async Task<MembershipView> JoinAsync(string member, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "Join");
        return await inner.JoinAsync(member, identity);
    }

    public async Task<bool> HeartbeatAsync(string member, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "Heartbeat");
        return await inner.HeartbeatAsync(member, identity);
    }

    public async Task<MembershipView> LeaveAsync(string member, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "Leave");
        return await inner.LeaveAsync(member, identity);
    }

    public async Task<MembershipView> RegisterServerAsync(int generation, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "RegisterServer");
        return await inner.RegisterServerAsync(generation, identity);
    }

    public async Task<MembershipView> GetViewAsync()
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "GetView");
        return await inner.GetViewAsync();
    }

    public async Task ReportAsync(string member, int generation, long round, IReadOnlyList<string> received, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "Report");
        await inner.ReportAsync(member, generation, round, received, identity);
    }

    public async Task<RoundDecision?> ReportAndTryCloseAsync(string member, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "ReportAndTryClose");
        return await inner.ReportAndTryCloseAsync(member, generation, round, received, deadline, identity);
    }

    public async Task<RoundDecision> CloseRoundAsync(string caller, int generation, long round, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "CloseRound");
        return await inner.CloseRoundAsync(caller, generation, round, identity);
    }

    public async Task<RoundDecision?> TryCloseRoundAsync(string caller, int generation, long round, TimeSpan deadline, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "TryCloseRound");
        return await inner.TryCloseRoundAsync(caller, generation, round, deadline, identity);
    }

    public async Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "CompareWeights");
        return await inner.CompareWeightsAsync(member, round, hash, identity);
    }

    public async Task SetSyncRequestAsync(string caller, string member, bool pending, MemberIdentity? identity)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "SetSyncRequest");
        await inner.SetSyncRequestAsync(caller, member, pending, identity);
    }
}
