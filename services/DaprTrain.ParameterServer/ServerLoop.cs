using DaprTrain.Engine.Telemetry;
using DaprTrain.Contracts;
using DaprTrain.Dapr;
using DaprTrain.Dapr.Hosting;
using DaprTrain.Coordination;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Storage;
using Microsoft.Extensions.Options;

namespace DaprTrain.ParameterServer;

/// <summary>
/// Starts from the latest checkpoint in the state store (in a new generation) or from scratch, then per round:
/// wait for the first gradient, then for every member's or the deadline; average, step, publish the weights;
/// checkpoint every few rounds (captured between rounds, written while the next round runs: Job:CheckpointInBackground).
/// </summary>
public sealed class ServerLoop(
    IOptions<TrainingJobOptions> options,
    ServerRuntime runtime,
    SidecarStatus sidecar,
    ICoordinator coordinator,
    ICheckpointStore store,
    IMessagePublisher publisher,
    TimeProvider time,
    ILogger<ServerLoop> logger,
    DaprTrain.Coordination.Security.MemberIdentity identity,
    DaprTrain.Coordination.Progress.ProgressEmitter progress,
    RoundPhases phases) : BackgroundService
{
    private long _roundStarted = time.GetTimestamp();
    private long _bytesAtLastRound;

    private static readonly System.Diagnostics.TagList Tags = TrainingMetrics.Node(ParameterServerNode.NodeId);

    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);

    /// <summary>The checkpoint write in flight (Job:CheckpointInBackground), if any; at most one at a time.</summary>
    private Task _checkpointWrite = Task.CompletedTask;

    /// <summary>
    /// The view between rounds (issue 16): asked for again when a round gives reason to think it changed (a member's
    /// gradient missing at the close, a sender it does not name, a gradient refused or kept for a key it lacks, no gradient
    /// within a deadline, an error), and at least every heartbeat period. Job:FewerCoordinatorCalls=false: every round.
    /// </summary>
    private readonly HeldView _held = new(coordinator, time, everyRound: !options.Value.FewerCoordinatorCalls, maxAge: TimeSpan.FromMilliseconds(options.Value.HeartbeatMs));

    /// <summary>Gradients refused by the node when the view was last checked against them.</summary>
    private int _refused;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var job = options.Value;
        // One run file starts every app; without a parameter server in the job's topology, this one stays idle.
        if (!job.Topology.HasParameterServer()) return;
        while (!sidecar.Ready) await Task.Delay(TimeSpan.FromMilliseconds(200), time, stoppingToken);
        var node = new ParameterServerNode(job.JobId, job.Trainer(), logger) { Aggregator = job.ResolvedAggregator(), Key = identity.Key, WorkerCompression = job.Compression() };
        var checkpoints = new JobCheckpoints(store, job.JobId);
        if (await checkpoints.LoadLatestAsync(stoppingToken) is { } latest)
        {
            node.RestoreState(latest.Checkpoint, latest.Checkpoint.Generation + 1);
            logger.LogInformation("restored round {Round} from the state store; generation {Generation}", latest.Checkpoint.Round, node.Generation);
        }
        else
        {
            await checkpoints.TrySaveAsync(node.CaptureState(), stoppingToken);
        }
        // The generation and this process's key go to the coordinator before any weights: workers take weights only of the
        // generation their view names, signed by the key it names for the server.
        var registered = await coordinator.RegisterServerAsync(node.Generation, identity);
        // The members first: gradients answering the weights below must find their senders known (and their keys).
        node.SetMembers(registered.Members, registered.PublicKeys);
        _held.Take(registered);
        runtime.Start(node);
        progress.Emit(ParameterServerNode.NodeId, DaprTrain.Coordination.Progress.ProgressEvent.NodeState(ParameterServerNode.NodeId, "alive", node.AppliedRound,
            $"serving generation {node.Generation} from round {node.AppliedRound}"));
        _roundStarted = time.GetTimestamp();
        await publisher.PublishAsync(DaprTopics.Weights, runtime.Use(n => n.WeightsMessage()), stoppingToken);

        while (!stoppingToken.IsCancellationRequested && runtime.Use(n => n.AppliedRound) < job.Rounds)
        {
            try
            {
                await phases.RunAsync(() => RunRoundAsync(job, checkpoints, stoppingToken), () => runtime.Use(n => n.AppliedRound));
            }
            catch (Exception ex) when (DaprErrors.IsTransient(ex) && !stoppingToken.IsCancellationRequested)
            {
                _held.Invalidate();
                logger.LogWarning("round failed ({Error}); trying again", ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(500), time, stoppingToken);
            }
        }
        // The last checkpoint is written before the loop ends, as it was when the writes were on the round's path.
        await TakeCheckpointWriteAsync();
        if (runtime.Use(n => n.AppliedRound) >= job.Rounds) logger.LogInformation("{Phases}", phases.Snapshot().Table());
    }

    /// <summary>Waits for the write in flight; a write that failed for good fails here, in a round, as it did on the round's path.</summary>
    private Task TakeCheckpointWriteAsync()
    {
        var write = _checkpointWrite;
        _checkpointWrite = Task.CompletedTask;
        return write;
    }

    /// <summary>
    /// Saves a captured state and reports it. Off the round's path (<paramref name="background"/>), a transient failure of the
    /// store loses this checkpoint with a warning, as a failed round lost it on the path; the next one is taken as usual.
    /// </summary>
    private async Task WriteCheckpointAsync(JobCheckpoints checkpoints, JobCheckpoint state, bool background, CancellationToken stoppingToken)
    {
        long started = time.GetTimestamp();
        try
        {
            if (await checkpoints.TrySaveAsync(state, stoppingToken))
            {
                progress.Emit(ParameterServerNode.NodeId, DaprTrain.Coordination.Progress.ProgressEvent.Checkpoint(state.Round, state.Generation, state.Writer,
                    JobCheckpoints.EncodedLength(state)));
            }
            else logger.LogWarning("checkpoint of round {Round} lost a race for the pointer", state.Round);
        }
        catch (Exception ex) when (background && DaprErrors.IsTransient(ex) && !stoppingToken.IsCancellationRequested)
        {
            logger.LogWarning("checkpoint of round {Round} was not written ({Error}); the next one is taken as usual", state.Round, ex.Message);
        }
        finally
        {
            if (background) phases.RecordOffPath("checkpoint write", time.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    private async Task RunRoundAsync(TrainingJobOptions job, JobCheckpoints checkpoints, CancellationToken stoppingToken)
    {
        // One span per round; the weights it publishes continue it in the workers (see the worker's round span).
        using var span = DaprTrain.Engine.Telemetry.TrainingMetrics.Tracing.StartActivity("round");
        span?.SetTag("daprtrain.node", ParameterServerNode.NodeId);
        var held = _held;
        var view = await held.CurrentAsync(orOld: true);
        if (view.Members.Count == 0)
        {
            // No worker has joined yet (or every one has left): asked again every 100 ms, counted apart (issue 16's figures).
            phases.RecordDetail("no members yet", 0);
            held.Invalidate();
            await Task.Delay(TimeSpan.FromMilliseconds(100), time, stoppingToken);
            return;
        }
        long round = runtime.Use(n => { n.SetMembers(view.Members, view.PublicKeys); return n.OpenRound; });
        // Until a gradient comes, the weights go out again every deadline: a worker that dropped them (its view did not name
        // this generation yet) or never got them (redelivery is not guaranteed) must not wait for ever.
        var resend = time.GetTimestamp();
        using var waiting = phases.Time(RoundPhase.Wait);
        while (runtime.Use(n => n.HeldSenders(round).Count) == 0)
        {
            await runtime.UntilAsync(time, n => n.HeldSenders(round).Count > 0, Poll, Poll, stoppingToken);
            if (time.GetElapsedTime(resend) >= TimeSpan.FromMilliseconds(job.RoundDeadlineMs))
            {
                // The round starts over with a fresh view: the members (and their keys) may have changed meanwhile.
                held.Invalidate();
                await publisher.PublishAsync(DaprTopics.Weights, runtime.Use(n => n.WeightsMessage()), stoppingToken);
                return;
            }
        }
        await runtime.UntilAsync(time, n => view.Members.All(m => n.Holds(round, m)), TimeSpan.FromMilliseconds(job.RoundDeadlineMs), Poll, stoppingToken);
        waiting.Dispose();
        // What the round says about the view: a member that sent nothing (gone?), a sender it does not name (joined?), a
        // gradient refused or kept for want of a key (a member that came back with a new one?). Any of them: ask next round.
        var (complete, unplaced, refused) = runtime.Use(n => (view.Members.All(m => n.Holds(round, m)), n.HeldApart(round) + n.Deferred,
            n.Counters.Rejected.Values.Sum()));
        if (!complete || unplaced > 0 || refused != _refused) held.Invalidate();
        _refused = refused;

        var senders = runtime.Use(n => n.HeldSenders(round).ToArray());
        int contributors = senders.Length;
        byte[] weights = phases.CloseRound(runtime);
        runtime.LastContributors = senders;
        await publisher.PublishAsync(DaprTopics.Weights, weights, stoppingToken);
        // The project's Meter, under the names the embedded mode's accounting uses.
        TrainingMetrics.BytesSent.Add(weights.Length, Tags);
        TrainingMetrics.MessagesSent.Add(1, Tags);
        ReportRound(round, contributors, view.Members.Count, weights.Length);
        using var checkpointing = round % job.CheckpointEvery == 0 ? phases.Time(RoundPhase.Checkpoint) : null;
        if (round % job.CheckpointEvery == 0)
        {
            // One write at a time: the previous one has swapped the pointer before this one reads it (what the round waits
            // for here, if anything, counts as checkpoint).
            await TakeCheckpointWriteAsync();
            // A copy of the weights and the optimizer's state, taken between rounds: the write needs nothing of the node.
            var state = runtime.Use(n => n.CaptureState());
            if (job.CheckpointInBackground)
            {
                // The weights are out: the workers compute and publish while the state store takes the checkpoint (issue 16:
                // on the round's path it took 10-20% of the server's round). The write runs in no round's context, so
                // nothing it does is timed into a round or traced under this round's span.
                using (ExecutionContext.SuppressFlow())
                {
                    _checkpointWrite = Task.Run(() => WriteCheckpointAsync(checkpoints, state, background: true, stoppingToken), CancellationToken.None);
                }
            }
            else await WriteCheckpointAsync(checkpoints, state, background: false, stoppingToken);
        }
        if (round % 10 == 0) logger.LogInformation("completed round {Round}/{Rounds}", round, job.Rounds);
    }

    /// <summary>The server's round-completed event: its generation, the gradients it averaged, the bytes it took and sent (one weights message; the broker fans it out).</summary>
    private void ReportRound(long round, int contributors, int members, int weightsBytes)
    {
        long now = time.GetTimestamp();
        long received = runtime.Gradients.BytesReceived;
        progress.Emit(ParameterServerNode.NodeId, DaprTrain.Coordination.Progress.ProgressEvent.RoundCompleted(round, runtime.Use(n => n.Generation),
            time.GetElapsedTime(_roundStarted, now).TotalMilliseconds, received - _bytesAtLastRound + weightsBytes, contributors, members));
        _bytesAtLastRound = received;
        _roundStarted = now;
    }
}
