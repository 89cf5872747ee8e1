using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Messaging;
using DaprTrain.Training;

namespace DaprTrain.Engine.Tests;

/// <summary>The codecs on their own: round trips, error bounds, top-k's choice and its tie rule, and error feedback.</summary>
public class CompressionCodecTests
{
    private static float[] Gradient(int count, ulong seed)
    {
        var random = new SplitMix64(seed);
        return [.. Enumerable.Range(0, count).Select(_ => random.NextGaussian() * 1e-2f)];
    }

    private static WireMessage Header(int count = 0) => new(MessageKind.Gradient, "job", 0, 7, "worker-1", 64, 0, 0, ReadOnlyMemory<float>.Empty);

    [Theory]
    [InlineData("none", CompressionKind.None, 0, 0)]
    [InlineData("fp16", CompressionKind.Fp16, 0, 0)]
    [InlineData("int8", CompressionKind.Int8, 0, 0)]
    [InlineData("topk:0.01", CompressionKind.TopK, 0.01, 0)]
    [InlineData("topk:1", CompressionKind.TopK, 1, 0)]
    [InlineData("qsgd:15", CompressionKind.Qsgd, 0, 15)]
    public void Specs_parse(string text, CompressionKind kind, double ratio, int levels)
    {
        var spec = CompressionSpec.Parse(text);
        spec.Should().Be(new CompressionSpec(kind, ratio, levels));
        spec.ToString().Should().Be(text);
    }

    [Theory]
    [InlineData("zip", "*'zip' is not known*")]
    [InlineData("topk", "*topk needs a ratio*")]
    [InlineData("topk:0", "*topk needs a ratio*")]
    [InlineData("topk:1.5", "*topk needs a ratio*")]
    [InlineData("topk:NaN", "*topk needs a ratio*")]
    [InlineData("qsgd:0", "*qsgd needs a number of levels from 1 to 127*")]
    [InlineData("qsgd:128", "*qsgd needs a number of levels*")]
    [InlineData("fp16:2", "*fp16 takes no argument*")]
    public void Bad_specs_are_refused_naming_the_value(string text, string message)
    {
        var act = () => CompressionSpec.Parse(text);
        act.Should().Throw<ArgumentException>().WithMessage(message);
    }

    [Fact]
    public void Fp16_is_exact_for_values_a_half_represents_and_clamps_beyond_its_range()
    {
        float[] exact = [0f, 1f, -2.5f, 0.333251953125f, 65504f, -65504f, 6.1035156e-05f, 5.9604645e-08f, 1023.5f];
        var payload = new byte[Fp16Codec.EncodedBytes(exact.Length)];
        Fp16Codec.Encode(exact, payload);
        var decoded = new float[exact.Length];
        Fp16Codec.Decode(payload, decoded);
        decoded.Should().Equal(exact);

        float[] large = [1e6f, -70000f, 1f];
        payload = new byte[Fp16Codec.EncodedBytes(large.Length)];
        Fp16Codec.Encode(large, payload);
        decoded = new float[large.Length];
        Fp16Codec.Decode(payload, decoded);
        decoded.Should().Equal(65504f, -65504f, 1f);
    }

    [Fact]
    public void Fp16_keeps_11_significant_bits()
    {
        var values = Gradient(10_000, 1);
        var decoded = RoundTrip(CompressionSpec.Parse("fp16"), values);
        for (int i = 0; i < values.Length; i++)
        {
            // Relative error 2^-11 for normal halves; below 6.1e-5 the spacing is absolute, 2^-24.
            Math.Abs(decoded[i] - values[i]).Should().BeLessThanOrEqualTo(Math.Max(Math.Abs(values[i]) * (1f / 2048), 3e-8f));
        }
    }

    [Fact]
    public void Int8_is_within_half_a_step_of_every_value_per_block()
    {
        var values = Gradient(3 * Int8Codec.BlockSize + 17, 2);
        values[5] = 3f; // one large value: its block's step is large, the other blocks' are not
        var payload = new byte[Int8Codec.EncodedBytes(values.Length)];
        Int8Codec.Encode(values, payload);
        payload.Length.Should().Be(4 * 4 + values.Length);
        var decoded = new float[values.Length];
        Int8Codec.Decode(payload, decoded);
        for (int i = 0; i < values.Length; i++)
        {
            int block = i / Int8Codec.BlockSize;
            float scale = BitConverter.ToSingle(payload, 4 * block);
            scale.Should().Be(values.Skip(block * Int8Codec.BlockSize).Take(Int8Codec.BlockSize).Max(Math.Abs) / 127f);
            Math.Abs(decoded[i] - values[i]).Should().BeLessThanOrEqualTo(scale / 2 * 1.0001f, $"value {i} ({values[i]})");
        }
        decoded[5].Should().Be(3f, "the block's largest magnitude is code 127 exactly");
    }

