namespace DaprTrain.Training.Data;

public enum ShardingMode
{
    /// <summary>Shuffled, then dealt round-robin: every shard has the same label mix.</summary>
    Iid,

    /// <summary>Sorted by label and cut into 2N runs, two runs a shard: each shard sees about two labels.</summary>
    LabelSkew,
}

public static class Sharding
{
    /// <summary>
    /// Splits <paramref name="indices"/> into <paramref name="shardCount"/> disjoint shards that cover them,
    /// with sizes differing by at most one (IID) or by at most two (label skew). Same seed, same shards.
    /// </summary>
    public static long[][] Split(IReadOnlyList<long> indices, IReadOnlyList<long> labels, int shardCount, ulong seed, ShardingMode mode)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shardCount);
        if (indices.Count < shardCount) throw new ArgumentException($"{indices.Count} samples cannot fill {shardCount} shards.");
        var order = indices.ToArray();
        var random = SplitMix64.Derive(seed, "shard");
        random.Shuffle(order.AsSpan());

        if (mode == ShardingMode.Iid)
        {
            var shards = new List<long>[shardCount];
            for (int s = 0; s < shardCount; s++) shards[s] = new List<long>(order.Length / shardCount + 1);
            for (int i = 0; i < order.Length; i++) shards[i % shardCount].Add(order[i]);
            return shards.Select(s => s.ToArray()).ToArray();
        }

        // Stable sort by label over the shuffled order keeps within-label order random but seeded.
        var sorted = order.Select((index, position) => (index, position)).OrderBy(p => labels[(int)p.index]).ThenBy(p => p.position).Select(p => p.index).ToArray();
        int runs = shardCount * 2;
        var runOrder = Enumerable.Range(0, runs).ToArray();
        random.Shuffle(runOrder.AsSpan());
        var result = new long[shardCount][];
        for (int s = 0; s < shardCount; s++)
        {
            result[s] = Run(sorted, runOrder[2 * s], runs).Concat(Run(sorted, runOrder[2 * s + 1], runs)).ToArray();
        }
        return result;
    }

    private static IEnumerable<long> Run(long[] sorted, int run, int runs)
    {
        long start = (long)sorted.Length * run / runs;
        long end = (long)sorted.Length * (run + 1) / runs;
        for (long i = start; i < end; i++) yield return sorted[i];
    }

    public static bool TryParseMode(string text, out ShardingMode mode)
    {
        switch (text.ToLowerInvariant())
        {
            case "iid": mode = ShardingMode.Iid; return true;
            case "label-skew" or "noniid" or "non-iid": mode = ShardingMode.LabelSkew; return true;
            default: mode = default; return false;
        }
    }
}
