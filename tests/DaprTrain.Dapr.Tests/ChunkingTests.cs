namespace DaprTrain.Dapr.Tests;

public class ChunkingTests
{
    private static byte[] Message(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public void A_50_MB_gradient_round_trips_in_any_order_with_duplicates()
    {
        var message = Message(50 * 1024 * 1024, 1);
        var chunks = ChunkCodec.Split(message);
        chunks.Should().HaveCount(101).And.OnlyContain(c => c.Length <= ChunkCodec.DefaultMaxChunkBytes);

        var order = chunks.Concat(chunks.Take(5)).OrderBy(c => c.GetHashCode() ^ c.Length).ToList();
        var assembler = new ChunkAssembler();
        byte[]? whole = null;
        int duplicates = 0;
        foreach (var chunk in order)
        {
            var result = assembler.Add(chunk);
            if (result.Status == ChunkStatus.Complete) whole = result.Message;
            if (result.Status == ChunkStatus.Duplicate) duplicates++;
            result.Status.Should().NotBe(ChunkStatus.Rejected);
        }
        whole.Should().Equal(message);
        duplicates.Should().Be(5);
        assembler.PendingMessages.Should().Be(0);
    }

    [Fact]
    public void A_missing_chunk_leaves_the_message_incomplete()
    {
        var chunks = ChunkCodec.Split(Message(2_000_000, 2));
        var assembler = new ChunkAssembler();
        foreach (var chunk in chunks.Skip(1)) assembler.Add(chunk).Status.Should().Be(ChunkStatus.Incomplete);
        assembler.PendingMessages.Should().Be(1);
        assembler.Add(chunks[0]).Status.Should().Be(ChunkStatus.Complete);
    }

    [Fact]
    public void A_corrupted_chunk_is_rejected_with_a_reason()
    {
        var chunks = ChunkCodec.Split(Message(1_000_000, 3));
        var bad = chunks[1].ToArray();
        bad[1000] ^= 0x20;
        var result = new ChunkAssembler().Add(bad);
        result.Status.Should().Be(ChunkStatus.Rejected);
        result.Reason.Should().Contain("chunk checksum mismatch");

        new ChunkAssembler().Add("hello"u8.ToArray()).Reason.Should().Contain("truncated");
    }

    [Fact]
    public void A_message_assembled_once_is_a_duplicate_when_redelivered()
    {
        var chunks = ChunkCodec.Split(Message(10, 4));
        var assembler = new ChunkAssembler();
        assembler.Add(chunks[0]).Status.Should().Be(ChunkStatus.Complete);
        assembler.Add(chunks[0]).Status.Should().Be(ChunkStatus.Duplicate);
    }

    [Fact]
    public void Incomplete_messages_beyond_the_budget_are_evicted_oldest_first()
    {
        // The budget counts bytes received, not bytes claimed: two chunks of the first (1 MB) and one of the second fit in 2.2 MB; the rest of the
        // second message does not fit beside the first's chunks, so the first, the oldest, goes.
        var assembler = new ChunkAssembler(maxPendingBytes: 2_200_000);
        var first = ChunkCodec.Split(Message(2_000_000, 5));
        var second = ChunkCodec.Split(Message(2_000_000, 6));
        assembler.Add(first[0]).Status.Should().Be(ChunkStatus.Incomplete);
        assembler.Add(first[1]).Status.Should().Be(ChunkStatus.Incomplete);
        assembler.Add(second[0]).Status.Should().Be(ChunkStatus.Incomplete);
        assembler.PendingMessages.Should().Be(2);
        foreach (var chunk in second.Skip(1).SkipLast(1)) assembler.Add(chunk);
        assembler.PendingMessages.Should().Be(1, "the first message was evicted to make room");
        assembler.Evicted.Should().Be(1);
        assembler.Add(second[^1]).Status.Should().Be(ChunkStatus.Complete);
        assembler.PendingMessages.Should().Be(0);
        assembler.PendingBytes.Should().Be(0);
    }

    /// <summary>A chunk with a consistent header and a good checksum whose claims are whatever an attacker likes.</summary>
    private static byte[] Forged(int index, int count, int totalLength, int offset, byte[] data, ulong whole = 0, Guid? id = null)
    {
        var chunk = new byte[ChunkCodec.HeaderBytes + data.Length + 8];
        var span = chunk.AsSpan();
        "DTCH"u8.CopyTo(span);
        span[4] = 1;
        (id ?? Guid.NewGuid()).TryWriteBytes(span[8..]);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(span[24..], index);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(span[28..], count);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(span[32..], totalLength);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(span[36..], whole);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(span[44..], offset);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(span[48..], data.Length);
        data.CopyTo(span[ChunkCodec.HeaderBytes..]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(span[^8..], System.IO.Hashing.XxHash3.HashToUInt64(span[..^8]));
        return chunk;
    }

    private static long Allocated(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Theory]
    [InlineData(250_000_000, 0)]
    [InlineData(int.MaxValue, 1)]
    [InlineData(1_000_000, 999_999)]
    public void A_chunk_that_claims_more_chunks_than_its_message_has_bytes_is_rejected_without_allocating_them(int count, int totalLength)
    {
        // Issue 14: a 60-byte chunk claiming 250,000,000 chunks allocated a bool per chunk (240 MB) and kept it.
        var assembler = new ChunkAssembler();
        ChunkResult result = default;
        long allocated = Allocated(() => result = assembler.Add(Forged(0, count, totalLength, 0, totalLength > 0 ? [7] : [])));
        result.Status.Should().Be(ChunkStatus.Rejected);
        result.Reason.Should().Contain($"claims {count} chunks for a message of {totalLength} bytes");
        allocated.Should().BeLessThan(64 * 1024);
        assembler.PendingMessages.Should().Be(0);
    }

    [Fact]
    public void A_chunk_that_claims_a_large_message_costs_what_it_holds_not_what_it_claims()
    {
        // Issue 14: the assembler allocated the declared total (up to its 256 MiB budget) for a 60-byte chunk.
        var assembler = new ChunkAssembler();
        long allocated = Allocated(() =>
        {
            for (int i = 0; i < 100; i++) assembler.Add(Forged(0, 500, 200_000_000, 0, [1, 2, 3])).Status.Should().Be(ChunkStatus.Incomplete);
        });
        allocated.Should().BeLessThan(1 << 20, "100 chunks of 3 bytes each claiming 200 MB must not cost 20 GB");
        assembler.PendingMessages.Should().Be(100);
        assembler.PendingBytes.Should().BeLessThan(100 * 100);
        assembler.Add(Forged(0, 2, 300_000_000, 0, [1])).Reason.Should().Contain("exceeds the 268435456-byte budget");
    }

    [Fact]
    public void Never_completed_messages_are_bounded_in_number_and_the_oldest_go_first()
    {
        // Issue 14: 35,000 never-completed ids were never evicted (and eviction sorted them all on every chunk).
        var assembler = new ChunkAssembler(maxPendingMessages: 1000);
        var firstId = Guid.NewGuid();
        assembler.Add(Forged(0, 2, 2, 0, [1], id: firstId));
        int incomplete = 0;
        for (int i = 1; i < 35_000; i++) incomplete += assembler.Add(Forged(0, 2, 2, 0, [1])).Status == ChunkStatus.Incomplete ? 1 : 0;
        incomplete.Should().Be(34_999);
        assembler.PendingMessages.Should().Be(1000);
        assembler.Evicted.Should().Be(34_000);
        assembler.PendingBytes.Should().Be(1000 * (System.Buffers.ArrayPool<byte>.Shared.Rent(1).Length + 64),
            "what is evicted is let go: the smallest pooled buffer and a chunk's overhead each for the 1000 kept");
        // The first message was evicted: its second chunk starts it anew instead of completing it.
        assembler.Add(Forged(1, 2, 2, 1, [2], id: firstId)).Status.Should().Be(ChunkStatus.Incomplete);
    }

    [Fact]
    public void An_incomplete_message_expires_two_rounds_after_its_first_chunk()
    {
        var chunks = ChunkCodec.Split(Message(1_500_000, 8));
        var assembler = new ChunkAssembler();
        assembler.Add(chunks[0], round: 5).Status.Should().Be(ChunkStatus.Incomplete);
        assembler.Add(chunks[1], round: 6).Status.Should().Be(ChunkStatus.Incomplete, "one round later it is still current");
        assembler.PendingMessages.Should().Be(1);
        assembler.Add(ChunkCodec.Split(Message(10, 9))[0], round: 7).Status.Should().Be(ChunkStatus.Complete);
        assembler.PendingMessages.Should().Be(0, "at round 7 the message of round 5 has expired");
        assembler.Expired.Should().Be(1);
        assembler.PendingBytes.Should().Be(0);
    }

    [Fact]
    public void Chunks_that_do_not_tile_their_message_are_rejected_when_the_last_arrives()
    {
        var id = Guid.NewGuid();
        var assembler = new ChunkAssembler();
        assembler.Add(Forged(0, 2, 4, 0, [1, 2], id: id)).Status.Should().Be(ChunkStatus.Incomplete);
        var result = assembler.Add(Forged(1, 2, 4, 1, [3, 4], id: id));
        result.Status.Should().Be(ChunkStatus.Rejected);
        result.Reason.Should().Contain("chunk 1 starts at byte 1, expected 2");

        var overfull = Guid.NewGuid();
        assembler.Add(Forged(0, 3, 4, 0, [1, 2, 3], id: overfull)).Status.Should().Be(ChunkStatus.Incomplete);
        assembler.Add(Forged(1, 3, 4, 2, [3, 4], id: overfull)).Reason.Should().Contain("past its declared 4 bytes");
        assembler.PendingBytes.Should().BeLessThan(200);
    }

    [Fact]
    public void A_forgotten_message_is_assembled_again_when_redelivered()
    {
        var message = Message(10, 7);
        var chunks = ChunkCodec.Split(message);
        var assembler = new ChunkAssembler();
        assembler.Add(chunks[0]).Status.Should().Be(ChunkStatus.Complete);
        assembler.Forget(message);
        assembler.Add(chunks[0]).Status.Should().Be(ChunkStatus.Complete, "the node refused it for now; the resend must reach the node again");
    }
}
