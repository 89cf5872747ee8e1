using System.Buffers.Binary;
using System.IO.Hashing;

namespace DaprTrain.Dapr;

public enum ChunkStatus
{
    Incomplete,
    Complete,
    Duplicate,
    Rejected,
}

public readonly record struct ChunkResult(ChunkStatus Status, byte[]? Message = null, string? Reason = null);

/// <summary>
/// Large messages over pub/sub: split into chunks below a size limit (default 512 KiB, under Kafka's ~1 MB message
/// default and daprd's 4 MiB body limit), each with its own checksum and the whole message's. A chunk:
/// "DTCH", u8 version, 3 reserved bytes, 16-byte message id (XxHash128 of the whole message, so a redelivered
/// message has the same id), u32 index, u32 count, u32 total length, u64 whole-message XxHash3, u32 offset, u32 data length,
/// the data, u64 XxHash3 of everything before it in the chunk.
/// Chosen over claim-check (blob in the state store, key on the topic) because the state API has the same body
/// limit, so a claim-check would need chunking too, plus two store round trips and blob clean-up per message.
/// </summary>
public static class ChunkCodec
{
    public const int DefaultMaxChunkBytes = 512 * 1024;
    public const int HeaderBytes = 4 + 4 + 16 + 4 + 4 + 4 + 8 + 4 + 4;
    private static ReadOnlySpan<byte> Magic => "DTCH"u8;

    public static IReadOnlyList<byte[]> Split(ReadOnlySpan<byte> message, int maxChunkBytes = DefaultMaxChunkBytes)
    {
        int dataPerChunk = maxChunkBytes - HeaderBytes - 8;
        if (dataPerChunk < 1) throw new ArgumentOutOfRangeException(nameof(maxChunkBytes), $"a chunk needs more than {HeaderBytes + 8} bytes");
        var id = XxHash128.Hash(message);
        ulong whole = XxHash3.HashToUInt64(message);
        int count = Math.Max(1, (message.Length + dataPerChunk - 1) / dataPerChunk);
        var chunks = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            int offset = i * dataPerChunk;
            int length = Math.Min(dataPerChunk, message.Length - offset);
            var chunk = new byte[HeaderBytes + length + 8];
            var span = chunk.AsSpan();
            Magic.CopyTo(span);
            span[4] = 1;
            id.CopyTo(span[8..]);
            BinaryPrimitives.WriteInt32LittleEndian(span[24..], i);
            BinaryPrimitives.WriteInt32LittleEndian(span[28..], count);
            BinaryPrimitives.WriteInt32LittleEndian(span[32..], message.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(span[36..], whole);
            BinaryPrimitives.WriteInt32LittleEndian(span[44..], offset);
            BinaryPrimitives.WriteInt32LittleEndian(span[48..], length);
            message.Slice(offset, length).CopyTo(span[HeaderBytes..]);
            BinaryPrimitives.WriteUInt64LittleEndian(span[(HeaderBytes + length)..], XxHash3.HashToUInt64(span[..(HeaderBytes + length)]));
            chunks[i] = chunk;
        }
        return chunks;
    }

    internal readonly record struct Header(Guid Id, int Index, int Count, int TotalLength, ulong Whole, int Offset, int DataLength);

    internal static Header Parse(ReadOnlySpan<byte> chunk, out string? problem)
    {
        problem = null;
        if (chunk.Length < HeaderBytes + 8) { problem = $"chunk truncated ({chunk.Length} bytes)"; return default; }
        if (!chunk[..4].SequenceEqual(Magic)) { problem = "not a DaprTrain chunk (bad magic number)"; return default; }
        if (chunk[4] != 1) { problem = $"unsupported chunk format version {chunk[4]}"; return default; }
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(chunk[^8..]);
        if (stored != XxHash3.HashToUInt64(chunk[..^8])) { problem = "chunk checksum mismatch"; return default; }
        var header = new Header(new Guid(chunk.Slice(8, 16)), BinaryPrimitives.ReadInt32LittleEndian(chunk[24..]), BinaryPrimitives.ReadInt32LittleEndian(chunk[28..]),
            BinaryPrimitives.ReadInt32LittleEndian(chunk[32..]), BinaryPrimitives.ReadUInt64LittleEndian(chunk[36..]), BinaryPrimitives.ReadInt32LittleEndian(chunk[44..]), BinaryPrimitives.ReadInt32LittleEndian(chunk[48..]));
        if (header.Count < 1 || header.Index < 0 || header.Index >= header.Count || header.TotalLength < 0 || header.DataLength < 0
            || header.Offset < 0 || chunk.Length != HeaderBytes + header.DataLength + 8 || (long)header.Offset + header.DataLength > header.TotalLength)
        {
            problem = $"inconsistent chunk header (index {header.Index} of {header.Count}, {header.DataLength} of {header.TotalLength} bytes)";
        }
        return header;
    }
}

