using DaprTrain.Coordination;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Engine.Topologies;

/// <summary>Workers publish their gradients to the server; the server averages, steps and publishes its weights.</summary>
public sealed class ParameterServerPlan : RoundPlan
{
    public override Topology Topology => Topology.ParameterServer;

    public override IReadOnlyList<WorkerSubscription> Subscriptions(string workerId) =>
        [new(TopicNames.Weights, (node, payload) => node.HandleWeights(payload))];

    public override IReadOnlyList<Outgoing> Contribute(WorkerNode worker) => [new(TopicNames.Gradients, worker.GradientMessage(), 1)];

    /// <summary>The server's weights for the round (or a newer generation's) have arrived.</summary>
    public override bool Gathered(WorkerNode worker, long round, IEnumerable<string> contributors) => worker.AppliedRound >= round || worker.OpenRound != round;

    public override bool TryApply(WorkerNode worker, RoundDecision decision) => worker.AppliedRound >= decision.Round;
}
