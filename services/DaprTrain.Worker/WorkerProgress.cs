using DaprTrain.Contracts;
using DaprTrain.Coordination;
using DaprTrain.Coordination.Progress;
using DaprTrain.Dapr;
using DaprTrain.Engine.Storage;

namespace DaprTrain.Worker;

/// <summary>
/// The worker's progress events (schemas/progress-event.schema.json) on the wall clock: a round-completed event each
/// time its replica applies a round (with the bytes it received and sent since the last one), its checkpoints, its
/// evaluations, and its own state when it rejoins. worker-1 also announces the job. Membership is the coordinator's to tell.
/// </summary>
internal sealed class WorkerProgress(ProgressEmitter emitter, string workerId, TimeProvider time)
{
    private long _reportedRound;
    private long _bytesAtLastRound;
    private long _lastRoundAt = time.GetTimestamp();

    /// <summary>Bytes this worker published; received bytes are counted by its inboxes.</summary>
    public long BytesSent;

    /// <summary>Gradients the last decided round included (between peers); null under a parameter server, which tells it.</summary>
    public int? LastIncluded { get; set; }

    public void Started(TrainingJobOptions job, bool serverless)
    {
        _lastRoundAt = time.GetTimestamp();
        if (workerId != DaprApps.Worker(1)) return;
        emitter.Emit(workerId, ProgressEvent.JobStarted(job.Topology.Name(), "dapr", virtualClock: false, job.Workers, job.Rounds, job.Model,
            job.ResolvedAggregator().ToString(), job.Compression().ToString(), serverless));
    }

    /// <summary>After a pass of the loop: a round-completed event when the replica applied a newer round.</summary>
    public bool AfterRound(long appliedRound, int generation, long bytesReceived, int members)
    {
        if (appliedRound <= _reportedRound) return false;
        long now = time.GetTimestamp();
        long bytes = bytesReceived + Interlocked.Read(ref BytesSent);
        emitter.Emit(workerId, ProgressEvent.RoundCompleted(appliedRound, generation, time.GetElapsedTime(_lastRoundAt, now).TotalMilliseconds,
            Math.Max(0, bytes - _bytesAtLastRound), LastIncluded, members));
        _reportedRound = appliedRound;
        _bytesAtLastRound = bytes;
        _lastRoundAt = now;
        return true;
    }

    public void Checkpoint(JobCheckpoint state, long bytes) =>
        emitter.Emit(workerId, ProgressEvent.Checkpoint(state.Round, state.Generation, state.Writer, bytes));

    public void Evaluated(long round, double accuracy, double loss) => emitter.Emit(workerId, ProgressEvent.Evaluation(round, accuracy, loss));

    public void State(string state, long round, string reason) => emitter.Emit(workerId, ProgressEvent.NodeState(workerId, state, round, reason));

    public void Finished(long rounds, double accuracy, double loss) => emitter.Emit(workerId, ProgressEvent.JobFinished(rounds, accuracy, loss, null));
}
