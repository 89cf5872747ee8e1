namespace DaprTrain.Cli.Tests;

/// <summary>Issue 14, item 7: where the results go is checked before the work that makes them.</summary>
public sealed class OutputCheckTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-outputs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Export_onnx_into_a_missing_folder_fails_before_training()
    {
        string path = Path.Combine(_dir, "missing", "model.onnx");
        var result = await CliRun.RunAsync("train", "-t", "single", "--dataset", "synthetic", "--train-samples", "256", "--epochs", "1", "--export-onnx", path);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"--export-onnx '{path}': the folder '{Path.Combine(_dir, "missing")}' does not exist");
        result.Output.Should().NotContain("epoch 1/1");
    }

    [Fact]
    public async Task Save_checkpoint_onto_a_folder_fails_before_training()
    {
        var result = await CliRun.RunAsync("train", "-t", "single", "--dataset", "synthetic", "--train-samples", "256", "--epochs", "1", "--save-checkpoint", _dir);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"--save-checkpoint '{_dir}' is a folder");
        result.Output.Should().NotContain("epoch 1/1");
    }

    [Fact]
    public async Task Compare_out_onto_an_existing_file_fails_before_the_comparison()
    {
        string file = Path.Combine(_dir, "report.txt");
        File.WriteAllText(file, "keep me");
        var result = await CliRun.RunAsync("compare", "--dataset", "synthetic", "--train-samples", "256", "--workers", "2", "--rounds", "2", "--scenarios", "none",
            "--out", file);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"--out '{file}' is an existing file");
        result.Output.Should().NotContain("comparing");
        File.ReadAllText(file).Should().Be("keep me");
    }

    [Fact]
    public async Task Compare_checks_every_scenario_file_plan_before_the_first_run()
    {
        string scenario = Path.Combine(_dir, "twice.txt");
        File.WriteAllLines(scenario, ["name: twice", "kill:worker-1@round=2", "kill:worker-1@round=3"]);
        var result = await CliRun.RunAsync("compare", "--dataset", "synthetic", "--train-samples", "256", "--workers", "3", "--rounds", "4", "--scenarios", "none",
            "--scenario-file", scenario, "--out", Path.Combine(_dir, "report"));
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("worker-1 is not running at round 3");
        result.Output.Should().NotContain("accuracy");
    }
}
