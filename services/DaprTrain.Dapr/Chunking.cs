using System.Buffers;
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
/// rejected at once; a whole message that fails its checksum is rejected when its last chunk arrives.
/// Memory follows what was received, never what a header claims: a chunk's data is kept as it arrives and the whole
/// message is allocated only once every byte of it is here (a 60-byte chunk that claims 2 GB costs 60 bytes). The
/// bytes held are charged to a budget, the number of incomplete messages is bounded, and a message still incomplete
/// <see cref="ExpiryRounds"/> rounds after its first chunk came is dropped (its round has closed without it). Beyond the
/// budget or the count, the oldest incomplete message goes first, in O(1) amortised (arrival order is a queue).
/// </summary>
/// <param name="maxPendingBytes">Bytes of incomplete messages held at most (and the largest message accepted).</param>
/// <param name="maxPendingMessages">Incomplete messages held at most.</param>
public sealed class ChunkAssembler(long maxPendingBytes = ChunkAssembler.DefaultMaxPendingBytes, int maxPendingMessages = ChunkAssembler.DefaultMaxPendingMessages)
{
    public const long DefaultMaxPendingBytes = 256L * 1024 * 1024;

    /// <summary>Far above what a round leaves open (a message per peer and topic, a round or two in flight).</summary>
    public const int DefaultMaxPendingMessages = 1024;

    /// <summary>An incomplete message is dropped once the receiver is this many rounds past the round its first chunk came in.</summary>
    public const long ExpiryRounds = 2;

    /// <summary>What holding one chunk costs beyond its data (array header, dictionary entry), charged to the budget.</summary>
    private const int ChunkOverheadBytes = 64;

    private const int RememberedMessages = 4096;

    private readonly Dictionary<Guid, Pending> _pending = [];
    private readonly Queue<(Guid Id, long Sequence)> _arrivals = new();
    private readonly HashSet<Guid> _completed = [];
    private readonly Queue<Guid> _completedOrder = new();
    private readonly Lock _gate = new();
    private long _pendingBytes;
    private long _sequence;
    private long _expired;
    private long _evicted;

    public int PendingMessages
    {
        get
        {
            lock (_gate) return _pending.Count;
        }
    }

    /// <summary>Bytes held for incomplete messages (each chunk's pooled buffer plus a small overhead per chunk).</summary>
    public long PendingBytes
    {
        get
        {
            lock (_gate) return _pendingBytes;
        }
    }

    /// <summary>Incomplete messages dropped because their round had passed.</summary>
    public long Expired => Interlocked.Read(ref _expired);

    /// <summary>Incomplete messages dropped to stay within the byte budget or the message count.</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>Checks a chunk's own framing (magic, version, checksum, header consistency) without keeping it.</summary>
    public static string? Check(ReadOnlySpan<byte> chunk)
    {
        ChunkCodec.Parse(chunk, out var problem);
        return problem;
    }

