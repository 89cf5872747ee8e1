using System.Diagnostics;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Simulation.Rounds;

/// <summary>
/// A round under a parameter server: workers compute and contribute, the server takes what arrived by the deadline,
/// averages and steps, and its weights go back to every member.
/// </summary>
internal static class ServerRound
{
    public static async Task<(double ComputeMs, int Included)> RunAsync(SimulatedCluster cluster, long round, double start, List<WorkerNode> participants)
    {
        var server = cluster.Server!;
        var members = cluster.View.Members;
        server.SetMembers(members);
        double computeMs = 0;
        var colluders = new List<WorkerNode>();
        foreach (var worker in participants)
        {
            double ready = await cluster.ComputeAsync(worker, start);
            computeMs = Math.Max(computeMs, ready - start);
            if (worker.Colludes(round)) colluders.Add(worker);
        }
        foreach (var worker in participants.Except(colluders)) Contribute(cluster, worker, cluster.SendMs(worker, start), members.Count);
        if (colluders.Count > 0)
        {
            // A colluding (ALIE) attacker sends once it has seen the honest gradients of the round.
            cluster.Collude(colluders, participants);
            foreach (var worker in colluders) Contribute(cluster, worker, cluster.SendMs(worker, start), members.Count);
        }

        double computed = cluster.ComputePhaseEndMs(start);
        cluster.DeliverUntil(computed + cluster.Options.RoundDeadlineMs, () => members.All(m => server.Holds(round, m)));
        cluster.Clock.AdvanceTo(Math.Max(cluster.Clock.NowMs, computed));
        int included = server.HeldSenders(round).Count;
        cluster.GradientsDropped += participants.Count - included;

        var aggregate = Stopwatch.StartNew();
        server.CloseRound();
        double aggregateMs = aggregate.Elapsed.TotalMilliseconds;
        cluster.Accounting.Exchange(aggregateMs);
        cluster.Accounting.Busy(ParameterServerNode.NodeId, aggregateMs);
        cluster.Clock.AdvanceTo(cluster.Clock.NowMs + aggregateMs);

        cluster.BroadcastWeights();
        cluster.DeliverUntil(cluster.Clock.NowMs + cluster.Options.RoundDeadlineMs, () => cluster.LiveWorkers.Where(w => members.Contains(w.Id))
            .All(w => w.AppliedRound == server.AppliedRound && w.Generation == server.Generation));
        cluster.AccountLinkTime(participants);
        cluster.Accounting.Busy(ParameterServerNode.NodeId, cluster.Options.Network.TransferMs(cluster.Accounting.RoundBytes(ParameterServerNode.NodeId)));
        cluster.Accounting.Node(ParameterServerNode.NodeId).Rounds++;
        return (computeMs, included);
    }

    private static void Contribute(SimulatedCluster cluster, WorkerNode worker, double ready, int members)
    {
        using (cluster.Accounting.TimeExchange())
        {
            // Every gradient crosses the server's one link: it is the bottleneck of the phase.
            foreach (var message in cluster.Plan.Contribute(worker))
            {
                cluster.Publish(worker.Id, message.Topic, message.Payload, ready, (long)members * message.Payload.Length);
            }
        }
    }
}
