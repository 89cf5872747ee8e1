using System.Buffers.Binary;
using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Tests;

/// <summary>
/// Hostile compressed messages: a correct checksum over a payload that lies. Each is rejected with its own reason (the
/// assertion names the reason, so a test fails when the check that gives it is taken out).
/// </summary>
public class CompressedWireTests
{
    private static readonly WireMessage Header = new(MessageKind.Gradient, "job", 0, 1, "worker-1", 64, 0, 0, ReadOnlyMemory<float>.Empty);

    /// <summary>A sealed message of <paramref name="encoding"/> declaring <paramref name="count"/> values, with the payload as given.</summary>
    private static byte[] Message(byte encoding, int count, byte[] payload)
    {
        var (bytes, at) = WireCodec.BeginEncoded(Header, encoding, count, payload.Length);
        payload.CopyTo(bytes, at);
        WireCodec.Seal(bytes);
        return bytes;
    }

    private static string Rejection(byte[] message, int maxValues = PayloadCodecs.DefaultMaxValues)
    {
        var act = () => WireCodec.Decode(message, message.Length, maxValues);
        return act.Should().Throw<MessageRejectedException>().Which.Reason;
    }

    private static byte[] Halves(params ushort[] bits) => [.. bits.SelectMany(b => BitConverter.GetBytes(b))];

    private static byte[] TopK(uint kept, uint[] indices, float[] values) =>
        [.. BitConverter.GetBytes(kept), .. indices.SelectMany(BitConverter.GetBytes), .. values.SelectMany(BitConverter.GetBytes)];

    /// <summary>k, the exponent, the halves' bits, then the index bytes as given (LEB128 gaps).</summary>
    private static byte[] SparseHalf(uint kept, sbyte exponent, ushort[] halves, byte[] indexBytes) =>
        [.. BitConverter.GetBytes(kept), (byte)exponent, .. halves.SelectMany(b => BitConverter.GetBytes(b)), .. indexBytes];

    private static byte[] Int8(float[] scales, sbyte[] codes) => [.. scales.SelectMany(BitConverter.GetBytes), .. codes.Select(c => (byte)c)];

    private static byte[] Qsgd(ushort levels, float[] norms, byte[] codes) => [.. BitConverter.GetBytes(levels), .. norms.SelectMany(BitConverter.GetBytes), .. codes];

    [Fact]
    public void An_unknown_encoding_is_rejected() =>
        Rejection(Message(9, 1, new byte[4])).Should().Be("unknown payload encoding 9");

    [Fact]
    public void A_count_above_what_the_receiver_accepts_is_rejected_before_anything_is_allocated() =>
        Rejection(Message(TopKCodec.Encoding, 2_000_000_000, TopK(0, [], [])), maxValues: 101_770).Should().Be("top-k message declares 2000000000 values; at most 101770 are accepted");

    [Theory]
    [InlineData((ushort)0x7C00, "non-finite fp16 value (bits 0x7c00) at index 1")]
    [InlineData((ushort)0xFC00, "non-finite fp16 value (bits 0xfc00) at index 1")]
    [InlineData((ushort)0x7E01, "non-finite fp16 value (bits 0x7e01) at index 1")]
    public void Fp16_infinities_and_nans_are_rejected(ushort bad, string reason) =>
        Rejection(Message(Fp16Codec.Encoding, 3, Halves(0x3C00, bad, 0))).Should().Be(reason);

    [Fact]
    public void A_non_finite_fp16_value_far_into_a_vector_is_found()
    {
        var bits = new ushort[1000];
        bits[777] = 0x7C00;
        Rejection(Message(Fp16Codec.Encoding, 1000, Halves(bits))).Should().Be("non-finite fp16 value (bits 0x7c00) at index 777");
    }

    [Fact]
    public void An_fp16_payload_of_the_wrong_length_is_rejected() =>
        Rejection(Message(Fp16Codec.Encoding, 3, Halves(0x3C00, 0x3C00))).Should().Be("wrong length: fp16 payload of 4 bytes for 3 values");

