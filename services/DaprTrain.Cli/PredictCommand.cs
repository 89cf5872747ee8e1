using System.CommandLine;
using System.Diagnostics;
using DaprTrain.Onnx;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

/// <summary>daprtrain predict: serves an exported ONNX model with ONNX Runtime over MNIST's test split.</summary>
internal static class PredictCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model") { Description = "An ONNX file written by 'daprtrain train --export-onnx'.", Required = true };
        var dataDir = new Option<string>("--data-dir") { Description = "Folder with MNIST's test split (t10k-*-idx*-ubyte, .gz or raw).", Required = true };
        var batch = new Option<int>("--batch-size") { Description = "Images per inference call.", DefaultValueFactory = _ => 256 };
        batch.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 65536) r.AddError($"--batch-size must be between 1 and 65536 (got {r.GetValueOrDefault<int>()}).");
        });
        var command = new Command("predict", "Classify MNIST's test split with an exported ONNX model (ONNX Runtime) and report accuracy and throughput.")
        {
            model, dataDir, batch,
        };
        command.SetAction((result, cancellationToken) => CommandErrors.RunAsync(error, () =>
        {
            string folder = result.GetValue(dataDir)!;
            if (!Directory.Exists(folder)) throw new ArgumentException($"--data-dir '{folder}' does not exist.");
            using var classifier = OnnxClassifier.Load(result.GetValue(model)!);
            var (raw, labels) = Mnist.ReadSplit(folder, train: false);
            // Pixels as a client would send them, 0..255: the exported graph normalises them itself.
            var pixels = Array.ConvertAll(raw, p => (float)p);
            int images = labels.Length;

            int size = result.GetValue(batch);
            int correct = 0;
            var clock = Stopwatch.StartNew();
            for (int start = 0; start < images; start += size)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int count = Math.Min(size, images - start);
                int[] classes = classifier.Classify(pixels.AsSpan(start * 784, count * 784));
                for (int i = 0; i < count; i++) if (classes[i] == labels[start + i]) correct++;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            output.WriteLine($"predict: {images:N0} test images, accuracy {100.0 * correct / images:F2}%, " +
                             $"{images / Math.Max(seconds, 1e-9):N0} images/s (ONNX Runtime, batch {size})");
            if (!Mnist.HasTrainSplit(folder))
            {
                output.WriteLine("note: this folder has no train split, so a model trained from it has seen 8,000 of these images; the accuracy is not a held-out figure.");
            }
            return Task.FromResult(ExitCodes.Success);
        }));
        return command;
    }
}
