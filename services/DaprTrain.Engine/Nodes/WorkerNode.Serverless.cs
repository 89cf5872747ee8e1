using DaprTrain.Coordination;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Engine.Nodes;

/// <summary>Serverless compute: a worker's batch in shares for gradient functions, and their gradients combined.</summary>
public sealed partial class WorkerNode
{
    /// <summary>
    /// Serverless: draws the next batch and splits it into at most <paramref name="functions"/> contiguous shares of
    /// sizes that differ by at most one, one per gradient-function invocation, in a fixed order.
    /// </summary>
    public IReadOnlyList<long[]> DrawBatchShares(int functions)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(functions);
        int count = NextBatch();
        int shares = Math.Min(functions, count);
        var result = new long[shares][];
        for (int k = 0, start = 0; k < shares; k++)
        {
            int size = count / shares + (k < count % shares ? 1 : 0);
            result[k] = _batch.AsSpan(start, size).ToArray();
            start += size;
        }
        return result;
    }

    /// <summary>
    /// Serverless: this worker's gradient for the open round is the sample-weighted average of its functions' gradients,
    /// combined in share order (so a seeded run stays deterministic; one share gives exactly the whole batch's gradient).
    /// </summary>
    public void CombineShareGradients(IReadOnlyList<(int Samples, ReadOnlyMemory<float> Gradient)> shares)
    {
        if (shares.Count == 0) throw new ArgumentException("no share gradients to combine", nameof(shares));
        int count = 0;
        var contributions = new Contribution[shares.Count];
        for (int k = 0; k < shares.Count; k++)
        {
            if (shares[k].Gradient.Length != _parameterCount) throw new ArgumentException($"share {k} has {shares[k].Gradient.Length} values; the model has {_parameterCount}");
            count += shares[k].Samples;
            contributions[k] = new Contribution($"share-{k:D5}", shares[k].Samples, shares[k].Gradient);
        }
        var values = BeginOwnGradient(count);
        // The shares of one worker are combined by their mean: they are this worker's own computation, not peers to distrust.
        GradientAggregator.WeightedAverage(contributions, values.Span);
        _gradientBufferHoldsOwn = false;
        CorruptOwnGradient(values.Span);
    }
}
