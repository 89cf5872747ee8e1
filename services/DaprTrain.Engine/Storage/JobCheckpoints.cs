using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text.Json;
using DaprTrain.Training;

namespace DaprTrain.Engine.Storage;

/// <summary>A saved training state of a job: the round it completed, its generation, and the trainer state.</summary>
public sealed record JobCheckpoint(long Round, int Generation, string Writer, TrainingCheckpoint State);

public sealed record CheckpointPointer(long Round, int Generation, string Key, string Writer, string Hash, string? PreviousKey = null);

/// <summary>
/// Checkpoints of one job in a store: each blob under a key of its own, "{job}/checkpoint/{round}/{writer}-{nonce}", that
/// no other writer uses, and then the pointer "{job}/checkpoint/latest" (round, key, the blob's hash) swapped by one
/// single-key save guarded by its ETag. Two writers (a restarted node and the one that replaced it) cannot both move
/// the pointer, and whichever wins, the pointer names a blob that is whole and matches its hash: a losing writer never
/// touched the winner's blob. No transaction, because Dapr's cannot be relied on for this (on Redis it does not roll
/// back, and a conflict is reported as Internal like any other failure). The loser deletes its blob; after a swap, the
/// blob two pointers back goes, and the previous one stays as a fallback. A crash between the two writes leaves an
/// unreferenced blob, never a pointer to a missing or partial one.
/// </summary>
public sealed class JobCheckpoints(ICheckpointStore store, string jobId)
{
    private static ReadOnlySpan<byte> Magic => "DTJC"u8;

    public string LatestKey => $"{jobId}/checkpoint/latest";

    /// <summary>A key for one writer's blob of <paramref name="round"/>: unique, so no other write can land on it.</summary>
    public string BlobKey(long round, string writer) => $"{jobId}/checkpoint/{round}/{writer}-{Guid.NewGuid():N}";

    public async Task<bool> TrySaveAsync(JobCheckpoint checkpoint, CancellationToken cancellationToken = default)
    {
        byte[] blob = Encode(checkpoint);
        var latest = await store.GetAsync(LatestKey, cancellationToken);
        var previous = latest is null ? null : ParsePointer(latest.Data);
        var pointer = new CheckpointPointer(checkpoint.Round, checkpoint.Generation, BlobKey(checkpoint.Round, checkpoint.Writer), checkpoint.Writer,
            XxHash3.HashToUInt64(blob).ToString("x16", System.Globalization.CultureInfo.InvariantCulture), previous?.Key);

        if (!await store.TrySaveAsync(pointer.Key, blob, etag: null, cancellationToken))
        {
            throw new InvalidOperationException($"the store refused a write without an ETag to the new key {pointer.Key}");
        }
        if (!await store.TrySaveAsync(LatestKey, JsonSerializer.SerializeToUtf8Bytes(pointer), latest?.ETag, cancellationToken))
        {
            // Lost the race for the pointer: the blob is referenced by nothing.
            await store.TryDeleteAsync(pointer.Key, etag: null, cancellationToken);
            return false;
        }
        // The blob the pointer held until now stays as a fallback; the one before it goes.
        if (previous?.PreviousKey is string stale && stale != pointer.Key && stale != previous.Key)
        {
            await store.TryDeleteAsync(stale, etag: null, cancellationToken);
        }
        return true;
    }

    /// <summary>How often a read starts again because writers moved the pointer while it read the blob.</summary>
    private const int MaxPointerMoves = 8;

    /// <summary>
    /// The latest checkpoint. Reading the pointer and then its blob is two reads: meanwhile writers can move the pointer twice
    /// and delete the blob it named (a chunked blob then lacks chunks). A blob that is missing, incomplete or not what the
    /// pointer recorded is therefore a failure only if the pointer still names it; otherwise the read starts again from the
    /// new pointer (at most <see cref="MaxPointerMoves"/> times).
    /// </summary>
    public async Task<(JobCheckpoint Checkpoint, long Bytes)?> LoadLatestAsync(CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var latest = await store.GetAsync(LatestKey, cancellationToken);
            if (latest is null) return null;
            var pointer = ParsePointer(latest.Data);
            try
            {
                var blob = await store.GetAsync(pointer.Key, cancellationToken)
                    ?? throw new CheckpointFormatException($"checkpoint pointer names {pointer.Key}, which is not in the store");
                string hash = XxHash3.HashToUInt64(blob.Data).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
                if (hash != pointer.Hash) throw new CheckpointFormatException($"checkpoint {pointer.Key} does not match the hash its pointer records");
                return (Decode(blob.Data), blob.Data.Length);
            }
            catch (Exception ex) when (ex is CheckpointFormatException or InvalidDataException && attempt < MaxPointerMoves)
            {
                var now = await store.GetAsync(LatestKey, cancellationToken);
                if (now is not null && ParsePointer(now.Data).Key != pointer.Key) continue;
                throw;
            }
        }
    }

    private static CheckpointPointer ParsePointer(byte[] data)
    {
        try
        {
            var pointer = JsonSerializer.Deserialize<CheckpointPointer>(data) ?? throw new CheckpointFormatException("empty checkpoint pointer");
            // Positional records take missing JSON properties as null: a pointer without its key or hash names nothing to read.
            if (string.IsNullOrEmpty(pointer.Key) || string.IsNullOrEmpty(pointer.Hash)) throw new CheckpointFormatException("checkpoint pointer names no blob key or hash");
            return pointer;
        }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException($"checkpoint pointer is not valid JSON: {ex.Message}");
        }
    }

    /// <summary>The bytes <see cref="Encode"/> makes of <paramref name="checkpoint"/>, without encoding it.</summary>
    public static int EncodedLength(JobCheckpoint checkpoint) =>
        4 + 8 + 4 + 2 + System.Text.Encoding.UTF8.GetByteCount(checkpoint.Writer) + CheckpointCodec.EncodedLength(checkpoint.State);

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
