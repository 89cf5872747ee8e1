namespace DaprTrain.Training.Data;

/// <summary>
/// Where an IDX dataset (MNIST unless told otherwise) comes from, in order: an explicit folder (--data-dir), the
/// dataset's environment variable (DAPRTRAIN_DATA_DIR for MNIST, DAPRTRAIN_FASHION_MNIST for Fashion-MNIST), the
/// folder its system package installs (Fashion-MNIST: /usr/share/datasets/fashion-mnist), the user cache, then a
/// download into the cache.
/// </summary>
public sealed class MnistLocator(Func<string, string?> environment, string cacheDirectory, MnistDownloader? downloader, IdxDataset? dataset = null)
{
    public const string DataDirectoryEnvironmentVariable = "DAPRTRAIN_DATA_DIR";

    public IdxDataset Dataset { get; } = dataset ?? IdxDataset.Mnist;

    public static string DefaultCacheDirectory() => IdxDataset.Mnist.DefaultCacheDirectory();

    public async Task<(string Directory, string Source)> LocateAsync(string? explicitDirectory, CancellationToken cancellationToken = default)
    {
        if (explicitDirectory is not null) return (RequireFolder(explicitDirectory, "--data-dir"), "--data-dir");

        string variable = Dataset.DirectoryEnvironmentVariable;
        string? fromEnvironment = environment(variable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return (RequireFolder(fromEnvironment, variable), variable);

        if (Dataset.SystemDirectory is string system && Directory.Exists(system) && Mnist.HasTestSplit(system))
        {
            return (system, Dataset.Package is null ? "the system folder" : $"package {Dataset.Package}");
        }

        if (Directory.Exists(cacheDirectory) && Mnist.HasTestSplit(cacheDirectory)) return (cacheDirectory, "cache");

        if (downloader is null)
        {
            throw new DataNotFoundException(
                $"no {Dataset.Title} data found: pass --data-dir DIR or set {variable} to a folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz{InstallHint()} (downloads are off).");
        }
        try
        {
            await downloader.DownloadAsync(cacheDirectory, Dataset.Files, cancellationToken);
        }
        catch (DataNotFoundException ex)
        {
            throw new DataNotFoundException(
                $"no {Dataset.Title} data found and the download failed ({ex.Message}); pass --data-dir DIR or set {variable} to a folder with the {Dataset.Title} IDX files{InstallHint()}.", ex);
        }
        return (cacheDirectory, "download");
    }

    private string InstallHint() => Dataset is { Package: string package, SystemDirectory: string system }
        ? $", or install it (apt-get install {package}, into {system})"
        : "";

    private string RequireFolder(string directory, string origin)
    {
        if (!Directory.Exists(directory)) throw new DataNotFoundException($"{origin}: folder '{directory}' does not exist.");
        if (!Mnist.HasTestSplit(directory))
        {
            throw new DataNotFoundException(
                $"{origin}: folder '{directory}' has no {Dataset.Title} files (expected t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]).");
        }
        return directory;
    }
}
