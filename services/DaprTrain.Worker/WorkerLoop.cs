using DaprTrain.Contracts;
using DaprTrain.Dapr;
using DaprTrain.Coordination;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.Engine.Storage;
using Microsoft.Extensions.Options;

namespace DaprTrain.Worker;

/// <summary>
/// The worker's rounds in real time. p2p: compute, publish, wait for every member's gradient or the deadline,
/// report what arrived, take the coordinator's decision, apply exactly that set; a worker that lacks part of it
/// takes a peer's state from the checkpoint store. ps: compute, publish, wait for the server's weights.
/// </summary>
public sealed class WorkerLoop(
    IOptions<TrainingJobOptions> options,
    WorkerRuntime runtime,
    SidecarStatus sidecar,
    ICoordinator coordinator,
    ICheckpointStore store,
    IMessagePublisher publisher,
    ILogger<WorkerLoop> logger) : BackgroundService
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);
    private volatile bool _expelled;

    private async Task HeartbeatAsync(TrainingJobOptions job, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (!await coordinator.HeartbeatAsync(job.WorkerId)) _expelled = true;
                await Task.Delay(job.HeartbeatMs, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex) when (DaprErrors.IsTransient(ex))
            {
                logger.LogWarning("{Worker}: heartbeat failed ({Error})", job.WorkerId, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(200), CancellationToken.None);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var job = options.Value;
        while (!sidecar.Ready) await Task.Delay(TimeSpan.FromMilliseconds(200), stoppingToken);

        var data = job.LoadData();
        var shards = DaprTrain.Training.Data.Sharding.Split(data.TrainIndices, data.Train.Labels, job.Workers, job.Seed, DaprTrain.Training.Data.ShardingMode.Iid);
        runtime.Start(new WorkerNode(job.WorkerId, job.JobId, job.Trainer(), data, logger));
        var checkpoints = new JobCheckpoints(store, job.JobId);

        var view = await coordinator.JoinAsync(job.WorkerId);
        var latest = await checkpoints.LoadLatestAsync(stoppingToken);
        if (latest is { } found && found.Checkpoint.Round > 0 && job.Topology == "p2p")
        {
            runtime.Use(node => { node.ApplyView(view, shards); return 0; });
            await SynchroniseAsync(checkpoints, found.Checkpoint.Round, stoppingToken);
            view = await coordinator.GetViewAsync();
        }
        else
        {
            // A fresh job starts when every worker is there: replicas start in lockstep and no round is decided
            // by a partial membership that later workers cannot catch up with.
            logger.LogInformation("{Worker} waits for {Workers} workers to join job {Job}", job.WorkerId, job.Workers, job.JobId);
            while (view.Members.Count < job.Workers)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), stoppingToken);
                await coordinator.HeartbeatAsync(job.WorkerId);
                view = await coordinator.GetViewAsync();
            }
        }
        runtime.Use(node => { node.ApplyView(view, shards); return 0; });

        // Heartbeats run on their own timer: a round can wait longer than a lease (deadlines, a slow peer).
        using var heartbeats = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var heartbeatLoop = HeartbeatAsync(job, heartbeats.Token);
        while (!stoppingToken.IsCancellationRequested && runtime.Use(n => n.AppliedRound) < job.Rounds)
        {
            try
            {
                await RunRoundAsync(job, shards, checkpoints, stoppingToken);
            }
            catch (Exception ex) when (DaprErrors.IsTransient(ex) && !stoppingToken.IsCancellationRequested)
            {
                // The sidecar, the coordinator or the store is briefly away (a restart, a network blip): try the round again.
                logger.LogWarning("{Worker}: round failed ({Error}); trying again", job.WorkerId, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(500), stoppingToken);
            }
        }
        await heartbeats.CancelAsync();
        await heartbeatLoop;
        double accuracy = runtime.Finish(data);
        logger.LogInformation("{Worker} finished {Rounds} rounds: held-out accuracy {Accuracy:P2}, weight hash {Hash:x16}",
            job.WorkerId, job.Rounds, accuracy, runtime.Use(n => n.WeightHash));
    }

    /// <summary>One round: compute, publish, then wait for the server's weights (ps) or agree on and apply the round (p2p).</summary>
    private async Task RunRoundAsync(TrainingJobOptions job, long[][] shards, JobCheckpoints checkpoints, CancellationToken stoppingToken)
    {
        if (_expelled)
        {
            _expelled = false;
            // The lease ran out (this worker or its sidecar was away too long): the others went on without it, so
            // it joins again and takes their state before it contributes anything.
            logger.LogWarning("{Worker} was removed from the job (lease expired); joining again", job.WorkerId);
            await coordinator.JoinAsync(job.WorkerId);
            await SynchroniseAsync(checkpoints, (await checkpoints.LoadLatestAsync(stoppingToken))?.Checkpoint.Round ?? 0, stoppingToken);
            return;
        }
        var view = await coordinator.GetViewAsync();
        long round = runtime.Use(node => { node.ApplyView(view, shards); return node.OpenRound; });
        // A retried round sends the gradient it already computed: peers may hold the first copy, and every copy must be equal.
        byte[] gradient = runtime.Use(node =>
        {
            if (!node.HasOwnGradient(node.OpenRound)) node.ComputeGradient();
            return node.GradientMessage();
        });
        await publisher.PublishAsync(DaprTopics.Gradients, gradient, stoppingToken);

        if (job.Topology == "ps")
        {
            // Without weights within two deadlines (a server restarting, a lost message) the gradient is sent again.
            await WaitAsync(() => runtime.Use(n => n.AppliedRound >= round || n.OpenRound != round), TimeSpan.FromMilliseconds(job.RoundDeadlineMs * 2), stoppingToken);
            return;
        }

        var deadline = TimeSpan.FromMilliseconds(job.RoundDeadlineMs);
        var contributors = view.Members.Except(view.PendingSyncs).ToList();
        await WaitAsync(() => runtime.Use(n => contributors.All(m => n.Holds(round, m))), deadline, stoppingToken);
        await coordinator.ReportAsync(job.WorkerId, 0, round, runtime.Use(n => n.HeldSenders(round)));
        RoundDecision? decision = null;
        await WaitAsync(async () => (decision = await coordinator.TryCloseRoundAsync(0, round, deadline)) is not null, deadline * 4, stoppingToken);
        decision ??= await coordinator.CloseRoundAsync(0, round);

        bool applied = runtime.Use(node =>
        {
            var held = node.HeldSenders(round);
            if (!decision.Included.All(held.Contains)) return false;
            node.ApplyDecision(decision);
            return true;
        });
        if (!applied)
        {
            logger.LogWarning("{Worker} lacks gradients the decision of round {Round} includes; taking a peer's state", job.WorkerId, round);
            await SynchroniseAsync(checkpoints, (await checkpoints.LoadLatestAsync(stoppingToken))?.Checkpoint.Round ?? 0, stoppingToken);
            return;
        }

        // Every few rounds, at once when a member that joined late waits for a state to continue from, and after the
        // last round: a worker that was away when the others finished takes that final state and finishes too.
        if (view.CheckpointWriter == job.WorkerId && (round % job.CheckpointEvery == 0 || view.PendingSyncs.Count > 0 || round == job.Rounds))
        {
            var state = runtime.Use(n => n.CaptureState());
            if (!await checkpoints.TrySaveAsync(state, stoppingToken)) logger.LogWarning("checkpoint of round {Round} lost a race for the pointer", round);
            // The joiners now have a state to continue from; from the next round on the others wait for their gradients.
            foreach (var joiner in view.PendingSyncs) await coordinator.SetSyncRequestAsync(joiner, pending: false);
        }
        if (round % 10 == 0) logger.LogInformation("{Worker} completed round {Round}/{Rounds}", job.WorkerId, round, job.Rounds);
    }

    /// <summary>
    /// Joins the running job: asks the checkpoint writer for a state newer than <paramref name="seenRound"/>, loads it,
    /// and continues from the round after it, as every other replica does. When the job has already run all its
    /// rounds, its final state is the one to take: nobody will write a newer one.
    /// </summary>
    private async Task SynchroniseAsync(JobCheckpoints checkpoints, long seenRound, CancellationToken stoppingToken)
    {
        var job = options.Value;
        await coordinator.SetSyncRequestAsync(job.WorkerId, pending: true);
        logger.LogInformation("{Worker} asks for the job's current state (newer than round {Round})", job.WorkerId, seenRound);
        while (!stoppingToken.IsCancellationRequested)
        {
            await coordinator.HeartbeatAsync(job.WorkerId);
            var latest = (await checkpoints.LoadLatestAsync(stoppingToken))?.Checkpoint;
            if (latest is not null && (latest.Round > seenRound || latest.Round >= job.Rounds))
            {
                Restore(latest);
                await coordinator.SetSyncRequestAsync(job.WorkerId, pending: false);
                logger.LogInformation("{Worker} continues from round {Round}, written by {Writer}", job.WorkerId, latest.Round, latest.Writer);
                return;
            }
            var view = await coordinator.GetViewAsync();
            if (view.CheckpointWriter is null && view.Members.FirstOrDefault() == job.WorkerId)
            {
                // Every member waits for a state, so nobody will write one (the others died or were all expelled).
                // The first of them goes on from the newest state the job still has, its own replica or the latest
                // checkpoint, and as the writer serves the rest.
                long own = runtime.Use(n => n.AppliedRound);
                bool fromCheckpoint = latest is not null && latest.Round > own;
                if (fromCheckpoint) Restore(latest!);
                await coordinator.SetSyncRequestAsync(job.WorkerId, pending: false);
                logger.LogWarning("{Worker}: no member can serve a newer state; continuing from round {Round} ({Source})", job.WorkerId,
                    runtime.Use(n => n.AppliedRound), fromCheckpoint ? "the latest checkpoint" : "its own replica");
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(20), stoppingToken);
        }
    }

    /// <summary>p2p replicas all live in generation 0, whoever wrote the state.</summary>
    private void Restore(JobCheckpoint state) => runtime.Use(n => { n.RestoreState(state with { Generation = 0 }); return 0; });

    private static Task WaitAsync(Func<bool> done, TimeSpan timeout, CancellationToken cancellationToken) =>
        WaitAsync(() => Task.FromResult(done()), timeout, cancellationToken);

    private static async Task WaitAsync(Func<Task<bool>> done, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var until = DateTime.UtcNow + timeout;
        while (!await done() && DateTime.UtcNow < until) await Task.Delay(Poll, cancellationToken);
    }
}
