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
}
