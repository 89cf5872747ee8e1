namespace DaprTrain.SidecarDouble;

public sealed class EtagMismatchException(string key) : Exception($"possible etag mismatch for key {key}");

/// <summary>
/// An in-memory state store with the semantics the services rely on (Dapr state API, Redis component):
/// missing keys are empty, ETags are versions, a stale ETag fails the write, transactions are all or nothing.
/// Actor state uses the same store under "{appId}||{type}||{id}||{key}" as daprd does.
/// </summary>
public sealed class StateStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (byte[] Value, long Version)> _items = new(StringComparer.Ordinal);

    public (byte[] Value, string Etag)? Get(string key)
    {
        lock (_gate) return _items.TryGetValue(key, out var item) ? (item.Value, item.Version.ToString(System.Globalization.CultureInfo.InvariantCulture)) : null;
    }

    public void Apply(IReadOnlyList<(string Key, byte[]? Value, string? Etag)> operations)
    {
        lock (_gate)
        {
            foreach (var (key, _, etag) in operations)
            {
                if (string.IsNullOrEmpty(etag)) continue;
                string? current = _items.TryGetValue(key, out var item) ? item.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
                if (current != etag) throw new EtagMismatchException(key);
            }
            foreach (var (key, value, _) in operations)
            {
                if (value is null) _items.Remove(key);
                else _items[key] = (value, _items.TryGetValue(key, out var item) ? item.Version + 1 : 1);
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_gate) return _items.Count;
        }
    }
}
