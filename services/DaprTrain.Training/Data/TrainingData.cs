namespace DaprTrain.Training.Data;

/// <summary>The samples to train on and the held-out samples to measure accuracy on.</summary>
public sealed class TrainingData(LabeledDataset train, long[] trainIndices, LabeledDataset holdout, long[] holdoutIndices, string description) : IDisposable
{
    public LabeledDataset Train { get; } = train;

    public long[] TrainIndices { get; } = trainIndices;

    public LabeledDataset Holdout { get; } = holdout;

    public long[] HoldoutIndices { get; } = holdoutIndices;

    public string Description { get; } = description;

    /// <summary>
    /// From an MNIST folder: the train split (if present) against the test split; otherwise the test split
    /// alone, cut by seed into train and held-out parts (the shared 10,000-image folder is such a case).
    /// <paramref name="dataset"/> (MNIST by default; Fashion-MNIST has the same files) names the data in messages.
    /// </summary>
    public static TrainingData FromMnistFolder(string directory, ulong seed, int holdoutCount = 2000, int? trainLimit = null, bool useTrainSplitIfPresent = true,
        IdxDataset? dataset = null)
    {
        dataset ??= IdxDataset.Mnist;
        if (useTrainSplitIfPresent && Mnist.HasTrainSplit(directory))
        {
            var train = Mnist.LoadSplit(directory, train: true, dataset.Name);
            var test = Mnist.LoadSplit(directory, train: false, dataset.Name);
            var trainIndices = Limit(Enumerable.Range(0, train.Count).Select(i => (long)i).ToArray(), trainLimit, seed);
            return new TrainingData(train, trainIndices, test, AllIndices(test), $"{dataset.Title} from {directory}: {trainIndices.Length} train, {test.Count} test");
        }
        var only = Mnist.LoadSplit(directory, train: false, dataset.Name);
        return SplitSingle(only, seed, holdoutCount, trainLimit, $"{dataset.Title} test split from {directory}");
    }

    public static TrainingData Synthetic(int count, ulong seed, int holdoutCount, int? trainLimit = null) =>
        SplitSingle(SyntheticDataset.Create(count, seed), seed, holdoutCount, trainLimit, "synthetic digits-shaped data");

    private static TrainingData SplitSingle(LabeledDataset data, ulong seed, int holdoutCount, int? trainLimit, string origin)
    {
        if (holdoutCount <= 0 || holdoutCount >= data.Count)
        {
            throw new ArgumentException($"held-out count {holdoutCount} must be between 1 and {data.Count - 1} for {data.Count} samples.");
        }
        var order = AllIndices(data);
        var random = SplitMix64.Derive(seed, "holdout");
        random.Shuffle(order.AsSpan());
        var holdout = order[..holdoutCount];
        var train = Limit(order[holdoutCount..], trainLimit, seed);
        Array.Sort(holdout);
        Array.Sort(train);
        return new TrainingData(data, train, data, holdout, $"{origin}: {train.Length} train / {holdout.Length} held out (seeded split)");
    }

    private static long[] AllIndices(LabeledDataset data) => Enumerable.Range(0, data.Count).Select(i => (long)i).ToArray();

    private static long[] Limit(long[] indices, int? limit, ulong seed)
    {
        if (limit is not int max || max >= indices.Length) return indices;
        if (max <= 0) throw new ArgumentException($"train sample limit must be positive (got {max}).");
        var copy = indices.ToArray();
        var random = SplitMix64.Derive(seed, "limit");
        random.Shuffle(copy.AsSpan());
        var kept = copy[..max];
        Array.Sort(kept);
        return kept;
    }

    public void Dispose()
    {
        Train.Dispose();
        if (!ReferenceEquals(Train, Holdout)) Holdout.Dispose();
    }
}
