namespace DaprTrain.SidecarDouble;

public sealed class EtagMismatchException(string key) : Exception($"possible etag mismatch for key {key}");

/// <summary>How a state component treats ETags and transactions; the double behaves as the named one does.</summary>
public enum StateStoreProfile
{
    /// <summary>
    /// state.redis (components-contrib, v1.16-v1.18): a write's Lua script accepts any ETag for a missing key; a
    /// transaction is a MULTI/EXEC pipeline in which a failed operation does not undo the others (no rollback).
    /// </summary>
    Redis,

    /// <summary>state.postgresql: an ETag on a missing key is a mismatch; a transaction is all or nothing.</summary>
    PostgreSql,
}

/// <summary>
/// An in-memory state store with the semantics of the component its profile names: missing keys are empty, ETags are
/// versions, a stale ETag fails that write. Actor state uses the same store under "{appId}||{type}||{id}||{key}" as
/// daprd does.
/// </summary>
public sealed class StateStore(StateStoreProfile profile = StateStoreProfile.Redis)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (byte[] Value, long Version)> _items = new(StringComparer.Ordinal);

    public StateStoreProfile Profile => profile;

    public (byte[] Value, string Etag)? Get(string key)
    {
        lock (_gate) return _items.TryGetValue(key, out var item) ? (item.Value, item.Version.ToString(System.Globalization.CultureInfo.InvariantCulture)) : null;
    }

    /// <summary>
    /// Applies the operations: all or none on PostgreSQL; on Redis each one whose ETag holds, the others failing
    /// without undoing it. Throws <see cref="EtagMismatchException"/> naming the first key whose ETag did not hold.
    /// </summary>
    public void Apply(IReadOnlyList<(string Key, byte[]? Value, string? Etag)> operations)
    {
        lock (_gate)
        {
            string? mismatch = null;
            var holds = new bool[operations.Count];
            for (int i = 0; i < operations.Count; i++)
            {
                holds[i] = EtagHolds(operations[i].Key, operations[i].Etag);
                mismatch ??= holds[i] ? null : operations[i].Key;
            }
            if (mismatch is not null && profile == StateStoreProfile.PostgreSql) throw new EtagMismatchException(mismatch);
            for (int i = 0; i < operations.Count; i++)
            {
                if (!holds[i]) continue;
                var (key, value, _) = operations[i];
                if (value is null) _items.Remove(key);
                else _items[key] = (value, _items.TryGetValue(key, out var item) ? item.Version + 1 : 1);
            }
            if (mismatch is not null) throw new EtagMismatchException(mismatch);
        }
    }

    private bool EtagHolds(string key, string? etag)
    {
        if (string.IsNullOrEmpty(etag)) return true;
        if (!_items.TryGetValue(key, out var item)) return profile == StateStoreProfile.Redis;
        return item.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) == etag;
    }

    public int Count
    {
        get
        {
            lock (_gate) return _items.Count;
        }
    }

    public IReadOnlyList<string> Keys
    {
        get
        {
            lock (_gate) return [.. _items.Keys];
        }
    }
}
