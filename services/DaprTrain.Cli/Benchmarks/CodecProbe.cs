using DaprTrain.Engine.Messaging;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>What one MLP-sized gradient message costs at each step of the exchange, against memcpy and XxHash3 of its bytes.</summary>
internal static class CodecProbe
{
    public static void Run(TextWriter output, bool quick)
    {
        var values = new float[101_770];
        for (int i = 0; i < values.Length; i++) values[i] = i * 1e-6f;
        var message = new WireMessage(MessageKind.Gradient, "job", 0, 1, "worker-1", 64, 0, 0, values);
        var bytes = WireCodec.Encode(message);
        var copy = new byte[bytes.Length];
        var accumulator = new float[values.Length];
        var contributions = new[] { new Contribution("worker-1", 64, values), new Contribution("worker-2", 64, values) };
        int calls = quick ? 300 : 2000;
        double memcpy = Measure.SecondsPerCall(() => bytes.AsSpan().CopyTo(copy), calls);
        double hash = Measure.SecondsPerCall(() => System.IO.Hashing.XxHash3.HashToUInt64(bytes), calls);
        double encode = Measure.SecondsPerCall(() => WireCodec.Encode(message), calls);
        var pool = new MessageBufferPool();
        double pooled = Measure.SecondsPerCall(() => pool.Return(WireCodec.Encode(message, values, pool)), calls);
        double seal = Measure.SecondsPerCall(() => WireCodec.Seal(copy), calls);
        double decode = Measure.SecondsPerCall(() => WireCodec.Decode(bytes), calls);
        double aggregate = Measure.SecondsPerCall(() => GradientAggregator.WeightedAverage(contributions, accumulator), calls) / 2;

        output.WriteLine("## One gradient message (MLP, 407 kB)");
        output.WriteLine();
        output.WriteLine("| step | time | / memcpy of the message |");
        output.WriteLine("| --- | ---: | ---: |");
        output.WriteLine($"| memcpy | {Measure.Micros(memcpy)} | 1.00x |");
        output.WriteLine($"| XxHash3 (the checksum) | {Measure.Micros(hash)} | {hash / memcpy:F2}x |");
        output.WriteLine($"| encode into a new array (copy + checksum) | {Measure.Micros(encode)} | {encode / memcpy:F2}x |");
        output.WriteLine($"| encode into a reused buffer (embedded mode's pool) | {Measure.Micros(pooled)} | {pooled / memcpy:F2}x |");
        output.WriteLine($"| seal (checksum only: a gradient is exported straight into its message) | {Measure.Micros(seal)} | {seal / memcpy:F2}x |");
        output.WriteLine($"| decode (checksum + finiteness scan, values not copied) | {Measure.Micros(decode)} | {decode / memcpy:F2}x |");
        output.WriteLine($"| aggregate one contribution (weighted add) | {Measure.Micros(aggregate)} | {aggregate / memcpy:F2}x |");
        output.WriteLine();
    }
}
