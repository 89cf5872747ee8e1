namespace DaprTrain.Cli.Tests;

/// <summary>--compress and compare --scenario compression from the command line.</summary>
public sealed class CompressionCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-cli-compression-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("zip", "compression 'zip' is not known")]
    [InlineData("topk:0", "topk needs a ratio above 0 and at most 1")]
    [InlineData("qsgd:200", "qsgd needs a number of levels from 1 to 127")]
    public async Task A_bad_codec_is_refused_naming_the_option_before_anything_runs(string codec, string problem)
    {
        var result = await CliRun.RunAsync("train", "--dataset", "synthetic", "--rounds", "2", "--compress", codec);
        result.ExitCode.Should().Be(ExitCodes.InvalidOptions);
        result.Error.Should().Contain("--compress").And.Contain(problem);
        result.Output.Should().NotContain("data:");
    }

    [Fact]
    public async Task Train_with_a_codec_runs_and_names_it()
    {
        var result = await CliRun.RunAsync("train", "-t", "p2p-scatter", "--dataset", "synthetic", "--train-samples", "1024", "--holdout", "256", "--rounds", "4",
            "--compress", "topk:0.05");
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("compression topk:0.05");
    }

    [Fact]
    public async Task Compare_compression_writes_bytes_per_worker_per_codec_against_none()
    {
        string report = Path.Combine(_dir, "compression");
        var result = await CliRun.RunAsync("compare", "--scenario", "compression", "--topologies", "p2p", "--dataset", "synthetic", "--train-samples", "1024",
            "--holdout", "256", "--rounds", "3", "--codecs", "int8", "topk:0.01", "--out", report);
        result.ExitCode.Should().Be(0, result.Error);
        string markdown = File.ReadAllText(Path.Combine(report, "compression.md"));
        markdown.Should().Contain("| p2p | none |").And.Contain("| p2p | int8 |").And.Contain("| p2p | topk:0.01 |").And.Contain("MB sent / worker / round");
        markdown.Should().MatchRegex(@"\| p2p \| int8 \| [^\n]*\| 3\.9\dx \|", "int8 carries about a quarter of float32's bytes");
    }
}
