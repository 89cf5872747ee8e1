using DaprTrain.Coordination;
using System.CommandLine;
using System.Diagnostics;
using DaprTrain.Simulation;
using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

internal static class TrainCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var common = new CommonOptions();
        var distributed = new DistributedOptions();
        var topology = new Option<string>("--topology", "-t")
        {
            Description = "single (one worker, no exchange), ps (parameter server), p2p (every worker aggregates all gradients) " +
                          "or p2p-scatter (reduce-scatter, then all-gather).",
            DefaultValueFactory = _ => "p2p",
        }.AcceptOnlyFromAmong(["single", .. Topologies.Names]);
        var save = new Option<string?>("--save-checkpoint") { Description = "single: write a checkpoint of the final state to this file." };
        var resume = new Option<string?>("--resume") { Description = "single: continue from a checkpoint file written by --save-checkpoint." };
        var exportOnnx = new Option<string?>("--export-onnx")
        {
            Description = "Write the trained model as ONNX to this file (input: raw MNIST pixels 0..255; serve it with 'daprtrain predict'): " +
                          "the single worker's, the replicas' common weights (p2p, p2p-scatter) or the parameter server's (ps).",
        };
        var stateDir = new Option<string?>("--state-dir")
        {
            Description = "Distributed: folder of the embedded checkpoint store. A run whose job id already has a checkpoint there continues from it. " +
                          "Default: a temporary folder, removed at the end.",
        };
        var eventsFile = new Option<string?>("--events")
        {
            Description = "Distributed: write the job's progress events to this file, one JSON object a line (schemas/progress-event.schema.json), " +
                          "for the dashboard to follow (--tail) or replay.",
        };
        var jobId = new Option<string>("--job-id") { Description = "Distributed: the job's id (keys in the checkpoint store).", DefaultValueFactory = _ => "daprtrain" };
        var command = new Command("train", "Train a model, by default as 4 peer-to-peer workers in this process, and report held-out accuracy.");
        command.Options.Add(topology);
        foreach (var option in common.All) command.Options.Add(option);
        foreach (var option in distributed.All) command.Options.Add(option);
        command.Options.Add(stateDir);
        command.Options.Add(jobId);
        command.Options.Add(eventsFile);
        command.Options.Add(save);
        command.Options.Add(resume);
        command.Options.Add(exportOnnx);
        command.SetAction((result, cancellationToken) => CommandErrors.RunAsync(error, () =>
        {
            string chosen = result.GetValue(topology)!;
            if (result.GetValue(eventsFile) is not null && chosen == "single")
            {
                throw new ArgumentException("--events applies to distributed topologies (ps, p2p, p2p-scatter): a single worker has no membership, rounds or faults to show.");
            }
            if (chosen == "single")
            {
                // Where the results go is checked before the training they would keep.
                if (result.GetValue(save) is string savePath) OutputPaths.CheckFile(savePath, "--save-checkpoint");
                if (result.GetValue(exportOnnx) is string onnxPath) OutputPaths.CheckFile(onnxPath, "--export-onnx");
                return RunSingleWorkerAsync(result, common, result.GetValue(save), result.GetValue(resume), result.GetValue(exportOnnx), output, cancellationToken);
            }
            if (result.GetValue(save) is not null || result.GetValue(resume) is not null)
            {
                throw new ArgumentException("--save-checkpoint and --resume apply to --topology single; distributed runs checkpoint into --state-dir " +
                                            "(and 'daprtrain export --state-dir' makes an ONNX model of their latest checkpoint).");
            }
            if (result.GetValue(eventsFile) is string eventsPath) OutputPaths.CheckFile(eventsPath, "--events");
            if (result.GetValue(exportOnnx) is string distributedOnnxPath) OutputPaths.CheckFile(distributedOnnxPath, "--export-onnx");
            return RunDistributedAsync(result, common, distributed, Topologies.Parse(chosen), result.GetValue(stateDir), result.GetValue(jobId)!,
                result.GetValue(eventsFile), result.GetValue(exportOnnx), output, cancellationToken);
        }));
        return command;
    }

    private static async Task<int> RunDistributedAsync(ParseResult result, CommonOptions common, DistributedOptions distributed, Topology topology,
        string? stateDir, string jobId, string? eventsPath, string? onnxPath, TextWriter output, CancellationToken cancellationToken)
    {
        var faults = distributed.FaultPlan(result);
        var prices = distributed.LoadPrices(result);
        if (stateDir is not null) OutputPaths.CheckFolder(stateDir, "--state-dir");
        TorchRuntime.EnsureInitialised(result.GetValue(common.Threads));
        using var data = await DataLoading.LoadAsync(result, common, output, cancellationToken);
        var options = distributed.BuildJobOptions(result, common, data, topology, faults, jobId);
        bool temporary = stateDir is null;
        string folder = stateDir ?? Directory.CreateTempSubdirectory("daprtrain-state-").FullName;
        try
        {
            var store = new FileCheckpointStore(folder);
            bool resuming = !temporary && await new JobCheckpoints(store, jobId).LoadLatestAsync(cancellationToken) is not null;
            options = options with { ResumeFromStore = resuming };
            options.Validate();
            if (!temporary) await JobShape.CheckOrRecordAsync(store, jobId, JobShape.Of(options), resuming, folder, cancellationToken);
            output.WriteLine($"data: {data.Description}");
            string compute = options.Compute == ComputeMode.Serverless
                ? $"serverless ({options.Serverless!.Functions} functions per worker on {options.Serverless.Platform.Name}, {options.Serverless.Platform.MemoryMb} MB)"
                : "vm";
            output.WriteLine($"job: {jobId}, {topology.Name()}, {options.Workers} workers, {options.Trainer.Model}, batch {options.Trainer.BatchSize} per worker, " +
                             $"{options.Rounds} rounds, seed {options.Trainer.Seed}, deadline {options.RoundDeadlineMs} ms, lease {options.LeaseMs} ms, " +
                             $"network {options.Network.LatencyMs} ms + {options.Network.BandwidthMbps} Mbit/s; compute {compute}; compression {options.Codec}");
            output.WriteLine($"faults: {(faults.IsEmpty ? "none" : faults.Name)}");
            output.WriteLine($"checkpoints: {folder}{(temporary ? " (temporary)" : "")}{(resuming ? $", resuming job '{jobId}' from its latest checkpoint" : "")}");
            using var events = eventsPath is null ? null : new EventsFile(eventsPath);
            var run = await DistributedRun.RunAsync(options, data, store, prices, output, quiet: false, cancellationToken, events: events);
            if (events is not null)
            {
                output.WriteLine(events.Failure is null
                    ? $"events: {events.Written} progress events written to {eventsPath}"
                    : $"events: writing {eventsPath} failed after {events.Written} events ({events.Failure}); the run went on without them");
            }
            DistributedRun.PrintSummary(run, output);
            Divergence.Check(run);
            if (onnxPath is not null)
            {
                // The weights the summary's accuracy was measured on: a replica in sync (p2p, p2p-scatter), or the server's (ps).
                string whose = topology.HasParameterServer() ? "the parameter server's weights" : "the replicas' common weights";
                byte[] model = OnnxModels.Export(options.Trainer.Model, run.FinalWeights, "the run's final weights");
                await AtomicFile.WriteAsync(onnxPath, model, cancellationToken);
                output.WriteLine($"onnx: {onnxPath} ({model.Length:N0} bytes, {whose} at the end of the run; input '{DaprTrain.Onnx.OnnxExport.InputName}' [N,1,28,28] raw pixels, output '{DaprTrain.Onnx.OnnxExport.OutputName}' [N,10])");
            }
            return ExitCodes.Success;
        }
        finally
        {
            if (temporary) Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<int> RunSingleWorkerAsync(ParseResult result, CommonOptions common, string? savePath, string? resumePath, string? onnxPath,
        TextWriter output, CancellationToken cancellationToken)
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
                double loss = trainer.TrainStep(data.Train, batch.AsSpan(0, count));
                Divergence.CheckLoss(loss, $"step {step + 1} (epoch {epoch + 1})");
                lossSum += loss;
                batches++;
                step++;
                samples += count;
                progress.Update($"epoch {epoch + 1}/{epochs} {ProgressLine.Bar(fraction)} loss {lossSum / batches:F4} {samples / total.Elapsed.TotalSeconds:N0} samples/s");
            }
            Divergence.CheckWeights(trainer, $"the end of epoch {epoch + 1}");
            evaluation = trainer.Evaluate(data.Holdout, data.HoldoutIndices);
            progress.Complete($"epoch {epoch + 1}/{epochs}: train loss {lossSum / batches:F4}, held-out loss {evaluation.Loss:F4}, accuracy {evaluation.Accuracy * 100:F2}% ({epochTime.Elapsed.TotalSeconds:F1} s)");
        }

        if (evaluation.Samples == 0) evaluation = trainer.Evaluate(data.Holdout, data.HoldoutIndices);

        if (savePath is not null)
        {
            byte[] bytes = CheckpointCodec.Encode(trainer.CaptureCheckpoint(step, sampler));
            await AtomicFile.WriteAsync(savePath, bytes, cancellationToken);
            output.WriteLine($"checkpoint: {savePath} ({bytes.Length:N0} bytes, step {step})");
        }

        if (onnxPath is not null)
        {
            byte[] model = OnnxModels.Export(trainer);
            await AtomicFile.WriteAsync(onnxPath, model, cancellationToken);
            output.WriteLine($"onnx: {onnxPath} ({model.Length:N0} bytes; input '{DaprTrain.Onnx.OnnxExport.InputName}' [N,1,28,28] raw pixels, output '{DaprTrain.Onnx.OnnxExport.OutputName}' [N,10])");
        }

        double seconds = total.Elapsed.TotalSeconds;
        output.WriteLine($"summary: {options.Model}, {epochs} epochs, {step} steps, held-out accuracy {evaluation.Accuracy * 100:F2}%, loss {evaluation.Loss:F4}, " +
                         $"{seconds:F1} s, {samples / Math.Max(seconds, 1e-9):N0} samples/s");
        return ExitCodes.Success;
    }
}
