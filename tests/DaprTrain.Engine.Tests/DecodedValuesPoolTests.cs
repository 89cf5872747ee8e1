using System.Runtime.InteropServices;
using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Messaging;
using DaprTrain.Training;

namespace DaprTrain.Engine.Tests;

/// <summary>The pool of arrays received compressed messages are decoded into: reuse, its bounds, what it takes back, and that a reused array keeps nothing of its last message.</summary>
public class DecodedValuesPoolTests
{
    private static WireMessage Header => new(MessageKind.Gradient, "job", 0, 3, "worker-2", 64, 0, 0, ReadOnlyMemory<float>.Empty);

    private static float[] Gradient(int count, ulong seed)
    {
        var random = new SplitMix64(seed);
        return [.. Enumerable.Range(0, count).Select(_ => random.NextGaussian() * 1e-2f)];
    }

    private static float[] ArrayOf(ReadOnlyMemory<float> values) =>
        MemoryMarshal.TryGetArray(values, out var segment) ? segment.Array! : throw new InvalidOperationException("the values are not an array");

    private static int[] Bits(ReadOnlySpan<float> values)
    {
        var bits = new int[values.Length];
        for (int i = 0; i < values.Length; i++) bits[i] = BitConverter.SingleToInt32Bits(values[i]);
        return bits;
    }

    [Fact]
    public void A_returned_array_carries_the_next_values_of_its_length_and_a_double_return_is_refused()
    {
        var pool = new DecodedValuesPool(maxPerLength: 2);
        var first = pool.Rent(1000);
        first.Should().HaveCount(1000);
        pool.Outstanding.Should().Be(1);
        pool.Return(first).Should().BeTrue();
        pool.Outstanding.Should().Be(0);
        pool.Rent(999).Should().NotBeSameAs(first, "only an array of the exact length fits a message's values");
        pool.Rent(1000).Should().BeSameAs(first);
        pool.Reused.Should().Be(1);
        pool.Allocated.Should().Be(2);

        pool.Return(first).Should().BeTrue();
        var again = () => pool.Return(first);
        again.Should().Throw<InvalidOperationException>().WithMessage("*returned twice*");
    }

    [Fact]
    public void Values_the_pool_did_not_lend_are_left_alone()
    {
        var pool = new DecodedValuesPool();
        var own = new float[100];
        pool.Return(own).Should().BeFalse("a node's own gradient is no pool's");
        byte[] plain = WireCodec.Encode(Header with { Values = new float[100] });
        var float32 = WireCodec.Decode(plain, plain.Length, 100, pool);
        pool.Return(float32.Values).Should().BeFalse("float32 values are read in place from the message bytes");
        pool.Free.Should().Be(0);
        pool.Rent(100).Should().NotBeSameAs(own);
        pool.Return(pool.Rent(0)).Should().BeFalse("the empty array is the runtime's, shared by every empty message");
    }

    [Fact]
    public void Part_of_a_lent_array_is_refused()
    {
        var pool = new DecodedValuesPool();
        var lent = pool.Rent(100);
        var act = () => pool.Return(lent.AsMemory(10, 50));
        act.Should().Throw<InvalidOperationException>().WithMessage("*part of a lent array*");
        pool.Return(lent).Should().BeTrue();
    }

    [Fact]
    public void The_pool_keeps_at_most_its_bound_per_length()
    {
        var pool = new DecodedValuesPool(maxPerLength: 1);
        var (a, b) = (pool.Rent(64), pool.Rent(64));
        pool.Return(a);
        pool.Return(b);
        pool.Free.Should().Be(1);
        pool.Rent(64).Should().BeSameAs(a);
        pool.Rent(64).Should().NotBeSameAs(b, "b was over the bound and left to the collector");
    }

