using DaprTrain.Onnx;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using DaprTrain.Training.Parameters;
using DaprTrain.Training.Tests;

namespace DaprTrain.Cli.Tests;

/// <summary>Trained models exported to ONNX and run by ONNX Runtime give TorchSharp's answers.</summary>
public sealed class OnnxExportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-onnx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("mlp", 300)]
    [InlineData("cnn", 60)]
    [InlineData("mlp-512", 150)]
    [InlineData("resnet", 60)]
    public void Onnx_runtime_gives_the_torch_logits_and_classes_on_raw_pixels(string model, int steps)
    {
        TorchRuntime.EnsureInitialised(null);
        var data = TestData.Mnist8k2k;
        using var trainer = new Trainer(new TrainerOptions(model, new OptimizerSettings(OptimizerKind.Adam, 1e-3), 64, 11));
        var sampler = new EpochSampler(data.TrainIndices, 64, 11);
        var batch = new long[64];
        for (int i = 0; i < steps; i++) trainer.TrainStep(data.Train, batch.AsSpan(0, sampler.Next(batch)));

        const int count = 500;
        var indices = data.HoldoutIndices.Take(count).ToArray();
        float[] torchLogits = TorchLogits(trainer, data.Holdout, indices);
        // What a client sends: the pixels as they are, 0..255 (the graph normalises them as the trainer does).
        var pixels = indices.SelectMany(i => data.Holdout.Features.AsSpan((int)i * 784, 784).ToArray())
            .Select(f => (f * Mnist.StandardDeviation + Mnist.Mean) * 255f).ToArray();

        using var classifier = new OnnxClassifier(OnnxModels.Export(trainer));
        float[] onnxLogits = classifier.Logits(pixels);

        onnxLogits.Should().HaveCount(count * 10);
        onnxLogits.Zip(torchLogits, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-3f);
        int[] onnxClasses = classifier.Classify(pixels);
        int[] torchClasses = Enumerable.Range(0, count).Select(i => ArgMax(torchLogits.AsSpan(i * 10, 10))).ToArray();
        onnxClasses.Should().Equal(torchClasses);
        double accuracy = onnxClasses.Where((c, i) => c == data.Holdout.Labels[indices[i]]).Count() / (double)count;
        accuracy.Should().BeGreaterThan(0.85, "the exported model is the trained one, not a fresh initialisation");
    }

    [Fact]
    public void Export_names_a_missing_or_misshapen_parameter()
    {
        var weight = new NamedParameter("fc1.weight", [128, 784], new float[128 * 784]);
        var bias = new NamedParameter("fc1.bias", [128], new float[128]);
        var act = () => OnnxExport.ToBytes("mlp", [weight, bias], Mnist.Mean, Mnist.StandardDeviation);
        act.Should().Throw<ArgumentException>().WithMessage("*'fc2.weight'*");

        var wrongCount = () => OnnxExport.ToBytes("mlp", [weight with { Values = new float[3] }, bias], Mnist.Mean, Mnist.StandardDeviation);
        wrongCount.Should().Throw<ArgumentException>().WithMessage("*fc1.weight*3 values*");
        var unknown = () => OnnxExport.ToBytes("vgg", [weight, bias], Mnist.Mean, Mnist.StandardDeviation);
        unknown.Should().Throw<ArgumentException>().WithMessage("*unknown model 'vgg'*");
    }

    [Fact]
    public void The_classifier_refuses_a_file_that_is_no_model_and_pixels_that_are_no_whole_image()
    {
        var garbage = () => new OnnxClassifier("not an onnx model"u8.ToArray());
        garbage.Should().Throw<InvalidDataException>().WithMessage("not a loadable ONNX model*");
        var missing = () => OnnxClassifier.Load(Path.Combine(_dir, "none.onnx"));
        missing.Should().Throw<FileNotFoundException>().WithMessage("*none.onnx*");

        TorchRuntime.EnsureInitialised(null);
        using var trainer = new Trainer(new TrainerOptions("mlp", new OptimizerSettings(OptimizerKind.Sgd, 0.1), 8, 1));
        using var classifier = new OnnxClassifier(OnnxModels.Export(trainer));
        var partial = () => classifier.Logits(new float[784 + 1]);
        partial.Should().Throw<ArgumentException>().WithMessage("785 pixel values*");
    }

    [Fact]
    public async Task Train_writes_the_model_with_export_onnx_and_the_file_loads_in_onnx_runtime()
    {
        string path = Path.Combine(_dir, "model.onnx");
        var result = await CliRun.RunAsync("train", "--topology", "single", "--data-dir", TestData.MnistDirectory, "--epochs", "1", "--export-onnx", path);
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain($"onnx: {path}");
        using (var classifier = OnnxClassifier.Load(path)) classifier.Classify(new float[784 * 2]).Should().HaveCount(2);

        var predict = await CliRun.RunAsync("predict", "--model", path, "--data-dir", TestData.MnistDirectory);
        predict.ExitCode.Should().Be(0, predict.Error);
        predict.Output.Should().MatchRegex(@"predict: 10,000 test images, accuracy (8[5-9]|9[0-9])\.[0-9]{2}%");
        predict.Output.Should().Contain("not a held-out figure", "the shared folder has only the test split, which the model trained on");
    }

    [Fact]
    public async Task Predict_says_which_model_file_is_wrong()
    {
        string missing = Path.Combine(_dir, "missing.onnx");
        var result = await CliRun.RunAsync("predict", "--model", missing, "--data-dir", TestData.MnistDirectory);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain(missing);

        string garbage = Path.Combine(_dir, "garbage.onnx");
        await File.WriteAllTextAsync(garbage, "no model here");
        var bad = await CliRun.RunAsync("predict", "--model", garbage, "--data-dir", TestData.MnistDirectory);
        bad.ExitCode.Should().Be(ExitCodes.InvalidInput);
        bad.Error.Should().Contain("not a loadable ONNX model");
    }

    [Theory]
    [InlineData("predict", "--model", "m.onnx", "--data-dir", "/nonexistent/mnist", "--data-dir '/nonexistent/mnist' does not exist")]
    [InlineData("predict", "--model", "m.onnx", "--data-dir", ".", "--batch-size", "0", "--batch-size must be between 1 and 65536 (got 0)")]
    [InlineData("predict", "--data-dir", ".", "--model")]
    [InlineData("train", "--topology", "p2p", "--save-checkpoint", "m.ckpt", "--save-checkpoint and --resume apply to --topology single")]
    public async Task Bad_options_are_refused_with_the_option_named(params string[] argumentsThenMessage)
    {
        string expected = argumentsThenMessage[^1];
        var result = await CliRun.RunAsync(argumentsThenMessage[..^1]);
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain(expected);
    }

    internal static float[] TorchLogits(Trainer trainer, LabeledDataset holdout, long[] indices)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var noGrad = TorchSharp.torch.no_grad();
        trainer.Model.eval();
        var input = holdout.FeatureTensor.index_select(0, TorchSharp.torch.tensor(indices));
        return trainer.Model.forward(input).data<float>().ToArray();
    }

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int k = 1; k < row.Length; k++) if (row[k] > row[best]) best = k;
        return best;
    }
}
