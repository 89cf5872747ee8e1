namespace DaprTrain.Training.Data;

/// <summary>
/// Where MNIST comes from, in order: an explicit folder (--data-dir), the DAPRTRAIN_DATA_DIR environment
/// variable, the user cache, then a download into the cache.
/// </summary>
public sealed class MnistLocator(Func<string, string?> environment, string cacheDirectory, MnistDownloader? downloader)
{
    public const string DataDirectoryEnvironmentVariable = "DAPRTRAIN_DATA_DIR";

    public static string DefaultCacheDirectory()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "daprtrain", "mnist");
    }

    public async Task<(string Directory, string Source)> LocateAsync(string? explicitDirectory, CancellationToken cancellationToken = default)
    {
        if (explicitDirectory is not null) return (RequireFolder(explicitDirectory, "--data-dir"), "--data-dir");

        string? fromEnvironment = environment(DataDirectoryEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return (RequireFolder(fromEnvironment, DataDirectoryEnvironmentVariable), DataDirectoryEnvironmentVariable);

        if (Directory.Exists(cacheDirectory) && Mnist.HasTestSplit(cacheDirectory)) return (cacheDirectory, "cache");

        if (downloader is null)
        {
            throw new DataNotFoundException(
                $"no MNIST data found: pass --data-dir DIR or set {DataDirectoryEnvironmentVariable} to a folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (downloads are off).");
        }
        try
        {
            await downloader.DownloadAsync(cacheDirectory, Mnist.AllFiles, cancellationToken);
        }
        catch (DataNotFoundException ex)
        {
            throw new DataNotFoundException(
                $"no MNIST data found and the download failed ({ex.Message}); pass --data-dir DIR or set {DataDirectoryEnvironmentVariable} to a folder with the MNIST IDX files.", ex);
        }
        return (cacheDirectory, "download");
    }

    private static string RequireFolder(string directory, string origin)
    {
        if (!Directory.Exists(directory)) throw new DataNotFoundException($"{origin}: folder '{directory}' does not exist.");
        if (!Mnist.HasTestSplit(directory))
        {
            throw new DataNotFoundException(
                $"{origin}: folder '{directory}' has no MNIST files (expected t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]).");
        }
        return directory;
    }
}
