using DaprTrain.Training.Data;

namespace DaprTrain.Training.Tests;

/// <summary>Where the tests find MNIST: DAPRTRAIN_TEST_MNIST, else ../shared/datasets/mnist above the repository.</summary>
public static class TestData
{
    public static string MnistDirectory
    {
        get
        {
            string? configured = Environment.GetEnvironmentVariable("DAPRTRAIN_TEST_MNIST");
            if (!string.IsNullOrEmpty(configured)) return configured;
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null)
            {
                string candidate = Path.Combine(dir.FullName, "shared", "datasets", "mnist");
                if (Mnist.HasTestSplit(candidate)) return candidate;
                dir = dir.Parent;
            }
            throw new InvalidOperationException("MNIST test data not found: set DAPRTRAIN_TEST_MNIST or keep ../shared/datasets/mnist beside the repository.");
        }
    }

    private static readonly Lazy<TrainingData> SharedSplit = new(() => TrainingData.FromMnistFolder(MnistDirectory, seed: 7, holdoutCount: 2000));

    /// <summary>The shared split, 8,000 train / 2,000 held out by seed 7; read-only, shared by all tests.</summary>
    public static TrainingData Mnist8k2k => SharedSplit.Value;
}
