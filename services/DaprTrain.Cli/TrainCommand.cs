using System.CommandLine;
using System.Diagnostics;
using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

internal static class TrainCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var common = new CommonOptions();
        var save = new Option<string?>("--save-checkpoint") { Description = "Write a checkpoint of the final state to this file." };
        var resume = new Option<string?>("--resume") { Description = "Continue from a checkpoint file written by --save-checkpoint." };
        var command = new Command("train", "Train a model and report held-out accuracy.");
        foreach (var option in common.All) command.Options.Add(option);
        command.Options.Add(save);
        command.Options.Add(resume);
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                return await RunSingleWorkerAsync(result, common, result.GetValue(save), result.GetValue(resume), output, cancellationToken);
            }
            catch (Exception ex) when (ex is DataNotFoundException or IdxFormatException or CheckpointFormatException or IOException)
            {
                error.WriteLine($"error: {ex.Message}");
                return ExitCodes.InvalidInput;
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("cancelled");
                return ExitCodes.Cancelled;
            }
        });
        return command;
    }

    private static async Task<int> RunSingleWorkerAsync(ParseResult result, CommonOptions common, string? savePath, string? resumePath, TextWriter output, CancellationToken cancellationToken)
    {
        TorchRuntime.EnsureInitialised(result.GetValue(common.Threads));
        using var data = await DataLoading.LoadAsync(result, common, output, cancellationToken);
        int epochs = result.GetValue(common.Epochs);
        var options = new TrainerOptions(result.GetValue(common.Model)!, common.OptimizerSettings(result), result.GetValue(common.BatchSize), result.GetValue(common.Seed));
        using var trainer = new Trainer(options);
        var sampler = new EpochSampler(data.TrainIndices, options.BatchSize, options.Seed);
        long step = 0;
        if (resumePath is not null)
        {
            var checkpoint = CheckpointCodec.Decode(await File.ReadAllBytesAsync(resumePath, cancellationToken));
            trainer.RestoreCheckpoint(checkpoint, sampler);
            step = checkpoint.Step;
            output.WriteLine($"resumed from {resumePath}: step {step}, epoch {sampler.Epoch + 1}");
        }

        output.WriteLine($"data: {data.Description}");
        output.WriteLine($"model: {options.Model} ({trainer.Parameters.Count:N0} parameters), {options.Optimizer.Kind.ToString().ToLowerInvariant()} lr {options.Optimizer.LearningRate}, " +
                         $"batch {options.BatchSize}, seed {options.Seed}, {TorchSharp.torch.get_num_threads()} threads");

        var progress = new ProgressLine(output);
        var batch = new long[options.BatchSize];
        var total = Stopwatch.StartNew();
        long samples = 0;
        EvaluationResult evaluation = default;
        while (sampler.Epoch < epochs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int epoch = sampler.Epoch;
            var epochTime = Stopwatch.StartNew();
            double lossSum = 0;
            int batches = 0;
            while (sampler.Epoch == epoch)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double fraction = (double)sampler.Position / sampler.SampleCount;
                int count = sampler.Next(batch);
                lossSum += trainer.TrainStep(data.Train, batch.AsSpan(0, count));
                batches++;
                step++;
                samples += count;
                progress.Update($"epoch {epoch + 1}/{epochs} {ProgressLine.Bar(fraction)} loss {lossSum / batches:F4} {samples / total.Elapsed.TotalSeconds:N0} samples/s");
            }
            evaluation = trainer.Evaluate(data.Holdout, data.HoldoutIndices);
            progress.Complete($"epoch {epoch + 1}/{epochs}: train loss {lossSum / batches:F4}, held-out loss {evaluation.Loss:F4}, accuracy {evaluation.Accuracy * 100:F2}% ({epochTime.Elapsed.TotalSeconds:F1} s)");
        }

        if (evaluation.Samples == 0) evaluation = trainer.Evaluate(data.Holdout, data.HoldoutIndices);

        if (savePath is not null)
        {
            byte[] bytes = CheckpointCodec.Encode(trainer.CaptureCheckpoint(step, sampler));
            string temporary = savePath + ".tmp";
            await File.WriteAllBytesAsync(temporary, bytes, cancellationToken);
            File.Move(temporary, savePath, overwrite: true);
            output.WriteLine($"checkpoint: {savePath} ({bytes.Length:N0} bytes, step {step})");
        }

        double seconds = total.Elapsed.TotalSeconds;
        output.WriteLine($"summary: {options.Model}, {epochs} epochs, {step} steps, held-out accuracy {evaluation.Accuracy * 100:F2}%, loss {evaluation.Loss:F4}, " +
                         $"{seconds:F1} s, {samples / Math.Max(seconds, 1e-9):N0} samples/s");
        return ExitCodes.Success;
    }
}
