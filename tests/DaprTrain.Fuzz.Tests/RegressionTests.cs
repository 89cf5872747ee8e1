using DaprTrain.Fuzz;
using DaprTrain.Training.Data;

namespace DaprTrain.Fuzz.Tests;

/// <summary>Inputs that broke a parser (minimised), kept so the fix stays.</summary>
public sealed class RegressionTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("daprtrain-fuzz-regression-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void A_gzip_idx_file_that_inflates_beyond_its_declared_size_is_refused_without_inflating_it_all()
    {
        // A 2x2 image (4 data bytes) followed by 32 MiB of zeros: about 32 KB of gzip. IdxReader used to inflate all
        // of it into memory (about 4 times over, as a MemoryStream grew and was copied) before it saw the excess.
        byte[] image = Seeds.IdxBytes(1, 2, 2);
        var path = Write("bomb.gz", Seeds.Gzip([.. image, .. new byte[32 << 20]]));
        new FileInfo(path).Length.Should().BeLessThan(64 * 1024);
        Exception? thrown = null;
        long allocated = Property.Allocated(() => thrown = Record.Exception(() => IdxReader.Read(path, 3)));
        thrown.Should().BeOfType<IdxFormatException>().Which.Problem.Should().Contain("unexpected bytes after the 4 data bytes");
        allocated.Should().BeLessThan(1 << 20);
    }

    [Fact]
    public void An_idx_file_that_declares_far_more_data_than_it_holds_costs_only_what_it_holds()
    {
        byte[] header = Seeds.IdxBytes(1, 1, 1)[..16];
        header[12] = 0x7F; // the last dimension: 0x7F000000 bytes
        var path = Write("claim", [.. header, 1, 2, 3]);
        Exception? thrown = null;
        long allocated = Property.Allocated(() => thrown = Record.Exception(() => IdxReader.Read(path, 3)));
        thrown.Should().BeOfType<IdxFormatException>().Which.Problem.Should().Contain("truncated");
        allocated.Should().BeLessThan(64 * 1024);

        var gzipped = Write("claim.gz", Seeds.Gzip([.. header, 1, 2, 3]));
        allocated = Property.Allocated(() => thrown = Record.Exception(() => IdxReader.Read(gzipped, 3)));
        thrown.Should().BeOfType<IdxFormatException>().Which.Problem.Should().Contain("truncated");
        allocated.Should().BeLessThan(256 * 1024);
    }

    [Fact]
    public void Gzip_idx_files_are_read_as_before()
    {
        byte[] image = Seeds.IdxBytes(3, 4, 4);
        var array = IdxReader.Read(Write("ok.gz", Seeds.Gzip(image)), 3);
        array.Dimensions.Should().Equal(3, 4, 4);
        array.Data.Should().Equal(image[16..]);
        var longer = () => IdxReader.Read(Write("long.gz", Seeds.Gzip([.. image, 9, 9])), 3);
        longer.Should().Throw<IdxFormatException>().Which.Problem.Should().Contain("more unexpected bytes");
        var shorter = () => IdxReader.Read(Write("short.gz", Seeds.Gzip(image[..^1])), 3);
        shorter.Should().Throw<IdxFormatException>().Which.Problem.Should().Contain("truncated");
    }

    /// <summary>Findings whose parsers were fixed (issue 14's CLI and model-server work): each input now ends as the parser documents, within the allocation bound.</summary>
    [Theory]
    [InlineData("faults", "finding-validate-overflow")]
    [InlineData("faults", "finding-nan-probability")]
    [InlineData("faults", "finding-infinite-duration")]
    [InlineData("platforms", "finding-null-profile")]
    [InlineData("prediction", "finding-empty-images-amplification")]
    [InlineData("chunk", "finding-count-claim")]
    [InlineData("chunk", "finding-total-length-claim")]
    [InlineData("chunk", "finding-churn")]
    public void Fixed_findings_are_refused_as_the_parser_documents(string target, string file)
    {
        byte[] input = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "corpus", target, file));
        KnownFindings.For(target).Should().BeNull("no input of this parser is skipped any more");
        FuzzTargets.Execute(FuzzTargets.Get(target), input).Should().Be(FuzzOutcome.Rejected);
    }

    /// <summary>
    /// The same findings, each as the first parse of a fresh process (the harness's <c>--run</c>): the order in which CI
    /// once ran the platforms finding first, and the allocation bound charged it System.Text.Json's one-time metadata
    /// (290 KB against a 263 KB bound). The harness warms each target on its seeds before measuring.
    /// </summary>
    [Theory]
    [InlineData("platforms", "finding-null-profile")]
    [InlineData("faults", "finding-nan-probability")]
    [InlineData("prediction", "finding-empty-images-amplification")]
    public void A_finding_run_as_a_fresh_process_first_parse_is_within_the_bound(string target, string file)
    {
        string harness = Path.Combine(AppContext.BaseDirectory, "DaprTrain.Fuzz.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { harness, "--run", target, Path.Combine(AppContext.BaseDirectory, "corpus", target, file) }) start.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        output.Should().EndWith(": Rejected" + Environment.NewLine, "the finding is refused within the allocation bound; the harness said: " + output);
        process.ExitCode.Should().Be(0);
    }
}