    [Fact]
    public void Int8_sends_a_block_of_zeros_as_zeros()
    {
        var decoded = RoundTrip(CompressionSpec.Parse("int8"), new float[2000]);
        decoded.Should().OnlyContain(v => v == 0);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(1000)]
    [InlineData(9999)]
    public void Top_k_keeps_exactly_the_k_largest_magnitudes(int k)
    {
        var values = Gradient(10_000, 3);
        var payload = new byte[TopKCodec.EncodedBytes(k)];
        TopKCodec.Encode(values, k, payload, new float[values.Length]);
        var decoded = new float[values.Length];
        TopKCodec.Decode(payload, decoded);
        var expected = values.Select((v, i) => (v, i)).OrderByDescending(p => Math.Abs(p.v)).ThenBy(p => p.i).Take(k).Select(p => p.i).ToHashSet();
        for (int i = 0; i < values.Length; i++) decoded[i].Should().Be(expected.Contains(i) ? values[i] : 0f);
    }

    [Fact]
    public void Top_k_breaks_ties_by_the_lower_index()
    {
        float[] values = [0.5f, -1f, 1f, 0.25f, -1f, 1f, 2f, -1f];
        var payload = new byte[TopKCodec.EncodedBytes(3)];
        TopKCodec.Encode(values, 3, payload, new float[values.Length]);
        var decoded = new float[values.Length];
        TopKCodec.Decode(payload, decoded);
        // 2 is the largest; of the five magnitudes 1, the two with the lowest indices (1 and 2) go with it.
        decoded.Should().Equal(0f, -1f, 1f, 0f, 0f, 0f, 2f, 0f);
    }

    [Fact]
    public void Top_k_of_fewer_non_zeros_than_k_fills_up_with_zeros_of_the_lowest_indices()
    {
        float[] values = [0f, 0f, 3f, 0f, -4f];
        var payload = new byte[TopKCodec.EncodedBytes(3)];
        TopKCodec.Encode(values, 3, payload, new float[values.Length]);
        BitConverter.ToUInt32(payload, 4).Should().Be(0u);
        BitConverter.ToUInt32(payload, 8).Should().Be(2u);
        BitConverter.ToUInt32(payload, 12).Should().Be(4u);
    }

    [Fact]
    public void Selection_finds_the_nth_largest_as_a_sort_would_even_on_adversarial_inputs()
    {
        var random = new SplitMix64(4);
        var inputs = new List<float[]>
        {
            Gradient(5000, 5),
            Enumerable.Repeat(1f, 3000).ToArray(),
            Enumerable.Range(0, 4000).Select(i => (float)i).ToArray(),
            Enumerable.Range(0, 4000).Select(i => (float)(4000 - i)).ToArray(),
            Enumerable.Range(0, 4001).Select(i => (float)(i % 7)).ToArray(),
            Enumerable.Range(0, 4096).Select(i => (float)(i % 2 == 0 ? i : 4096 - i)).ToArray(), // organ pipe
        };
        foreach (var input in inputs)
        {
            var sorted = input.OrderByDescending(v => v).ToArray();
            foreach (int n in new[] { 0, 1, input.Length / 100, input.Length / 2, input.Length - 1, random.NextInt(input.Length) })
            {
                Selection.NthLargest(input.ToArray(), n).Should().Be(sorted[n]);
            }
        }
    }

