using System.CommandLine;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

/// <summary>What a command asked for: a dataset by name, perhaps a folder, and how to cut it.</summary>
internal sealed record DataRequest(string Dataset, bool DatasetGiven, string? DataDirectory, bool Offline, ulong Seed, int Holdout, int? TrainSamples);

/// <summary>
/// Where data may be found: the environment, the datasets' descriptions (their system folders among them), the cache
/// and the downloader. The process's own in <see cref="System"/>; tests put temporary folders in their place.
/// </summary>
internal sealed record DataSources(Func<string, string?> Environment, IReadOnlyList<IdxDataset> Datasets, Func<IdxDataset, string> CacheDirectory,
    Func<IdxDataset, TextWriter, MnistDownloader> Downloader)
{
    public static DataSources System { get; } = new(global::System.Environment.GetEnvironmentVariable, IdxDataset.All, d => d.DefaultCacheDirectory(), CreateDownloader);

    public IdxDataset Dataset(string name) =>
        Datasets.FirstOrDefault(d => d.Name == name) ?? throw new ArgumentException($"--dataset '{name}' is not one of {string.Join(", ", Datasets.Select(d => d.Name))}.");

    private static MnistDownloader CreateDownloader(IdxDataset dataset, TextWriter output)
    {
        string? mirror = global::System.Environment.GetEnvironmentVariable(dataset.MirrorEnvironmentVariable);
        IReadOnlyList<Uri> mirrors = string.IsNullOrWhiteSpace(mirror)
            ? dataset.Mirrors
            : [new Uri(mirror.EndsWith('/') ? mirror : mirror + "/")];
        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        return new MnistDownloader(http, mirrors, message => output.WriteLine(message));
    }
}

internal static class DataLoading
{
    public const int SyntheticSampleCount = 10_000;

    public static Task<TrainingData> LoadAsync(ParseResult result, CommonOptions options, TextWriter output, CancellationToken cancellationToken) =>
        LoadAsync(options.DataRequest(result), DataSources.System, output, cancellationToken);

    /// <summary>
    /// The named dataset by its lookup order, or synthetic data. When the user named nothing (no --dataset, no --data-dir)
    /// and MNIST cannot be found or downloaded, Fashion-MNIST found on this machine (its variable, its package's folder or
    /// the cache; never a download) is used instead, and then synthetic data; each step is said.
    /// </summary>
    public static async Task<TrainingData> LoadAsync(DataRequest request, DataSources sources, TextWriter output, CancellationToken cancellationToken)
    {
        if (request.Dataset == "synthetic") return Synthetic(request);

        var dataset = sources.Dataset(request.Dataset);
        var locator = new MnistLocator(sources.Environment, sources.CacheDirectory(dataset), request.Offline ? null : sources.Downloader(dataset, output), dataset);
        try
        {
            var (directory, source) = await locator.LocateAsync(request.DataDirectory, cancellationToken);
            output.WriteLine($"data: {dataset.Title} from {directory} (found via {source})");
            return TrainingData.FromMnistFolder(directory, request.Seed, request.Holdout, request.TrainSamples, dataset: dataset);
        }
        catch (DataNotFoundException ex) when (request.DataDirectory is null && !request.DatasetGiven)
        {
            output.WriteLine($"warning: {ex.Message}");
        }

        var fashion = sources.Dataset(IdxDataset.FashionMnist.Name);
        var local = new MnistLocator(sources.Environment, sources.CacheDirectory(fashion), downloader: null, fashion);
        try
        {
            var (directory, source) = await local.LocateAsync(null, cancellationToken);
            output.WriteLine($"note: using {fashion.Title} instead, found in {directory} (via {source}); choose with --dataset {string.Join(" | ", sources.Datasets.Select(d => d.Name))} | synthetic.");
            output.WriteLine($"data: {fashion.Title} from {directory} (found via {source})");
            return TrainingData.FromMnistFolder(directory, request.Seed, request.Holdout, request.TrainSamples, dataset: fashion);
        }
        catch (DataNotFoundException ex)
        {
            output.WriteLine($"warning: {ex.Message}");
        }
        output.WriteLine("warning: falling back to --dataset synthetic (digits-shaped random data); accuracy figures are not MNIST's.");
        return Synthetic(request);
    }

    private static TrainingData Synthetic(DataRequest request) =>
        TrainingData.Synthetic(SyntheticSampleCount, request.Seed, request.Holdout, request.TrainSamples);
}
