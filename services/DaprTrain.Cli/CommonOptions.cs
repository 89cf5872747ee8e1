using System.CommandLine;
using System.CommandLine.Parsing;
using DaprTrain.Training.Models;
using DaprTrain.Training.Parameters;

namespace DaprTrain.Cli;

/// <summary>The options every training command shares, each validated where it is parsed.</summary>
internal sealed class CommonOptions
{
    public Option<string> Model { get; } = new Option<string>("--model", "-m")
    {
        Description = "Model to train: " + string.Join(", ", ModelFactory.Names) + ".",
        DefaultValueFactory = _ => "mlp",
    }.AcceptOnlyFromAmong([.. ModelFactory.Names]);

    public Option<string> Dataset { get; } = new Option<string>("--dataset")
    {
        Description = "mnist (from --data-dir, DAPRTRAIN_DATA_DIR, the cache, or a download), fashion-mnist (from --data-dir, " +
                      "DAPRTRAIN_FASHION_MNIST, /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist), the cache, " +
                      "or a download) or synthetic. When MNIST cannot be found and neither --dataset nor --data-dir was given, uses " +
                      "Fashion-MNIST if it is on this machine, else synthetic data, and says so.",
        DefaultValueFactory = _ => "mnist",
    }.AcceptOnlyFromAmong("mnist", "fashion-mnist", "synthetic");

    public Option<string?> DataDirectory { get; } = new("--data-dir")
    {
        Description = "Folder with the dataset's IDX files (.gz or raw; MNIST and Fashion-MNIST use the same file names).",
    };

    public Option<bool> Offline { get; } = new("--offline")
    {
        Description = "Never download; fail if the dataset is not found locally.",
    };

    public Option<int> Epochs { get; } = Positive("--epochs", "Passes over the training data.", 5);

    public Option<int> BatchSize { get; } = Positive("--batch-size", "Samples per step (per worker in distributed runs).", 64);

    public Option<double> LearningRate { get; } = new("--lr")
    {
        Description = "Learning rate.",
        DefaultValueFactory = _ => 1e-3,
    };

    public Option<string> Optimizer { get; } = new Option<string>("--optimizer")
    {
        Description = "adam or sgd (SGD uses momentum 0.9).",
        DefaultValueFactory = _ => "adam",
    }.AcceptOnlyFromAmong("adam", "sgd");

    public Option<ulong> Seed { get; } = new("--seed")
    {
        Description = "Seed for initialisation, shuffling, data split and faults. Same seed, same weights.",
        DefaultValueFactory = _ => 1UL,
    };

    public Option<int> Holdout { get; } = Positive("--holdout", "Held-out samples when only the dataset's test split is present (the train split, when present, is tested on the test split).", 2000);

    public Option<int?> TrainSamples { get; } = new("--train-samples")
    {
        Description = "Train on at most this many samples (seeded subset).",
    };

    public Option<int?> Threads { get; } = new("--threads")
    {
        Description = "Torch intra-op threads, 1 to this machine's cores (default: all cores).",
    };

    public CommonOptions()
    {
        LearningRate.Validators.Add(r =>
        {
            double value = r.GetValueOrDefault<double>();
            if (!(value > 0) || double.IsInfinity(value)) r.AddError($"--lr must be a positive number (got {value}).");
        });
        PositiveIfGiven(TrainSamples);
        BoundThreads(Threads);
    }

    public IEnumerable<Option> All => [Model, Dataset, DataDirectory, Offline, Epochs, BatchSize, LearningRate, Optimizer, Seed, Holdout, TrainSamples, Threads];

    public OptimizerSettings OptimizerSettings(ParseResult result)
    {
        var kind = result.GetValue(Optimizer) == "sgd" ? OptimizerKind.Sgd : OptimizerKind.Adam;
        return new OptimizerSettings(kind, result.GetValue(LearningRate), Momentum: kind == OptimizerKind.Sgd ? 0.9 : 0.0);
    }

    public bool DatasetWasGiven(ParseResult result) => result.GetResult(Dataset) is { Implicit: false };

    public DataRequest DataRequest(ParseResult result) => new(
        result.GetValue(Dataset)!, DatasetWasGiven(result), result.GetValue(DataDirectory), result.GetValue(Offline),
        result.GetValue(Seed), result.GetValue(Holdout), result.GetValue(TrainSamples));

    private static Option<int> Positive(string name, string description, int defaultValue)
    {
        var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(r =>
        {
            int value = r.GetValueOrDefault<int>();
            if (value <= 0) r.AddError($"{name} must be a positive whole number (got {value}).");
        });
        return option;
    }

    /// <summary>--threads: at least 1 and at most this machine's cores (more only starts idle threads, and 100,000 of them never finish).</summary>
    public static void BoundThreads(Option<int?> option) => option.Validators.Add(r =>
    {
        int? value = r.GetValueOrDefault<int?>();
        if (value is int n && (n < 1 || n > Environment.ProcessorCount))
        {
            r.AddError($"{option.Name} must be between 1 and {Environment.ProcessorCount}, the cores of this machine (got {n}).");
        }
    });

    private static void PositiveIfGiven(Option<int?> option) => option.Validators.Add(r =>
    {
        int? value = r.GetValueOrDefault<int?>();
        if (value is <= 0) r.AddError($"{option.Name} must be a positive whole number (got {value}).");
    });
}
