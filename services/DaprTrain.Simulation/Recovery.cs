using System.Diagnostics;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Storage;
using DaprTrain.Coordination.Progress;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Simulation;

/// <summary>
/// Faults and what brings the job back: killing and restarting workers and the parameter server as the fault plan says,
/// state transfer to a worker that rejoins or fell behind, and checkpoints.
/// </summary>
internal sealed class Recovery(SimulatedCluster cluster, JobCheckpoints checkpoints, JobProgress progress)
{
    private readonly HashSet<NodeFault> _fired = [];
    private readonly List<FaultRecord> _faults = [];

    public IReadOnlyList<FaultRecord> Faults => _faults;

    /// <summary>The highest generation a restored parameter server (or a resumed job) has opened.</summary>
    public int MaxGeneration { get; set; }

    private JobOptions Options => cluster.Options;

    public async Task FireFaultsAsync(long round, CancellationToken cancellationToken)
    {
        foreach (var fault in Options.Faults.NodeFaults.Where(f => f.Round == round && f.Kind != NodeFaultKind.Slow && !_fired.Contains(f)).ToList())
        {
            _fired.Add(fault);
            var record = new FaultRecord(fault.ToString(), round, cluster.Clock.NowMs);
            _faults.Add(record);
            progress.Emit(JobProgress.JobSource, ProgressEvent.FaultEvent("injected", record.Fault, fault.Node, round));
            switch (fault.Kind)
            {
                case NodeFaultKind.Kill when fault.Node == ParameterServerNode.NodeId:
                    await KillAndRestartServerAsync(round, record, cancellationToken);
                    break;
                case NodeFaultKind.Kill:
                    cluster.StopWorker(fault.Node);
                    progress.Emit(JobProgress.JobSource, ProgressEvent.NodeState(fault.Node, "dead", round, "killed by the fault plan"));
                    cluster.Log.LogInformation("killed {Worker} at round {Round} ({Time:F0} ms)", fault.Node, round, cluster.Clock.NowMs);
                    break;
                case NodeFaultKind.Restart:
                    if (cluster.IsRunning(fault.Node)) break;
                    await cluster.StartWorkerAsync(fault.Node);
                    progress.Emit(JobProgress.JobSource, ProgressEvent.NodeState(fault.Node, "rejoining", round, "restarted by the fault plan"));
                    await cluster.RefreshViewAsync();
                    progress.View(cluster.View);
                    await SynchroniseAsync(cluster.Worker(fault.Node), cancellationToken);
                    progress.Emit(JobProgress.JobSource, ProgressEvent.NodeState(fault.Node, "alive", round, "rejoined with the current state"));
                    cluster.Log.LogInformation("restarted {Worker} at round {Round}; it rejoined with the current state", fault.Node, round);
                    break;
            }
        }
    }

    /// <summary>Marks the faults whose dead node's lease expired with this view, and those a completed round recovered.</summary>
    public void Detected(IEnumerable<string> expired, long round)
    {
        foreach (string node in expired)
        {
            foreach (var fault in _faults.Where(f => f.Fault.Contains(node, StringComparison.Ordinal) && f.DetectedAtMs is null))
            {
                fault.DetectedAtMs = cluster.Clock.NowMs;
                progress.Emit(JobProgress.JobSource, ProgressEvent.FaultEvent("detected", fault.Fault, node, round));
            }
            cluster.Log.LogInformation("lease of {Node} expired at {Time:F0} ms; its shards are reassigned", node, cluster.Clock.NowMs);
        }
    }

    /// <summary>A round that completed with contributions recovers the faults before it (one that included nobody, a round every replica skipped, does not).</summary>
    public void RoundCompleted(double roundStartMs, long round, int included)
    {
        if (included == 0) return;
        foreach (var fault in _faults.Where(f => f.RecoveredAtMs is null && f.AtMs <= roundStartMs))
        {
            fault.RecoveredAtMs = cluster.Clock.NowMs;
            progress.Emit(JobProgress.JobSource, ProgressEvent.FaultEvent("recovered", fault.Fault, null, round, fault.RoundsLost));
        }
    }