    [Fact]
    public void Qsgd_is_unbiased_and_bounded_by_the_bucket_norm()
    {
        var values = Gradient(QsgdCodec.BucketSize, 6);
        var mean = new double[values.Length];
        const int draws = 400;
        var spec = CompressionSpec.Parse("qsgd:4");
        float step = 0;
        for (int d = 0; d < draws; d++)
        {
            var payload = new byte[QsgdCodec.EncodedBytes(values.Length, 4)];
            QsgdCodec.Encode(values, 4, (ulong)d, payload);
            step = BitConverter.ToSingle(payload, 2) / 4;
            var decoded = new float[values.Length];
            QsgdCodec.Decode(payload, decoded);
            for (int i = 0; i < values.Length; i++)
            {
                // Each value rounds to one of the two levels around it.
                Math.Abs(decoded[i] - values[i]).Should().BeLessThanOrEqualTo(step * 1.0001f);
                mean[i] += decoded[i] / (double)draws;
            }
        }
        spec.Levels.Should().Be(4);
        double meanError = values.Select((v, i) => Math.Abs(mean[i] - v)).Average();
        // One draw errs by up to a step; 400 unbiased draws average to well within a tenth of it.
        meanError.Should().BeLessThan(step * 0.1);
    }

    [Theory]
    [InlineData(3, 101)]
    [InlineData(7, 4)]
    [InlineData(8, 1025)]
    [InlineData(127, 600)]
    public void Qsgd_packs_nibbles_up_to_7_levels_and_bytes_above(int levels, int count)
    {
        var values = Gradient(count, 7);
        var payload = new byte[QsgdCodec.EncodedBytes(count, levels)];
        payload.Length.Should().Be(2 + 4 * QsgdCodec.Buckets(count) + (levels <= 7 ? (count + 1) / 2 : count));
        QsgdCodec.Encode(values, levels, 9, payload);
        var decoded = new float[count];
        QsgdCodec.Decode(payload, decoded);
        for (int i = 0; i < count; i++)
        {
            float norm = BitConverter.ToSingle(payload, 2 + 4 * (i / QsgdCodec.BucketSize));
            Math.Abs(decoded[i] - values[i]).Should().BeLessThanOrEqualTo(norm / levels * 1.0001f);
            if (decoded[i] != 0) Math.Sign(decoded[i]).Should().Be(Math.Sign(values[i]));
        }
    }

    [Fact]
    public void Error_feedback_carries_what_compression_dropped_into_the_next_round()
    {
        var compressor = new GradientCompressor(CompressionSpec.Parse("topk:0.25"), 1, 8);
        float[] first = [1f, -8f, 2f, 0.5f, 3f, -0.25f, 0f, 7f];
        float[] sent = [.. first];
        compressor.Encode(Header(), sent, 0);
        sent.Should().Equal(0f, -8f, 0f, 0f, 0f, 0f, 0f, 7f);
        compressor.Residual.ToArray().Should().Equal(1f, 0f, 2f, 0.5f, 3f, -0.25f, 0f, 0f);

        // Next round: the residual is added first, so the dropped 3 (plus 1 more) now wins a place.
        float[] second = [0f, 0f, 0f, 0f, 1f, 0f, 0f, 2f];
        compressor.Encode(Header(), second, 0);
        second.Should().Equal(0f, 0f, 2f, 0f, 4f, 0f, 0f, 0f);
        compressor.Residual.ToArray().Should().Equal(1f, 0f, 0f, 0.5f, 0f, -0.25f, 0f, 2f);
    }

    [Theory]
    [InlineData("fp16")]
    [InlineData("int8")]
    [InlineData("topk:0.01")]
    public void Error_feedback_loses_nothing_over_rounds(string codec)
    {
        // Sum of what was sent + the residual = sum of the gradients, whatever the codec dropped on the way.
        var compressor = new GradientCompressor(CompressionSpec.Parse(codec), 1, 5000);
        var sentSum = new double[5000];
        var trueSum = new double[5000];
        for (int round = 0; round < 20; round++)
        {
            var g = Gradient(5000, (ulong)round + 10);
            for (int i = 0; i < g.Length; i++) trueSum[i] += g[i];
            compressor.Encode(Header() with { Round = round + 1 }, g, 0);
            for (int i = 0; i < g.Length; i++) sentSum[i] += g[i];
        }
        var residual = compressor.Residual;
        for (int i = 0; i < 5000; i++) (sentSum[i] + residual[i]).Should().BeApproximately(trueSum[i], 1e-5);
    }

