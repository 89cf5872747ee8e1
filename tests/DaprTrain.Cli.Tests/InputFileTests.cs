namespace DaprTrain.Cli.Tests;

/// <summary>Issue 14, item 5: scenario, price and platform files are read with a limit; devices and huge files are refused by name.</summary>
public sealed class InputFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-inputs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("--scenario", "scenario file")]
    [InlineData("--prices", "price table")]
    [InlineData("--platforms", "platform profiles")]
    public async Task A_device_as_an_input_file_is_refused_naming_it(string option, string what)
    {
        var run = CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "1", "--compute", "serverless", "--functions", "2", option, "/dev/zero");
        (await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60)))).Should().BeSameAs(run, "reading /dev/zero must not hang");
        var result = await run;
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"{what} '/dev/zero'").And.Contain("larger than");
    }

    [Fact]
    public async Task A_scenario_file_with_a_line_too_long_is_refused_naming_the_file_and_line()
    {
        string file = Path.Combine(_dir, "long.txt");
        File.WriteAllText(file, "drop=0.1\n" + new string('x', 5000) + "\n");
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "1", "--scenario", file);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"{file}, line 2: longer than 1000 characters");
        result.Error.Length.Should().BeLessThan(1000);
    }

    [Fact]
    public async Task A_huge_price_table_is_refused()
    {
        string file = Path.Combine(_dir, "prices.json");
        File.WriteAllText(file, "{\"source\":\"" + new string('s', 2 << 20) + "\"}");
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "1", "--prices", file);
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain($"price table '{file}' is larger than 1,048,576 bytes");
    }
}