    private async Task KillAndRestartServerAsync(long round, FaultRecord record, CancellationToken cancellationToken)
    {
        // The round in flight: workers compute and publish into a topic nobody consumes any more.
        var participants = cluster.Participants();
        cluster.StopServer();
        progress.Emit(JobProgress.JobSource, ProgressEvent.NodeState(ParameterServerNode.NodeId, "dead", round, "killed by the fault plan"));
        double start = cluster.Clock.NowMs;
        foreach (var worker in participants)
        {
            double ready = await cluster.ComputeAsync(worker, start);
            foreach (var message in cluster.Plan.Contribute(worker)) cluster.Publish(worker.Id, message.Topic, message.Payload, ready, 0);
            cluster.GradientsDropped++;
        }
        cluster.Log.LogInformation("killed the parameter server at round {Round} ({Time:F0} ms)", round, cluster.Clock.NowMs);

        cluster.Clock.AdvanceTo(record.AtMs + Options.ParameterServerRestartMs);
        record.DetectedAtMs = cluster.Clock.NowMs;
        progress.Emit(JobProgress.JobSource, ProgressEvent.FaultEvent("detected", record.Fault, ParameterServerNode.NodeId, round));
        cluster.StartServer();
        progress.Emit(JobProgress.JobSource, ProgressEvent.NodeState(ParameterServerNode.NodeId, "rejoining", round, "restarted; restoring its checkpoint"));
        var watch = Stopwatch.StartNew();
        var latest = await checkpoints.LoadLatestAsync(cancellationToken)
            ?? throw new InvalidOperationException("the parameter server has no checkpoint to restore from");
        MaxGeneration++;
        cluster.Server!.RestoreState(latest.Checkpoint, MaxGeneration);
        double restoreMs = watch.Elapsed.TotalMilliseconds + Options.Network.HopMs(latest.Bytes);
        cluster.Accounting.Busy(ParameterServerNode.NodeId, restoreMs);
        cluster.Clock.AdvanceTo(cluster.Clock.NowMs + restoreMs);
        record.RoundsLost = round - 1 - latest.Checkpoint.Round;
        cluster.Log.LogInformation("parameter server restored round {Round} (generation {Generation}); {Lost} completed rounds lost",
            latest.Checkpoint.Round, MaxGeneration, record.RoundsLost);

        foreach (var worker in cluster.LiveWorkers) await cluster.Coordinator.HeartbeatAsync(worker.Id, cluster.IdentityOf(worker.Id));
        // The restored server's generation reaches the workers through the coordinator's view, never through its weights alone.
        await cluster.RegisterServerAsync();
        await ServerSendsWeightsAsync(() => cluster.LiveWorkers.All(InStepWithServer));
        progress.Emit(JobProgress.JobSource, ProgressEvent.NodeState(ParameterServerNode.NodeId, "alive", round,
            $"restored round {latest.Checkpoint.Round} as generation {MaxGeneration}"));
    }

    /// <summary>A worker that missed part of a round (p2p-scatter) or just joined takes the state of an in-sync peer, through the store.</summary>
    public async Task ResyncLaggingWorkersAsync(CancellationToken cancellationToken)
    {
        if (!cluster.Plan.DecidedByPeers) return;
        SkipRoundNoReplicaApplied();
        foreach (var worker in cluster.LiveWorkers.Where(w => cluster.View.Members.Contains(w.Id) && !cluster.InSync(w)).ToList())
        {
            await SynchroniseAsync(worker, cancellationToken);
        }
    }

    /// <summary>Rounds that no replica could apply (see <see cref="SkipRoundNoReplicaApplied"/>): their gradients are in no weights.</summary>
    public long RoundsNoReplicaApplied { get; private set; }

