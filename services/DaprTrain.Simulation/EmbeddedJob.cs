using System.Diagnostics;
using DaprTrain.Coordination;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using DaprTrain.Engine.Messaging;
using DaprTrain.Simulation.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Storage;
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
    private const string GradientsTopic = "gradients";
    private const string WeightsTopic = "weights";

    private readonly JobOptions _options;
    private readonly TrainingData _data;
    private readonly CountingStore _store;
    private readonly JobCheckpoints _checkpoints;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly PriceTable _prices;
    private readonly VirtualClock _clock = new();
    private readonly InProcessBus _bus;
    private readonly MessageBufferPool _buffers = new();
    private readonly HashSet<byte[]> _roundMessages = new(ReferenceEqualityComparer.Instance);
    private readonly InProcessCoordinator _coordinator;
    private readonly long[][] _shards;
    private readonly Dictionary<string, WorkerNode?> _workers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NodeMetrics> _metrics = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _aliveSince = new(StringComparer.Ordinal);
    private readonly List<RoundRecord> _rounds = [];
    private readonly List<FaultRecord> _faults = [];
    private readonly HashSet<NodeFault> _fired = [];
    private readonly Dictionary<string, long> _roundBytes = new(StringComparer.Ordinal);
    private ParameterServerNode? _ps;
    private MembershipView _view;
    private int _maxGeneration;
    private long _committedRound;
    private long _gradientsDropped;
    private int _consistencyChecks;
    private double _exchangeWallMs;
    private long _roundBytesMoved;

    public EmbeddedJob(JobOptions options, TrainingData data, ICheckpointStore store, PriceTable prices, ILoggerFactory loggers)
    {
        options.Validate();
        _options = options;
        _data = data;
        _store = new CountingStore(store);
        _checkpoints = new JobCheckpoints(_store, options.JobId);
        _prices = prices;
        _loggers = loggers;
        _log = loggers.CreateLogger<EmbeddedJob>();
        _bus = new InProcessBus(options.Faults.Bus, options.Trainer.Seed);
        _bus.OnDelivery = (subscriber, bytes) =>
        {
            var m = Metrics(subscriber);
            m.BytesReceived += bytes;
            m.MessagesReceived++;
            _roundBytes[subscriber] = _roundBytes.GetValueOrDefault(subscriber) + bytes;
            _roundBytesMoved += bytes;
        };
        _coordinator = new InProcessCoordinator(new JobCoordinator(options.JobId, options.Workers, TimeSpan.FromMilliseconds(options.LeaseMs), _clock,
            workersWriteCheckpoints: options.Topology != Topology.ParameterServer));
        _shards = Sharding.Split(data.TrainIndices, data.Train.Labels, options.Workers, options.Trainer.Seed, options.Sharding);
        _view = new MembershipView(0, [], new Dictionary<int, string>(), null, []);
    }

    public IProgress<RoundProgress>? Progress { get; set; }

    private bool IsParameterServer => _options.Topology == Topology.ParameterServer;

    private IEnumerable<WorkerNode> LiveWorkers => _workers.Values.OfType<WorkerNode>().OrderBy(w => w.Id, StringComparer.Ordinal);

    private long CompletedRound => IsParameterServer ? _ps?.AppliedRound ?? _committedRound : _committedRound;

    public async Task<RunResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var wall = Stopwatch.StartNew();
        await StartAsync(cancellationToken);
        while (CompletedRound < _options.Rounds)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await RunRoundAsync(CompletedRound + 1, cancellationToken);
        }
        return Finish(wall.Elapsed.TotalMilliseconds);
    }

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        for (int i = 1; i <= _options.Workers; i++) await StartWorkerAsync($"worker-{i}");
        if (IsParameterServer) StartParameterServer();
        _view = await _coordinator.GetViewAsync();
        ApplyView(_view);

        var resumed = _options.ResumeFromStore ? await _checkpoints.LoadLatestAsync(cancellationToken) : null;
        if (resumed is { } found)
        {
            _log.LogInformation("resuming job {Job} from its checkpoint of round {Round}", _options.JobId, found.Checkpoint.Round);
            _maxGeneration = found.Checkpoint.Generation + 1;
            if (IsParameterServer)
            {
                _ps!.RestoreState(found.Checkpoint, _maxGeneration);
                BroadcastWeights();
                DeliverUntil(_clock.NowMs + _options.RoundDeadlineMs, () => LiveWorkers.All(w => w.AppliedRound == _ps.AppliedRound));
            }
            else
            {
                var state = found.Checkpoint with { Generation = 0 };
                foreach (var worker in LiveWorkers) worker.RestoreState(state);
                _committedRound = state.Round;
            }
        }
        else
        {
            // Round 0 is checkpointed too, so a failure before the first interval still has a state to return to.
            await CheckpointAsync(cancellationToken);
        }
    }

    private async Task RunRoundAsync(long round, CancellationToken cancellationToken)
    {
        double start = _clock.NowMs;
        _roundBytes.Clear();
        _roundBytesMoved = 0;
        // Messages of a round that ended early (a rollback) or could not be released are left to the collector.
        _roundMessages.Clear();
        await FireFaultsAsync(round, cancellationToken);
        // A restored parameter server rolled the job back: start over from the round it reopened.
        if (CompletedRound != round - 1) return;
        start = _clock.NowMs;

        // Live processes renew their leases on a timer, also while they wait (for a restarting server, say).
        foreach (var worker in LiveWorkers) await _coordinator.HeartbeatAsync(worker.Id);
        _view = await _coordinator.GetViewAsync();
        ApplyView(_view);
        foreach (string expired in _view.Expired)
        {
            foreach (var fault in _faults.Where(f => f.Fault.Contains(expired, StringComparison.Ordinal) && f.DetectedAtMs is null)) fault.DetectedAtMs = _clock.NowMs;
            _log.LogInformation("lease of {Node} expired at {Time:F0} ms; its shards are reassigned", expired, _clock.NowMs);
        }

        var participants = LiveWorkers.Where(w => _view.Members.Contains(w.Id) && InSync(w)).ToList();
        var (computeMs, included) = _options.Topology switch
        {
            Topology.ParameterServer => await ParameterServerRoundAsync(round, start, participants),
            Topology.PeerToPeer => await PeerToPeerRoundAsync(round, start, participants),
            _ => await ScatterRoundAsync(round, start, participants),
        };

        await ResyncLaggingWorkersAsync(cancellationToken);
        ReleaseRoundMessages(round);
        CheckReplicasAgree(round);
        if (CompletedRound % _options.CheckpointEvery == 0) await CheckpointAsync(cancellationToken);
        foreach (var fault in _faults.Where(f => f.RecoveredAtMs is null && f.AtMs <= start)) fault.RecoveredAtMs = _clock.NowMs;

        double? accuracy = null, loss = null;
        if (CompletedRound % _options.EvaluateEvery == 0 || CompletedRound >= _options.Rounds)
        {
            var evaluation = ReferenceTrainer().Evaluate(_data.Holdout, _data.HoldoutIndices);
            accuracy = evaluation.Accuracy;
            loss = evaluation.Loss;
        }
        var generation = IsParameterServer ? _ps!.Generation : 0;
        var record = new RoundRecord(round, generation, start, _clock.NowMs, _view.Members.Count, included, computeMs, _exchangeWallMs, _roundBytesMoved, accuracy, loss);
        _exchangeWallMs = 0;
        _rounds.Add(record);
        Progress?.Report(new RoundProgress(round, _options.Rounds, _clock.NowMs, _view.Members.Count, included, accuracy));
    }

    private async Task<(double ComputeMs, int Included)> PeerToPeerRoundAsync(long round, double start, List<WorkerNode> participants)
    {
        int members = _view.Members.Count;
        double computeMs = 0;
        foreach (var worker in participants)
        {
            double ready = await ComputeAsync(worker, start);
            computeMs = Math.Max(computeMs, ready - start);
            var exchange = Stopwatch.StartNew();
            byte[] payload = worker.GradientMessage();
            Publish(worker.Id, GradientsTopic, payload, ready, _options.Network.HopMs((long)(members - 1) * payload.Length));
            _exchangeWallMs += exchange.Elapsed.TotalMilliseconds;
        }

        DeliverUntil(start + _options.RoundDeadlineMs, () => participants.All(w => _view.Members.All(m => w.Holds(round, m))));
        var decision = await DecideAsync(participants, round);
        double applyMs = ApplyEverywhere(participants, w => w.ApplyDecision(decision));
        _committedRound = round;
        _gradientsDropped += participants.Count - decision.Included.Count;
        _clock.AdvanceTo(_clock.NowMs + applyMs);
        AccountLinkTime(participants);
        return (computeMs, decision.Included.Count);
    }

    private async Task<(double ComputeMs, int Included)> ScatterRoundAsync(long round, double start, List<WorkerNode> participants)
    {
        int members = _view.Members.Count;
        double computeMs = 0;
        long sliceBytes = 0;
        foreach (var worker in participants)
        {
            double ready = await ComputeAsync(worker, start);
            computeMs = Math.Max(computeMs, ready - start);
            var exchange = Stopwatch.StartNew();
            var slices = worker.GradientSliceMessages();
            sliceBytes = Math.Max(sliceBytes, slices.Sum(s => (long)s.Payload.Length));
            foreach (var (owner, payload) in slices)
            {
                Publish(worker.Id, SlicesTopic(owner), payload, ready, _options.Network.HopMs(sliceBytes));
            }
            _exchangeWallMs += exchange.Elapsed.TotalMilliseconds;
        }

        DeliverUntil(start + _options.RoundDeadlineMs, () => participants.All(w => _view.Members.All(m => w.Holds(round, m))));
        var decision = await DecideAsync(participants, round);
        if (decision.Reporters.Count < _view.Members.Count)
        {
            // A member that did not report (dead, lease not yet expired) owned a slice nobody else received:
            // the round cannot be reduced. Everyone skips it alike, so the replicas stay identical.
            _log.LogInformation("round {Round} skipped: slice owners {Missing} did not report", round, string.Join(", ", _view.Members.Except(decision.Reporters)));
            decision = decision with { Included = [] };
        }
        _gradientsDropped += participants.Count - decision.Included.Count;

        // Reduce-scatter done; now all-gather the reduced slices, owner to every peer.
        double gatherStart = _clock.NowMs;
        double reduceMs = 0;
        foreach (var owner in participants)
        {
            var exchange = Stopwatch.StartNew();
            byte[]? reduced = owner.ReduceOwnSlice(decision);
            reduceMs = Math.Max(reduceMs, exchange.Elapsed.TotalMilliseconds);
            if (reduced is not null)
            {
                foreach (var peer in _view.Members.Where(m => m != owner.Id))
                {
                    Publish(owner.Id, ReducedTopic(peer), reduced, gatherStart + reduceMs, _options.Network.HopMs((long)(members - 1) * reduced.Length));
                }
            }
            _exchangeWallMs += exchange.Elapsed.TotalMilliseconds;
        }
        bool any = decision.Included.Count > 0;
        DeliverUntil(gatherStart + _options.RoundDeadlineMs, () => !any || participants.All(w => HasAllReducedSlices(w, round)));

        double applyMs = 0;
        foreach (var worker in participants)
        {
            var one = Stopwatch.StartNew();
            double optimizerBefore = worker.OptimizerMs;
            if (!worker.TryApplyReducedSlices(round, any))
            {
                _log.LogInformation("{Worker} missed reduced slices of round {Round}; it will resynchronise from a peer", worker.Id, round);
            }
            double ms = one.Elapsed.TotalMilliseconds;
            _exchangeWallMs += ms - (worker.OptimizerMs - optimizerBefore);
            Metrics(worker.Id).BusyMs += ms;
            applyMs = Math.Max(applyMs, ms);
        }
        _committedRound = round;
        _clock.AdvanceTo(_clock.NowMs + applyMs);
        AccountLinkTime(participants);
        return (computeMs, decision.Included.Count);
    }

    private async Task<(double ComputeMs, int Included)> ParameterServerRoundAsync(long round, double start, List<WorkerNode> participants)
    {
        var ps = _ps!;
        ps.SetMembers(_view.Members);
        int members = _view.Members.Count;
        double computeMs = 0;
        foreach (var worker in participants)
        {
            double ready = await ComputeAsync(worker, start);
            computeMs = Math.Max(computeMs, ready - start);
            var exchange = Stopwatch.StartNew();
            byte[] payload = worker.GradientMessage();
            // Every gradient crosses the server's one link: it is the bottleneck of the phase.
            Publish(worker.Id, GradientsTopic, payload, ready, _options.Network.HopMs((long)members * payload.Length));
            _exchangeWallMs += exchange.Elapsed.TotalMilliseconds;
        }

        DeliverUntil(start + _options.RoundDeadlineMs, () => _view.Members.All(m => ps.Holds(round, m)));
        int included = ps.HeldSenders(round).Count;
        _gradientsDropped += participants.Count - included;

        var aggregate = Stopwatch.StartNew();
        ps.CloseRound();
        double aggregateMs = aggregate.Elapsed.TotalMilliseconds;
        _exchangeWallMs += aggregateMs;
        Metrics(ParameterServerNode.NodeId).BusyMs += aggregateMs;
        _clock.AdvanceTo(_clock.NowMs + aggregateMs);

        BroadcastWeights();
        DeliverUntil(_clock.NowMs + _options.RoundDeadlineMs, () => LiveWorkers.Where(w => _view.Members.Contains(w.Id)).All(w => w.AppliedRound == ps.AppliedRound && w.Generation == ps.Generation));
        AccountLinkTime(participants);
        Metrics(ParameterServerNode.NodeId).BusyMs += _options.Network.TransferMs(_roundBytes.GetValueOrDefault(ParameterServerNode.NodeId));
        Metrics(ParameterServerNode.NodeId).Rounds++;
        return (computeMs, included);
    }

    /// <summary>Computes one worker's gradient: measured compute plus any injected slowness; returns when it is ready.</summary>
    private async Task<double> ComputeAsync(WorkerNode worker, double start)
    {
        var watch = Stopwatch.StartNew();
        worker.ComputeGradient();
        double computeMs = watch.Elapsed.TotalMilliseconds;
        double slowMs = _options.Faults.NodeFaults
            .Where(f => f.Kind == NodeFaultKind.Slow && f.Node == worker.Id && f.Round <= worker.OpenRound)
            .Sum(f => f.DelayMs);
        double ready = start + computeMs + slowMs;
        var metrics = Metrics(worker.Id);
        metrics.BusyMs += computeMs + slowMs;
        metrics.Rounds++;
        _clock.SetForStep(ready);
        await _coordinator.HeartbeatAsync(worker.Id);
        _clock.SetForStep(start);
        return ready;
    }

    /// <summary>
    /// Gives the round's worker messages back to the pool once nothing can read them: every live node has applied
    /// the round (so none holds a contribution or slice of it) and the broker holds no delayed, duplicated or
    /// retried copy. Otherwise they stay with the collector, which frees them when the last reader lets go.
    /// </summary>
    private void ReleaseRoundMessages(long round)
    {
        bool everyonePast = LiveWorkers.All(w => w.AppliedRound >= round) && (_ps is null || _ps.AppliedRound >= round);
        if (everyonePast)
        {
            foreach (var message in _roundMessages.Where(m => !_bus.IsQueued(m))) _buffers.Return(message);
        }
        _roundMessages.Clear();
    }

    private void Publish(string sender, string topic, byte[] payload, double at, double transitMs)
    {
        if (sender != ParameterServerNode.NodeId) _roundMessages.Add(payload);
        var metrics = Metrics(sender);
        // Pub/sub: the sender uploads once; the broker fans out. Unicast topics have one subscriber.
        metrics.BytesSent += payload.Length;
        metrics.MessagesSent++;
        _roundBytes[sender] = _roundBytes.GetValueOrDefault(sender) + payload.Length;
        _roundBytesMoved += payload.Length;
        _bus.Publish(topic, payload, at, transitMs, publisher: sender);
    }

    /// <summary>Delivers due messages in time order until <paramref name="complete"/> holds or the deadline passes; the clock ends at that moment.</summary>
    private void DeliverUntil(double deadline, Func<bool> complete)
    {
        var watch = Stopwatch.StartNew();
        double reached = _clock.NowMs;
        while (!complete())
        {
            double? next = _bus.NextDue;
            if (next is null || next > deadline)
            {
                reached = deadline;
                break;
            }
            _bus.DeliverUntil(next.Value);
            reached = Math.Max(reached, next.Value);
        }
        _exchangeWallMs += watch.Elapsed.TotalMilliseconds;
        _clock.AdvanceTo(Math.Max(_clock.NowMs, reached));
    }

    private async Task<RoundDecision> DecideAsync(List<WorkerNode> participants, long round)
    {
        foreach (var worker in participants) await _coordinator.ReportAsync(worker.Id, 0, round, worker.HeldSenders(round));
        return await _coordinator.CloseRoundAsync(0, round);
    }

    private double ApplyEverywhere(List<WorkerNode> participants, Action<WorkerNode> apply)
    {
        double slowest = 0;
        foreach (var worker in participants)
        {
            var watch = Stopwatch.StartNew();
            double optimizerBefore = worker.OptimizerMs;
            apply(worker);
            double ms = watch.Elapsed.TotalMilliseconds;
            _exchangeWallMs += ms - (worker.OptimizerMs - optimizerBefore);
            Metrics(worker.Id).BusyMs += ms;
            slowest = Math.Max(slowest, ms);
        }
        return slowest;
    }

    private void AccountLinkTime(IEnumerable<WorkerNode> participants)
    {
        foreach (var worker in participants) Metrics(worker.Id).BusyMs += _options.Network.TransferMs(_roundBytes.GetValueOrDefault(worker.Id));
    }

    private static bool HasAllReducedSlices(WorkerNode worker, long round) => worker.OpenRound > round || worker.MissingReducedSlices(round) == 0;

    private bool InSync(WorkerNode worker) => IsParameterServer
        ? worker.AppliedRound == _ps!.AppliedRound && worker.Generation == _ps.Generation
        : worker.AppliedRound == _committedRound;

    private void BroadcastWeights()
    {
        var ps = _ps!;
        byte[] weights = ps.WeightsMessage();
        Publish(ParameterServerNode.NodeId, WeightsTopic, weights, _clock.NowMs, _options.Network.HopMs(weights.Length));
    }

    private async Task FireFaultsAsync(long round, CancellationToken cancellationToken)
    {
        foreach (var fault in _options.Faults.NodeFaults.Where(f => f.Round == round && f.Kind != NodeFaultKind.Slow && !_fired.Contains(f)).ToList())
        {
            _fired.Add(fault);
            var record = new FaultRecord(fault.ToString(), round, _clock.NowMs);
            _faults.Add(record);
            switch (fault.Kind)
            {
                case NodeFaultKind.Kill when fault.Node == ParameterServerNode.NodeId:
                    await KillAndRestartParameterServerAsync(round, record, cancellationToken);
                    break;
                case NodeFaultKind.Kill:
                    StopWorker(fault.Node);
                    _log.LogInformation("killed {Worker} at round {Round} ({Time:F0} ms)", fault.Node, round, _clock.NowMs);
                    break;
                case NodeFaultKind.Restart:
                    if (_workers.GetValueOrDefault(fault.Node) is not null) break;
                    await StartWorkerAsync(fault.Node);
                    _view = await _coordinator.GetViewAsync();
                    ApplyView(_view);
                    await SynchroniseAsync(_workers[fault.Node]!, cancellationToken);
                    _log.LogInformation("restarted {Worker} at round {Round}; it rejoined with the current state", fault.Node, round);
                    break;
            }
        }
    }

    private async Task KillAndRestartParameterServerAsync(long round, FaultRecord record, CancellationToken cancellationToken)
    {
        // The round in flight: workers compute and publish into a topic nobody consumes any more.
        var participants = LiveWorkers.Where(w => _view.Members.Contains(w.Id) && InSync(w)).ToList();
        StopParameterServer();
        double start = _clock.NowMs;
        foreach (var worker in participants)
        {
            double ready = await ComputeAsync(worker, start);
            Publish(worker.Id, GradientsTopic, worker.GradientMessage(), ready, _options.Network.HopMs(0));
            _gradientsDropped++;
        }
        _log.LogInformation("killed the parameter server at round {Round} ({Time:F0} ms)", round, _clock.NowMs);

        _clock.AdvanceTo(record.AtMs + _options.ParameterServerRestartMs);
        record.DetectedAtMs = _clock.NowMs;
        StartParameterServer();
        var watch = Stopwatch.StartNew();
        var latest = await _checkpoints.LoadLatestAsync(cancellationToken)
            ?? throw new InvalidOperationException("the parameter server has no checkpoint to restore from");
        _maxGeneration++;
        _ps!.RestoreState(latest.Checkpoint, _maxGeneration);
        double restoreMs = watch.Elapsed.TotalMilliseconds + _options.Network.HopMs(latest.Bytes);
        Metrics(ParameterServerNode.NodeId).BusyMs += restoreMs;
        _clock.AdvanceTo(_clock.NowMs + restoreMs);
        record.RoundsLost = round - 1 - latest.Checkpoint.Round;
        _log.LogInformation("parameter server restored round {Round} (generation {Generation}); {Lost} completed rounds lost",
            latest.Checkpoint.Round, _maxGeneration, record.RoundsLost);

        foreach (var worker in LiveWorkers) await _coordinator.HeartbeatAsync(worker.Id);
        _view = await _coordinator.GetViewAsync();
        ApplyView(_view);
        BroadcastWeights();
        DeliverUntil(_clock.NowMs + _options.RoundDeadlineMs, () => LiveWorkers.All(w => w.AppliedRound == _ps.AppliedRound && w.Generation == _ps.Generation));
    }

    /// <summary>A worker that missed part of a round (p2p-scatter) or just joined takes the state of an in-sync peer, through the store.</summary>
    private async Task ResyncLaggingWorkersAsync(CancellationToken cancellationToken)
    {
        if (IsParameterServer) return;
        foreach (var worker in LiveWorkers.Where(w => _view.Members.Contains(w.Id) && !InSync(w)).ToList())
        {
            await SynchroniseAsync(worker, cancellationToken);
        }
    }

    private async Task SynchroniseAsync(WorkerNode worker, CancellationToken cancellationToken)
    {
        if (IsParameterServer)
        {
            // A worker that joins asks the server for the current weights.
            BroadcastWeights();
            DeliverUntil(_clock.NowMs + _options.RoundDeadlineMs, () => worker.AppliedRound == _ps!.AppliedRound && worker.Generation == _ps.Generation);
            return;
        }
        var source = LiveWorkers.FirstOrDefault(w => w != worker && InSync(w))
            ?? throw new InvalidOperationException($"no in-sync peer for {worker.Id} to synchronise from");
        var watch = Stopwatch.StartNew();
        var state = source.CaptureState();
        if (!await _checkpoints.TrySaveAsync(state, cancellationToken)) throw new InvalidOperationException("checkpoint pointer changed under the state transfer");
        var loaded = await _checkpoints.LoadLatestAsync(cancellationToken) ?? throw new InvalidOperationException("state transfer checkpoint vanished");
        worker.RestoreState(loaded.Checkpoint);
        double ms = watch.Elapsed.TotalMilliseconds + 2 * _options.Network.HopMs(loaded.Bytes);
        Metrics(source.Id).BusyMs += ms / 2;
        Metrics(worker.Id).BusyMs += ms / 2;
        _clock.AdvanceTo(_clock.NowMs + ms);
    }

    private async Task CheckpointAsync(CancellationToken cancellationToken)
    {
        var writer = IsParameterServer ? null : LiveWorkers.FirstOrDefault(w => w.Id == _view.CheckpointWriter && InSync(w)) ?? LiveWorkers.FirstOrDefault(InSync);
        var state = IsParameterServer ? _ps?.CaptureState() : writer?.CaptureState();
        if (state is null) return;
        var watch = Stopwatch.StartNew();
        bool saved = await _checkpoints.TrySaveAsync(state, cancellationToken);
        if (!saved) _log.LogWarning("checkpoint of round {Round} lost a race for the pointer; a newer one is in place", state.Round);
        // Checkpoints are written off the critical path: busy time for the writer, not round time.
        Metrics(state.Writer).BusyMs += watch.Elapsed.TotalMilliseconds + _options.Network.TransferMs(JobCheckpoints.Encode(state).Length);
    }

    private void CheckReplicasAgree(long round)
    {
        if (IsParameterServer) return;
        var hashes = LiveWorkers.Where(InSync).Select(w => (w.Id, w.WeightHash)).ToList();
        _consistencyChecks++;
        if (hashes.Select(h => h.WeightHash).Distinct().Count() > 1)
        {
            throw new InvalidOperationException($"replicas diverged after round {round}: " + string.Join(", ", hashes.Select(h => $"{h.Id}={h.WeightHash:x16}")));
        }
    }

    private Training.Trainer ReferenceTrainer() => IsParameterServer
        ? _ps!.Trainer
        : (LiveWorkers.FirstOrDefault(InSync) ?? LiveWorkers.First()).Trainer;

    private async Task StartWorkerAsync(string id)
    {
        var worker = new WorkerNode(id, _options.JobId, _options.Trainer, _data, _loggers.CreateLogger<WorkerNode>(), _buffers);
        _workers[id] = worker;
        _aliveSince[id] = _clock.NowMs;
        Metrics(id);
        switch (_options.Topology)
        {
            case Topology.ParameterServer:
                _bus.Subscribe(WeightsTopic, id, worker.HandleWeights);
                break;
            case Topology.PeerToPeer:
                _bus.Subscribe(GradientsTopic, id, worker.HandleGradient);
                break;
            default:
                _bus.Subscribe(SlicesTopic(id), id, worker.HandleGradientSlice);
                _bus.Subscribe(ReducedTopic(id), id, worker.HandleReducedSlice);
                break;
        }
        await _coordinator.JoinAsync(id);
    }

    private void StopWorker(string id)
    {
        var worker = _workers[id] ?? throw new InvalidOperationException($"{id} is not running");
        _bus.Unsubscribe(id);
        Metrics(id).AliveMs += _clock.NowMs - _aliveSince[id];
        worker.Dispose();
        _workers[id] = null;
    }

    private void StartParameterServer()
    {
        _ps = new ParameterServerNode(_options.JobId, _options.Trainer, _loggers.CreateLogger<ParameterServerNode>());
        _aliveSince[ParameterServerNode.NodeId] = _clock.NowMs;
        _bus.Subscribe(GradientsTopic, ParameterServerNode.NodeId, _ps.HandleGradient);
    }

    private void StopParameterServer()
    {
        _bus.Unsubscribe(ParameterServerNode.NodeId);
        Metrics(ParameterServerNode.NodeId).AliveMs += _clock.NowMs - _aliveSince[ParameterServerNode.NodeId];
        _ps!.Dispose();
        _ps = null;
    }

    private void ApplyView(MembershipView view)
    {
        foreach (var worker in LiveWorkers) worker.ApplyView(view, _shards);
        _ps?.SetMembers(view.Members);
    }

    private NodeMetrics Metrics(string node)
    {
        if (!_metrics.TryGetValue(node, out var metrics)) _metrics[node] = metrics = new NodeMetrics(node);
        return metrics;
    }

    private static string SlicesTopic(string owner) => $"slices.{owner}";

    private static string ReducedTopic(string peer) => $"reduced.{peer}";

    private RunResult Finish(double wallMs)
    {
        double end = _clock.NowMs;
        foreach (var (node, since) in _aliveSince)
        {
            bool alive = node == ParameterServerNode.NodeId ? _ps is not null : _workers.GetValueOrDefault(node) is not null;
            if (alive) Metrics(node).AliveMs += end - since;
        }
        var coordinator = Metrics("coordinator");
        coordinator.AliveMs = end;
        coordinator.BusyMs = _coordinator.Calls * _options.Network.LatencyMs;

        var reference = ReferenceTrainer();
        var final = reference.Evaluate(_data.Holdout, _data.HoldoutIndices);
        var weights = new float[reference.Parameters.Count];
        reference.Parameters.ExportWeights(weights);

        var counters = LiveWorkers.Select(w => w.Counters).Concat(_ps is null ? [] : [_ps.Counters]).ToList();
        var rejected = counters.SelectMany(c => c.Rejected).GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Sum(p => p.Value));
        long requests = _bus.Delivered + _coordinator.Calls + _store.Operations;
        var nodes = _metrics.Values.OrderBy(n => n.Node, StringComparer.Ordinal).ToList();
        return new RunResult
        {
            Options = _options,
            Scenario = _options.Faults.Name,
            Rounds = _rounds,
            Nodes = nodes,
            Faults = _faults,
            FinalAccuracy = final.Accuracy,
            FinalLoss = final.Loss,
            TimeToTargetMs = _rounds.FirstOrDefault(r => r.Accuracy >= _options.TargetAccuracy)?.EndMs,
            TotalMs = end,
            WallMs = wallMs,
            RoundsLost = _faults.Sum(f => f.RoundsLost),
            LateMessages = counters.Sum(c => c.Late),
            DuplicatesIgnored = counters.Sum(c => c.Duplicates),
            Rejected = rejected,
            GradientsDropped = _gradientsDropped,
            Requests = requests,
            ConsistencyChecks = _consistencyChecks,
            MessageBuffersReused = _buffers.Reused,
            ParameterCount = reference.Parameters.Count,
            FinalWeightHashes = LiveWorkers.ToDictionary(w => w.Id, w => w.WeightHash).Concat(_ps is null ? [] : [new KeyValuePair<string, ulong>("ps", _ps.WeightHash)]).ToDictionary(),
            FinalWeights = weights,
            FinalShardOwners = _view.ShardOwners,
            Cost = CostEstimator.Estimate(_prices, nodes, requests, end),
            Prices = _prices,
        };
    }

    public void Dispose()
    {
        foreach (var worker in LiveWorkers) worker.Dispose();
        _ps?.Dispose();
    }
}
