using System.Diagnostics;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Storage;
using DaprTrain.Coordination.Progress;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Compute;
using DaprTrain.Simulation.Rounds;
using DaprTrain.Training.Data;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Simulation;

/// <summary>
/// Runs a whole distributed job in one process: N worker nodes with their own replicas, a parameter server
/// for the ps topology, the coordinator, the in-process broker and a checkpoint store, driven round by round
/// on a virtual clock. Compute is real and measured; message bytes are real and go through the codec,
/// the broker's faults and the nodes' validation; time spent on the wire comes from the network model.
/// Everything random is seeded, so a run can be replayed exactly.
/// </summary>
public sealed class EmbeddedJob : IDisposable
{
    private readonly JobOptions _options;
    private readonly CountingStore _store;
    private readonly JobCheckpoints _checkpoints;
    private readonly PriceTable _prices;
    private readonly PlatformProfile _platform;
    private readonly SimulatedCluster _cluster;
    private readonly Recovery _recovery;
    private readonly JobProgress _progress;
    private readonly List<RoundRecord> _rounds = [];
    private int _consistencyChecks;

    /// <param name="platform">The serverless profile the "all functions" cost uses in a VM run (default: the shipped default profile).</param>
    /// <param name="events">Where the job's progress events go (virtual clock), or null for none.</param>
    public EmbeddedJob(JobOptions options, TrainingData data, ICheckpointStore store, PriceTable prices, ILoggerFactory loggers, PlatformProfile? platform = null,
        IProgressSink? events = null)
    {
        options.Validate();
        _options = options;
        _store = new CountingStore(store);
        _checkpoints = new JobCheckpoints(_store, options.JobId);
        _prices = prices;
        _platform = options.Serverless?.Platform ?? platform ?? PlatformProfile.Load(null, PlatformProfile.DefaultName);
        _cluster = new SimulatedCluster(options, data, loggers);
        _progress = new JobProgress(events is null ? null : new ProgressEmitter(events, options.JobId, () => _cluster.Clock.NowMs, ProgressEmitter.ProcessStartSequence()));
        _recovery = new Recovery(_cluster, _checkpoints, _progress);
    }

    public IProgress<RoundProgress>? Progress { get; set; }

