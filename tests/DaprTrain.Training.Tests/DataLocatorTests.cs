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
