namespace DaprTrain.Engine.Storage;

public sealed record StoredValue(byte[] Data, string ETag);

/// <summary>One operation of a transaction: an upsert (Data set) or a delete, optionally guarded by an ETag.</summary>
public sealed record StoreOperation(string Key, byte[]? Data, string? ETag = null)
{
    public static StoreOperation Upsert(string key, byte[] data, string? etag = null) => new(key, data, etag);

    public static StoreOperation Delete(string key, string? etag = null) => new(key, null, etag);
}

/// <summary>
/// The checkpoint store port, with the semantics of Dapr's state API that hold on every store: a missing key is null
/// (not an error); a write or delete with an ETag succeeds only if the stored ETag still matches (first-write-wins);
/// without one, last write wins. No transactions: daprd answers a failed transaction with Internal whatever the cause
/// (an ETag mismatch cannot be told from an outage), and on Redis a transaction does not roll back (dapr/dapr
/// pkg/api/grpc/grpc.go; components-contrib state/redis). What must not be torn is written under keys no one else
/// writes, then published by one single-key ETag save (see <see cref="JobCheckpoints"/>).
/// </summary>
public interface ICheckpointStore
{
    Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>False on an ETag mismatch (Dapr's gRPC Aborted for SaveState, which TrySaveStateAsync turns into false).</summary>
    Task<bool> TrySaveAsync(string key, byte[] data, string? etag, CancellationToken cancellationToken = default);

    Task<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default);
}
