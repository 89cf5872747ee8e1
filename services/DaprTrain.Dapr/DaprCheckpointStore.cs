using System.Text.Json;
using Dapr;
using Dapr.Client;
using DaprTrain.Contracts;
using DaprTrain.Engine.Storage;
using Grpc.Core;

namespace DaprTrain.Dapr;

/// <summary>
/// The checkpoint store port over Dapr's state API (gRPC through DaprClient). Values larger than one chunk are
/// stored as chunk keys ("{key}#chunk-{version}-{i}") and a small manifest under the key itself; the manifest
/// is written last, guarded by the key's ETag, so readers see the old value or the whole new one. An ETag
/// mismatch is Dapr's gRPC Aborted, which this turns into false as TrySaveStateAsync does.
/// </summary>
public sealed class DaprCheckpointStore(DaprClient dapr, string storeName = DaprComponents.StateStore, int maxValueBytes = ChunkCodec.DefaultMaxChunkBytes) : ICheckpointStore
{
    private static readonly byte[] ManifestMarker = "DTMF"u8.ToArray();

    private sealed record Manifest(string Version, int Chunks, int Length);

    public async Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var (data, etag) = await dapr.GetByteStateAndETagAsync(storeName, key, cancellationToken: cancellationToken);
        if (data.IsEmpty) return null;
        if (ReadManifest(data.Span) is not Manifest manifest) return new StoredValue(data.ToArray(), etag);

        var assembler = new ChunkAssembler();
        for (int i = 0; i < manifest.Chunks; i++)
        {
            var chunk = await dapr.GetByteStateAsync(storeName, ChunkKey(key, manifest.Version, i), cancellationToken: cancellationToken);
            if (chunk.IsEmpty) throw new InvalidDataException($"state '{key}': chunk {i} of {manifest.Chunks} is missing");
            var result = assembler.Add(chunk.Span);
            if (result.Status == ChunkStatus.Rejected) throw new InvalidDataException($"state '{key}': chunk {i}: {result.Reason}");
            if (result.Status == ChunkStatus.Complete) return new StoredValue(result.Message!, etag);
        }
        throw new InvalidDataException($"state '{key}': its {manifest.Chunks} chunks do not make a whole value");
    }

    public Task<bool> TrySaveAsync(string key, byte[] data, string? etag, CancellationToken cancellationToken = default) =>
        TryTransactAsync([StoreOperation.Upsert(key, data, etag)], cancellationToken);

    public Task<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default) =>
        TryTransactAsync([StoreOperation.Delete(key, etag)], cancellationToken);

    public async Task<bool> TryTransactAsync(IReadOnlyList<StoreOperation> operations, CancellationToken cancellationToken = default)
    {
        var requests = new List<StateTransactionRequest>();
        foreach (var operation in operations)
        {
            if (operation.Data is not byte[] data)
            {
                requests.Add(new StateTransactionRequest(operation.Key, null, StateOperationType.Delete, operation.ETag));
                continue;
            }
            if (data.Length <= maxValueBytes && ReadManifest(data) is null)
            {
                requests.Add(new StateTransactionRequest(operation.Key, data, StateOperationType.Upsert, operation.ETag));
                continue;
            }
            // Chunks first, each its own request (a transaction carrying them all would break the body limit);
            // unreferenced until the manifest, written in the transaction, points at them.
            string version = Guid.NewGuid().ToString("N");
            var chunks = ChunkCodec.Split(data, maxValueBytes);
            for (int i = 0; i < chunks.Count; i++)
            {
                await dapr.SaveByteStateAsync(storeName, ChunkKey(operation.Key, version, i), chunks[i], cancellationToken: cancellationToken);
            }
            requests.Add(new StateTransactionRequest(operation.Key, WriteManifest(new Manifest(version, chunks.Count, data.Length)), StateOperationType.Upsert, operation.ETag));
        }
        try
        {
            await dapr.ExecuteStateTransactionAsync(storeName, requests, cancellationToken: cancellationToken);
            return true;
        }
        catch (DaprException ex) when (ex.InnerException is RpcException { StatusCode: StatusCode.Aborted or StatusCode.FailedPrecondition })
        {
            return false;
        }
    }

    private static string ChunkKey(string key, string version, int index) => $"{key}#chunk-{version}-{index}";

    private static byte[] WriteManifest(Manifest manifest) => [.. ManifestMarker, .. JsonSerializer.SerializeToUtf8Bytes(manifest)];

    private static Manifest? ReadManifest(ReadOnlySpan<byte> data)
    {
        if (data.Length < ManifestMarker.Length || !data[..ManifestMarker.Length].SequenceEqual(ManifestMarker)) return null;
        return JsonSerializer.Deserialize<Manifest>(data[ManifestMarker.Length..]) ?? throw new InvalidDataException("empty state manifest");
    }
}
