using DaprTrain.Coordination;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Engine.Topologies;

/// <summary>
/// p2p-scatter: the k-th member of the view owns the k-th slice of the parameters. Each worker sends every owner its
/// slice of its gradient (reduce-scatter); after the decision each owner reduces its slice over the decided senders and
/// sends the result to every peer (all-gather). Bytes per worker: 2(N-1)/N of the model, whatever N. Slice ownership
/// follows the membership view, so an owner that leaves hands its slice over with the next view.
/// </summary>
public sealed class ScatterReducePlan : RoundPlan
{
    public override Topology Topology => Topology.PeerToPeerScatter;

    public override IReadOnlyList<WorkerSubscription> Subscriptions(string workerId) =>
    [
        new(TopicNames.Slices(workerId), (node, payload) => node.HandleGradientSlice(payload)),
        new(TopicNames.Reduced(workerId), (node, payload) => node.HandleReducedSlice(payload)),
    ];

    public override IReadOnlyList<Outgoing> Contribute(WorkerNode worker) =>
        [.. worker.GradientSliceMessages().Select(s => new Outgoing(TopicNames.Slices(s.Owner), s.Payload, 1))];

    public override bool Gathered(WorkerNode worker, long round, IEnumerable<string> contributors) => contributors.All(m => worker.Holds(round, m));

    /// <summary>
    /// A member that did not report owned a slice nobody else reduced, and a sender that is no member any more (a round
    /// decided under an earlier view, run again) has no slice cut for the present owners: every replica skips the round alike.
    /// </summary>
    public override RoundDecision Settle(RoundDecision decision, IReadOnlyList<string> members) =>
        members.All(decision.Reporters.Contains) && decision.Included.All(members.Contains) ? decision : decision with { Included = [] };

    public override IReadOnlyList<Outgoing> Share(WorkerNode worker, RoundDecision decision)
    {
        // A round run again under a new view may lack a sender's re-cut slice: nothing to share, the peers then miss this
        // owner's reduced slice and take a peer's state, as this worker does.
        if (!decision.Included.All(s => worker.Holds(decision.Round, s))) return [];
        byte[]? reduced = worker.ReduceOwnSlice(decision);
        if (reduced is null) return [];
        return [.. worker.Members.Where(m => m != worker.Id).Select(peer => new Outgoing(TopicNames.Reduced(peer), reduced, 1))];
    }

    public override bool ReadyToApply(WorkerNode worker, RoundDecision decision) =>
        decision.Included.Count == 0 || worker.OpenRound > decision.Round || worker.MissingReducedSlices(decision.Round) == 0;

    public override bool TryApply(WorkerNode worker, RoundDecision decision) => worker.TryApplyReducedSlices(decision.Round, decision.Included.Count > 0);
}
