using System.CommandLine;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

internal static class DataLoading
{
    public const int SyntheticSampleCount = 10_000;

    /// <summary>
    /// MNIST by the lookup order, or synthetic data. Falls back to synthetic only when the user asked for
    /// nothing in particular (no --dataset, no --data-dir), and then says so.
    /// </summary>
    public static async Task<TrainingData> LoadAsync(ParseResult result, CommonOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        ulong seed = result.GetValue(options.Seed);
        int holdout = result.GetValue(options.Holdout);
        int? trainSamples = result.GetValue(options.TrainSamples);
        if (result.GetValue(options.Dataset) == "synthetic")
        {
            return TrainingData.Synthetic(SyntheticSampleCount, seed, holdout, trainSamples);
        }

        string? dataDir = result.GetValue(options.DataDirectory);
        var downloader = result.GetValue(options.Offline) ? null : CreateDownloader(output);
        var locator = new MnistLocator(Environment.GetEnvironmentVariable, MnistLocator.DefaultCacheDirectory(), downloader);
        try
        {
            var (directory, source) = await locator.LocateAsync(dataDir, cancellationToken);
            output.WriteLine($"data: MNIST from {directory} (found via {source})");
            return TrainingData.FromMnistFolder(directory, seed, holdout, trainSamples);
        }
        catch (DataNotFoundException ex) when (dataDir is null && !options.DatasetWasGiven(result))
        {
            output.WriteLine($"warning: {ex.Message}");
            output.WriteLine("warning: falling back to --dataset synthetic (digits-shaped random data); accuracy figures are not MNIST's.");
            return TrainingData.Synthetic(SyntheticSampleCount, seed, holdout, trainSamples);
        }
    }

    private static MnistDownloader CreateDownloader(TextWriter output)
    {
        string? mirror = Environment.GetEnvironmentVariable(MnistDownloader.MirrorEnvironmentVariable);
        IReadOnlyList<Uri> mirrors = string.IsNullOrWhiteSpace(mirror)
            ? MnistDownloader.DefaultMirrors
            : [new Uri(mirror.EndsWith('/') ? mirror : mirror + "/")];
        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        return new MnistDownloader(http, mirrors, message => output.WriteLine(message));
    }
}