    /// <summary>
    /// When every member missed a part of the committed round (p2p-scatter: each lacks some owner's reduced slice), no
    /// replica holds the round's state and there is no peer to take it from. They all still hold the state before it, the
    /// same bits, so they all skip the round alike (as a round whose decision includes nobody): the round is lost, and
    /// its late messages are stale from then on, never mistaken for a retry's. Members further behind (a joiner) then
    /// synchronise from them as usual.
    /// </summary>
    private void SkipRoundNoReplicaApplied()
    {
        var members = cluster.LiveWorkers.Where(w => cluster.View.Members.Contains(w.Id)).ToList();
        if (members.Count == 0 || members.Any(cluster.InSync)) return;
        long round = cluster.CommittedRound;
        var missed = members.Where(w => w.OpenRound == round).ToList();
        if (missed.Count == 0) return;
        foreach (var worker in missed) worker.SkipRound(round);
        RoundsNoReplicaApplied++;
        cluster.Log.LogInformation("round {Round} lost: every replica missed part of it ({Workers}); all skip it and go on from round {Previous}",
            round, string.Join(", ", missed.Select(w => w.Id)), round - 1);
    }

    private async Task SynchroniseAsync(WorkerNode worker, CancellationToken cancellationToken)
    {
        if (!cluster.Plan.DecidedByPeers)
        {
            // A worker that joins asks the server for the current weights.
            await ServerSendsWeightsAsync(() => InStepWithServer(worker));
            return;
        }
        var source = cluster.LiveWorkers.FirstOrDefault(w => w != worker && cluster.InSync(w))
            ?? throw new InvalidOperationException($"no in-sync peer for {worker.Id} to synchronise from");
        var watch = Stopwatch.StartNew();
        var state = source.CaptureState();
        if (!await checkpoints.TrySaveAsync(state, cancellationToken)) throw new InvalidOperationException("checkpoint pointer changed under the state transfer");
        var loaded = await checkpoints.LoadLatestAsync(cancellationToken) ?? throw new InvalidOperationException("state transfer checkpoint vanished");
        worker.RestoreState(loaded.Checkpoint);
        double ms = watch.Elapsed.TotalMilliseconds + 2 * Options.Network.HopMs(loaded.Bytes);
        cluster.Accounting.Busy(source.Id, ms / 2);
        cluster.Accounting.Busy(worker.Id, ms / 2);
        cluster.Clock.AdvanceTo(cluster.Clock.NowMs + ms);
    }

    private Task ServerSendsWeightsAsync(Func<bool> done)
    {
        cluster.BroadcastWeights();
        cluster.DeliverUntil(cluster.Clock.NowMs + Options.RoundDeadlineMs, done);
        return Task.CompletedTask;
    }

    private bool InStepWithServer(WorkerNode worker) => worker.AppliedRound == cluster.Server!.AppliedRound && worker.Generation == cluster.Server.Generation;

    public async Task CheckpointAsync(CancellationToken cancellationToken)
    {
        var writer = cluster.Plan.DecidedByPeers
            ? cluster.LiveWorkers.FirstOrDefault(w => w.Id == cluster.View.CheckpointWriter && cluster.InSync(w)) ?? cluster.LiveWorkers.FirstOrDefault(cluster.InSync)
            : null;
        var state = cluster.Plan.DecidedByPeers ? writer?.CaptureState() : cluster.Server?.CaptureState();
        if (state is null) return;
        var watch = Stopwatch.StartNew();
        bool saved = await checkpoints.TrySaveAsync(state, cancellationToken);
        double savedMs = watch.Elapsed.TotalMilliseconds;
        int bytes = JobCheckpoints.EncodedLength(state);
        if (saved) progress.Emit(state.Writer, ProgressEvent.Checkpoint(state.Round, state.Generation, state.Writer, bytes));
        if (!saved) cluster.Log.LogWarning("checkpoint of round {Round} lost a race for the pointer; a newer one is in place", state.Round);
        // Checkpoints are written off the critical path: busy time for the writer, not round time.
        cluster.Accounting.Busy(state.Writer, savedMs + Options.Network.TransferMs(bytes));
    }
}
