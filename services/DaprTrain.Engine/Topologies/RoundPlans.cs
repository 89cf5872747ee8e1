using DaprTrain.Coordination;

namespace DaprTrain.Engine.Topologies;

/// <summary>The registration of every topology's round plan: a new topology adds its line here.</summary>
public static class RoundPlans
{
    private static readonly Dictionary<Topology, RoundPlan> Plans = new RoundPlan[]
    {
        new ParameterServerPlan(),
        new PeerToPeerPlan(),
        new ScatterReducePlan(),
    }.ToDictionary(p => p.Topology);

    public static RoundPlan For(Topology topology) => Plans.TryGetValue(topology, out var plan)
        ? plan
        : throw new ArgumentException($"no round plan for topology {topology}", nameof(topology));
}
