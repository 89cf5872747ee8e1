namespace DaprTrain.Training.Data;

/// <summary>
/// A deterministic stand-in for MNIST (same shape, ten classes): each class is a fixed random
/// prototype image and each sample adds Gaussian noise to its class's prototype. Learnable, but not
/// in one step, and needs no files.
/// </summary>
public static class SyntheticDataset
{
    public static LabeledDataset Create(int count, ulong seed, float noise = 2.0f)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        const int classes = 10;
        const int size = 28 * 28;
        var random = SplitMix64.Derive(seed, "synthetic");
        var prototypes = new float[classes * size];
        for (int i = 0; i < prototypes.Length; i++) prototypes[i] = random.NextGaussian();

        var features = new float[count * size];
        var labels = new long[count];
        for (int s = 0; s < count; s++)
        {
            int label = random.NextInt(classes);
            labels[s] = label;
            for (int p = 0; p < size; p++) features[s * size + p] = prototypes[label * size + p] + noise * random.NextGaussian();
        }
        return new LabeledDataset("synthetic", features, labels, [1, 28, 28], classes);
    }
}
