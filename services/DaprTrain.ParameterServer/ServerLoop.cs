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
/// checkpoint every few rounds.
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
                logger.LogWarning("round failed ({Error}); trying again", ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(500), time, stoppingToken);
            }
        }
        if (runtime.Use(n => n.AppliedRound) >= job.Rounds) logger.LogInformation("{Phases}", phases.Snapshot().Table());
    }

    private async Task RunRoundAsync(TrainingJobOptions job, JobCheckpoints checkpoints, CancellationToken stoppingToken)
    {
        // One span per round; the weights it publishes continue it in the workers (see the worker's round span).
        using var span = DaprTrain.Engine.Telemetry.TrainingMetrics.Tracing.StartActivity("round");
        span?.SetTag("daprtrain.node", ParameterServerNode.NodeId);
        var view = await coordinator.GetViewAsync();
        if (view.Members.Count == 0)
        {
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
                await publisher.PublishAsync(DaprTopics.Weights, runtime.Use(n => n.WeightsMessage()), stoppingToken);
                // The round starts over with a fresh view: the members (and their keys) may have changed meanwhile.
                return;
            }
        }
        await runtime.UntilAsync(time, n => view.Members.All(m => n.Holds(round, m)), TimeSpan.FromMilliseconds(job.RoundDeadlineMs), Poll, stoppingToken);
        waiting.Dispose();

        int contributors = runtime.Use(n => n.HeldSenders(round).Count);
        byte[] weights = phases.CloseRound(runtime);
        await publisher.PublishAsync(DaprTopics.Weights, weights, stoppingToken);
        // The project's Meter, under the names the embedded mode's accounting uses.
        TrainingMetrics.BytesSent.Add(weights.Length, Tags);
        TrainingMetrics.MessagesSent.Add(1, Tags);
        ReportRound(round, contributors, view.Members.Count, weights.Length);
        using var checkpointing = round % job.CheckpointEvery == 0 ? phases.Time(RoundPhase.Checkpoint) : null;
        if (round % job.CheckpointEvery == 0)
        {
            var state = runtime.Use(n => n.CaptureState());
            if (await checkpoints.TrySaveAsync(state, stoppingToken))
            {
                progress.Emit(ParameterServerNode.NodeId, DaprTrain.Coordination.Progress.ProgressEvent.Checkpoint(state.Round, state.Generation, state.Writer,
                    JobCheckpoints.EncodedLength(state)));
            }
            else logger.LogWarning("checkpoint of round {Round} lost a race for the pointer", round);
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
