using DaprTrain.Dapr;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// The Dapr services' chunking (<see cref="ChunkCodec.Split"/> at the default 512 KiB, then <see cref="ChunkAssembler"/>
/// putting the chunks back together) on messages the size of each model's gradient, against a memcpy of the message.
/// Split writes every byte once and hashes it twice (the message id and checksum, then each chunk's); reassembly
/// verifies each chunk, copies it into place and hashes the whole message again.
/// </summary>
internal static class ChunkingBenchmarks
{
    public static void Run(TextWriter output, bool quick)
    {
        output.WriteLine($"## Dapr chunking on gradient-sized messages ({ChunkCodec.DefaultMaxChunkBytes / 1024} KiB chunks)");
        output.WriteLine();
        output.WriteLine("Message: random bytes as many as the model's float32 gradient. Split: `ChunkCodec.Split`; reassemble: a fresh `ChunkAssembler` " +
                         "taking every chunk in order. Median per message of wall time and of the process's CPU time (user + system, GC threads " +
                         "included; on a busy shared machine the CPU time is the steadier figure). Throughput from the CPU time.");
        output.WriteLine();
        output.WriteLine("| model | parameters | message bytes | chunks | bytes on the wire | memcpy (CPU) | split (wall / CPU) | reassemble (wall / CPU) | split MB/s | reassemble MB/s | (split + reassemble) / memcpy, CPU |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (string model in new[] { "mlp", "cnn", "resnet" })
        {
            int parameters;
            using (var trainer = new Trainer(new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Sgd, 0.1), 8, 1))) parameters = trainer.Parameters.Count;
            var message = new byte[parameters * sizeof(float)];
            new Random(1).NextBytes(message);
            var copy = new byte[message.Length];
            var chunks = ChunkCodec.Split(message);
            long wire = chunks.Sum(c => (long)c.Length);
            // Enough calls that each timed round lasts tens of milliseconds, longer than the process clock's resolution.
            int calls = Math.Max(quick ? 3 : 10, (quick ? 5_000_000 : 50_000_000) / message.Length);

            Action memcpy = () => message.AsSpan().CopyTo(copy);
            Action split = () => ChunkCodec.Split(message);
            Action reassemble = () =>
            {
                var assembler = new ChunkAssembler();
                ChunkResult last = default;
                foreach (var chunk in chunks) last = assembler.Add(chunk);
                if (last.Status != ChunkStatus.Complete) throw new InvalidOperationException($"reassembly ended {last.Status}: {last.Reason}");
            };
            double memcpyCpu = Measure.CpuSecondsPerCall(memcpy, calls * 20);
            double splitWall = Measure.SecondsPerCall(split, calls);
            double splitCpu = Measure.CpuSecondsPerCall(split, calls);
            double reassembleWall = Measure.SecondsPerCall(reassemble, calls);
            double reassembleCpu = Measure.CpuSecondsPerCall(reassemble, calls);
            output.WriteLine($"| {model} | {parameters:N0} | {message.Length:N0} | {chunks.Count} | {wire:N0} (+{100.0 * (wire - message.Length) / message.Length:F3}%) | " +
                             $"{Measure.Micros(memcpyCpu)} | {Measure.Micros(splitWall)} / {Measure.Micros(splitCpu)} | {Measure.Micros(reassembleWall)} / {Measure.Micros(reassembleCpu)} | " +
                             $"{message.Length / splitCpu / 1e6:N0} | {message.Length / reassembleCpu / 1e6:N0} | {(splitCpu + reassembleCpu) / memcpyCpu:F1}x |");
        }
        output.WriteLine();
    }
}
