using System.Text.Json;
using Dapr;
using Dapr.Client;
using DaprTrain.Contracts;
using DaprTrain.Engine.Storage;
using Grpc.Core;

namespace DaprTrain.Dapr;

/// <summary>
/// The checkpoint store port over Dapr's state API (gRPC through DaprClient), single-key operations only. Values larger
/// than one chunk are stored as chunk keys ("{key}#chunk-{version}-{i}", a fresh version each write, so no other write
/// lands on them) and then a small manifest under the key itself, saved with the key's ETag: readers see the old value
/// or the whole new one. An ETag mismatch on SaveState/DeleteState is daprd's gRPC Aborted, which this turns into false
/// as TrySaveStateAsync does. Transactions are not used: daprd answers any failed one with Internal, so a lost race
/// could not be told from an outage (dapr/dapr pkg/api/grpc/grpc.go).
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

    public async Task<bool> TrySaveAsync(string key, byte[] data, string? etag, CancellationToken cancellationToken = default)
    {
        byte[] value = data;
        if (data.Length > maxValueBytes || ReadManifest(data) is not null)
        {
            // Chunks first, each its own request, unreferenced until the manifest points at them.
            string version = Guid.NewGuid().ToString("N");
            var chunks = ChunkCodec.Split(data, maxValueBytes);
            for (int i = 0; i < chunks.Count; i++)
            {
                await dapr.SaveByteStateAsync(storeName, ChunkKey(key, version, i), chunks[i], cancellationToken: cancellationToken);
            }
            value = WriteManifest(new Manifest(version, chunks.Count, data.Length));
        }
        if (etag is null)
        {
            await dapr.SaveByteStateAsync(storeName, key, value, cancellationToken: cancellationToken);
            return true;
        }
        return await ConflictIsFalse(() => dapr.TrySaveByteStateAsync(storeName, key, value, etag, cancellationToken: cancellationToken));
    }

    /// <summary>Deletes the key and, when it held a manifest, the chunks it named (after the key, so no reader sees a manifest without its chunks).</summary>
    public async Task<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default)
    {
        var data = await dapr.GetByteStateAsync(storeName, key, cancellationToken: cancellationToken);
        var manifest = data.IsEmpty ? null : ReadManifest(data.Span);
        if (etag is null) await dapr.DeleteStateAsync(storeName, key, cancellationToken: cancellationToken);
        else if (!await ConflictIsFalse(() => dapr.TryDeleteStateAsync(storeName, key, etag, cancellationToken: cancellationToken))) return false;
        for (int i = 0; i < (manifest?.Chunks ?? 0); i++)
        {
            await dapr.DeleteStateAsync(storeName, ChunkKey(key, manifest!.Version, i), cancellationToken: cancellationToken);
        }
        return true;
    }

    /// <summary>
    /// The SDK's Try* methods answer false for Aborted; some versions let it through wrapped in a DaprException, and some
    /// stores answer FailedPrecondition: each is a lost race, false. Anything else propagates.
    /// </summary>
    private static async Task<bool> ConflictIsFalse(Func<Task<bool>> write)
    {
        try
        {
            return await write();
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
