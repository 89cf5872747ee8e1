using System.Net;
using DaprTrain.Training.Data;

namespace DaprTrain.Training.Tests;

public sealed class DataLocatorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-data-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class StaticHandler(Func<Uri, byte[]?> respond) : HttpMessageHandler
    {
        public List<Uri> Requests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Add(request.RequestUri!);
            var body = respond(request.RequestUri!);
            return Task.FromResult(body is null
                ? new HttpResponseMessage(HttpStatusCode.NotFound)
                : new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(body) });
        }
    }

    [Fact]
    public async Task Explicit_folder_wins_and_a_missing_one_names_the_option()
    {
        var locator = new MnistLocator(_ => null, Path.Combine(_dir, "cache"), downloader: null);
        (await locator.LocateAsync(TestData.MnistDirectory)).Directory.Should().Be(TestData.MnistDirectory);

        var missing = () => locator.LocateAsync(Path.Combine(_dir, "nope"));
        (await missing.Should().ThrowAsync<DataNotFoundException>()).WithMessage("--data-dir*does not exist*");

        var empty = () => locator.LocateAsync(_dir);
        (await empty.Should().ThrowAsync<DataNotFoundException>()).WithMessage("--data-dir*has no MNIST files*");
    }

    [Fact]
    public async Task Environment_variable_comes_before_the_cache()
    {
        var locator = new MnistLocator(name => name == MnistLocator.DataDirectoryEnvironmentVariable ? TestData.MnistDirectory : null,
            Path.Combine(_dir, "cache"), downloader: null);
        var found = await locator.LocateAsync(null);
        found.Should().Be((TestData.MnistDirectory, MnistLocator.DataDirectoryEnvironmentVariable));
    }

    [Fact]
    public async Task Nothing_found_and_no_downloads_says_how_to_fix_it()
    {
        var locator = new MnistLocator(_ => null, Path.Combine(_dir, "cache"), downloader: null);
        var act = () => locator.LocateAsync(null);
        (await act.Should().ThrowAsync<DataNotFoundException>()).WithMessage("*--data-dir*DAPRTRAIN_DATA_DIR*");
    }

    [Fact]
    public async Task Download_verifies_checksums_and_never_caches_a_bad_file()
    {
        // The published MD5s are of the original .gz files; serve bytes with a known MD5 by declaring our own table.
        byte[] good = File.ReadAllBytes(Path.Combine(TestData.MnistDirectory, "t10k-labels-idx1-ubyte.gz"));
        string md5 = Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(good));
        var file = new MnistFile("t10k-labels-idx1-ubyte", good.Length, md5);
        var corrupted = good.ToArray();
        corrupted[^5] ^= 1;

        string cache = Path.Combine(_dir, "cache");
        var badMirror = new Uri("http://mirror-a.invalid/mnist/");
        var goodMirror = new Uri("http://mirror-b.invalid/mnist/");
        var handler = new StaticHandler(uri => uri.Host == badMirror.Host ? corrupted : good);
        var downloader = new MnistDownloader(new HttpClient(handler), [badMirror, goodMirror]);

        await downloader.DownloadAsync(cache, [file]);

        handler.Requests.Select(r => r.Host).Should().Equal(badMirror.Host, goodMirror.Host);
        File.ReadAllBytes(Path.Combine(cache, "t10k-labels-idx1-ubyte.gz")).Should().Equal(good);

        var onlyBad = new MnistDownloader(new HttpClient(new StaticHandler(_ => corrupted)), [badMirror]);
        string otherCache = Path.Combine(_dir, "other");
        var act = () => onlyBad.DownloadAsync(otherCache, [file]);
        (await act.Should().ThrowAsync<DataNotFoundException>()).WithMessage("*MD5*does not match*");
        Directory.GetFiles(otherCache).Should().BeEmpty();
    }

    [Fact]
    public void The_published_checksums_reject_the_shared_recompressed_files()
    {
        // The shared .gz files have other gzip headers than the published ones (see their README).
        byte[] shared = File.ReadAllBytes(Path.Combine(TestData.MnistDirectory, "t10k-labels-idx1-ubyte.gz"));
        MnistDownloader.Verify(shared, Mnist.TestLabels).Should().NotBeNull();
    }

    /// <summary>A folder with the (MNIST) test split under the IDX names that Fashion-MNIST shares: what the locator looks for.</summary>
    private string FolderWithTestSplit(string name)
    {
        string folder = Directory.CreateDirectory(Path.Combine(_dir, name)).FullName;
        foreach (var file in new[] { "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" })
        {
            File.Copy(Path.Combine(TestData.MnistDirectory, file), Path.Combine(folder, file));
        }
        return folder;
    }

    [Fact]
    public async Task Fashion_mnist_is_found_by_its_variable_then_its_package_folder_then_the_cache()
    {
        string fromVariable = FolderWithTestSplit("variable");
        string system = FolderWithTestSplit("system");
        string cache = FolderWithTestSplit("cache");
        var fashion = IdxDataset.FashionMnist with { SystemDirectory = system };
        string? variable = fromVariable;
        var locator = new MnistLocator(name => name == "DAPRTRAIN_FASHION_MNIST" ? variable : null, cache, downloader: null, fashion);

        (await locator.LocateAsync(null)).Should().Be((fromVariable, "DAPRTRAIN_FASHION_MNIST"));
        variable = null;
        (await locator.LocateAsync(null)).Should().Be((system, "package dataset-fashion-mnist"));
        Directory.Delete(system, recursive: true);
        (await locator.LocateAsync(null)).Should().Be((cache, "cache"));
        // MNIST's variable is not Fashion-MNIST's: a folder of the one is never taken for the other.
        var mnistVariableOnly = new MnistLocator(name => name == MnistLocator.DataDirectoryEnvironmentVariable ? fromVariable : null,
            Path.Combine(_dir, "empty-cache"), downloader: null, fashion);
        var act = () => mnistVariableOnly.LocateAsync(null);
        (await act.Should().ThrowAsync<DataNotFoundException>())
            .WithMessage("no Fashion-MNIST data found: pass --data-dir DIR or set DAPRTRAIN_FASHION_MNIST*apt-get install dataset-fashion-mnist*");
    }

    [Fact]
    public async Task Fashion_mnist_downloads_its_own_files_from_its_own_mirrors_and_checks_the_published_md5s()
    {
        // Debian's copies are the published files with the gzip name field taken out: a different MD5, so rejected.
        var fashion = IdxDataset.FashionMnist with { SystemDirectory = null };
        var handler = new StaticHandler(_ => File.ReadAllBytes(Path.Combine(TestData.MnistDirectory, "t10k-labels-idx1-ubyte.gz")));
        var downloader = new MnistDownloader(new HttpClient(handler), fashion.Mirrors);
        var locator = new MnistLocator(_ => null, Path.Combine(_dir, "cache"), downloader, fashion);

        var act = () => locator.LocateAsync(null);
        (await act.Should().ThrowAsync<DataNotFoundException>()).WithMessage("no Fashion-MNIST data found and the download failed*size*published file has 26421880*");
        handler.Requests.Select(r => r.ToString()).Should().Equal(fashion.Mirrors.Select(m => new Uri(m, "train-images-idx3-ubyte.gz").ToString()));
        Directory.Exists(Path.Combine(_dir, "cache")).Should().BeTrue();
        Directory.GetFiles(Path.Combine(_dir, "cache")).Should().BeEmpty();
    }

    [Fact]
    public void Synthetic_data_is_deterministic_and_learnable()
    {
        using var a = SyntheticDataset.Create(600, seed: 2);
        using var b = SyntheticDataset.Create(600, seed: 2);
        a.Features.Should().Equal(b.Features);
        a.Labels.Should().Equal(b.Labels);

        using var data = TrainingData.Synthetic(1200, seed: 2, holdoutCount: 200);
        using var trainer = new Trainer(Train.Options("mlp"));
        Train.Epochs(trainer, data, 3);
        trainer.Evaluate(data.Holdout, data.HoldoutIndices).Accuracy.Should().BeGreaterThan(0.8);
    }
}
