using DaprTrain.Training.Data;

namespace DaprTrain.Training.Tests;

/// <summary>
/// Where the tests find MNIST: DAPRTRAIN_TEST_MNIST, else shared/datasets/mnist in a folder above the
/// repository (CI and the development machines), else the user cache, downloading into it if needed
/// (a fresh machine with internet).
/// </summary>
public static class TestData
{
    private static readonly Lazy<string> Located = new(Locate);

    public static string MnistDirectory => Located.Value;

    private static string Locate()
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
        string cache = MnistLocator.DefaultCacheDirectory();
        var locator = new MnistLocator(_ => null, cache, new MnistDownloader(new HttpClient { Timeout = TimeSpan.FromSeconds(60) }, MnistDownloader.DefaultMirrors));
        try
        {
            return locator.LocateAsync(null).GetAwaiter().GetResult().Directory;
        }
        catch (DataNotFoundException ex)
        {
            throw new InvalidOperationException($"MNIST test data not found: set DAPRTRAIN_TEST_MNIST to a folder with the MNIST IDX files ({ex.Message}).", ex);
        }
    }

    private static readonly Lazy<TrainingData> SharedSplit = new(() => TrainingData.FromMnistFolder(MnistDirectory, seed: 7, holdoutCount: 2000, useTrainSplitIfPresent: false));

    /// <summary>The shared split, 8,000 train / 2,000 held out by seed 7; read-only, shared by all tests.</summary>
    public static TrainingData Mnist8k2k => SharedSplit.Value;

    public const string FashionMnistVariable = "DAPRTRAIN_TEST_FASHION_MNIST";

    /// <summary>
    /// The full Fashion-MNIST (both splits): DAPRTRAIN_TEST_FASHION_MNIST (.ci/run sets it when it could install the package),
    /// else the folder of Debian's dataset-fashion-mnist; null where neither has it (never downloaded: 30 MB is not a
    /// test's to fetch). <see cref="FashionMnistMissingReason"/> says why, for the tests that skip.
    /// </summary>
    public static string? FashionMnistDirectory => FashionLocated.Value.Directory;

    public static string? FashionMnistMissingReason => FashionLocated.Value.Missing;

    private static readonly Lazy<(string? Directory, string? Missing)> FashionLocated = new(() =>
    {
        string? configured = Environment.GetEnvironmentVariable(FashionMnistVariable);
        string folder = !string.IsNullOrEmpty(configured) ? configured : IdxDataset.FashionMnist.SystemDirectory!;
        return Mnist.HasTrainSplit(folder) && Mnist.HasTestSplit(folder)
            ? (folder, null)
            : (null, $"Fashion-MNIST not found in {folder}: install it (apt-get install {IdxDataset.FashionMnist.Package}) or set {FashionMnistVariable} to a folder with its four IDX files.");
    });
}