    public async Task<RunResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var wall = Stopwatch.StartNew();
        await StartAsync(cancellationToken);
        while (_cluster.CompletedRound < _options.Rounds)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await RunRoundAsync(_cluster.CompletedRound + 1, cancellationToken);
        }
        var result = Finish(wall.Elapsed.TotalMilliseconds);
        _progress.Emit(JobProgress.JobSource, ProgressEvent.JobFinished(_cluster.CompletedRound, result.FinalAccuracy, result.FinalLoss, result.TotalMs));
        return result;
    }

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        _progress.Started(_options);
        for (int i = 1; i <= _options.Workers; i++) await _cluster.StartWorkerAsync($"worker-{i}");
        if (!_cluster.Plan.DecidedByPeers)
        {
            _cluster.StartServer();
            await _cluster.RegisterServerAsync();
        }
        await _cluster.RefreshViewAsync();
        _progress.View(_cluster.View);

        var resumed = _options.ResumeFromStore ? await _checkpoints.LoadLatestAsync(cancellationToken) : null;
        if (resumed is { } found)
        {
            _cluster.Log.LogInformation("resuming job {Job} from its checkpoint of round {Round}", _options.JobId, found.Checkpoint.Round);
            _recovery.MaxGeneration = found.Checkpoint.Generation + 1;
            if (_cluster.Server is { } server)
            {
                server.RestoreState(found.Checkpoint, _recovery.MaxGeneration);
                await _cluster.RegisterServerAsync();
                _cluster.BroadcastWeights();
                _cluster.DeliverUntil(_cluster.Clock.NowMs + _options.RoundDeadlineMs, () => _cluster.LiveWorkers.All(w => w.AppliedRound == server.AppliedRound));
            }
            else
            {
                var state = found.Checkpoint with { Generation = 0 };
                foreach (var worker in _cluster.LiveWorkers) worker.RestoreState(state);
                _cluster.CommittedRound = state.Round;
            }
        }
        else
        {
            // Round 0 is checkpointed too, so a failure before the first interval still has a state to return to.
            await _recovery.CheckpointAsync(cancellationToken);
        }
    }

    private async Task RunRoundAsync(long round, CancellationToken cancellationToken)
    {
        _cluster.StartRound();
        await _recovery.FireFaultsAsync(round, cancellationToken);
        // A restored parameter server rolled the job back: start over from the round it reopened.
        if (_cluster.CompletedRound != round - 1) return;
        double start = _cluster.Clock.NowMs;

        // Live processes renew their leases on a timer, also while they wait (for a restarting server, say).
        foreach (var worker in _cluster.LiveWorkers) await _cluster.Coordinator.HeartbeatAsync(worker.Id, _cluster.IdentityOf(worker.Id));
        await _cluster.RefreshViewAsync();
        _progress.View(_cluster.View);
        _recovery.Detected(_cluster.View.Expired, round);

        var participants = _cluster.Participants();
        var (computeMs, included) = _cluster.Plan.DecidedByPeers
            ? await PeerRound.RunAsync(_cluster, round, start, participants)
            : await ServerRound.RunAsync(_cluster, round, start, participants);

        await _recovery.ResyncLaggingWorkersAsync(cancellationToken);
        _cluster.ReleaseRoundMessages(round);
        CheckReplicasAgree(round);
        if (_cluster.CompletedRound % _options.CheckpointEvery == 0) await _recovery.CheckpointAsync(cancellationToken);
        _recovery.RoundCompleted(start, round, included);

        double? accuracy = null, loss = null;
        if (_cluster.CompletedRound % _options.EvaluateEvery == 0 || _cluster.CompletedRound >= _options.Rounds)
        {
            var evaluation = _cluster.ReferenceTrainer().Evaluate(_cluster.Data.Holdout, _cluster.Data.HoldoutIndices);
            accuracy = evaluation.Accuracy;
            loss = evaluation.Loss;
        }
        int members = _cluster.View.Members.Count;
        _rounds.Add(new RoundRecord(round, _cluster.Generation, start, _cluster.Clock.NowMs, members, included, computeMs,
            _cluster.Accounting.TakeExchangeMs(), _cluster.Accounting.RoundBytesMoved, accuracy, loss));
        _progress.RoundCompleted(_cluster, round, start, included, members);
        if (accuracy is { } measured)
        {
            _progress.Emit(JobProgress.JobSource, ProgressEvent.Evaluation(round, measured, loss));
            if (_progress.Enabled) _progress.Cost(round, _prices, RunningBilling());
        }
        Progress?.Report(new RoundProgress(round, _options.Rounds, _cluster.Clock.NowMs, members, included, accuracy));
    }

    /// <summary>The bill so far, as <see cref="Finish"/> makes it at the end (the coordinator up all along, on its instance).</summary>
    private Billing RunningBilling()
    {
        double now = _cluster.Clock.NowMs;
        var nodes = _cluster.Accounting.NodesSoFar(now).Where(n => n.Node != Coordinator)
            .Append(CoordinatorMetrics(new NodeMetrics(Coordinator), now))
            .OrderBy(n => n.Node, StringComparer.Ordinal).ToList();
        return Billing.Of(_prices, _platform, nodes, _rounds, _cluster.Compute.Report(), now, _cluster.Server is not null);
    }

    private const string Coordinator = "coordinator";

    /// <summary>The coordinator's figures: up the whole run, busy for a hop per call.</summary>
    private NodeMetrics CoordinatorMetrics(NodeMetrics coordinator, double nowMs)
    {
        coordinator.AliveMs = nowMs;
        coordinator.BusyMs = _cluster.Coordinator.Calls * _options.Network.LatencyMs;
        return coordinator;
    }

    private void CheckReplicasAgree(long round)
    {
        if (!_cluster.Plan.DecidedByPeers) return;
        var functions = _cluster.Compute.Report();
        var hashes = _cluster.LiveWorkers.Where(_cluster.InSync).Select(w => (w.Id, w.WeightHash)).ToList();
        _consistencyChecks++;
        if (hashes.Select(h => h.WeightHash).Distinct().Count() > 1)
        {
            throw new InvalidOperationException($"replicas diverged after round {round}: " + string.Join(", ", hashes.Select(h => $"{h.Id}={h.WeightHash:x16}")));
        }
    }

    private RunResult Finish(double wallMs)
    {
        double end = _cluster.Clock.NowMs;
        var accounting = _cluster.Accounting;
        accounting.EndOfRun(end);
        CoordinatorMetrics(accounting.Node(Coordinator), end);

        var reference = _cluster.ReferenceTrainer();
        var final = reference.Evaluate(_cluster.Data.Holdout, _cluster.Data.HoldoutIndices);
        var weights = new float[reference.Parameters.Count];
        reference.Parameters.ExportWeights(weights);

        var server = _cluster.Server;
        var counters = _cluster.LiveWorkers.Select(w => w.Counters).Concat(server is null ? [] : [server.Counters]).ToList();
        var rejected = counters.SelectMany(c => c.Rejected).GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Sum(p => p.Value));
        long requests = _cluster.Bus.Delivered + _cluster.Coordinator.Calls + _store.Operations;
        var nodes = accounting.Nodes;
        var functions = _cluster.Compute.Report();
        var hashes = _cluster.LiveWorkers.ToDictionary(w => w.Id, w => w.WeightHash);
        if (server is not null) hashes[ParameterServerNode.NodeId] = server.WeightHash;
        return new RunResult
        {
            Options = _options,
            Scenario = _options.Faults.Name,
            Rounds = _rounds,
            Nodes = nodes,
            Faults = _recovery.Faults,
            FinalAccuracy = final.Accuracy,
            FinalLoss = final.Loss,
            TimeToTargetMs = _rounds.FirstOrDefault(r => r.Accuracy >= _options.TargetAccuracy)?.EndMs,
            TotalMs = end,
            WallMs = wallMs,
            RoundsLost = _recovery.Faults.Sum(f => f.RoundsLost) + _recovery.RoundsNoReplicaApplied,
            LateMessages = counters.Sum(c => c.Late),
            DuplicatesIgnored = counters.Sum(c => c.Duplicates),
            Rejected = rejected,
            GradientsDropped = _cluster.GradientsDropped,
            Requests = requests,
            ConsistencyChecks = _consistencyChecks,
            MessageBuffersReused = _cluster.MessageBuffersReused,
            DecodedArraysReused = _cluster.DecodedArraysReused,
            ParameterCount = reference.Parameters.Count,
            FinalWeightHashes = hashes,
            FinalWeights = weights,
            FinalShardOwners = _cluster.View.ShardOwners,
            Cost = CostEstimator.Estimate(_prices, nodes, requests, end),
            Prices = _prices,
            Functions = functions,
            Billing = Billing.Of(_prices, _platform, nodes, _rounds, functions, end, server is not null),
        };
    }

    public void Dispose() => _cluster.Dispose();
}