    [Fact]
    public void Messages_of_ever_new_lengths_do_not_make_the_pool_keep_an_array_of_each()
    {
        // A sender chooses the count it declares (up to the receiver's parameter count): the pool keeps free arrays of a few lengths only.
        var pool = new DecodedValuesPool(maxPerLength: 4, maxLengths: 2);
        var model = pool.Rent(1000);
        pool.Return(model);
        for (int length = 1; length <= 500; length++) pool.Return(pool.Rent(length));
        pool.Free.Should().BeLessThanOrEqualTo(2 * 4);
        pool.Outstanding.Should().Be(0);
        pool.Rent(500).Should().NotBeNull();
        pool.Reused.Should().Be(1, "only the most recent lengths are kept; 1000 was used least recently and went");
        pool.Rent(1000).Should().NotBeSameAs(model);
    }

    [Fact]
    public void The_length_used_least_recently_is_the_one_forgotten()
    {
        var pool = new DecodedValuesPool(maxPerLength: 4, maxLengths: 2);
        var (whole, slice) = (pool.Rent(1000), pool.Rent(250));
        pool.Return(whole);
        pool.Return(slice);
        pool.Rent(1000).Should().BeSameAs(whole, "1000 is now the length used last");
        pool.Return(whole);
        pool.Return(pool.Rent(333));
        pool.Rent(1000).Should().BeSameAs(whole);
        pool.Rent(250).Should().NotBeSameAs(slice, "250 was used least recently when 333 came");
    }

    public static TheoryData<string> Codecs() => ["fp16", "int8", "topk:0.01", "topk:0.0001", "qsgd:7", "qsgd:127"];

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_reused_array_keeps_nothing_of_its_last_message(string codec)
    {
        // Top-k sends k values and leaves the rest zero: a decode into a reused array must write those zeros itself.
        const int count = 10_000;
        var spec = CompressionSpec.Parse(codec);
        byte[] message = new GradientCompressor(spec, 5, count).Encode(Header, Gradient(count, 9), 0);
        var fresh = WireCodec.Decode(message, message.Length, count).Values.ToArray();

        var pool = new DecodedValuesPool();
        var garbage = pool.Rent(count);
        for (int i = 0; i < count; i++) garbage[i] = i % 3 == 0 ? float.NaN : i % 3 == 1 ? 1e30f : -(i + 1);
        pool.Return(garbage);

        var reused = WireCodec.Decode(message, message.Length, count, pool);
        ArrayOf(reused.Values).Should().BeSameAs(garbage, "the test must decode into the array it filled with garbage");
        Bits(reused.Values.Span).Should().Equal(Bits(fresh), $"{codec} must decode into a reused array exactly what it decodes into a new one");
    }

    [Fact]
    public void A_rejected_payload_gives_its_array_back_and_an_oversized_count_rents_nothing()
    {
        const int count = 1000;
        var pool = new DecodedValuesPool();
        byte[] message = new GradientCompressor(CompressionSpec.Parse("topk:0.01"), 5, count).Encode(Header, Gradient(count, 2), 0);
        // The first kept index becomes one beyond the vector; the checksum is sealed again so the codec's own check is what refuses it.
        int payload = WireCodec.HeaderLength(message);
        BitConverter.TryWriteBytes(message.AsSpan(payload + 4, 4), (uint)count).Should().BeTrue();
        WireCodec.Seal(message);
        var act = () => WireCodec.Decode(message, message.Length, count, pool);
        act.Should().Throw<MessageRejectedException>().WithMessage("*top-k index 1000*");
        pool.Outstanding.Should().Be(0);
        pool.Free.Should().Be(1);

        byte[] large = new GradientCompressor(CompressionSpec.Parse("int8"), 5, count).Encode(Header, Gradient(count, 2), 0);
        var tooMany = () => WireCodec.Decode(large, large.Length, maxValues: count - 1, pool);
        tooMany.Should().Throw<MessageRejectedException>().WithMessage("*declares 1000 values; at most 999*");
        pool.Allocated.Should().Be(1, "the count is checked against the model before an array is rented");
    }
}