    [Fact]
    public void An_int8_code_of_minus_128_is_rejected() =>
        Rejection(Message(Int8Codec.Encoding, 3, Int8([1f], [1, -128, 0]))).Should().Be("int8 code -128 at index 1 (codes are -127..127)");

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(-1f)]
    [InlineData(float.MaxValue)]
    public void An_int8_scale_that_is_not_finite_negative_or_too_large_is_rejected(float scale) =>
        Rejection(Message(Int8Codec.Encoding, 2, Int8([scale], [1, 1]))).Should().StartWith($"int8 block 0 has scale {scale}");

    [Fact]
    public void An_int8_payload_of_the_wrong_length_is_rejected() =>
        Rejection(Message(Int8Codec.Encoding, 3, Int8([1f], [1, 1]))).Should().Be("wrong length: int8 payload of 6 bytes for 3 values");

    [Fact]
    public void Top_k_keeping_more_values_than_the_vector_has_is_rejected() =>
        Rejection(Message(TopKCodec.Encoding, 2, TopK(3, [0, 1, 2], [1, 1, 1]))).Should().Be("top-k message keeps 3 values of 2");

    [Fact]
    public void A_top_k_count_that_the_payload_does_not_hold_is_rejected() =>
        Rejection(Message(TopKCodec.Encoding, 10, TopK(3, [0, 1], [1, 1]))).Should().Be("wrong length: top-k payload of 20 bytes for 3 kept values");

    [Fact]
    public void A_huge_top_k_count_is_rejected_without_reading_past_the_payload() =>
        Rejection(Message(TopKCodec.Encoding, 10, TopK(uint.MaxValue, [0], [1]))).Should().Be($"top-k message keeps {uint.MaxValue} values of 10");

    [Fact]
    public void A_truncated_top_k_payload_is_rejected() =>
        Rejection(Message(TopKCodec.Encoding, 10, [1, 0])).Should().Be("truncated top-k payload (2 bytes)");

    [Fact]
    public void A_top_k_index_outside_the_vector_is_rejected() =>
        Rejection(Message(TopKCodec.Encoding, 10, TopK(2, [3, 10], [1, 1]))).Should().Be("top-k index 10 at position 1 is outside 0..9");

    [Theory]
    [InlineData(5u, 5u, "top-k indices not strictly increasing: 5 after 5 at position 1")]
    [InlineData(5u, 4u, "top-k indices not strictly increasing: 4 after 5 at position 1")]
    public void Top_k_indices_that_repeat_or_go_back_are_rejected(uint first, uint second, string reason) =>
        Rejection(Message(TopKCodec.Encoding, 10, TopK(2, [first, second], [1, 1]))).Should().Be(reason);

    [Fact]
    public void A_non_finite_top_k_value_is_rejected() =>
        Rejection(Message(TopKCodec.Encoding, 10, TopK(2, [1, 2], [1, float.NaN]))).Should().Be("non-finite top-k value NaN at position 1");

    [Fact]
    public void A_well_formed_sparse_fp16_message_decodes()
    {
        // Gaps 2 and 300 (0xAC 0x02): indices 2 and 303; 1.0 and -2.0 times 2^-3.
        var message = Message(SparseHalfCodec.Encoding, 400, SparseHalf(2, -3, [0x3C00, 0xC000], [2, 0xAC, 0x02]));
        var values = WireCodec.Decode(message, message.Length, maxValues: 400).Values;
        values.Length.Should().Be(400);
        values.Span[2].Should().Be(0.125f);
        values.Span[303].Should().Be(-0.25f);
        values.ToArray().Count(v => v != 0).Should().Be(2);
    }

    [Theory]
    [InlineData(11u, new byte[] { 0 }, "sparse-fp16 message keeps 11 values of 10")]
    [InlineData(2u, new byte[] { 0 }, "wrong length: sparse-fp16 payload of 8 bytes for 2 kept values")]
    [InlineData(1u, new byte[] { 10 }, "sparse-fp16 index 10 at position 0 is outside 0..9")]
    [InlineData(1u, new byte[] { 0x80 }, "sparse-fp16 index 0 is truncated")]
    [InlineData(1u, new byte[] { 0x81, 0x00 }, "sparse-fp16 index 0 has a superfluous zero byte")]
    [InlineData(1u, new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, "sparse-fp16 index 0 is longer than 5 bytes")]
    [InlineData(1u, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x7F }, "sparse-fp16 index 0 does not fit 32 bits")]
    [InlineData(1u, new byte[] { 3, 0 }, "sparse-fp16 payload has 1 bytes after its 1 indices")]
    public void Sparse_fp16_counts_and_indices_that_lie_are_rejected(uint kept, byte[] indexBytes, string reason)
    {
        var halves = Enumerable.Repeat((ushort)0x3C00, (int)Math.Min(kept, 1)).ToArray();
        var message = Message(SparseHalfCodec.Encoding, 10, SparseHalf(kept, 0, halves, indexBytes));
        Rejection(message, maxValues: 10).Should().Be(reason);
    }

    [Fact]
    public void Sparse_fp16_indices_that_run_past_the_vector_after_many_gaps_are_rejected() =>
        Rejection(Message(SparseHalfCodec.Encoding, 10, SparseHalf(3, 0, [0x3C00, 0x3C00, 0x3C00], [4, 4, 4]))).Should().Be("sparse-fp16 index 14 at position 2 is outside 0..9");

    [Theory]
    [InlineData((sbyte)-127)]
    [InlineData((sbyte)112)]
    [InlineData(sbyte.MaxValue)]
    public void A_sparse_fp16_scale_that_could_overflow_or_lose_exactness_is_rejected(sbyte exponent) =>
        Rejection(Message(SparseHalfCodec.Encoding, 10, SparseHalf(1, exponent, [0x3C00], [0]))).Should().Be($"sparse-fp16 scale exponent {exponent} is outside -126..111");

    [Fact]
    public void A_non_finite_sparse_fp16_value_is_rejected() =>
        Rejection(Message(SparseHalfCodec.Encoding, 10, SparseHalf(2, 0, [0x3C00, 0x7E00], [0, 0]))).Should().Be("non-finite sparse-fp16 value (bits 0x7e00) at position 1");

    [Fact]
    public void A_sparse_fp16_count_above_what_the_receiver_accepts_is_rejected_before_anything_is_allocated() =>
        Rejection(Message(SparseHalfCodec.Encoding, 2_000_000_000, SparseHalf(0, 0, [], [])), maxValues: 101_770).Should().Be("sparse-fp16 message declares 2000000000 values; at most 101770 are accepted");

    [Theory]
    [InlineData((ushort)0)]
    [InlineData((ushort)128)]
    [InlineData((ushort)65535)]
    public void Qsgd_levels_outside_1_to_127_are_rejected(ushort levels) =>
        Rejection(Message(QsgdCodec.Encoding, 2, Qsgd(levels, [1f], [0, 0]))).Should().Be($"qsgd levels {levels} outside 1..127");

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.NegativeInfinity)]
    [InlineData(-0.5f)]
    public void A_qsgd_norm_that_is_not_finite_or_negative_is_rejected(float norm) =>
        Rejection(Message(QsgdCodec.Encoding, 2, Qsgd(3, [norm], [0]))).Should().Be($"qsgd bucket 0 has norm {norm}; norms are finite and non-negative");

    [Fact]
    public void A_qsgd_code_beyond_its_levels_is_rejected()
    {
        // Nibbles: 3 levels, the second value's code 4 (0x4 in the high nibble).
        Rejection(Message(QsgdCodec.Encoding, 2, Qsgd(3, [1f], [0x41]))).Should().Be("qsgd code 4 at index 1 outside -3..3");
        // Nibble -8 (0x8) is no code at 7 levels.
        Rejection(Message(QsgdCodec.Encoding, 2, Qsgd(7, [1f], [0x08]))).Should().Be("qsgd code -8 at index 0 outside -7..7");
        // Bytes: 100 levels, code -101.
        Rejection(Message(QsgdCodec.Encoding, 2, Qsgd(100, [1f], [0, unchecked((byte)-101)]))).Should().Be("qsgd code -101 at index 1 outside -100..100");
    }

    [Fact]
    public void A_qsgd_spare_nibble_must_be_zero() =>
        Rejection(Message(QsgdCodec.Encoding, 3, Qsgd(3, [1f], [0x11, 0x11]))).Should().Be("qsgd: the spare nibble after the last value is not zero");

    [Fact]
    public void A_qsgd_payload_of_the_wrong_length_is_rejected() =>
        Rejection(Message(QsgdCodec.Encoding, 3, Qsgd(3, [1f], [0]))).Should().Be("wrong length: qsgd payload of 7 bytes for 3 values at 3 levels");

    [Fact]
    public void A_truncated_qsgd_payload_is_rejected() =>
        Rejection(Message(QsgdCodec.Encoding, 3, [3])).Should().Be("truncated qsgd payload (1 bytes)");

    [Theory]
    [InlineData("fp16")]
    [InlineData("int8")]
    [InlineData("topk:0.1")]
    [InlineData("qsgd:5")]
    public void Every_single_bit_flip_of_a_compressed_message_is_detected(string codec)
    {
        var values = Enumerable.Range(0, 40).Select(i => (i % 9 - 4) * 0.01f).ToArray();
        var bytes = new GradientCompressor(CompressionSpec.Parse(codec), 1, values.Length).Encode(Header, values, 0);
        for (int i = 0; i < bytes.Length; i++)
        {
            var copy = bytes.ToArray();
            copy[i] ^= 0x01;
            var act = () => WireCodec.Decode(copy);
            act.Should().Throw<MessageRejectedException>($"byte {i} was flipped");
        }
    }

    [Fact]
    public void A_float32_message_is_byte_for_byte_what_it_was_and_its_values_are_not_copied()
    {
        var values = new float[] { 1f, 2f };
        var bytes = WireCodec.Encode(Header, values);
        bytes[6].Should().Be(WireCodec.Float32Encoding);
        bytes[4].Should().Be(1, "the format version did not change");
        BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(32)).Should().Be(2);
        var decoded = WireCodec.Decode(bytes);
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(decoded.Values, out _).Should().BeFalse("float32 values are a view of the message bytes");
    }
}
