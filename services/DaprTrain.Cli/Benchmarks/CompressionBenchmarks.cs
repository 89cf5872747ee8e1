using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Messaging;
using DaprTrain.Training;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// bench --only compression: compress plus decompress throughput of every codec, in GB/s of float32 input on one core,
/// against memcpy of the same float32 bytes in the same run. Two figures per codec: the codec alone (encode the values,
/// decode the payload) and the whole send-and-receive path of a message (error feedback, encode, the sender's own decode,
/// checksum; then a receiver's WireCodec.Decode with its checks).
/// </summary>
internal static class CompressionBenchmarks
{
    public static void Run(TextWriter output, bool quick)
    {
        output.WriteLine("## Gradient compression: compress + decompress per core");
        output.WriteLine();
        output.WriteLine("Input: N(0, 0.01^2) float32 values (a gradient's scale), one thread, CPU time per call (median of 7 rounds; the process's CPU time, " +
                         "so time descheduled on a shared machine is not counted). GB/s = float32 input bytes / (compress + decompress time). " +
                         "Codec: `XCodec.Encode` then `XCodec.Decode` of its payload. Message: `GradientCompressor.Encode` (error feedback, encode, the sender's " +
                         "decode of its own message, checksum) then a receiver's `WireCodec.Decode` (checksum, validation, decode).");
        output.WriteLine();
        foreach (int count in new[] { 101_770, 1_722_442 })
        {
            Section(output, count, quick);
        }
    }

    private static void Section(TextWriter output, int count, bool quick)
    {
        var random = new SplitMix64(42);
        var values = Enumerable.Range(0, count).Select(_ => random.NextGaussian() * 1e-2f).ToArray();
        var copy = new float[count];
        var decoded = new float[count];
        double inputGb = count * 4 / 1e9;
        int calls = Math.Max(2, (quick ? 3_000_000 : 20_000_000) / count);
        double memcpy = Measure.CpuSecondsPerCall(() => values.AsSpan().CopyTo(copy), calls);

        output.WriteLine($"### {count:N0} values ({count * 4 / 1e6:F2} MB of float32)");
        output.WriteLine();
        output.WriteLine("| codec | bytes / float32 bytes | codec: compress + decompress | GB/s per core | / memcpy time | message: send + receive | GB/s per core | / memcpy time | message, receiver into a reused array | GB/s per core |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        output.WriteLine($"| memcpy (float32) | 1.000 | {Measure.Micros(memcpy)} | {inputGb / memcpy:F2} | 1.00x | | | | | |");
        var header = new WireMessage(MessageKind.Gradient, "job", 0, 1, "worker-1", 64, 0, 0, ReadOnlyMemory<float>.Empty);
        double plainBytes = WireCodec.Encode(header, values).Length;
        foreach (string codec in new[] { "fp16", "int8", "topk:0.01", "qsgd:7", "qsgd:127" })
        {
            var spec = CompressionSpec.Parse(codec);
            var payload = new byte[spec.Kind switch
            {
                CompressionKind.Fp16 => Fp16Codec.EncodedBytes(count),
                CompressionKind.Int8 => (int)Int8Codec.EncodedBytes(count),
                CompressionKind.TopK => (int)TopKCodec.EncodedBytes(spec.KeptOf(count)),
                _ => (int)QsgdCodec.EncodedBytes(count, spec.Levels),
            }];
            var scratch = new float[count];
            Action roundTrip = spec.Kind switch
            {
                CompressionKind.Fp16 => () => { Fp16Codec.Encode(values, payload); Fp16Codec.Decode(payload, decoded); },
                CompressionKind.Int8 => () => { Int8Codec.Encode(values, payload); Int8Codec.Decode(payload, decoded); },
                CompressionKind.TopK => () => { TopKCodec.Encode(values, spec.KeptOf(count), payload, scratch); TopKCodec.Decode(payload, decoded); },
                _ => () => { QsgdCodec.Encode(values, spec.Levels, 7, payload); QsgdCodec.Decode(payload, decoded); },
            };
            double codecSeconds = Measure.CpuSecondsPerCall(roundTrip, calls);

            var compressor = new GradientCompressor(spec, 1, count);
            var gradient = new float[count];
            var pool = new MessageBufferPool();
            int messageBytes = 0;
            double messageSeconds = Measure.CpuSecondsPerCall(() =>
            {
                values.AsSpan().CopyTo(gradient);
                byte[] message = compressor.Encode(header, gradient, 0, pool);
                messageBytes = message.Length;
                WireCodec.Decode(message, message.Length, count);
                pool.Return(message);
            }, calls);
            // The same, but the receiver checks the checksum and decodes into an array it reuses: what a new array per message costs.
            double reusedSeconds = Measure.CpuSecondsPerCall(() =>
            {
                values.AsSpan().CopyTo(gradient);
                byte[] message = compressor.Encode(header, gradient, 0, pool);
                System.IO.Hashing.XxHash3.HashToUInt64(message.AsSpan(0, message.Length - 8));
                var received = message.AsSpan(message.Length - 8 - payload.Length, payload.Length);
                switch (spec.Kind)
                {
                    case CompressionKind.Fp16: Fp16Codec.Decode(received, decoded); break;
                    case CompressionKind.Int8: Int8Codec.Decode(received, decoded); break;
                    case CompressionKind.TopK: TopKCodec.Decode(received, decoded); break;
                    default: QsgdCodec.Decode(received, decoded); break;
                }
                pool.Return(message);
            }, calls);
            output.WriteLine($"| {codec} | {messageBytes / plainBytes:F3} | {Measure.Micros(codecSeconds)} | {inputGb / codecSeconds:F2} | {codecSeconds / memcpy:F1}x | " +
                             $"{Measure.Micros(messageSeconds)} | {inputGb / messageSeconds:F2} | {messageSeconds / memcpy:F1}x | {Measure.Micros(reusedSeconds)} | {inputGb / reusedSeconds:F2} |");
        }
        output.WriteLine();
    }
}
