using DaprTrain.Engine.Storage;

namespace DaprTrain.Simulation;

/// <summary>Counts state operations (each is a request to the sidecar, and a billed request in the cost model).</summary>
public sealed class CountingStore(ICheckpointStore inner) : ICheckpointStore
{
    public long Operations { get; private set; }

    public long BytesWritten { get; private set; }

    public long BytesRead { get; private set; }

    public async Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        Operations++;
        var value = await inner.GetAsync(key, cancellationToken);
        BytesRead += value?.Data.Length ?? 0;
        return value;
    }

    public Task<bool> TrySaveAsync(string key, byte[] data, string? etag, CancellationToken cancellationToken = default)
    {
        Operations++;
        BytesWritten += data.Length;
        return inner.TrySaveAsync(key, data, etag, cancellationToken);
    }

    public Task<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default)
    {
        Operations++;
        return inner.TryDeleteAsync(key, etag, cancellationToken);
    }

}
