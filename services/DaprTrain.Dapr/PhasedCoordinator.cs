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

    public async Task ReportAsync(string member, int generation, long round, IReadOnlyList<string> received)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "Report");
        await inner.ReportAsync(member, generation, round, received);
    }

    public async Task<RoundDecision?> ReportAndTryCloseAsync(string member, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "ReportAndTryClose");
        return await inner.ReportAndTryCloseAsync(member, generation, round, received, deadline);
    }

    public async Task<RoundDecision> CloseRoundAsync(int generation, long round)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "CloseRound");
        return await inner.CloseRoundAsync(generation, round);
    }

    public async Task<RoundDecision?> TryCloseRoundAsync(int generation, long round, TimeSpan deadline)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "TryCloseRound");
        return await inner.TryCloseRoundAsync(generation, round, deadline);
    }

    public async Task<WeightCheck> CompareWeightsAsync(string member, long round, ulong hash)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "CompareWeights");
        return await inner.CompareWeightsAsync(member, round, hash);
    }

    public async Task SetSyncRequestAsync(string member, bool pending)
    {
        using var _ = phases.Time(RoundPhase.Coordinator, "SetSyncRequest");
        await inner.SetSyncRequestAsync(member, pending);
    }
}
