using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Worker;

/// <summary>
/// The held-out accuracy of the replica for the progress events, off the round's path: the node's lock is held only to
/// copy the weights, and a trainer of its own evaluates the copy on a background task. One evaluation at a time: when
/// the last one is still running (a big model, a loaded machine), the next is skipped, never queued behind it.
/// </summary>
internal sealed class ReplicaEvaluator(TrainerOptions options, TrainingData data, ILogger logger) : IDisposable
{
    private readonly Lock _gate = new();
    private Trainer? _trainer;
    private Task _running = Task.CompletedTask;

    /// <summary>Starts evaluating <paramref name="weights"/> (a copy the caller made), reporting the result; false when one is still running.</summary>
    public bool TryStart(long round, float[] weights, Action<long, double, double> report)
    {
        lock (_gate)
        {
            if (!_running.IsCompleted) return false;
            _running = Task.Run(() =>
            {
                try
                {
                    lock (_gate) _trainer ??= new Trainer(options);
                    _trainer.Parameters.ImportWeights(weights);
                    var result = _trainer.Evaluate(data.Holdout, data.HoldoutIndices);
                    report(round, result.Accuracy, result.Loss);
                }
                catch (Exception ex)
                {
                    // An evaluation for the dashboard is not worth a worker: say so and go on.
                    logger.LogWarning("evaluation of round {Round} for the progress events failed: {Error}", round, ex.Message);
                }
            });
            return true;
        }
    }

    public void Dispose()
    {
        _running.Wait(TimeSpan.FromSeconds(30));
        _trainer?.Dispose();
    }
}
