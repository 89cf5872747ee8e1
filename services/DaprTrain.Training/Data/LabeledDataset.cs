using static TorchSharp.torch;

namespace DaprTrain.Training.Data;

/// <summary>
/// Samples as normalised float32 features plus int64 labels, held once as tensors that every trainer in
/// the process reads from (index_select per batch), so N embedded workers do not hold N copies.
/// </summary>
public sealed class LabeledDataset : IDisposable
{
    private readonly Lock _gate = new();
    private Tensor? _features;
    private Tensor? _labels;

    public LabeledDataset(string name, float[] features, long[] labels, int[] sampleShape, int classCount)
    {
        int sampleSize = sampleShape.Aggregate(1, (a, b) => a * b);
        if (labels.Length == 0) throw new ArgumentException($"Dataset '{name}' is empty.");
        if (features.Length != labels.Length * sampleSize)
        {
            throw new ArgumentException($"Dataset '{name}': {features.Length} feature values do not make {labels.Length} samples of {sampleSize}.");
        }
        foreach (long label in labels)
        {
            if (label < 0 || label >= classCount) throw new ArgumentException($"Dataset '{name}': label {label} is outside 0..{classCount - 1}.");
        }
        Name = name;
        Features = features;
        Labels = labels;
        SampleShape = sampleShape;
        ClassCount = classCount;
    }

    public string Name { get; }

    public float[] Features { get; }

    public long[] Labels { get; }

    public int[] SampleShape { get; }

    public int ClassCount { get; }

    public int Count => Labels.Length;

    public Tensor FeatureTensor
    {
        get
        {
            lock (_gate)
            {
                if (_features is null)
                {
                    var shape = new long[] { Count }.Concat(SampleShape.Select(d => (long)d)).ToArray();
                    // Created lazily, possibly inside a trainer's dispose scope: this tensor outlives it.
                    _features = tensor(Features, shape).DetachFromDisposeScope();
                }
                return _features;
            }
        }
    }

    public Tensor LabelTensor
    {
        get
        {
            lock (_gate)
            {
                return _labels ??= tensor(Labels).DetachFromDisposeScope();
            }
        }
    }

    public void Dispose()
    {
        _features?.Dispose();
        _labels?.Dispose();
    }
}
