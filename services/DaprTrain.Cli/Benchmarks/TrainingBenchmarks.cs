using System.Runtime.InteropServices;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;
using TorchSharp;
using static TorchSharp.torch;

namespace DaprTrain.Cli.Benchmarks;

/// <summary>
/// Throughput and copy-cost figures, each compared with a baseline measured in the same run (these
/// machines are noisy; ratios travel, absolute numbers do not).
/// </summary>
internal sealed class TrainingBenchmarks(TextWriter output, bool quick)
{
    private int Rounds => quick ? 3 : 7;

    public void Run()
    {
        output.WriteLine($"## Training library ({Environment.ProcessorCount} cores, {torch.get_num_threads()} torch threads, {RuntimeInformation.OSDescription}, .NET {Environment.Version})");
        output.WriteLine();
        using var data = TrainingData.Synthetic(4096, seed: 1, holdoutCount: 96);
        TrainingThroughput(data);
        GradientExchange(data);
        CheckpointCodecCost(data);
    }

    private void TrainingThroughput(TrainingData data)
    {
        output.WriteLine("| model | parameters | batch | ms per step | samples/s |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        foreach (var (model, steps) in new[] { ("mlp", quick ? 50 : 200), ("cnn", quick ? 5 : 20), ("resnet", quick ? 2 : 8) })
        {
            using var trainer = new Trainer(new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Adam, 1e-3), 64, 1));
            var sampler = new EpochSampler(data.TrainIndices, 64, 1);
            var batch = new long[64];
            double seconds = Measure.SecondsPerCall(() =>
            {
                int n = sampler.Next(batch);
                trainer.TrainStep(data.Train, batch.AsSpan(0, n));
            }, steps, Rounds);
            output.WriteLine($"| {model} | {trainer.Parameters.Count:N0} | 64 | {seconds * 1e3:F2} | {64 / seconds:N0} |");
        }
        output.WriteLine();
    }

    private void GradientExchange(TrainingData data)
    {
        output.WriteLine("Gradient export (flat buffer to a byte array) and import (back into a replica's flat buffer), against `Span.CopyTo` of the same bytes between managed arrays, and against the naive per-tensor export (`cat` of every `.grad`, then `ToArray`).");
        output.WriteLine();
        output.WriteLine("| model | bytes | memcpy | export | import | export / memcpy | import / memcpy | (export+import) / (2 memcpy) | naive export / memcpy |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var model in new[] { "mlp", "cnn", "resnet" })
        {
            using var source = new Trainer(new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Sgd, 0.01), 64, 1));
            using var replica = new Trainer(new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Sgd, 0.01), 64, 1));
            source.ComputeGradient(data.Train, data.TrainIndices.AsSpan(0, 64));
            int count = source.Parameters.Count;
            var wire = new float[count];
            var from = new float[count];
            var to = new float[count];
            // As many calls as the MLP's 2,000 move bytes (at least 50): the residual CNN's 6.9 MB would otherwise take a minute.
            int calls = Math.Max(quick ? 20 : 50, (int)((quick ? 200L : 2000L) * 101_770 / count));

            double memcpy = Measure.SecondsPerCall(() => from.AsSpan().CopyTo(to), calls, Rounds);
            double export = Measure.SecondsPerCall(() => source.Parameters.ExportGradients(wire), calls, Rounds);
            double import = Measure.SecondsPerCall(() => replica.Parameters.ImportGradients(wire), calls, Rounds);
            var parameters = source.Model.parameters().ToList();
            double naive = Measure.SecondsPerCall(() =>
            {
                using var scope = NewDisposeScope();
                var flat = cat(parameters.Select(p => p.grad!.flatten()).ToList(), 0);
                _ = flat.data<float>().ToArray();
            }, calls / 4, Rounds);
            output.WriteLine($"| {model} | {count * 4L:N0} | {Measure.Micros(memcpy)} | {Measure.Micros(export)} | {Measure.Micros(import)} | " +
                             $"{export / memcpy:F2}x | {import / memcpy:F2}x | {(export + import) / (2 * memcpy):F2}x | {naive / memcpy:F1}x |");
        }
        output.WriteLine();
    }

    private void CheckpointCodecCost(TrainingData data)
    {
        output.WriteLine("Checkpoint encode (to bytes, with XxHash3 checksum) and decode (verify, then parse), against `Span.CopyTo` of the checkpoint's bytes.");
        output.WriteLine();
        output.WriteLine("| model + optimizer | checkpoint bytes | memcpy | XxHash3 alone | encode (new array) | encode (reused buffer) | decode | encode MB/s (reused) | decode MB/s | (encode reused + decode) / (2 memcpy) |");
        output.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var model in new[] { "mlp", "cnn" })
        {
            using var trainer = new Trainer(new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Adam, 1e-3), 64, 1));
            trainer.TrainStep(data.Train, data.TrainIndices.AsSpan(0, 64));
            var checkpoint = trainer.CaptureCheckpoint(1, null);
            byte[] encoded = CheckpointCodec.Encode(checkpoint);
            var copy = new byte[encoded.Length];
            int calls = quick ? 50 : 300;
            double memcpy = Measure.SecondsPerCall(() => encoded.AsSpan().CopyTo(copy), calls, Rounds);
            double hash = Measure.SecondsPerCall(() => System.IO.Hashing.XxHash3.HashToUInt64(encoded), calls, Rounds);
            double encode = Measure.SecondsPerCall(() => CheckpointCodec.Encode(checkpoint), calls, Rounds);
            var reused = new byte[encoded.Length];
            double encodeReused = Measure.SecondsPerCall(() => CheckpointCodec.Encode(checkpoint, reused), calls, Rounds);
            double decode = Measure.SecondsPerCall(() => CheckpointCodec.Decode(encoded), calls, Rounds);
            double megabytes = encoded.Length / 1e6;
            output.WriteLine($"| {model} + adam | {encoded.Length:N0} | {Measure.Micros(memcpy)} | {Measure.Micros(hash)} | {Measure.Micros(encode)} | {Measure.Micros(encodeReused)} | {Measure.Micros(decode)} | " +
                             $"{megabytes / encodeReused:N0} | {megabytes / decode:N0} | {(encodeReused + decode) / (2 * memcpy):F2}x |");
        }
        output.WriteLine();
    }
}
