using DaprTrain.Contracts;
using DaprTrain.Engine.Telemetry;
using DaprTrain.Coordination;
using DaprTrain.Dapr;
using DaprTrain.Dapr.Hosting;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Storage;
using DaprTrain.Engine.Topologies;
using Microsoft.Extensions.Options;

namespace DaprTrain.Worker;

/// <summary>
/// The worker's rounds in real time, driven by the job's <see cref="RoundPlan"/>: compute, publish what the plan
/// contributes, wait until it has gathered the members' parts or the deadline. Under a parameter server that is the
/// round (the server's weights arrived). Between peers (p2p, p2p-scatter): report what arrived, take the coordinator's
/// decision, settle it, publish the plan's second phase, wait until it can apply or the deadline, apply exactly that
/// decision; a worker that lacks part of it takes a peer's state from the checkpoint store. The loop never asks which
/// topology it runs: what differs is the plan's.
/// </summary>
public sealed class WorkerLoop(
    IOptions<TrainingJobOptions> options,
    IOptions<WorkerOptions> identity,
    RoundPlan plan,
    WorkerRuntime runtime,
    SidecarStatus sidecar,
    ICoordinator coordinator,
    ICheckpointStore store,
    IMessagePublisher publisher,
    IOptions<FunctionOptions> functionOptions,
    FunctionFanOut functions,
    TimeProvider time,
    ILogger<WorkerLoop> logger,
    DaprTrain.Coordination.Security.MemberIdentity identityKey,
    DaprTrain.Coordination.Progress.ProgressEmitter progressEmitter,
    IOptions<ProgressOptions> progressOptions,
    RoundPhases phases) : BackgroundService
{
    private readonly WorkerProgress _progress = new(progressEmitter, identity.Value.WorkerId, time);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);
    private readonly string _id = identity.Value.WorkerId;
    private readonly System.Diagnostics.TagList _tags = TrainingMetrics.Node(identity.Value.WorkerId);
    private volatile bool _expelled;
    // The view between rounds: asked for again only when something says it may have changed (issue 16). Peers learn it from
    // each round's decision; under a parameter server, where none comes, a view is kept at most a heartbeat period.
    private readonly HeldView _held = new(coordinator, time, everyRound: !options.Value.FewerCoordinatorCalls,
        maxAge: plan.DecidedByPeers ? null : TimeSpan.FromMilliseconds(options.Value.HeartbeatMs));
    private long _divergenceHandled;
    private ReplicaEvaluator? _evaluator;

    /// <summary>In serverless mode, where a share the function app could not compute is computed (its own trainer: the node's is the replica).</summary>
    private GradientFunction? _localFunction;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var job = options.Value;
        while (!sidecar.Ready) await Task.Delay(TimeSpan.FromMilliseconds(200), time, stoppingToken);

        var data = job.LoadData();
        if (progressOptions.Value.Enabled) _evaluator = new ReplicaEvaluator(job.Trainer(), data, logger);
        var shards = DaprTrain.Training.Data.Sharding.Split(data.TrainIndices, data.Train.Labels, job.Workers, job.Seed, DaprTrain.Training.Data.ShardingMode.Iid);
        var attack = identity.Value.ParsedAttack();
        if (attack is not null) logger.LogWarning("{Worker} is Byzantine for this experiment: it sends {Attack} gradients (Job:Attack)", _id, attack);
        // Signed messages only, in both directions: its own with its key, its peers' with the keys its view registers.
        runtime.Start(new WorkerNode(_id, job.JobId, job.Trainer(), data, logger) { Aggregator = job.ResolvedAggregator(), Attack = attack, Key = identityKey.Key, Compression = job.Compression() });
        if (functionOptions.Value.Enabled) StartServerless(job);
        _progress.Started(job, functionOptions.Value.Enabled);
        var checkpoints = new JobCheckpoints(store, job.JobId);

        var view = await coordinator.JoinAsync(_id, identityKey);
        var latest = await checkpoints.LoadLatestAsync(stoppingToken);
        if (latest is { } found && found.Checkpoint.Round > 0 && job.Topology.WorkersWriteCheckpoints())
        {
            runtime.Use(node => { node.ApplyView(view, shards); return 0; });
            await SynchroniseAsync(checkpoints, found.Checkpoint.Round, stoppingToken);
            view = await coordinator.GetViewAsync();
        }
        else
        {
            // A fresh job starts when every worker is there: replicas start in lockstep and no round is decided
            // by a partial membership that later workers cannot catch up with.
            logger.LogInformation("{Worker} waits for {Workers} workers to join job {Job} ({Topology})", _id, job.Workers, job.JobId, job.Topology.Name());
            while (view.Members.Count < job.Workers)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), time, stoppingToken);
                // The lease can run out before the job starts (a slow start, a loaded machine: joining, then reading the
                // store took longer than a lease): a heartbeat then says "not a member", and only a new join counts it.
                if (!await coordinator.HeartbeatAsync(_id, identityKey))
                {
                    logger.LogWarning("{Worker}: its lease ran out while it waited for the others; joining again", _id);
                    await RejoinAsync(stoppingToken);
                }
                view = await coordinator.GetViewAsync();
            }
        }
        runtime.Use(node => { node.ApplyView(view, shards); return 0; });
        _held.Take(view);

        // Heartbeats run on their own timer: a round can wait longer than a lease (deadlines, a slow peer).
        using var heartbeats = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var heartbeatLoop = time.RenewLeaseAsync(() => coordinator.HeartbeatAsync(_id, identityKey), TimeSpan.FromMilliseconds(job.HeartbeatMs), TimeSpan.FromMilliseconds(200),
            expired: () => _expelled = true, failed: ex => logger.LogWarning("{Worker}: heartbeat failed ({Error})", _id, ex.Message), heartbeats.Token);
        while (!stoppingToken.IsCancellationRequested && runtime.Use(n => n.AppliedRound) < job.Rounds)
        {
            try
            {
                await phases.RunAsync(() => RunRoundAsync(job, shards, checkpoints, stoppingToken), () => runtime.Use(n => n.AppliedRound));
                // Beside the round: queued for the publisher (and a copy of the weights for an evaluation at some rounds).
                ReportRound(job);
            }
            catch (Exception ex) when (DaprErrors.IsTransient(ex) && !stoppingToken.IsCancellationRequested)
            {
                // The sidecar, the coordinator or the store is briefly away (a restart, a network blip): try the round again,
                // with a fresh view (whatever happened meanwhile, the view may have changed).
                _held.Invalidate();
                logger.LogWarning("{Worker}: round failed ({Error}); trying again", _id, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(500), time, stoppingToken);
            }
        }
        await heartbeats.CancelAsync();
        await heartbeatLoop;
        var (accuracy, loss) = runtime.Finish(data);
        long finalRound = runtime.Use(n => n.AppliedRound);
        _progress.Evaluated(finalRound, accuracy, loss);
        // One job-finished for the job: from the first member of the final view (every replica holds the same weights).
        if ((await coordinator.GetViewAsync()).Members.Order(StringComparer.Ordinal).FirstOrDefault() == _id) _progress.Finished(finalRound, accuracy, loss);
        logger.LogInformation("{Worker} finished {Rounds} rounds: held-out accuracy {Accuracy:P2}, weight hash {Hash:x16}",
            _id, job.Rounds, accuracy, runtime.Use(n => n.WeightHash));
        logger.LogInformation("{Phases}", phases.Snapshot().Table());
    }

    /// <summary>One round through the plan: compute, contribute, gather; between peers also decide, settle, share and apply.</summary>
    private async Task RunRoundAsync(TrainingJobOptions job, long[][] shards, JobCheckpoints checkpoints, CancellationToken stoppingToken)
    {
        // One span per round: the publishes of this round (gRPC calls to daprd) are its children, and daprd carries
        // the trace into the CloudEvents its peers receive.
        using var span = DaprTrain.Engine.Telemetry.TrainingMetrics.Tracing.StartActivity("round");
        span?.SetTag("daprtrain.node", _id);
        span?.SetTag("daprtrain.round", runtime.Ready ? runtime.Use(n => n.OpenRound) : 0);
        if (_expelled)
        {
            _expelled = false;
            // The lease ran out (this worker or its sidecar was away too long): the others went on without it, so
            // it joins again and takes their state before it contributes anything.
            logger.LogWarning("{Worker} was removed from the job (lease expired); joining again", _id);
            _progress.State("rejoining", runtime.Use(n => n.AppliedRound), "its lease expired; joining again");
            await coordinator.JoinAsync(_id, identityKey);
            _held.Invalidate();
            // Only peers take a state from the checkpoints. Under a parameter server the server's next weights bring
            // this worker up to date, and waiting for a checkpoint newer than the server's latest would wait for ever
            // when every worker was expelled: the server writes none until their gradients come.
            if (job.Topology.WorkersWriteCheckpoints())
            {
                await SynchroniseAsync(checkpoints, (await checkpoints.LoadLatestAsync(stoppingToken))?.Checkpoint.Round ?? 0, stoppingToken);
            }
            return;
        }
        // Weights of a generation the view does not name: only a view from the coordinator can let them in.
        if (runtime.Use(n => n.NeedsView)) _held.Invalidate();
        var view = await _held.CurrentAsync();
        if (!view.Members.Contains(_id, StringComparer.Ordinal))
        {
            // The lease ran out before a heartbeat could say so: no round without membership (no slice to own, no say).
            _expelled = true;
            return;
        }
        long round = runtime.Use(node =>
        {
            node.ApplyView(view, shards);
            // Under the node's lock, as the hints are taken: a hint is verified with the key of the view applied.
            runtime.Hints.Trust(view.DecisionKey);
            return node.OpenRound;
        });
        // A retried round sends what it already computed: peers may hold the first copy, and every copy must be equal.
        if (functionOptions.Value.Enabled && !runtime.Use(node => node.HasOwnGradient(node.OpenRound)) && !await ComputeByFunctionsAsync(job, stoppingToken)) return;
        // Computed and encoded in one turn of the node: between two turns a delivery may open the next round.
        var (contribution, colludes) = runtime.Use(node =>
        {
            if (!node.HasOwnGradient(node.OpenRound))
            {
                using var computing = phases.Time(RoundPhase.Compute);
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                node.ComputeGradient();
                TrainingMetrics.BusyTime.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, _tags);
            }
            if (node.Colludes(node.OpenRound) && !node.OwnGradientSent) return ((IReadOnlyList<Outgoing>?)null, true);
            using var encoding = phases.Time(RoundPhase.Encode);
            return (plan.Contribute(node), false);
        });
        var deadline = TimeSpan.FromMilliseconds(job.RoundDeadlineMs);
        var contributors = view.Members.Except(view.PendingSyncs).ToList();
        if (colludes)
        {
            await ColludeAsync(round, contributors, deadline, stoppingToken);
            contribution = runtime.Use(node =>
            {
                // The round moved on while this insider waited (a state taken from a peer): nothing of it is sent.
                if (node.OpenRound != round || !node.HasOwnGradient(round)) return null;
                using var encoding = phases.Time(RoundPhase.Encode);
                return plan.Contribute(node);
            });
            if (contribution is null) return;
        }
        await PublishAsync(contribution!, stoppingToken);

        if (!plan.DecidedByPeers)
        {
            // The server decides; without its weights within two deadlines (a server restarting, a lost message) the
            // gradient is sent again.
            // Weights of a generation the view does not name yet end the wait: the next round asks the coordinator first.
            // No decision tells a worker here that the view changed (the shards it trains on): a view a heartbeat period
            // old is renewed now, while the server gathers the round, rather than before the next round's compute.
            if (job.FewerCoordinatorCalls && _held.Old)
            {
                var renewed = await _held.CurrentAsync(orOld: true);
                runtime.Use(node => { node.ApplyView(renewed, shards); return 0; });
            }
            bool weightsCame;
            using (phases.Time(RoundPhase.Wait)) weightsCame = await runtime.UntilAsync(time, n => plan.Gathered(n, round, contributors) || n.NeedsView, deadline * 2, Poll, stoppingToken);
            // No weights within two deadlines: the server may have moved on to another generation and key.
            if (!weightsCame) _held.Invalidate();
            return;
        }

        using (phases.Time(RoundPhase.Wait)) await runtime.UntilAsync(time, n => plan.Gathered(n, round, contributors), deadline, Poll, stoppingToken);
        var holds = runtime.Use(n => n.HeldSenders(round));
        RoundDecision? decided = null;
        bool hints = job.UsesDecisionHints;
        // Before the report: a hint that overtakes the report's answer still counts. Under the node's lock, which deliveries
        // (and so hints) are handled under: a late hint of an earlier round cannot count for this one.
        if (hints) runtime.Use(_ => { runtime.Hints.Await(round); return 0; });
        if (job.FewerCoordinatorCalls) decided = await coordinator.ReportAndTryCloseAsync(_id, 0, round, holds, deadline, identityKey);
        else await coordinator.ReportAsync(_id, 0, round, holds, identityKey);
        if (decided is not null && hints) PublishDecisionHint(decided, stoppingToken);
        if (decided is null)
        {
            using (phases.Time(RoundPhase.Wait, "agreement"))
            {
                if (hints) decided = await AwaitDecisionAsync(round, deadline, stoppingToken);
                else
                {
                    // The report's answer said the round is open: the others' reports take at least a poll to come.
                    var poll = TimeSpan.FromMilliseconds(job.DecisionPollMs);
                    if (job.FewerCoordinatorCalls) await Task.Delay(poll, time, stoppingToken);
                    await time.UntilAsync(async () => (decided = await coordinator.TryCloseRoundAsync(_id, 0, round, deadline, identityKey)) is not null, deadline * 4, poll, stoppingToken);
                }
            }
        }
        var closed = decided ?? await coordinator.CloseRoundAsync(_id, 0, round, identityKey);
        // The decision names the view version it was taken under: every replica learns from the same decision whether the
        // view changed, and the next round asks for it only then.
        _held.Decided(closed);
        // Every replica settles the coordinator's decision alike, against the members of the view it applied.
        var decision = runtime.Use(n => plan.Settle(closed, n.Members));
        _progress.LastIncluded = decision.Included.Count;
        await PublishAsync(runtime.Use(n => { using var reducing = phases.Time(RoundPhase.Aggregate, "share"); return plan.Share(n, decision); }), stoppingToken);
        using (phases.Time(RoundPhase.Wait)) await runtime.UntilAsync(time, n => plan.ReadyToApply(n, decision), deadline, Poll, stoppingToken);

        if (!phases.Apply(runtime, n => plan.TryApply(n, decision)))
        {
            logger.LogWarning("{Worker} lacks parts of round {Round} the decision includes; taking a peer's state", _id, round);
            await SynchroniseAsync(checkpoints, (await checkpoints.LoadLatestAsync(stoppingToken))?.Checkpoint.Round ?? 0, stoppingToken);
            return;
        }

        if (round % job.CheckpointEvery == 0 && await DivergedAsync(round))
        {
            // Loudly: the replicas no longer agree (a bit flip, a bug, a Byzantine insider). This one is not the majority's:
            // it takes the checkpoint writer's state, which the request below makes it write at once.
            await SynchroniseAsync(checkpoints, round, stoppingToken);
            return;
        }

        // Every few rounds, at once when a member that joined late waits for a state to continue from, and after the
        // last round: a worker that was away when the others finished takes that final state and finishes too.
        if (view.CheckpointWriter == _id && (round % job.CheckpointEvery == 0 || view.PendingSyncs.Count > 0 || round == job.Rounds))
        {
            using var checkpointing = phases.Time(RoundPhase.Checkpoint);
            var state = runtime.Use(n => n.CaptureState());
            if (!await checkpoints.TrySaveAsync(state, stoppingToken)) logger.LogWarning("checkpoint of round {Round} lost a race for the pointer", round);
            else ReportCheckpoint(state);
            // The joiners now have a state to continue from; from the next round on the others wait for their gradients.
            foreach (var joiner in view.PendingSyncs) await coordinator.SetSyncRequestAsync(_id, joiner, pending: false, identityKey);
            if (view.PendingSyncs.Count > 0) _held.Invalidate();
        }
        if (round % 10 == 0) logger.LogInformation("{Worker} completed round {Round}/{Rounds}", _id, round, job.Rounds);
    }

    /// <summary>
    /// Serverless: the batch's shares go to the function app, one invocation each, with the round's weights; their
    /// gradients are combined in share order into this worker's gradient (the same as computing the batch whole, up to
    /// float summation order). The node is not held while the functions work: deliveries go on meanwhile.
    /// </summary>
    /// <returns>False when the round moved on while the functions worked (under a parameter server, its weights came): the
    /// gradients were computed on weights that are no longer the node's, so they are dropped and the next round starts.</returns>
    private async Task<bool> ComputeByFunctionsAsync(TrainingJobOptions job, CancellationToken stoppingToken)
    {
        using var computing = phases.Time(RoundPhase.Compute, "functions");
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        var invocations = runtime.Use(node =>
        {
            var shares = node.DrawBatchShares(functionOptions.Value.Shares);
            // One copy of the weights for every share of the round: the node's own change when the round is applied.
            ReadOnlyMemory<float> weights = node.Trainer.Parameters.WeightSpan.ToArray();
            return shares.Select((samples, share) => new FunctionInvocation(job.JobId, _id, node.Generation, node.OpenRound, share, samples, weights)).ToList();
        });
        var gradients = await functions.ComputeAsync(invocations, ComputeLocally, stoppingToken);
        var asked = invocations[0];
        bool combined = runtime.Use(node =>
        {
            if (node.OpenRound != asked.Round || node.Generation != asked.Generation || node.HasOwnGradient(node.OpenRound)) return false;
            node.CombineShareGradients(gradients);
            return true;
        });
        TrainingMetrics.BusyTime.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, _tags);
        if (!combined) logger.LogWarning("{Worker}: round {Round} moved on while its shares were computed; their gradients are dropped", _id, asked.Round);
        return combined;
    }

    private float[] ComputeLocally(FunctionInvocation invocation)
    {
        var function = _localFunction!;
        lock (function) return runtime.Use(node => function.Invoke(invocation.Weights.Span, node.TrainData, invocation.Samples));
    }

    private void StartServerless(TrainingJobOptions job)
    {
        var settings = functionOptions.Value;
        _localFunction = new GradientFunction(job.Trainer());
        // The invocation carries the weights inline: it has to fit daprd's body limit (--max-body-size, 4 MiB by default).
        long request = FunctionInvocationCodec.MaxLength(job.BatchSize, _localFunction.ParameterCount);
        if (request > job.SidecarMaxBodyBytes)
        {
            throw new InvalidOperationException($"Functions:Enabled: an invocation carries the weights, {request} bytes for the {job.Model} model, over the sidecar's "
                + $"body limit (Job:SidecarMaxBodyBytes {job.SidecarMaxBodyBytes}); raise daprd's --max-body-size (dapr.io/max-body-size) and that option together, or train a smaller model.");
        }
        logger.LogInformation("{Worker} computes each batch through {Shares} invocations of app {App} (timeout {Timeout} ms, {Attempts} attempts, then locally)",
            _id, settings.Shares, settings.AppId, settings.TimeoutMs, settings.Attempts);
    }

    public override void Dispose()
    {
        _localFunction?.Dispose();
        _evaluator?.Dispose();
        base.Dispose();
    }

    /// <summary>Compares this replica's weight hash through the coordinator; true when a complete comparison found it diverged.</summary>
    private async Task<bool> DivergedAsync(long round)
    {
        ulong hash = runtime.Use(n => n.WeightHash);
        var check = await coordinator.CompareWeightsAsync(_id, round, hash, identityKey);
        // A comparison acted on once: the state taken since then is judged by the next one.
        if (!check.Complete || check.Round <= _divergenceHandled || !check.Diverged.Contains(_id, StringComparer.Ordinal)) return false;
        _divergenceHandled = round;
        logger.LogError("{Worker}: REPLICA DIVERGED: after round {Round} its weight hash differs from the majority's {Majority:x16}; resynchronising from the newest checkpoint",
            _id, check.Round, check.Majority);
        return true;
    }

    private void ReportRound(TrainingJobOptions job)
    {
        long received = runtime.BytesReceived;
        var (applied, reported) = runtime.Use(n => (n.AppliedRound, _progress.AfterRound(n.AppliedRound, n.Generation, received, n.Members.Count)));
        // Under a parameter server the server writes the checkpoints and loads no data: worker-1 evaluates at those rounds.
        if (reported && !job.Topology.WorkersWriteCheckpoints() && _id == DaprApps.Worker(1) && applied % job.CheckpointEvery == 0) Evaluate(applied);
    }

    /// <summary>The replica's held-out accuracy for the dashboard, evaluated off the round's path (the node is held only for the copy).</summary>
    private void Evaluate(long round)
    {
        if (_evaluator is null) return;
        var weights = runtime.Use(n => n.Trainer.Parameters.WeightSpan.ToArray());
        if (!_evaluator.TryStart(round, weights, _progress.Evaluated)) logger.LogDebug("{Worker}: evaluation of round {Round} skipped, the last one still runs", _id, round);
    }

    /// <summary>A checkpoint written, and at the same rounds the replica's held-out accuracy: the dashboard's curve in a Dapr job.</summary>
    private void ReportCheckpoint(JobCheckpoint state)
    {
        _progress.Checkpoint(state, JobCheckpoints.EncodedLength(state));
        Evaluate(state.Round);
    }

    /// <summary>
    /// ALIE in the Dapr worker (Job:Attack alie, p2p only; see <see cref="WorkerOptions.Attack"/>): this insider reads the
    /// round's other gradients from the topic before it writes its own, waiting for them up to the round's deadline, and
    /// sends mean - z x std of what it holds. It knows no other colluder, so z is the paper's for n contributors and f = 1.
    /// </summary>
    private async Task ColludeAsync(long round, IReadOnlyList<string> contributors, TimeSpan deadline, CancellationToken stoppingToken)
    {
        var peers = contributors.Where(m => m != _id).ToList();
        using (phases.Time(RoundPhase.Wait, "alie")) await runtime.UntilAsync(time, n => peers.All(p => n.Holds(round, p)), deadline, Poll, stoppingToken);
        int used = runtime.Use(node =>
        {
            if (node.OpenRound != round || node.OwnGradientSent) return -1;
            var honest = node.PeerGradients(round);
            if (honest.Count > 0) node.Collude(honest, contributors.Count, colluding: 1);
            return honest.Count;
        });
        if (used == 0) logger.LogWarning("{Worker}: no peer's gradient came within the deadline of round {Round}; it sends its own", _id, round);
    }

    /// <summary>
    /// Waits for the coordinator's decision of a round this worker's report left open (Job:DecisionHints): takes it from a
    /// peer's hint when the coordinator's key verifies it there, asks the coordinator when a hint only says the round is
    /// decided, and asks at least every poll, for four deadlines (then the caller closes the round itself). A hint the
    /// coordinator does not bear out (early, or of a view without the key) makes this wait poll alone: one call per hint at most.
    /// </summary>
    private async Task<RoundDecision?> AwaitDecisionAsync(long round, TimeSpan deadline, CancellationToken stoppingToken)
    {
        var until = time.GetUtcNow() + deadline * 4;
        var poll = TimeSpan.FromMilliseconds(options.Value.DecisionPollMs);
        bool trustHints = true;
        while (true)
        {
            // A delivery wakes the runtime's waits: the hint's ends this one at once.
            bool hinted = await runtime.UntilAsync(time, _ => runtime.Hints.Decided(round) is not null || (trustHints && runtime.Hints.Hinted), poll, poll, stoppingToken);
            // The coordinator's own answer, signed by it and handed on by the peer whose report closed the round (even after
            // a hint not borne out: a verified decision is the coordinator's).
            if (runtime.Use(_ => runtime.Hints.Decided(round)) is { } handedOn)
            {
                phases.RecordDetail("agreement handed on by a peer", 0);
                return handedOn;
            }
            // A hint of this round that failed the check: forged, or signed by a key this view does not name (the coordinator
            // had to make a new one). Renewing the view before the next round costs one call and brings its key.
            if (runtime.Use(_ => runtime.Hints.Rejected)) _held.Invalidate();
            if (await coordinator.TryCloseRoundAsync(_id, 0, round, deadline, identityKey) is { } decided)
            {
                phases.RecordDetail(hinted ? "agreement asked on a hint" : "agreement asked on a poll", 0);
                return decided;
            }
            if (hinted)
            {
                trustHints = false;
                phases.RecordDetail("agreement hint not borne out", 0);
            }
            if (time.GetUtcNow() >= until) return null;
        }
    }

    /// <summary>
    /// Hands the coordinator's signed decision of a round this worker's report closed on to the peers (Job:DecisionHints).
    /// Off the round's path: the worker goes on at once, and a hint that is not published (or a decision too large for one)
    /// costs the peers a poll, as before hints.
    /// </summary>
    private void PublishDecisionHint(RoundDecision decided, CancellationToken stoppingToken)
    {
        if (DecisionHints.Encode(options.Value.JobId, decided) is not { } hint) return;
        // In no round's context: the publish is not timed into this round.
        using (ExecutionContext.SuppressFlow())
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    await publisher.PublishAsync(DaprTopics.Decisions, hint, stoppingToken);
                }
                catch (Exception ex)
                {
                    if (!stoppingToken.IsCancellationRequested) logger.LogDebug("the decision of round {Round} was not handed on ({Error}); the peers poll for it", decided.Round, ex.Message);
                }
            }, CancellationToken.None);
        }
    }

    private async Task PublishAsync(IReadOnlyList<Outgoing> messages, CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            await publisher.PublishAsync(BrokerTopics.Publishing(options.Value.Topology, message.Topic, _id), message.Payload, cancellationToken);
            Interlocked.Add(ref _progress.BytesSent, message.Payload.Length);
            // The project's Meter, under the names the embedded mode's accounting uses.
            TrainingMetrics.BytesSent.Add(message.Payload.Length, _tags);
            TrainingMetrics.MessagesSent.Add(1, _tags);
        }
    }

    /// <summary>
    /// Joins the running job: asks the checkpoint writer for a state newer than <paramref name="seenRound"/>, loads it,
    /// and continues from the round after it, as every other replica does. When the job has already run all its
    /// rounds, its final state is the one to take: nobody will write a newer one.
    /// </summary>
    private async Task SynchroniseAsync(JobCheckpoints checkpoints, long seenRound, CancellationToken stoppingToken)
    {
        var job = options.Value;
        using var synchronising = phases.Time(RoundPhase.Checkpoint, "synchronise");
        // Its own sync request changes the view (and whatever made it synchronise may have): the next round asks for one.
        _held.Invalidate();
        await coordinator.SetSyncRequestAsync(_id, _id, pending: true, identityKey);
        logger.LogInformation("{Worker} asks for the job's current state (newer than round {Round})", _id, seenRound);
        while (!stoppingToken.IsCancellationRequested)
        {
            if (!await coordinator.HeartbeatAsync(_id, identityKey))
            {
                // As in the wait for the others: a lease that ran out while the state was read is renewed by a join. Until
                // the coordinator has taken this process's key (an older registration of its id still holds a lease) it
                // asks no state for that id, which belongs to the other registration.
                if (!await RejoinAsync(stoppingToken)) continue;
                await coordinator.SetSyncRequestAsync(_id, _id, pending: true, identityKey);
            }
            var latest = (await checkpoints.LoadLatestAsync(stoppingToken))?.Checkpoint;
            if (latest is not null && (latest.Round > seenRound || latest.Round >= job.Rounds))
            {
                Restore(latest);
                await coordinator.SetSyncRequestAsync(_id, _id, pending: false, identityKey);
                _progress.LastIncluded = null;
                _progress.State("alive", latest.Round, $"continues from the state of round {latest.Round} written by {latest.Writer}");
                logger.LogInformation("{Worker} continues from round {Round}, written by {Writer}", _id, latest.Round, latest.Writer);
                return;
            }
            var view = await coordinator.GetViewAsync();
            if (view.CheckpointWriter is null && view.Members.FirstOrDefault() == _id)
            {
                // Every member waits for a state, so nobody will write one (the others died or were all expelled).
                // The first of them goes on from the newest state the job still has, its own replica or the latest
                // checkpoint, and as the writer serves the rest.
                long own = runtime.Use(n => n.AppliedRound);
                bool fromCheckpoint = latest is not null && latest.Round > own;
                if (fromCheckpoint) Restore(latest!);
                await coordinator.SetSyncRequestAsync(_id, _id, pending: false, identityKey);
                logger.LogWarning("{Worker}: no member can serve a newer state; continuing from round {Round} ({Source})", _id,
                    runtime.Use(n => n.AppliedRound), fromCheckpoint ? "the latest checkpoint" : "its own replica");
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(20), time, stoppingToken);
        }
    }

    /// <summary>
    /// Joins again; true when the view registers this process's key for its id. False while another registration of the
    /// id (this worker before a restart, with another key) still holds a lease: the coordinator keeps that key, and its
    /// heartbeats from this process are refused. It then waits a heartbeat period before the caller tries again, so a
    /// restarted worker asks about once a heartbeat until the old lease has run out instead of in a tight loop.
    /// </summary>
    private async Task<bool> RejoinAsync(CancellationToken stoppingToken)
    {
        var view = await coordinator.JoinAsync(_id, identityKey);
        if (view.PublicKeys.TryGetValue(_id, out var registered) && registered == identityKey.Key.PublicKey) return true;
        logger.LogWarning("{Worker}: the coordinator still holds another key for this id (an earlier process of it); joining again in {Ms} ms", _id, options.Value.HeartbeatMs);
        await Task.Delay(TimeSpan.FromMilliseconds(options.Value.HeartbeatMs), time, stoppingToken);
        return false;
    }

    /// <summary>p2p replicas all live in generation 0, whoever wrote the state.</summary>
    private void Restore(JobCheckpoint state) => runtime.Use(n => { n.RestoreState(state with { Generation = 0 }); return 0; });
}