    /// <param name="round">The receiver's current round: stamps a new message and expires the ones that are too old.</param>
    public ChunkResult Add(ReadOnlySpan<byte> chunk, long round = 0)
    {
        var header = ChunkCodec.Parse(chunk, out var problem);
        if (problem is not null) return new ChunkResult(ChunkStatus.Rejected, Reason: problem);
        // Every chunk but the one of an empty message carries at least a byte, so a message has at most as many chunks
        // as bytes. Checked before anything is kept, as is the size, so no claim is believed beyond what a message can be.
        if (header.Count > Math.Max(1, header.TotalLength))
        {
            return new ChunkResult(ChunkStatus.Rejected, Reason: $"chunk header claims {header.Count} chunks for a message of {header.TotalLength} bytes");
        }
        if (header.TotalLength > maxPendingBytes)
        {
            return new ChunkResult(ChunkStatus.Rejected, Reason: $"message of {header.TotalLength} bytes exceeds the {maxPendingBytes}-byte budget");
        }
        if (header.DataLength == 0 && header.TotalLength > 0)
        {
            return new ChunkResult(ChunkStatus.Rejected, Reason: "empty chunk of a non-empty message");
        }
        lock (_gate)
        {
            Expire(round);
            if (_completed.Contains(header.Id)) return new ChunkResult(ChunkStatus.Duplicate, Reason: "message already assembled");
            if (header.Count == 1) return Single(header, chunk);
            if (!_pending.TryGetValue(header.Id, out var pending))
            {
                pending = new Pending(header, ++_sequence, round);
                _pending[header.Id] = pending;
                _arrivals.Enqueue((header.Id, pending.Sequence));
            }
            else if (pending.Header.Count != header.Count || pending.Header.TotalLength != header.TotalLength || pending.Header.Whole != header.Whole)
            {
                return new ChunkResult(ChunkStatus.Rejected, Reason: "chunk disagrees with the other chunks of its message");
            }
            if (pending.Parts.ContainsKey(header.Index)) return new ChunkResult(ChunkStatus.Duplicate, Reason: $"chunk {header.Index} already received");
            if (pending.ReceivedBytes + header.DataLength > header.TotalLength)
            {
                if (pending.Parts.Count == 0) Remove(header.Id, pending);
                return new ChunkResult(ChunkStatus.Rejected, Reason: $"chunk {header.Index} takes its message past its declared {header.TotalLength} bytes");
            }

            // Pooled: a gradient of several MB arrives as chunks of up to 512 KiB, and a fresh array for each (all on the
            // large-object heap) cost four times the reassembly itself. Returned when the message completes or is let go.
            var data = ArrayPool<byte>.Shared.Rent(header.DataLength);
            chunk.Slice(ChunkCodec.HeaderBytes, header.DataLength).CopyTo(data);
            pending.Parts.Add(header.Index, new Part(header.Offset, data, header.DataLength));
            pending.ReceivedBytes += header.DataLength;
            // Charged at the pooled array's size (the pool rounds up to a power of two), so the budget bounds what is held.
            pending.HeldBytes += data.Length + ChunkOverheadBytes;
            _pendingBytes += data.Length + ChunkOverheadBytes;
            if (pending.Parts.Count < header.Count)
            {
                Evict(header.Id);
                return new ChunkResult(ChunkStatus.Incomplete);
            }

            Remove(header.Id, pending);
            var message = Assemble(pending, out problem);
            Release(pending);
            if (message is null) return new ChunkResult(ChunkStatus.Rejected, Reason: problem);
            Remember(header.Id);
            return new ChunkResult(ChunkStatus.Complete, message);
        }
    }

    /// <summary>Forgets a whole message, so that the same bytes delivered again are assembled and handed on again.</summary>
    public void Forget(ReadOnlySpan<byte> message)
    {
        var id = new Guid(XxHash128.Hash(message));
        lock (_gate) _completed.Remove(id);
    }

    /// <summary>A message of one chunk (most of them): nothing to hold, checked and handed on at once.</summary>
    private ChunkResult Single(ChunkCodec.Header header, ReadOnlySpan<byte> chunk)
    {
        if (header.Offset != 0 || header.DataLength != header.TotalLength)
        {
            return new ChunkResult(ChunkStatus.Rejected, Reason: $"single chunk holds bytes {header.Offset} to {header.Offset + header.DataLength} of a {header.TotalLength}-byte message");
        }
        var message = chunk.Slice(ChunkCodec.HeaderBytes, header.DataLength).ToArray();
        if (XxHash3.HashToUInt64(message) != header.Whole) return new ChunkResult(ChunkStatus.Rejected, Reason: "reassembled message fails its checksum");
        Remember(header.Id);
        return new ChunkResult(ChunkStatus.Complete, message);
    }

