using DaprTrain.Training.Tests;

namespace DaprTrain.Cli.Tests;

public sealed class TrainCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Train_one_epoch_on_the_shared_data_exits_zero_with_a_summary()
    {
        var result = await CliRun.RunAsync("train", "--topology", "single", "--data-dir", TestData.MnistDirectory, "--epochs", "1");
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("8000 train / 2000 held out");
        result.Output.Should().MatchRegex(@"epoch 1/1: train loss [0-9.]+, held-out loss [0-9.]+, accuracy [0-9.]+%");
        var summary = result.Output.Split('\n').Single(l => l.StartsWith("summary:", StringComparison.Ordinal));
        summary.Should().MatchRegex(@"summary: mlp, 1 epochs, 125 steps, held-out accuracy (8[5-9]|9[0-9])\.[0-9]+%");
    }

    [Theory]
    [InlineData("--epochs", "-1", "--epochs must be a positive whole number (got -1)")]
    [InlineData("--epochs", "0", "--epochs must be a positive whole number (got 0)")]
    [InlineData("--batch-size", "0", "--batch-size must be a positive whole number")]
    [InlineData("--lr", "-0.5", "--lr must be a positive number")]
    [InlineData("--model", "vgg", "'vgg'")]
    [InlineData("--optimizer", "rmsprop", "'rmsprop'")]
    [InlineData("--topology", "ring", "'ring'")]
    [InlineData("--workers", "0", "--workers must be between 1 and 64 (got 0)")]
    [InlineData("--round-deadline", "-5", "--round-deadline must be a positive number")]
    [InlineData("--fault", "kill:worker-2", "invalid fault 'kill:worker-2': kill needs a round")]
    [InlineData("--fault", "kill:worker-7@round=3", "the job has 4 workers")]
    [InlineData("--fault", "kill:ps@round=3", "this topology has no parameter server")]
    [InlineData("--scenario", "/no/such/file", "scenario file '/no/such/file' does not exist")]
    [InlineData("--prices", "/no/such/prices.json", "price table '/no/such/prices.json' does not exist")]
    public async Task Bad_options_exit_non_zero_naming_the_option(string option, string value, string message)
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", option, value);
        result.ExitCode.Should().NotBe(0);
        result.Error.Should().Contain(message);
    }

    [Fact]
    public async Task Missing_data_dir_exits_non_zero_naming_the_option()
    {
        var result = await CliRun.RunAsync("train", "--data-dir", Path.Combine(_dir, "missing"), "--epochs", "1");
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain("--data-dir").And.Contain("does not exist");
    }

    [Fact]
    public async Task Data_dir_without_mnist_files_says_which_files_it_expects()
    {
        var result = await CliRun.RunAsync("train", "--data-dir", _dir, "--epochs", "1");
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain("t10k-images-idx3-ubyte");
    }

    [Fact]
    public async Task Checkpoint_round_trip_through_the_command_line_continues_training()
    {
        string checkpoint = Path.Combine(_dir, "run.ckpt");
        var first = await CliRun.RunAsync("train", "-t", "single", "--dataset", "synthetic", "--epochs", "1", "--train-samples", "512", "--save-checkpoint", checkpoint);
        first.ExitCode.Should().Be(0, first.Error);
        File.Exists(checkpoint).Should().BeTrue();

        var resumed = await CliRun.RunAsync("train", "-t", "single", "--dataset", "synthetic", "--epochs", "2", "--train-samples", "512", "--resume", checkpoint);
        resumed.ExitCode.Should().Be(0, resumed.Error);
        resumed.Output.Should().Contain("resumed from").And.Contain("summary: mlp, 2 epochs, 16 steps");

        File.WriteAllBytes(checkpoint, [1, 2, 3]);
        var corrupt = await CliRun.RunAsync("train", "-t", "single", "--dataset", "synthetic", "--epochs", "1", "--resume", checkpoint);
        corrupt.ExitCode.Should().Be(ExitCodes.InvalidInput);
        corrupt.Error.Should().Contain("truncated");
    }

    [Fact]
    public async Task Help_is_available_for_every_command()
    {
        foreach (var command in new[] { "train", "compare", "bench" })
        {
            var result = await CliRun.RunAsync(command, "--help");
            result.ExitCode.Should().Be(0);
            result.Output.Should().Contain("Usage:").And.Contain($" {command} [options]");
        }
    }
}
