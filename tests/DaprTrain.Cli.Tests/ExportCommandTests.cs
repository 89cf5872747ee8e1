using DaprTrain.Engine.Storage;
using DaprTrain.Onnx;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;
using DaprTrain.Training.Tests;

namespace DaprTrain.Cli.Tests;

/// <summary>
/// ONNX from distributed runs: `train --export-onnx` for every topology and `daprtrain export` from a job's checkpoint,
/// each giving the model its TorchSharp replica (or server) computes; bad checkpoints refused with the reason.
/// </summary>
public sealed class ExportCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("p2p")]
    [InlineData("p2p-scatter")]
    [InlineData("ps")]
    public async Task A_distributed_run_exports_its_final_weights_and_export_of_its_state_dir_writes_the_same_model(string topology)
    {
        // 30 rounds with a checkpoint every 10: the latest checkpoint holds the final weights (the replicas' or the server's).
        string state = Path.Combine(_dir, "state"), trained = Path.Combine(_dir, "trained.onnx"), exported = Path.Combine(_dir, "exported.onnx");
        var train = await CliRun.RunAsync("train", "-t", topology, "-n", "2", "--rounds", "30", "--checkpoint-every", "10", "--threads", "1",
            "--data-dir", TestData.MnistDirectory, "--state-dir", state, "--export-onnx", trained);
        train.ExitCode.Should().Be(0, train.Error);
        train.Output.Should().Contain($"onnx: {trained}").And.Contain(topology == "ps" ? "the parameter server's weights" : "the replicas' common weights");

        var export = await CliRun.RunAsync("export", "--state-dir", state, "--out", exported);
        export.ExitCode.Should().Be(0, export.Error);
        export.Output.Should().Contain("(round 30,");
        (await File.ReadAllBytesAsync(exported)).Should().Equal(await File.ReadAllBytesAsync(trained), "both are the run's final weights");

        // The model ONNX Runtime runs is the one TorchSharp computes with the checkpoint's weights.
        var latest = await new JobCheckpoints(new FileCheckpointStore(state), "daprtrain").LoadLatestAsync();
        TorchRuntime.EnsureInitialised(null);
        using var trainer = new Trainer(new TrainerOptions("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 64, 1));
        trainer.Parameters.ImportWeights(latest!.Value.Checkpoint.State.Weights);
        var holdout = TestData.Mnist8k2k;
        var indices = holdout.HoldoutIndices.Take(300).ToArray();
        float[] torch = OnnxExportTests.TorchLogits(trainer, holdout.Holdout, indices);
        var pixels = indices.SelectMany(i => holdout.Holdout.Features.AsSpan((int)i * 784, 784).ToArray())
            .Select(f => (f * DaprTrain.Training.Data.Mnist.StandardDeviation + DaprTrain.Training.Data.Mnist.Mean) * 255f).ToArray();
        using var classifier = OnnxClassifier.Load(exported);
        float[] onnx = classifier.Logits(pixels);
        onnx.Zip(torch, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-3f);
        double accuracy = classifier.Classify(pixels).Where((c, i) => c == holdout.Holdout.Labels[indices[i]]).Count() / (double)indices.Length;
        accuracy.Should().BeGreaterThan(0.8, "30 rounds of 2 workers train the MLP well past chance: the export is not an initialisation");
    }

    [Fact]
    public async Task A_job_checkpoint_file_and_a_single_worker_checkpoint_file_both_export()
    {
        TorchRuntime.EnsureInitialised(null);
        using var trainer = new Trainer(new TrainerOptions("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 8, 3));
        var state = trainer.CaptureCheckpoint(0, new EpochSampler(TestData.Mnist8k2k.TrainIndices, 8, 3));
        string job = Path.Combine(_dir, "job.ckpt"), single = Path.Combine(_dir, "single.ckpt");
        await File.WriteAllBytesAsync(job, JobCheckpoints.Encode(new JobCheckpoint(40, 2, "worker-3", state)));
        await File.WriteAllBytesAsync(single, CheckpointCodec.Encode(state));
        var fromJob = await CliRun.RunAsync("export", "--checkpoint", job, "--out", Path.Combine(_dir, "a.onnx"));
        fromJob.ExitCode.Should().Be(0, fromJob.Error);
        fromJob.Output.Should().Contain("round 40, generation 2, written by worker-3");
        var fromSingle = await CliRun.RunAsync("export", "--checkpoint", single, "--out", Path.Combine(_dir, "b.onnx"));
        fromSingle.ExitCode.Should().Be(0, fromSingle.Error);
        (await File.ReadAllBytesAsync(Path.Combine(_dir, "a.onnx"))).Should().Equal(await File.ReadAllBytesAsync(Path.Combine(_dir, "b.onnx")));
    }

    public static TheoryData<string, string> BadCheckpoints => new()
    {
        { "garbage", "is not a DaprTrain checkpoint" },
        { "truncated", "corrupted or truncated" },
        { "unknown-model", "of model 'vgg', which this build does not know" },
        { "wrong-count", "holds 3 weights; model 'mlp' has 101,770" },
        { "not-finite", "not a finite number (index 1)" },
    };

    [Theory]
    [MemberData(nameof(BadCheckpoints))]
    public async Task A_bad_checkpoint_is_refused_as_bad_input_with_the_reason(string kind, string reason)
    {
        var optimizer = new OptimizerSettings(OptimizerKind.Sgd, 0.1);
        TrainingCheckpoint Of(string model, float[] weights) => new(model, optimizer, 1, 1, 1, 0, 0, weights, []);
        byte[] bytes = kind switch
        {
            "garbage" => "no checkpoint here"u8.ToArray(),
            "truncated" => JobCheckpoints.Encode(new JobCheckpoint(1, 0, "worker-1", Of("mlp", [1f, 2f, 3f])))[..^10],
            "unknown-model" => JobCheckpoints.Encode(new JobCheckpoint(1, 0, "worker-1", Of("vgg", [1f, 2f, 3f]))),
            "wrong-count" => JobCheckpoints.Encode(new JobCheckpoint(1, 0, "worker-1", Of("mlp", [1f, 2f, 3f]))),
            _ => JobCheckpoints.Encode(new JobCheckpoint(1, 0, "worker-1", Of("mlp", [1f, float.NaN, 3f]))),
        };
        string path = Path.Combine(_dir, kind);
        await File.WriteAllBytesAsync(path, bytes);
        string output = Path.Combine(_dir, "out.onnx");
        var result = await CliRun.RunAsync("export", "--checkpoint", path, "--out", output);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain(reason);
        File.Exists(output).Should().BeFalse("nothing is written from a bad checkpoint");
    }

    [Fact]
    public async Task Export_says_what_is_missing_or_wrong_in_its_options()
    {
        string output = Path.Combine(_dir, "m.onnx");
        var none = await CliRun.RunAsync("export", "--out", output);
        none.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        none.Error.Should().Contain("name one checkpoint to export");
        var two = await CliRun.RunAsync("export", "--checkpoint", "a", "--state-dir", _dir, "--out", output);
        two.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        var badId = await CliRun.RunAsync("export", "--state-dir", _dir, "--job-id", "../etc", "--out", output);
        badId.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        badId.Error.Should().Contain("--job-id '../etc'");
        var empty = await CliRun.RunAsync("export", "--state-dir", _dir, "--out", output);
        empty.ExitCode.Should().Be(ExitCodes.InvalidInput);
        empty.Error.Should().Contain("holds no checkpoint of job 'daprtrain'");
        var missing = await CliRun.RunAsync("export", "--checkpoint", Path.Combine(_dir, "none.ckpt"), "--out", output);
        missing.ExitCode.Should().Be(ExitCodes.InvalidInput);
        missing.Error.Should().Contain("none.ckpt' does not exist");
        var noFolder = await CliRun.RunAsync("export", "--state-dir", Path.Combine(_dir, "absent"), "--out", output);
        noFolder.ExitCode.Should().Be(ExitCodes.InvalidInput);
        noFolder.Error.Should().Contain("absent' does not exist");
        // No sidecar listening: the SDK's wrapped gRPC error becomes bad environment (2) with the way to run it, not a crash.
        var noSidecar = await CliRun.RunAsync("export", "--dapr", "--dapr-grpc-endpoint", "http://127.0.0.1:1", "--out", output);
        noSidecar.ExitCode.Should().Be(ExitCodes.InvalidInput, noSidecar.Error);
        noSidecar.Error.Should().Contain("through the sidecar failed").And.Contain("dapr run --app-id exporter");
        var badEndpoint = await CliRun.RunAsync("export", "--dapr", "--dapr-grpc-endpoint", "not a url", "--out", output);
        badEndpoint.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        File.Exists(output).Should().BeFalse();
    }

    [Fact]
    public async Task A_state_dir_whose_pointer_names_no_blob_is_bad_input()
    {
        string state = Path.Combine(_dir, "state");
        Directory.CreateDirectory(state);
        (await new FileCheckpointStore(state).TrySaveAsync("daprtrain/checkpoint/latest", """{"Round":1}"""u8.ToArray(), etag: null)).Should().BeTrue();
        var result = await CliRun.RunAsync("export", "--state-dir", state, "--out", Path.Combine(_dir, "m.onnx"));
        result.ExitCode.Should().Be(ExitCodes.InvalidInput, result.Error);
        result.Error.Should().Contain("checkpoint pointer names no blob key or hash");
    }
}
