using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text.Json;
using DaprTrain.Training;

namespace DaprTrain.Engine.Storage;

/// <summary>A saved training state of a job: the round it completed, its generation, and the trainer state.</summary>
public sealed record JobCheckpoint(long Round, int Generation, string Writer, TrainingCheckpoint State);

public sealed record CheckpointPointer(long Round, int Generation, string Key, string Writer, string Hash, string? PreviousKey = null);

/// <summary>
/// Checkpoints of one job in a store: the blob under "{job}/checkpoint/{round}" and a pointer
/// "{job}/checkpoint/latest", written in one transaction guarded by the pointer's ETag, so two writers
/// (a restarted node and the one that replaced it) cannot both move it, and a reader never sees a pointer
/// to a blob that is not there. The previous blob is deleted in the same transaction; the one before
/// stays as a fallback.
/// </summary>
public sealed class JobCheckpoints(ICheckpointStore store, string jobId)
{
    private static ReadOnlySpan<byte> Magic => "DTJC"u8;

    public string LatestKey => $"{jobId}/checkpoint/latest";

    public string BlobKey(long round) => $"{jobId}/checkpoint/{round}";

    public async Task<bool> TrySaveAsync(JobCheckpoint checkpoint, CancellationToken cancellationToken = default)
    {
        byte[] blob = Encode(checkpoint);
        var latest = await store.GetAsync(LatestKey, cancellationToken);
        var previous = latest is null ? null : ParsePointer(latest.Data);
        var pointer = new CheckpointPointer(checkpoint.Round, checkpoint.Generation, BlobKey(checkpoint.Round), checkpoint.Writer,
            XxHash3.HashToUInt64(blob).ToString("x16", System.Globalization.CultureInfo.InvariantCulture), previous?.Key);

        var operations = new List<StoreOperation>
        {
            StoreOperation.Upsert(pointer.Key, blob),
            StoreOperation.Upsert(LatestKey, JsonSerializer.SerializeToUtf8Bytes(pointer), latest?.ETag),
        };
        // The blob the pointer held until now stays as a fallback; the one before it goes.
        if (previous?.PreviousKey is string stale && stale != pointer.Key && stale != previous.Key)
        {
            operations.Add(StoreOperation.Delete(stale));
        }
        return await store.TryTransactAsync(operations, cancellationToken);
    }

    public async Task<(JobCheckpoint Checkpoint, long Bytes)?> LoadLatestAsync(CancellationToken cancellationToken = default)
    {
        var latest = await store.GetAsync(LatestKey, cancellationToken);
        if (latest is null) return null;
        var pointer = ParsePointer(latest.Data);
        var blob = await store.GetAsync(pointer.Key, cancellationToken)
            ?? throw new CheckpointFormatException($"checkpoint pointer names {pointer.Key}, which is not in the store");
        string hash = XxHash3.HashToUInt64(blob.Data).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        if (hash != pointer.Hash) throw new CheckpointFormatException($"checkpoint {pointer.Key} does not match the hash its pointer records");
        return (Decode(blob.Data), blob.Data.Length);
    }

    private static CheckpointPointer ParsePointer(byte[] data)
    {
        try
        {
            return JsonSerializer.Deserialize<CheckpointPointer>(data) ?? throw new CheckpointFormatException("empty checkpoint pointer");
        }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException($"checkpoint pointer is not valid JSON: {ex.Message}");
        }
    }

    public static byte[] Encode(JobCheckpoint checkpoint)
    {
        byte[] writer = System.Text.Encoding.UTF8.GetBytes(checkpoint.Writer);
        int stateLength = CheckpointCodec.EncodedLength(checkpoint.State);
        var bytes = GC.AllocateUninitializedArray<byte>(4 + 8 + 4 + 2 + writer.Length + stateLength);
        Magic.CopyTo(bytes);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(4), checkpoint.Round);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), checkpoint.Generation);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(16), (ushort)writer.Length);
        writer.CopyTo(bytes, 18);
        CheckpointCodec.Encode(checkpoint.State, bytes.AsSpan(18 + writer.Length));
        return bytes;
    }

    public static JobCheckpoint Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 18 || !bytes[..4].SequenceEqual(Magic)) throw new CheckpointFormatException("not a DaprTrain job checkpoint");
        long round = BinaryPrimitives.ReadInt64LittleEndian(bytes[4..]);
        int generation = BinaryPrimitives.ReadInt32LittleEndian(bytes[12..]);
        int writerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes[16..]);
        if (18 + writerLength > bytes.Length) throw new CheckpointFormatException("job checkpoint truncated");
        string writer = System.Text.Encoding.UTF8.GetString(bytes.Slice(18, writerLength));
        return new JobCheckpoint(round, generation, writer, CheckpointCodec.Decode(bytes[(18 + writerLength)..]));
    }
}