    [Theory]
    [InlineData("fp16")]
    [InlineData("topk:0.01")]
    public void A_diverged_gradient_travels_as_float32_and_receivers_refuse_it_as_before(string codec)
    {
        var compressor = new GradientCompressor(CompressionSpec.Parse(codec), 1, 1000);
        var values = Gradient(1000, 11);
        values[123] = float.NaN;
        byte[] message = compressor.Encode(Header(), values, 0);
        message[6].Should().Be(WireCodec.Float32Encoding);
        var act = () => WireCodec.Decode(message);
        act.Should().Throw<MessageRejectedException>().Which.Reason.Should().Be("non-finite value NaN at index 123");
    }

    [Fact]
    public void Qsgd_keeps_no_residual_its_rounding_is_unbiased_already()
    {
        var compressor = new GradientCompressor(CompressionSpec.Parse("qsgd:3"), 1, 5000);
        compressor.FeedsBackError.Should().BeFalse();
        for (int round = 1; round <= 3; round++)
        {
            var g = Gradient(5000, (ulong)round);
            float[] sent = [.. g];
            compressor.Encode(Header() with { Round = round }, sent, 0);
            sent.Should().NotEqual(g);
            compressor.Residual.ToArray().Should().OnlyContain(v => v == 0);
        }
    }

    [Theory]
    [InlineData("fp16")]
    [InlineData("int8")]
    [InlineData("topk:0.01")]
    [InlineData("qsgd:15")]
    public void The_sender_holds_exactly_what_every_receiver_decodes(string codec)
    {
        var compressor = new GradientCompressor(CompressionSpec.Parse(codec), 1, 20_000);
        var values = Gradient(20_000, 8);
        byte[] message = compressor.Encode(Header(), values, 0);
        var received = WireCodec.Decode(message);
        received.Values.ToArray().Should().Equal(values);
        received.Round.Should().Be(7);
        received.Sender.Should().Be("worker-1");
    }

    [Theory]
    [InlineData("fp16", 2.0)]
    [InlineData("int8", 3.98)]
    [InlineData("topk:0.01", 49.9)]
    [InlineData("qsgd:7", 7.7)]
    [InlineData("qsgd:127", 3.9)]
    public void Compressed_messages_are_that_much_smaller_than_float32(string codec, double ratio)
    {
        var values = Gradient(101_770, 9);
        int dense = WireCodec.Encode(Header(), values).Length;
        int compressed = new GradientCompressor(CompressionSpec.Parse(codec), 1, values.Length).Encode(Header(), values, 0).Length;
        ((double)dense / compressed).Should().BeGreaterThan(ratio * 0.99);
    }

    /// <summary>A sparse vector like an owner's reduced top-k slice: <paramref name="nonZeros"/> Gaussian values at random places.</summary>
    private static float[] Sparse(int count, int nonZeros, ulong seed)
    {
        var random = new SplitMix64(seed);
        var values = new float[count];
        for (int placed = 0; placed < nonZeros;)
        {
            int at = (int)(random.NextUInt64() % (ulong)count);
            if (values[at] != 0) continue;
            values[at] = random.NextGaussian() * 1e-2f;
            placed++;
        }
        return values;
    }

    [Theory]
    [InlineData(101_770 / 4, 1_000)]
    [InlineData(5_000_000, 7)] // gaps of about 700,000: 3-byte indices
    [InlineData(10, 10)] // every value: gaps of 0
    public void Sparse_fp16_keeps_exactly_the_support_and_11_significant_bits_of_each_value(int count, int nonZeros)
    {
        var values = Sparse(count, nonZeros, 21);
        values[^1] = 0.031f; // the last index
        var indices = new int[count];
        var support = indices.AsSpan(0, SparseHalfCodec.Support(values, indices));
        var payload = new byte[SparseHalfCodec.EncodedBytes(support)];
        SparseHalfCodec.Encode(values, support, payload);
        var decoded = new float[count];
        decoded.AsSpan().Fill(float.NaN); // whatever the pool's array held before
        SparseHalfCodec.Decode(payload, decoded);
        float largest = values.Max(Math.Abs);
        Enumerable.Range(0, count).Where(i => values[i] == 0 && decoded[i] != 0).Should().BeEmpty("only the support is sent");
        foreach (int i in support)
        {
            // Scaled so the largest is in [2^14, 2^15): relative error at most 2^-11 down to 2^-24 of the largest (the
            // halves' subnormals), an absolute 2^-25 of the largest below.
            Math.Abs(decoded[i] - values[i]).Should().BeLessThanOrEqualTo(Math.Max(Math.Abs(values[i]) * MathF.ScaleB(1, -11), largest * MathF.ScaleB(1, -25)), $"index {i}");
            Math.Sign(decoded[i]).Should().Be(Math.Sign(values[i]));
        }
    }

