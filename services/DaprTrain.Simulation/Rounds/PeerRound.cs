using System.Diagnostics;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Topologies;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Simulation.Rounds;

/// <summary>
/// A round among peers (p2p, p2p-scatter), driven by the topology's round plan for every participant at once: compute
/// and contribute, deliver until every participant has gathered (or the deadline), agree through the coordinator,
/// share what the plan shares after the decision (scatter: reduced slices), deliver again, apply.
/// </summary>
internal static class PeerRound
{
    public static async Task<(double ComputeMs, int Included)> RunAsync(SimulatedCluster cluster, long round, double start, List<WorkerNode> participants)
    {
        var plan = cluster.Plan;
        var members = cluster.View.Members;
        double deadlineMs = cluster.Options.RoundDeadlineMs;
        double computeMs = 0;
        var colluders = new List<WorkerNode>();
        foreach (var worker in participants)
        {
            double ready = await cluster.ComputeAsync(worker, start);
            computeMs = Math.Max(computeMs, ready - start);
            if (worker.Colludes(round)) colluders.Add(worker);
        }
        double computed = cluster.ComputePhaseEndMs(start);
        foreach (var worker in participants.Except(colluders))
        {
            using (cluster.Accounting.TimeExchange()) cluster.Publish(worker.Id, plan.Contribute(worker), cluster.SendMs(worker, start));
        }
        if (colluders.Count > 0)
        {
            // A colluding (ALIE) attacker sends once it has seen the honest gradients of the round.
            cluster.Collude(colluders, participants);
            foreach (var worker in colluders)
            {
                using (cluster.Accounting.TimeExchange()) cluster.Publish(worker.Id, plan.Contribute(worker), cluster.SendMs(worker, start));
            }
        }
        cluster.DeliverUntil(computed + deadlineMs, () => participants.All(w => plan.Gathered(w, round, members)));
        // The round is not over before its gradients are computed (with one worker, no delivery moves the clock).
        cluster.Clock.AdvanceTo(Math.Max(cluster.Clock.NowMs, computed));

        foreach (var worker in participants) await cluster.Coordinator.ReportAsync(worker.Id, 0, round, worker.HeldSenders(round), identity: null);
        // The simulation closes the round itself, for every participant at once; its coordinator has no admission to check a caller.
        var agreed = await cluster.Coordinator.CloseRoundAsync("simulation", 0, round, identity: null);
        var decision = plan.Settle(agreed, members);
        if (decision.Included.Count < agreed.Included.Count)
        {
            cluster.Log.LogInformation("round {Round} skipped: {Missing} did not report", round, string.Join(", ", members.Except(agreed.Reporters)));
        }
        cluster.GradientsDropped += participants.Count - decision.Included.Count;

        // A second phase where the plan has one (all-gather of the reduced slices).
        double shareStart = cluster.Clock.NowMs;
        double shareMs = 0;
        var shares = new List<(string Sender, IReadOnlyList<Outgoing> Messages)>();
        foreach (var worker in participants)
        {
            var watch = Stopwatch.StartNew();
            var messages = plan.Share(worker, decision);
            shareMs = Math.Max(shareMs, watch.Elapsed.TotalMilliseconds);
            if (messages.Count > 0) shares.Add((worker.Id, messages));
            cluster.Accounting.Exchange(watch.Elapsed.TotalMilliseconds);
        }
        // Every owner's slices leave when the slowest owner has reduced, and the deadline counts from then, as the
        // gradients' counts from the slowest compute: a reduce is measured wall time, and a machine's load must never
        // decide whether a seeded run's slice is late (only the modelled hop and the injected faults may).
        foreach (var (sender, messages) in shares) cluster.Publish(sender, messages, shareStart + shareMs);
        if (shares.Count > 0) cluster.DeliverUntil(shareStart + shareMs + deadlineMs, () => participants.All(w => plan.ReadyToApply(w, decision)));

        double applyMs = cluster.TimeEach(participants, worker =>
        {
            if (!plan.TryApply(worker, decision))
            {
                cluster.Log.LogInformation("{Worker} missed part of round {Round}; it will resynchronise from a peer", worker.Id, round);
            }
        });
        cluster.CommittedRound = round;
        cluster.Clock.AdvanceTo(cluster.Clock.NowMs + applyMs);
        cluster.AccountLinkTime(participants);
        return (computeMs, decision.Included.Count);
    }
}
