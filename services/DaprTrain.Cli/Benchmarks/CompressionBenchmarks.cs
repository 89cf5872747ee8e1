using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Messaging;
using DaprTrain.Training;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// bench --only compression: compress plus decompress throughput of every codec, in GB/s of float32 input on one core,
/// against memcpy of the same float32 bytes in the same run. Three figures per codec: the codec alone (encode the values,
/// decode the payload); the whole send-and-receive path of a message as the engine runs it (error feedback, encode, the
/// sender's own decode, checksum; then a receiver's WireCodec.Decode with its checks, into an array of the node's
/// DecodedValuesPool that goes back when the round is forgotten); and the same with a new array per received message,
/// as the engine decoded before the pool (what the pool saves).
/// </summary>
internal static class CompressionBenchmarks
{
    /// <summary>A node of a 4-worker p2p round holds its 3 peers' decoded gradients until the round is forgotten, then gives them back.</summary>
    private const int HeldPerRound = 3;

    public static void Run(TextWriter output, bool quick)
    {
        output.WriteLine("## Gradient compression: compress + decompress per core");
        output.WriteLine();
        output.WriteLine("Input: N(0, 0.01^2) float32 values (a gradient's scale), one thread, CPU time per call (median of 7 rounds; the process's CPU time, " +
                         "so time descheduled on a shared machine is not counted). GB/s = float32 input bytes / (compress + decompress time). " +
                         "Codec: `XCodec.Encode` then `XCodec.Decode` of its payload. Message (engine): `GradientCompressor.Encode` (error feedback, encode, the sender's " +
                         "decode of its own message, checksum) then a receiver's `WireCodec.Decode` (checksum, validation, decode) as a node does it: into an array " +
                         $"of its `DecodedValuesPool`, held with {HeldPerRound - 1} others (a 4-worker p2p round) and given back when the round is forgotten. " +
                         "Message, new array: the same, the receiver decoding into a new array per message (the engine before 2026-12-02).");
        output.WriteLine();
        WarmUp();
        foreach (int count in new[] { 101_770, 1_722_442 })
        {
            Section(output, count, quick);
        }
    }

    private static readonly string[] Codecs = ["fp16", "int8", "topk:0.01", "qsgd:7", "qsgd:127"];

    /// <summary>
    /// Runs every codec's message path for a second before anything is measured. Dynamic PGO first runs a hot method in
    /// instrumented code, and the first measurement of the message path caught part of that even after its own half-second
    /// warm-up: fp16 at 101,770 values measured 230-300 µs a message when measured first and 120 µs right after (and 160 µs
    /// first with DOTNET_TieredPGO=0).
    /// </summary>
    private static void WarmUp()
    {
        const int count = 101_770;
        var random = new SplitMix64(7);
        var values = Enumerable.Range(0, count).Select(_ => random.NextGaussian() * 1e-2f).ToArray();
        var header = new WireMessage(MessageKind.Gradient, "job", 0, 1, "worker-1", 64, 0, 0, ReadOnlyMemory<float>.Empty);
        var decodedValues = new DecodedValuesPool();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.ElapsedMilliseconds < 1000)
        {
            foreach (string codec in Codecs)
            {
                byte[] message = new GradientCompressor(CompressionSpec.Parse(codec), 1, count).Encode(header, values.ToArray(), 0);
                decodedValues.Return(WireCodec.Decode(message, message.Length, count, decodedValues).Values);
                WireCodec.Decode(message, message.Length, count);
            }
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
        output.WriteLine("| codec | bytes / float32 bytes | codec: compress + decompress | GB/s per core | / memcpy time | message (engine): send + receive | GB/s per core | / memcpy time | message, new array per receive | GB/s per core |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        output.WriteLine($"| memcpy (float32) | 1.000 | {Measure.Micros(memcpy)} | {inputGb / memcpy:F2} | 1.00x | | | | | |");
        var header = new WireMessage(MessageKind.Gradient, "job", 0, 1, "worker-1", 64, 0, 0, ReadOnlyMemory<float>.Empty);
        double plainBytes = WireCodec.Encode(header, values).Length;
        foreach (string codec in Codecs)
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
            var decodedValues = new DecodedValuesPool();
            var held = new List<ReadOnlyMemory<float>>(HeldPerRound);
            int messageBytes = 0;
            double messageSeconds = Measure.CpuSecondsPerCall(() =>
            {
                values.AsSpan().CopyTo(gradient);
                byte[] message = compressor.Encode(header, gradient, 0, pool);
                messageBytes = message.Length;
                held.Add(WireCodec.Decode(message, message.Length, count, decodedValues).Values);
                pool.Return(message);
                if (held.Count == HeldPerRound)
                {
                    foreach (var received in held) decodedValues.Return(received);
                    held.Clear();
                }
            }, calls);
            // The same with a new array per received message: what the pool saves.
            double newArraySeconds = Measure.CpuSecondsPerCall(() =>
            {
                values.AsSpan().CopyTo(gradient);
                byte[] message = compressor.Encode(header, gradient, 0, pool);
                WireCodec.Decode(message, message.Length, count);
                pool.Return(message);
            }, calls);
            output.WriteLine($"| {codec} | {messageBytes / plainBytes:F3} | {Measure.Micros(codecSeconds)} | {inputGb / codecSeconds:F2} | {codecSeconds / memcpy:F1}x | " +
                             $"{Measure.Micros(messageSeconds)} | {inputGb / messageSeconds:F2} | {messageSeconds / memcpy:F1}x | {Measure.Micros(newArraySeconds)} | {inputGb / newArraySeconds:F2} |");
        }
        output.WriteLine();
    }
}
