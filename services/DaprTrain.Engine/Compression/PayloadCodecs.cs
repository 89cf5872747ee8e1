using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Compression;

/// <summary>The payload encodings beside float32 (encoding 0, which <see cref="WireCodec"/> reads in place), by their byte.</summary>
public static class PayloadCodecs
{
    /// <summary>
    /// The most values a compressed message may decode into unless the receiver says less (its model's parameter count):
    /// a sparse message's value count is not tied to its length, and a decoder must never allocate what a sender claims.
    /// 16 M values (64 MB) is ten times the largest model's gradient.
    /// </summary>
    public const int DefaultMaxValues = 16 * 1024 * 1024;

    public static bool IsKnown(byte encoding) => encoding is Fp16Codec.Encoding or Int8Codec.Encoding or TopKCodec.Encoding or QsgdCodec.Encoding or SparseHalfCodec.Encoding;

    public static string Name(byte encoding) => encoding switch
    {
        WireCodec.Float32Encoding => "float32",
        Fp16Codec.Encoding => "fp16",
        Int8Codec.Encoding => "int8",
        TopKCodec.Encoding => "top-k",
        QsgdCodec.Encoding => "qsgd",
        SparseHalfCodec.Encoding => "sparse-fp16",
        _ => $"unknown ({encoding})",
    };

    /// <summary>
    /// Decodes a compressed payload of <paramref name="count"/> values into an array, after checking that the count is
    /// within <paramref name="maxValues"/> (before anything is rented or allocated: what a sender claims never sizes memory
    /// beyond what the receiver accepts). Each codec then checks the payload's length and every value. Throws
    /// <see cref="MessageRejectedException"/> with the reason.
    /// </summary>
    /// <param name="arrays">
    /// Where the array comes from (the receiving node's pool; its caller gives it back when done with the values); a new
    /// array when null. An array from the pool is given back here if the payload is rejected.
    /// </param>
    public static float[] Decode(byte encoding, ReadOnlySpan<byte> payload, int count, int maxValues = DefaultMaxValues, DecodedValuesPool? arrays = null)
    {
        if (!IsKnown(encoding)) throw new MessageRejectedException($"unknown payload encoding {encoding}");
        if (count > maxValues) throw new MessageRejectedException($"{Name(encoding)} message declares {count} values; at most {maxValues} are accepted");
        // Every codec writes every value (the sparse ones clear first), so neither a new array nor a reused one is zeroed here, and a
        // reused one keeps nothing of the message it held before (CompressionCodecTests checks this for every codec).
        var values = arrays?.Rent(count) ?? GC.AllocateUninitializedArray<float>(count);
        try
        {
            switch (encoding)
            {
                case Fp16Codec.Encoding: Fp16Codec.Decode(payload, values); break;
                case Int8Codec.Encoding: Int8Codec.Decode(payload, values); break;
                case TopKCodec.Encoding: TopKCodec.Decode(payload, values); break;
                case SparseHalfCodec.Encoding: SparseHalfCodec.Decode(payload, values); break;
                default: QsgdCodec.Decode(payload, values); break;
            }
        }
        catch (MessageRejectedException)
        {
            arrays?.Return(values);
            throw;
        }
        return values;
    }
}
