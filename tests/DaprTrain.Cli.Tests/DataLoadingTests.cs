using System.Net;
using DaprTrain.Training.Data;
using DaprTrain.Training.Tests;

namespace DaprTrain.Cli.Tests;

/// <summary>A fact that needs the full Fashion-MNIST; skipped, with the reason, where it is not installed.</summary>
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public FashionMnistFactAttribute()
    {
        if (TestData.FashionMnistMissingReason is { } reason) Skip = reason;
    }
}

/// <summary>Which data a command trains on: the named dataset, or for a run that named none, MNIST, then Fashion-MNIST, then synthetic.</summary>
public sealed class DataLoadingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-loading-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class NotFound : HttpMessageHandler
    {
        public int Requests { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests++;
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound));
        }
    }

    private readonly NotFound _network = new();

    /// <summary>No variables, empty caches, a network that has nothing, and Fashion-MNIST's package folder where the test says.</summary>
    private DataSources Sources(string? fashionSystemDirectory) => new(
        _ => null,
        [IdxDataset.Mnist, IdxDataset.FashionMnist with { SystemDirectory = fashionSystemDirectory ?? Path.Combine(_dir, "not-installed") }],
        d => Path.Combine(_dir, "cache", d.Name),
        (d, _) => new MnistDownloader(new HttpClient(_network), d.Mirrors));

    private string InstalledFashion()
    {
        // The locator recognises a folder by its file names, which Fashion-MNIST shares with MNIST: the shared MNIST test split stands in.
        string folder = Directory.CreateDirectory(Path.Combine(_dir, "installed")).FullName;
        foreach (var file in new[] { "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" })
        {
            File.Copy(Path.Combine(TestData.MnistDirectory, file), Path.Combine(folder, file));
        }
        return folder;
    }

    private static DataRequest Request(string dataset = "mnist", bool given = false, string? dataDir = null, bool offline = false) =>
        new(dataset, given, dataDir, offline, Seed: 1, Holdout: 500, TrainSamples: null);

    [Fact]
    public async Task A_run_that_named_no_dataset_uses_installed_fashion_mnist_when_mnist_cannot_be_had_and_says_so()
    {
        string installed = InstalledFashion();
        var output = new StringWriter();
        using var data = await DataLoading.LoadAsync(Request(), Sources(installed), output, CancellationToken.None);

        data.Description.Should().StartWith($"Fashion-MNIST test split from {installed}");
        data.Train.Name.Should().Be("fashion-mnist-test");
        _network.Requests.Should().BeGreaterThan(0, "MNIST is looked for first, the download included");
        output.ToString().Should().Contain("warning: no MNIST data found and the download failed")
            .And.Contain($"note: using Fashion-MNIST instead, found in {installed} (via package dataset-fashion-mnist)");
    }

    [Fact]
    public async Task Without_mnist_or_fashion_mnist_it_falls_back_to_synthetic_data_and_says_how_to_get_real_data()
    {
        var output = new StringWriter();
        using var data = await DataLoading.LoadAsync(Request(offline: true), Sources(null), output, CancellationToken.None);

        data.Description.Should().StartWith("synthetic");
        _network.Requests.Should().Be(0, "--offline");
        output.ToString().Should().Contain("apt-get install dataset-fashion-mnist").And.Contain("falling back to --dataset synthetic");
    }

    [Fact]
    public async Task A_named_dataset_or_folder_is_never_swapped_for_another()
    {
        InstalledFashion();
        var mnistNamed = () => DataLoading.LoadAsync(Request("mnist", given: true, offline: true), Sources(Path.Combine(_dir, "installed")), TextWriter.Null, CancellationToken.None);
        (await mnistNamed.Should().ThrowAsync<DataNotFoundException>()).WithMessage("no MNIST data found*");

        var folderNamed = () => DataLoading.LoadAsync(Request(dataDir: Path.Combine(_dir, "nowhere")), Sources(Path.Combine(_dir, "installed")), TextWriter.Null, CancellationToken.None);
        (await folderNamed.Should().ThrowAsync<DataNotFoundException>()).WithMessage("--data-dir: folder*nowhere' does not exist.");

        var fashionMissing = () => DataLoading.LoadAsync(Request("fashion-mnist", given: true, offline: true), Sources(null), TextWriter.Null, CancellationToken.None);
        (await fashionMissing.Should().ThrowAsync<DataNotFoundException>()).WithMessage("no Fashion-MNIST data found*DAPRTRAIN_FASHION_MNIST*apt-get install dataset-fashion-mnist*");
    }

    [Fact]
    public async Task Train_with_dataset_fashion_mnist_and_no_data_exits_2_naming_where_it_looked()
    {
        var result = await CliRun.RunAsync("train", "-t", "single", "--dataset", "fashion-mnist", "--data-dir", Path.Combine(_dir, "missing"), "--epochs", "1");
        result.ExitCode.Should().Be(ExitCodes.InvalidInput);
        result.Error.Should().Contain("missing' does not exist").And.NotContain(" at DaprTrain.");
    }

    [FashionMnistFact]
    public async Task Train_reads_the_installed_fashion_mnist_as_it_is()
    {
        var result = await CliRun.RunAsync("train", "-t", "single", "--dataset", "fashion-mnist", "--data-dir", TestData.FashionMnistDirectory!,
            "--train-samples", "3200", "--epochs", "1");
        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain($"data: Fashion-MNIST from {TestData.FashionMnistDirectory}: 3200 train, 10000 test");
        result.Output.Should().MatchRegex(@"held-out accuracy (6[5-9]|[7-9][0-9])\.[0-9]{2}%", "an MLP that saw 3,200 images gets about 75%; chance is 10%");
    }
}
