namespace DaprTrain.Engine.Storage;

/// <summary>The same semantics as <see cref="FileCheckpointStore"/>, in memory (tests, throwaway runs).</summary>
public sealed class InMemoryCheckpointStore : ICheckpointStore
{
    private readonly Dictionary<string, (byte[] Data, long Version)> _items = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_items.TryGetValue(key, out var item) ? new StoredValue(item.Data.ToArray(), Tag(item.Version)) : null);
        }
    }

    public Task<bool> TrySaveAsync(string key, byte[] data, string? etag, CancellationToken cancellationToken = default) =>
        ApplyAsync([StoreOperation.Upsert(key, data, etag)], cancellationToken);

    public Task<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default) =>
        ApplyAsync([StoreOperation.Delete(key, etag)], cancellationToken);

    private Task<bool> ApplyAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            foreach (var operation in operations)
            {
                string? current = _items.TryGetValue(operation.Key, out var item) ? Tag(item.Version) : null;
                if (operation.ETag is not null && operation.ETag != current) return Task.FromResult(false);
            }
            foreach (var operation in operations)
            {
                if (operation.Data is null)
                {
                    _items.Remove(operation.Key);
                    continue;
                }
                long version = _items.TryGetValue(operation.Key, out var item) ? item.Version + 1 : 1;
                _items[operation.Key] = (operation.Data.ToArray(), version);
            }
            return Task.FromResult(true);
        }
    }

    public IReadOnlyCollection<string> Keys
    {
        get
        {
            lock (_gate) return _items.Keys.ToList();
        }
    }

    private static string Tag(long version) => version.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