    [Fact]
    public void Sparse_fp16_takes_about_3_bytes_a_non_zero_where_top_k_takes_8()
    {
        // An owner's reduced slice under top-k 1% with 4 senders: up to 4% of the slice is non-zero, gaps of about 25.
        var values = Sparse(25_443, 1_000, 5);
        var indices = new int[values.Length];
        int k = SparseHalfCodec.Support(values, indices);
        long bytes = SparseHalfCodec.EncodedBytes(indices.AsSpan(0, k));
        ((double)bytes / k).Should().BeInRange(3.0, 3.1, "2 bytes of half and 1 of gap (below 128) nearly always");
        (TopKCodec.EncodedBytes(k) / (double)bytes).Should().BeGreaterThan(2.5);
    }

    [Fact]
    public void Sparse_fp16_scales_so_that_tiny_and_huge_values_neither_underflow_nor_overflow()
    {
        foreach (float scale in new[] { 1e-30f, 1e-6f, 1f, 1e6f, 1e30f })
        {
            float[] values = [0, 3 * scale, 0, -scale, 0.001f * scale, 0];
            int[] support = [1, 3, 4];
            var payload = new byte[SparseHalfCodec.EncodedBytes(support)];
            SparseHalfCodec.Encode(values, support, payload);
            var decoded = new float[values.Length];
            SparseHalfCodec.Decode(payload, decoded);
            for (int i = 0; i < values.Length; i++)
            {
                Math.Abs(decoded[i] - values[i]).Should().BeLessThanOrEqualTo(Math.Abs(values[i]) * 1e-3f, $"value {values[i]} at scale {scale}");
            }
        }
    }

    [Fact]
    public void The_reduced_slice_compressor_sends_the_whole_support_and_keeps_only_the_rounding_on_it()
    {
        var compressor = GradientCompressor.ForReducedSlices(CompressionSpec.Parse("topk:0.01"), 1, 25_000);
        compressor.SendsSupport.Should().BeTrue();
        float[] before = [.. compressor.Residual];
        for (int round = 1; round <= 30; round++)
        {
            // 4% non-zero: far more than top-k's 1% would keep, all of it sent.
            var reduced = Sparse(25_000, 1_000, (ulong)round);
            float[] sent = [.. reduced];
            byte[] message = compressor.Encode(Header() with { Round = round }, sent, 0);
            message[6].Should().Be(SparseHalfCodec.Encoding);
            WireCodec.Decode(message).Values.ToArray().Should().Equal(sent, "the owner applies what its peers decode");
            var residual = compressor.Residual;
            for (int i = 0; i < reduced.Length; i++)
            {
                if (reduced[i] == 0)
                {
                    // Off the support nothing is sent and the residual waits: the support never grows into the residual's.
                    sent[i].Should().Be(0f, $"round {round}: index {i} was not in the reduced slice");
                    residual[i].Should().Be(before[i], $"round {round}: index {i} was not sent");
                }
                else
                {
                    sent[i].Should().NotBe(0f);
                    Math.Abs(residual[i]).Should().BeLessThan(Math.Abs(reduced[i] + before[i]) * 1e-3f + 1e-9f, "only the halves' rounding stays behind");
                }
            }
            before = [.. residual];
        }
    }

    [Theory]
    [InlineData("fp16")]
    [InlineData("int8")]
    [InlineData("qsgd:7")]
    public void The_reduced_slice_compressor_compresses_dense_codecs_like_a_senders(string codec)
    {
        var spec = CompressionSpec.Parse(codec);
        GradientCompressor.ForReducedSlices(spec, 1, 10).SendsSupport.Should().BeFalse();
        var act = () => new GradientCompressor(spec, 1, 10, sendsSupport: true);
        act.Should().Throw<ArgumentException>().WithMessage($"only top-k's aggregates are sent on their support, not {codec}'s*");
    }

    private static float[] RoundTrip(CompressionSpec spec, float[] values)
    {
        float[] copy = [.. values];
        var message = new GradientCompressor(spec, 1, values.Length).Encode(Header(), copy, 0);
        return WireCodec.Decode(message).Values.ToArray();
    }
}
