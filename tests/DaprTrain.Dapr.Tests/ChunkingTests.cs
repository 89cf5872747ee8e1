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
        var assembler = new ChunkAssembler(maxPendingBytes: 3_000_000);
        var first = ChunkCodec.Split(Message(2_000_000, 5));
        var second = ChunkCodec.Split(Message(2_000_000, 6));
        assembler.Add(first[0]);
        assembler.Add(second[0]);
        assembler.PendingMessages.Should().Be(1);
        foreach (var chunk in second.Skip(1)) assembler.Add(chunk);
        assembler.PendingMessages.Should().Be(0);
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
