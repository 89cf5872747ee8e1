namespace DaprTrain.Training;

/// <summary>
/// Mini-batches over a set of sample indices, reshuffled each epoch by (seed, epoch): the whole state
/// is (epoch, position), which is what a checkpoint stores as the data cursor.
/// </summary>
public sealed class EpochSampler
{
    private long[] _indices;
    private long[]? _order;

    public EpochSampler(long[] indices, int batchSize, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        if (indices.Length == 0) throw new ArgumentException("A sampler needs at least one sample.", nameof(indices));
        _indices = indices;
        BatchSize = batchSize;
        Seed = seed;
    }

    public int BatchSize { get; }

    public ulong Seed { get; }

    public int Epoch { get; private set; }

    public int Position { get; private set; }

    public int SampleCount => _indices.Length;

    public int BatchesPerEpoch => (_indices.Length + BatchSize - 1) / BatchSize;

    public IReadOnlyList<long> Indices => _indices;

    /// <summary>Fills <paramref name="batch"/> (length at least BatchSize); returns the count. A short last batch ends the epoch.</summary>
    public int Next(Span<long> batch)
    {
        _order ??= OrderFor(Epoch);
        int count = Math.Min(BatchSize, _order.Length - Position);
        _order.AsSpan(Position, count).CopyTo(batch);
        Position += count;
        if (Position >= _order.Length)
        {
            Epoch++;
            Position = 0;
            _order = null;
        }
        return count;
    }

    public void Restore(int epoch, int position)
    {
        if (epoch < 0 || position < 0 || position >= _indices.Length) throw new ArgumentException($"data cursor (epoch {epoch}, position {position}) is outside a {_indices.Length}-sample set.");
        Epoch = epoch;
        Position = position;
        _order = null;
    }

    /// <summary>Takes a new sample set (a reassigned shard) from the start of the current epoch's order.</summary>
    public void Reassign(long[] indices)
    {
        if (indices.Length == 0) throw new ArgumentException("A sampler needs at least one sample.", nameof(indices));
        _indices = indices;
        Position = 0;
        _order = null;
    }

    private long[] OrderFor(int epoch)
    {
        var order = _indices.ToArray();
        var random = SplitMix64.Derive(Seed, "epoch", epoch);
        random.Shuffle(order.AsSpan());
        return order;
    }
}
