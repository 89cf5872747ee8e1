using System.Text;

namespace DaprTrain.Engine.Storage;

/// <summary>
/// The embedded store: one file per key in a folder, so an embedded run survives a process restart.
/// A file holds an 8-byte version (the ETag) then the value. Every write goes to a temporary file that is
/// renamed over the old one, so a crash mid-write leaves the previous value, never a torn one. Operations
/// are serialised in-process.
/// </summary>
public sealed class FileCheckpointStore : ICheckpointStore
{
    private readonly string _directory;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public FileCheckpointStore(string directory)
    {
        _directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(_directory);
    }

    public async Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return Read(key);
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task<bool> TrySaveAsync(string key, byte[] data, string? etag, CancellationToken cancellationToken = default) =>
        ApplyAsync([StoreOperation.Upsert(key, data, etag)], cancellationToken);

    public Task<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default) =>
        ApplyAsync([StoreOperation.Delete(key, etag)], cancellationToken);

    private async Task<bool> ApplyAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var current = operations.Select(o => Read(o.Key)).ToList();
            for (int i = 0; i < operations.Count; i++)
            {
                if (operations[i].ETag is string expected && current[i]?.ETag != expected) return false;
            }
            for (int i = 0; i < operations.Count; i++)
            {
                string path = PathFor(operations[i].Key);
                if (operations[i].Data is not byte[] data)
                {
                    File.Delete(path);
                    continue;
                }
                long version = current[i] is null ? 1 : long.Parse(current[i]!.ETag, System.Globalization.CultureInfo.InvariantCulture) + 1;
                string temporary = path + ".tmp";
                using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
                {
                    file.Write(BitConverter.GetBytes(version));
                    file.Write(data);
                    file.Flush(flushToDisk: true);
                }
                File.Move(temporary, path, overwrite: true);
            }
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private StoredValue? Read(string key)
    {
        string path = PathFor(key);
        if (!File.Exists(path)) return null;
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new InvalidDataException($"state file {path} is shorter than its 8-byte version header");
        long version = BitConverter.ToInt64(bytes, 0);
        return new StoredValue(bytes[8..], version.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Keys become file names by hex-encoding anything outside [A-Za-z0-9._-], so no key can escape the folder.</summary>
    private string PathFor(string key)
    {
        if (string.IsNullOrEmpty(key)) throw new ArgumentException("state key must not be empty", nameof(key));
        var name = new StringBuilder(key.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(key))
        {
            char c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_') name.Append(c);
            else name.Append('%').Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
        }
        if (name[0] == '.') name.Insert(0, "%2e").Remove(3, 1);
        return Path.Combine(_directory, name.ToString());
    }
}
