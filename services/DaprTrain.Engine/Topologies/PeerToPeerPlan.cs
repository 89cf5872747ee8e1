using DaprTrain.Coordination;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Engine.Topologies;

/// <summary>Every worker publishes its whole gradient to every peer and averages all of them itself (all-gather, SPIRT).</summary>
public sealed class PeerToPeerPlan : RoundPlan
{
    public override Topology Topology => Topology.PeerToPeer;

    public override IReadOnlyList<WorkerSubscription> Subscriptions(string workerId) =>
        [new(TopicNames.Gradients, (node, payload) => node.HandleGradient(payload))];

    public override IReadOnlyList<Outgoing> Contribute(WorkerNode worker) =>
        [new(TopicNames.Gradients, worker.GradientMessage(), Math.Max(0, worker.Members.Count - 1))];

    public override bool Gathered(WorkerNode worker, long round, IEnumerable<string> contributors) => contributors.All(m => worker.Holds(round, m));

    public override bool TryApply(WorkerNode worker, RoundDecision decision)
    {
        var held = worker.HeldSenders(decision.Round);
        if (!decision.Included.All(held.Contains)) return false;
        worker.ApplyDecision(decision);
        return true;
    }
}
