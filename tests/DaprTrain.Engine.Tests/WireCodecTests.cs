using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Tests;

public class WireCodecTests
{
    [Fact]
    public void Round_trips_every_field()
    {
        var message = new WireMessage(MessageKind.GradientSlice, "job-ä", 2, 1234567890123, "worker-7", 64, 3, 1000, new float[] { 1.5f, -2f, 0f, float.Epsilon });
        var decoded = WireCodec.Decode(WireCodec.Encode(message));
        decoded.Should().BeEquivalentTo(message, o => o.Excluding(m => m.Values));
        decoded.Values.ToArray().Should().Equal(message.Values.ToArray());
        WireCodec.Encode(message).Length.Should().Be(WireCodec.EncodedLength(message));
    }

    [Fact]
    public void Every_single_bit_flip_is_detected()
    {
        var bytes = WireCodec.Encode(new WireMessage(MessageKind.Gradient, "j", 0, 1, "w", 1, 0, 0, new float[] { 1f, 2f, 3f }));
        for (int i = 0; i < bytes.Length; i++)
        {
            var copy = bytes.ToArray();
            copy[i] ^= 0x01;
            var act = () => WireCodec.Decode(copy);
            act.Should().Throw<MessageRejectedException>($"byte {i} was flipped");
        }
    }

    [Fact]
    public void Aggregation_is_sample_weighted_and_independent_of_arrival_order()
    {
        var a = new Contribution("worker-2", 30, new float[] { 1, 2 });
        var b = new Contribution("worker-1", 10, new float[] { 5, 6 });
        var one = new float[2];
        var two = new float[2];
        GradientAggregator.WeightedAverage([a, b], one);
        GradientAggregator.WeightedAverage([b, a], two);
        one.Should().Equal(two);
        one[0].Should().BeApproximately(0.75f * 1 + 0.25f * 5, 1e-6f);
        var act = () => GradientAggregator.WeightedAverage([a, a], one);
        act.Should().Throw<ArgumentException>().WithMessage("*twice*");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1023)]
    [InlineData(1024)]
    [InlineData(50_001)]
    [InlineData(101_375)]
    [InlineData(101_769)]
    public void A_non_finite_value_anywhere_is_rejected_naming_its_index(int index)
    {
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var values = Enumerable.Range(0, 101_770).Select(i => (i % 17 - 8) * 1e-3f).ToArray();
            values[index] = bad;
            var act = () => WireCodec.Decode(WireCodec.Encode(new WireMessage(MessageKind.Gradient, "j", 0, 1, "w", 1, 0, 0, values)));
            act.Should().Throw<MessageRejectedException>().Which.Reason.Should().Be($"non-finite value {bad} at index {index}");
        }
    }

    [Fact]
    public void A_message_whose_values_are_written_in_place_equals_one_encoded_from_a_copy()
    {
        var values = Enumerable.Range(0, 5000).Select(i => MathF.Sin(i)).ToArray();
        var header = new WireMessage(MessageKind.Gradient, "job", 3, 17, "worker-2", 64, 0, 0, ReadOnlyMemory<float>.Empty);
        var (bytes, payload) = WireCodec.Begin(header, values.Length);
        values.CopyTo(payload.Span);
        WireCodec.Seal(bytes);
        bytes.Should().Equal(WireCodec.Encode(header, values));
    }

    [Fact]
    public void Aggregation_gives_the_bits_of_adding_each_sender_in_turn_element_by_element()
    {
        // 5,003 values: a tail that is no multiple of the vector width.
        var random = new Random(7);
        var contributions = Enumerable.Range(1, 5)
            .Select(w => new Contribution($"worker-{w}", 10 * w + 3, Enumerable.Range(0, 5003).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray()))
            .ToList();
        long total = contributions.Sum(c => (long)c.SampleCount);
        var expected = new float[5003];
        for (int i = 0; i < expected.Length; i++)
        {
            float sum = 0;
            foreach (var c in contributions)
            {
                float product = c.Values.Span[i] * ((float)c.SampleCount / total);
                sum += product;
            }
            expected[i] = sum;
        }
        var actual = new float[5003];
        GradientAggregator.WeightedAverage(contributions, actual);
        actual.Should().Equal(expected);

        // A slice at an offset that is no multiple of anything (p2p-scatter's owners) reduces to the same bits.
        var slice = new float[1777];
        GradientAggregator.WeightedAverage(contributions.Select(c => c with { Values = c.Values.Slice(1531, 1777) }).ToList(), slice);
        slice.Should().Equal(expected.AsSpan(1531, 1777).ToArray());

        // A destination that already holds worker-3's values (a worker's own gradient buffer) is read, then overwritten.
        var inPlace = contributions[2].Values.ToArray();
        GradientAggregator.WeightedAverage(contributions, inPlace, destinationHolds: "worker-3");
        inPlace.Should().Equal(expected);
        // A sender that is not among the contributions leaves the destination's old values out of it.
        var stale = Enumerable.Repeat(123f, 5003).ToArray();
        GradientAggregator.WeightedAverage(contributions, stale, destinationHolds: "worker-9");
        stale.Should().Equal(expected);
    }
}