    /// <summary>Every chunk is here: they must tile the declared length exactly, in index order, and match the whole-message checksum.</summary>
    private static byte[]? Assemble(Pending pending, out string? problem)
    {
        problem = null;
        var header = pending.Header;
        if (pending.ReceivedBytes != header.TotalLength)
        {
            problem = $"chunks hold {pending.ReceivedBytes} of the declared {header.TotalLength} bytes";
            return null;
        }
        var message = new byte[header.TotalLength];
        int offset = 0;
        for (int index = 0; index < header.Count; index++)
        {
            var part = pending.Parts[index];
            if (part.Offset != offset)
            {
                problem = $"chunk {index} starts at byte {part.Offset}, expected {offset}";
                return null;
            }
            part.Data.AsSpan(0, part.Length).CopyTo(message.AsSpan(offset));
            offset += part.Length;
        }
        if (XxHash3.HashToUInt64(message) != header.Whole)
        {
            problem = "reassembled message fails its checksum";
            return null;
        }
        return message;
    }

    private void Remove(Guid id, Pending pending)
    {
        _pending.Remove(id);
        _pendingBytes -= pending.HeldBytes;
    }

    /// <summary>Drops incomplete messages whose round has passed. Arrival order is round order, so the scan stops at the first that is still current.</summary>
    private void Expire(long round)
    {
        while (_arrivals.TryPeek(out var oldest))
        {
            if (!_pending.TryGetValue(oldest.Id, out var pending) || pending.Sequence != oldest.Sequence)
            {
                _arrivals.Dequeue(); // completed or evicted since: a stale entry
                continue;
            }
            if (round - pending.Round < ExpiryRounds) break;
            _arrivals.Dequeue();
            Remove(oldest.Id, pending);
            Release(pending);
            _expired++;
        }
    }

    /// <summary>Oldest first, beyond the byte budget or the message count; never the message that just grew.</summary>
    private void Evict(Guid keep)
    {
        while ((_pendingBytes > maxPendingBytes || _pending.Count > maxPendingMessages) && _arrivals.TryDequeue(out var oldest))
        {
            if (!_pending.TryGetValue(oldest.Id, out var pending) || pending.Sequence != oldest.Sequence) continue;
            if (oldest.Id == keep)
            {
                _arrivals.Enqueue(oldest); // it stays, now as the newest
                if (_pending.Count == 1) break;
                continue;
            }
            Remove(oldest.Id, pending);
            Release(pending);
            _evicted++;
        }
        // Stale entries (messages completed since) are dropped as the queue is read; keep them from piling up meanwhile.
        if (_arrivals.Count > 2 * _pending.Count + 64)
        {
            var live = _arrivals.Where(a => _pending.TryGetValue(a.Id, out var p) && p.Sequence == a.Sequence).ToList();
            _arrivals.Clear();
            foreach (var arrival in live) _arrivals.Enqueue(arrival);
        }
    }

    private void Remember(Guid id)
    {
        if (!_completed.Add(id)) return;
        _completedOrder.Enqueue(id);
        while (_completedOrder.Count > RememberedMessages) _completed.Remove(_completedOrder.Dequeue());
    }

    private readonly record struct Part(int Offset, byte[] Data, int Length);

    /// <summary>Gives a message's pooled chunk buffers back (it completed, or was let go).</summary>
    private static void Release(Pending pending)
    {
        foreach (var part in pending.Parts.Values) ArrayPool<byte>.Shared.Return(part.Data);
        pending.Parts.Clear();
    }

    private sealed class Pending(ChunkCodec.Header header, long sequence, long round)
    {
        public ChunkCodec.Header Header { get; } = header;
        public long Sequence { get; } = sequence;
        public long Round { get; } = round;
        public Dictionary<int, Part> Parts { get; } = [];
        public long ReceivedBytes { get; set; }

        /// <summary>What the message's chunks cost the budget: each pooled array's length plus the per-chunk overhead.</summary>
        public long HeldBytes { get; set; }
    }
}
