using DaprTrain.Coordination;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Engine.Compression;
using System.CommandLine;
using DaprTrain.Simulation.Accounting;
using DaprTrain.Simulation.Faults;
using DaprTrain.Simulation;
using DaprTrain.Training;
using DaprTrain.Training.Data;

namespace DaprTrain.Cli;

/// <summary>The options of a distributed embedded run, shared by train and compare.</summary>
internal sealed class DistributedOptions
{
    public Option<int> Workers { get; } = new("--workers", "-n") { Description = "Number of workers (worker-1 .. worker-N).", DefaultValueFactory = _ => 4 };

    public Option<string[]> Faults { get; } = new("--fault")
    {
        Description = "A fault to inject (repeatable): kill:worker-N@round=R, kill:ps@round=R, restart:worker-N@round=R, slow:worker-N=200ms, drop=P, duplicate=P, delay=P:50ms, reorder, " +
                      "byzantine:worker-N=signflip[:S]|gaussian[:sigma]|noise[:sigma]|labelflip|alie[:z]|zero[@round=R].",
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<string?> ScenarioFile { get; } = new("--scenario") { Description = "A scenario file: one fault item a line, '#' comments, an optional 'name: ...' line." };

    public Option<long?> Rounds { get; } = new("--rounds") { Description = "Rounds to run (default: from --epochs; each worker takes one batch a round)." };

    public Option<double> RoundDeadline { get; } = new("--round-deadline") { Description = "Milliseconds a round waits for gradients before it closes without the missing ones.", DefaultValueFactory = _ => 250 };

    public Option<double> Lease { get; } = new("--lease") { Description = "Milliseconds without a heartbeat after which a worker leaves the membership.", DefaultValueFactory = _ => 1000 };

    public Option<double> ServerRestart { get; } = new("--ps-restart") { Description = "Milliseconds until a killed parameter server is running again (a pod restart).", DefaultValueFactory = _ => 3000 };

    public Option<int> CheckpointEvery { get; } = new("--checkpoint-every") { Description = "Rounds between checkpoints.", DefaultValueFactory = _ => 10 };

    public Option<int?> EvaluateEvery { get; } = new("--eval-every") { Description = "Rounds between held-out evaluations (default: about 20 per run)." };

    public Option<double> Latency { get; } = new("--latency-ms") { Description = "Network model: latency of one pub/sub hop, 0 to 60000 ms.", DefaultValueFactory = _ => 1.0 };

    public Option<double> Bandwidth { get; } = new("--bandwidth-mbps") { Description = "Network model: bandwidth of each node's link in Mbit/s, 0.01 to 1000000.", DefaultValueFactory = _ => 1000 };

    public Option<string> ShardingMode { get; } = new Option<string>("--sharding") { Description = "iid or label-skew (each worker sees about two labels).", DefaultValueFactory = _ => "iid" }
        .AcceptOnlyFromAmong("iid", "label-skew");

    public Option<double> TargetAccuracy { get; } = new("--target-accuracy") { Description = "Accuracy for the time-to-target figure.", DefaultValueFactory = _ => 0.9 };

    public Option<string?> Prices { get; } = new("--prices") { Description = "Price table (JSON) for the cost estimate (default: config/prices.json beside the program)." };

    public Option<string> Compute { get; } = new Option<string>("--compute")
    {
        Description = "vm (each worker computes on its own instance) or serverless (each worker fans its batch out to --functions gradient functions " +
                      "per round, arXiv 2309.14139; the paper's one function per mini-batch of 64 is --batch-size 512 --functions 8).",
        DefaultValueFactory = _ => ComputeModes.Default.Name(),
    }.AcceptOnlyFromAmong([.. ComputeModes.Names]);

    public Option<int> Functions { get; } = new("--functions", "-k") { Description = "--compute serverless: gradient functions per worker per round (each takes an equal share of the batch).", DefaultValueFactory = _ => 8 };

    public Option<string> Platform { get; } = new("--platform") { Description = "--compute serverless: the platform profile (aws-lambda, azure-container-apps, or one of --platforms).", DefaultValueFactory = _ => Simulation.Compute.PlatformProfile.DefaultName };

    public Option<string?> Platforms { get; } = new("--platforms") { Description = "Platform profiles (JSON) for serverless runs (default: config/platforms.json beside the program)." };

    public Option<int?> FunctionMemory { get; } = new("--function-memory") { Description = "--compute serverless: a function's memory in MB (default: the profile's); CPU is proportional to it." };

    public Option<string> Aggregator { get; } = new("--aggregator", "-a")
    {
        Description = "How gradients are aggregated: " + AggregationRule.Grammar + ". Robust rules count each gradient once (no sample weighting); " +
                      "f (Byzantine workers tolerated) defaults to floor((n-1)/3), lowered to what the rule allows (krum: n > 2f+2, bulyan: n >= 4f+3, " +
                      "trimmed-mean: 2f < n); multi-krum's m to n-f. krum, multi-krum and bulyan need whole gradients: not with p2p-scatter. " +
                      "A round with fewer gradients than the rule needs takes their median.",
        DefaultValueFactory = _ => "mean",
    };

    public Option<string> Compress { get; } = new("--compress")
    {
        Description = "Gradient compression on the wire: " + CompressionSpec.Grammar + ". The lossy codecs run with error feedback " +
                      "(what a round drops is added to the next round's gradient); the parameter server's weights stay float32.",
        DefaultValueFactory = _ => "none",
    };

    public DistributedOptions()
    {
        Compress.Validators.Add(r =>
        {
            if (!CompressionSpec.TryParse(r.GetValueOrDefault<string>(), out _, out string? problem)) r.AddError($"--compress: {problem}");
        });
        Aggregator.Validators.Add(r =>
        {
            if (!AggregationRule.TryParse(r.GetValueOrDefault<string>(), out var rule, out string? problem))
            {
                r.AddError($"--aggregator: {problem}");
                return;
            }
            // The rule's condition on n and f is checked here, against --workers, before any data is loaded.
            int workers = r.GetValue(Workers);
            if (workers < 1 || workers > Simulation.JobOptions.MaxWorkers) return;
            try
            {
                rule.ForWorkers(workers);
            }
            catch (ArgumentException ex)
            {
                r.AddError($"--aggregator: {ex.Message}");
            }
        });
        Functions.Validators.Add(r =>
        {
            int value = r.GetValueOrDefault<int>();
            if (value < 1 || value > ServerlessOptions.MaxFunctions) r.AddError($"--functions must be between 1 and {ServerlessOptions.MaxFunctions} (got {value}).");
        });
        FunctionMemory.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 128 or > 65536) r.AddError($"--function-memory must be 128 to 65536 MB (got {r.GetValueOrDefault<int?>()}).");
        });
        Workers.Validators.Add(r =>
        {
            int value = r.GetValueOrDefault<int>();
            if (value < 1 || value > Simulation.JobOptions.MaxWorkers) r.AddError($"--workers must be between 1 and {Simulation.JobOptions.MaxWorkers} (got {value}).");
        });
        Rounds.Validators.Add(r =>
        {
            long? value = r.GetValueOrDefault<long?>();
            if (value is < 1) r.AddError($"--rounds must be at least 1 (got {value}).");
        });
        Positive(RoundDeadline);
        Positive(Lease);
        Bandwidth.Validators.Add(r =>
        {
            if (NetworkModel.BandwidthError(r.GetValueOrDefault<double>()) is string message) r.AddError(message);
        });
        NonNegative(ServerRestart);
        Latency.Validators.Add(r =>
        {
            if (NetworkModel.LatencyError(r.GetValueOrDefault<double>()) is string message) r.AddError(message);
        });
        CheckpointEvery.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1) r.AddError($"--checkpoint-every must be at least 1 (got {r.GetValueOrDefault<int>()}).");
        });
        EvaluateEvery.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1) r.AddError($"--eval-every must be at least 1 (got {r.GetValueOrDefault<int?>()}).");
        });
        TargetAccuracy.Validators.Add(r =>
        {
            double value = r.GetValueOrDefault<double>();
            if (value is < 0 or > 1 || double.IsNaN(value)) r.AddError($"--target-accuracy must be between 0 and 1 (got {value}).");
        });
    }

    public IEnumerable<Option> All => [Workers, Aggregator, Compress, Faults, ScenarioFile, Rounds, RoundDeadline, Lease, ServerRestart, CheckpointEvery, EvaluateEvery, Latency, Bandwidth, ShardingMode, TargetAccuracy, Prices, Compute, Functions, Platform, Platforms, FunctionMemory];

    /// <summary>The faults from --fault items and --scenario (both may be given; they add up).</summary>
    public FaultPlan FaultPlan(ParseResult result)
    {
        var items = result.GetValue(Faults) ?? [];
        string? file = result.GetValue(ScenarioFile);
        if (file is null) return Simulation.Faults.FaultPlan.Parse(items);
        var fromFile = Simulation.Faults.FaultPlan.ParseFile(file);
        if (items.Length == 0) return fromFile;
        var fromItems = Simulation.Faults.FaultPlan.Parse(items);
        return new FaultPlan(fromFile.Name + " + " + fromItems.Name, [.. fromFile.NodeFaults, .. fromItems.NodeFaults],
            fromItems.Bus.Any ? fromItems.Bus : fromFile.Bus, fromItems.Functions.Any ? fromItems.Functions : fromFile.Functions,
            [.. fromFile.Attacks, .. fromItems.Attacks]);
    }

    public PriceTable LoadPrices(ParseResult result) => result.GetValue(Prices) is string path ? PriceTable.Load(path) : PriceTable.Default();

    public Simulation.JobOptions BuildJobOptions(ParseResult result, CommonOptions common, TrainingData data, Topology topology, FaultPlan faults, string jobId)
    {
        int workers = result.GetValue(Workers);
        int batch = result.GetValue(common.BatchSize);
        long rounds = result.GetValue(Rounds) ?? Simulation.JobOptions.RoundsForEpochs(result.GetValue(common.Epochs), data.TrainIndices.Length, workers, batch);
        Sharding.TryParseMode(result.GetValue(ShardingMode)!, out var sharding);
        var trainer = new TrainerOptions(result.GetValue(common.Model)!, common.OptimizerSettings(result), batch, result.GetValue(common.Seed));
        return new Simulation.JobOptions(jobId, topology, workers, trainer, rounds, faults,
            new NetworkModel(result.GetValue(Latency), result.GetValue(Bandwidth)), sharding,
            result.GetValue(RoundDeadline), result.GetValue(Lease), result.GetValue(ServerRestart), result.GetValue(CheckpointEvery),
            result.GetValue(EvaluateEvery) ?? (int)Math.Max(1, rounds / 20), result.GetValue(TargetAccuracy),
            Compute: ComputeModes.Parse(result.GetValue(Compute)!), Serverless: new ServerlessOptions(result.GetValue(Functions), LoadPlatform(result)),
            Aggregator: AggregationRule.Parse(result.GetValue(Aggregator)), Compression: CompressionSpec.Parse(result.GetValue(Compress)));
    }

    /// <summary>The platform profile a serverless run (and the "all functions" cost of any run) uses, with --function-memory applied.</summary>
    public Simulation.Compute.PlatformProfile LoadPlatform(ParseResult result)
    {
        var profile = Simulation.Compute.PlatformProfile.Load(result.GetValue(Platforms), result.GetValue(Platform)!);
        return result.GetValue(FunctionMemory) is int memory ? profile.WithMemory(memory) : profile;
    }

    private static void Positive(Option<double> option) => option.Validators.Add(r =>
    {
        double value = r.GetValueOrDefault<double>();
        if (!(value > 0) || double.IsInfinity(value)) r.AddError($"{option.Name} must be a positive number (got {value}).");
    });

    private static void NonNegative(Option<double> option) => option.Validators.Add(r =>
    {
        double value = r.GetValueOrDefault<double>();
        if (!(value >= 0) || double.IsInfinity(value)) r.AddError($"{option.Name} must be zero or a positive number (got {value}).");
    });
}
