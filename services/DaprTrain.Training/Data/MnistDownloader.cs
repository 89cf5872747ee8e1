using System.Security.Cryptography;

namespace DaprTrain.Training.Data;

public sealed class DataNotFoundException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Fetches MNIST's gzip files for users with internet, verifying each against its published size and
/// MD5 before it enters the cache (written to a temporary name, then renamed), so a bad or partial
/// download never poisons the cache.
/// </summary>
public sealed class MnistDownloader(HttpClient http, IReadOnlyList<Uri> mirrors, Action<string>? log = null)
{
    public const string MirrorEnvironmentVariable = "DAPRTRAIN_MNIST_MIRROR";

    public static IReadOnlyList<Uri> DefaultMirrors { get; } =
    [
        new("https://ossci-datasets.s3.amazonaws.com/mnist/"),
        new("https://storage.googleapis.com/cvdf-datasets/mnist/"),
    ];

    public async Task DownloadAsync(string targetDirectory, IEnumerable<MnistFile> files, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(targetDirectory);
        foreach (var file in files)
        {
            string target = Path.Combine(targetDirectory, file.Name + ".gz");
            if (File.Exists(target) && Verify(await File.ReadAllBytesAsync(target, cancellationToken), file) is null) continue;

            var failures = new List<string>();
            bool stored = false;
            foreach (var mirror in mirrors)
            {
                var uri = new Uri(mirror, file.Name + ".gz");
                try
                {
                    log?.Invoke($"downloading {uri}");
                    byte[] bytes = await http.GetByteArrayAsync(uri, cancellationToken);
                    string? problem = Verify(bytes, file);
                    if (problem is not null)
                    {
                        failures.Add($"{uri}: {problem}");
                        continue;
                    }
                    string temporary = target + ".part";
                    await File.WriteAllBytesAsync(temporary, bytes, cancellationToken);
                    File.Move(temporary, target, overwrite: true);
                    stored = true;
                    break;
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException && !cancellationToken.IsCancellationRequested)
                {
                    failures.Add($"{uri}: {ex.Message}");
                }
            }
            if (!stored)
            {
                throw new DataNotFoundException($"could not download {file.Name}.gz: {string.Join("; ", failures)}");
            }
        }
    }

    /// <summary>Null when the bytes are the published file; otherwise what is wrong with them.</summary>
    public static string? Verify(byte[] bytes, MnistFile file)
    {
        if (bytes.Length != file.GzipSize) return $"size {bytes.Length} bytes, the published file has {file.GzipSize}";
        string md5 = Convert.ToHexStringLower(MD5.HashData(bytes));
        return md5 == file.GzipMd5 ? null : $"MD5 {md5} does not match the published {file.GzipMd5}";
    }
}