/// <summary>
/// Puts chunks back together, whatever order and however often they arrive. A chunk that fails its checksum is
/// rejected at once; a whole message that fails its checksum is rejected when its last chunk arrives. Incomplete
/// messages are evicted oldest first beyond a byte budget, so a sender that never finishes cannot exhaust memory.
/// </summary>
public sealed class ChunkAssembler(long maxPendingBytes = 256L * 1024 * 1024)
{
    private readonly Dictionary<Guid, Pending> _pending = [];
    private readonly HashSet<Guid> _completed = [];
    private readonly Queue<Guid> _completedOrder = new();
    private readonly Lock _gate = new();
    private long _pendingBytes;

    public int PendingMessages
    {
        get
        {
            lock (_gate) return _pending.Count;
        }
    }

    public ChunkResult Add(ReadOnlySpan<byte> chunk)
    {
        var header = ChunkCodec.Parse(chunk, out var problem);
        if (problem is not null) return new ChunkResult(ChunkStatus.Rejected, Reason: problem);
        lock (_gate)
        {
            if (_completed.Contains(header.Id)) return new ChunkResult(ChunkStatus.Duplicate, Reason: "message already assembled");
            if (!_pending.TryGetValue(header.Id, out var pending))
            {
                if (header.TotalLength > maxPendingBytes) return new ChunkResult(ChunkStatus.Rejected, Reason: $"message of {header.TotalLength} bytes exceeds the {maxPendingBytes}-byte budget");
                pending = new Pending(header, new byte[header.TotalLength], new bool[header.Count]);
                _pending[header.Id] = pending;
                _pendingBytes += header.TotalLength;
                Evict(header.Id);
            }
            if (pending.Header.Count != header.Count || pending.Header.TotalLength != header.TotalLength || pending.Header.Whole != header.Whole)
            {
                return new ChunkResult(ChunkStatus.Rejected, Reason: "chunk disagrees with the other chunks of its message");
            }
            if (pending.Received[header.Index]) return new ChunkResult(ChunkStatus.Duplicate, Reason: $"chunk {header.Index} already received");

            chunk.Slice(ChunkCodec.HeaderBytes, header.DataLength).CopyTo(pending.Data.AsSpan(header.Offset));
            pending.Received[header.Index] = true;
            pending.Count++;
            if (pending.Count < header.Count) return new ChunkResult(ChunkStatus.Incomplete);

            _pending.Remove(header.Id);
            _pendingBytes -= header.TotalLength;
            if (XxHash3.HashToUInt64(pending.Data) != header.Whole) return new ChunkResult(ChunkStatus.Rejected, Reason: "reassembled message fails its checksum");
            Remember(header.Id);
            return new ChunkResult(ChunkStatus.Complete, pending.Data);
        }
    }

    /// <summary>Forgets a whole message, so that the same bytes delivered again are assembled and handed on again.</summary>
    public void Forget(ReadOnlySpan<byte> message)
    {
        var id = new Guid(XxHash128.Hash(message));
        lock (_gate) _completed.Remove(id);
    }

    private void Evict(Guid keep)
    {
        foreach (var id in _pending.OrderBy(p => p.Value.Sequence).Select(p => p.Key).ToList())
        {
            if (_pendingBytes <= maxPendingBytes) break;
            if (id == keep) continue;
            _pendingBytes -= _pending[id].Header.TotalLength;
            _pending.Remove(id);
        }
    }

    private void Remember(Guid id)
    {
        _completed.Add(id);
        _completedOrder.Enqueue(id);
        while (_completedOrder.Count > 4096) _completed.Remove(_completedOrder.Dequeue());
    }

    private sealed class Pending(ChunkCodec.Header header, byte[] data, bool[] received)
    {
        private static long _next;

        public ChunkCodec.Header Header { get; } = header;
        public byte[] Data { get; } = data;
        public bool[] Received { get; } = received;
        public int Count { get; set; }
        public long Sequence { get; } = Interlocked.Increment(ref _next);
    }
}
