using System.ComponentModel.DataAnnotations;
using DaprTrain.Coordination;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Training.Data;
using Microsoft.Extensions.Configuration;

namespace DaprTrain.Dapr;

/// <summary>
/// The job, the same for every service that trains (workers and the parameter server). Bound from the "Job" section
/// (or JOB__* environment variables) and validated at start. A worker's own identity is <see cref="WorkerOptions"/>.
/// </summary>
public sealed class TrainingJobOptions : IValidatableObject
{
    public const string Section = "Job";

    // The progress events' id pattern (schemas/progress-event.schema.json), so the dashboard can show every job the services run.
    [Required, RegularExpression("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    public string JobId { get; set; } = "daprtrain";

    /// <summary>Job:Topology as written: ps, p2p or p2p-scatter (validated at start). Everything else reads <see cref="Topology"/>.</summary>
    [ConfigurationKeyName("Topology")]
    public string TopologyName { get; set; } = Topologies.Default.Name();

    /// <summary>
    /// The job's topology, parsed from Job:Topology once the options are validated. (Bound under a key nobody sets: the
    /// configuration binder would otherwise try to read "p2p-scatter" as an enum member name.)
    /// </summary>
    [ConfigurationKeyName("TopologyName")]
    public Topology Topology => Topologies.TryParse(TopologyName, out var topology) ? topology : Topologies.Default;

    [Range(1, 64)]
    public int Workers { get; set; } = 3;

    [Required, RegularExpression("^(mlp|cnn|resnet|mlp-512|mlp-2048)$")]
    public string Model { get; set; } = "mlp";

    [Required, RegularExpression("^(adam|sgd)$")]
    public string Optimizer { get; set; } = "adam";

    [Range(1e-6, 10)]
    public double LearningRate { get; set; } = 2e-3;

    [Range(1, 65536)]
    public int BatchSize { get; set; } = 64;

    public ulong Seed { get; set; } = 1;

    [Range(1, 10_000_000)]
    public long Rounds { get; set; } = 100;

    [Range(1, 600_000)]
    public int RoundDeadlineMs { get; set; } = 2000;

    [Range(1, 100_000)]
    public int CheckpointEvery { get; set; } = 10;

    /// <summary>Milliseconds between heartbeats to the coordinator; keep it well under the coordinator's lease.</summary>
    [Range(50, 600_000)]
    public int HeartbeatMs { get; set; } = 1000;

    /// <summary>
    /// A round's waits (contributions, the server's weights) look again as soon as the node has handled a delivery, not
    /// only every 10 ms poll. Deadlines are the same either way; false brings back the poll alone, for measuring what the
    /// poll cost (issue 16).
    /// </summary>
    public bool WakeOnDelivery { get; set; } = true;

    /// <summary>
    /// A node asks the coordinator for the membership view only when it has reason to think the view changed, not every
    /// round: between peers when the round's decision names another view version (or after an error, a rejoin, a
    /// resynchronisation), under a parameter server after a wait that ran out, a message its view's keys could not verify,
    /// weights of a newer generation, or once its view is <see cref="HeartbeatMs"/> old. The report that completes a round's
    /// agreement answers with the decision, so that reporter does not poll for it. False brings back a view every round and
    /// the decision by polling alone, for measuring what they cost (issue 16).
    /// </summary>
    public bool FewerCoordinatorCalls { get; set; } = true;

    /// <summary>
    /// Between peers, the worker whose report closes a round says so on <see cref="DaprTrain.Contracts.DaprTopics.Decisions"/>,
    /// and the members waiting for that decision ask the coordinator when the hint comes instead of at their next 10 ms
    /// poll. The coordinator's answer stays the decision; polling goes on, so a lost hint costs what it cost before, and a
    /// hint the coordinator does not bear out makes the worker ignore hints for the rest of that wait. Needs
    /// <see cref="FewerCoordinatorCalls"/> (the report that closes a round answers with the decision), and
    /// <see cref="WakeOnDelivery"/> to act on a hint at once (without it a hint is seen at the next poll). False polls
    /// alone, for measuring what the hints gain (issue 16).
    /// </summary>
    public bool DecisionHints { get; set; } = true;

    /// <summary>Whether peers publish and wait for <see cref="DecisionHints"/>: asked for, and the closing report answers with the decision.</summary>
    public bool UsesDecisionHints => DecisionHints && FewerCoordinatorCalls;

    /// <summary>
    /// Between peers, how often a worker whose report left its round open asks the coordinator for the decision (with
    /// <see cref="DecisionHints"/>, between hints). 10 ms by default: shorter polls cost the CPU that rounds on few cores
    /// are short of (BENCHMARKS.md, issue 16).
    /// </summary>
    [Range(1, 60_000)]
    public int DecisionPollMs { get; set; } = 10;

    /// <summary>
    /// The parameter server captures its checkpoint between rounds and writes it to the state store while the next round
    /// runs (one write at a time; the last is written before the job ends), instead of on the round's path. What the store
    /// holds, and when a restarted server finds it, is as before: a crash during a write leaves the previous checkpoint, as
    /// it did. False writes on the path, for measuring what it cost (issue 16).
    /// </summary>
    public bool CheckpointInBackground { get; set; } = true;

    /// <summary>
    /// Job:TorchThreads: libtorch's intra-op threads in this process, 1 to this machine's cores, or 0 for libtorch's own
    /// default (one a core). 1 by default: a job runs several services a host (N workers, the coordinator, the server, their
    /// sidecars), each of which would otherwise start a thread a core, and the MLP's batch is too small to gain from more
    /// (issue 16: BENCHMARKS.md, "libtorch threads per service"). Give a service that has cores to itself more.
    /// </summary>
    public int TorchThreads { get; set; } = 1;

    /// <summary>
    /// mnist (from DataDir; an empty DataDir means synthetic data, as before datasets had names), fashion-mnist (from DataDir,
    /// else DAPRTRAIN_FASHION_MNIST, /usr/share/datasets/fashion-mnist or the user cache; never downloaded by a service) or synthetic.
    /// </summary>
    [Required, RegularExpression("^(mnist|fashion-mnist|synthetic)$")]
    public string Dataset { get; set; } = "mnist";

    /// <summary>A folder with the dataset's IDX files (MNIST and Fashion-MNIST use the same names).</summary>
    public string? DataDir { get; set; }

    /// <summary>
    /// Job:Aggregator: how the server (ps) or every replica (p2p, p2p-scatter) aggregates a round, as in the CLI's
    /// --aggregator (mean, median, trimmed-mean[:f], krum[:f], multi-krum[:f[,m]], bulyan[:f]). Validated at start against
    /// Workers and the topology; every service of a job must name the same rule, or replicas diverge.
    /// </summary>
    public string Aggregator { get; set; } = "mean";

    /// <summary>The aggregation rule, resolved for <see cref="Workers"/> (f and m filled in); valid once the options are validated.</summary>
    public AggregationRule ResolvedAggregator() => DaprTrain.Engine.Aggregation.AggregationRule.Parse(Aggregator).ForWorkers(Workers);

    /// <summary>Job:Aggregator parses, its condition holds for Workers, and a whole-vector rule is not asked of p2p-scatter.</summary>
    private IEnumerable<ValidationResult> ValidateAggregator()
    {
        if (!DaprTrain.Engine.Aggregation.AggregationRule.TryParse(Aggregator, out var rule, out string? problem))
        {
            yield return new ValidationResult($"Job:Aggregator: {problem}", [nameof(Aggregator)]);
        }
        else
        {
            string? condition = null;
            try
            {
                rule = rule.ForWorkers(Workers);
            }
            catch (ArgumentException ex)
            {
                condition = ex.Message;
            }
            if (condition is not null) yield return new ValidationResult($"Job:Aggregator: {condition}", [nameof(Aggregator)]);
            else if (rule.NeedsWholeVectors && Topologies.TryParse(TopologyName, out var chosen) && chosen == Coordination.Topology.PeerToPeerScatter)
            {
                yield return new ValidationResult($"Job:Aggregator {rule} compares whole gradients, and p2p-scatter gives each worker one slice of them: use p2p or ps, or median or trimmed-mean.", [nameof(Aggregator)]);
            }
        }
    }

    /// <summary>
    /// Job:Compress: the workers' gradient codec, as in the CLI's --compress (none, fp16, int8, topk:RATIO, qsgd:LEVELS), with
    /// error feedback for the lossy ones. Receivers decode whatever encoding a message carries; the server's weights stay float32.
    /// </summary>
    public string Compress { get; set; } = "none";

    /// <summary>The parsed codec; valid once the options are validated.</summary>
    public DaprTrain.Engine.Compression.CompressionSpec Compression() => DaprTrain.Engine.Compression.CompressionSpec.Parse(Compress);

    [Range(1, 1_000_000)]
    public int Holdout { get; set; } = 2000;

    /// <summary>
    /// Job:Secret (JOB__SECRET), the same for every service of the job: a worker's join and the server's key registration
    /// prove it to the coordinator, which requires it. From the chart's generated Kubernetes Secret, or the run file.
    /// </summary>
    [MinLength(DaprTrain.Coordination.Security.JobAdmission.MinSecretLength)]
    public string? Secret { get; set; }

    /// <summary>
    /// Largest chunk of a message or a state value. It must fit the sidecar's body limit as it is published, and the
    /// broker's message limit once daprd has wrapped it in a CloudEvent (base64, a third larger, plus the envelope).
    /// </summary>
    [Range(16 * 1024, 16 * 1024 * 1024)]
    public int MaxChunkBytes { get; set; } = 512 * 1024;

    /// <summary>The sidecar's request body limit: daprd's --max-body-size (dapr.io/http-max-request-size), 4 MiB by default.</summary>
    [Range(64 * 1024, int.MaxValue)]
    public int SidecarMaxBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// The broker's largest message: Kafka's message.max.bytes (about 1 MB by default; the components' maxMessageBytes is
    /// 1 MiB). Redis Streams have no such limit below 512 MB: raise this with the Redis profile for larger chunks.
    /// </summary>
    [Range(64 * 1024, int.MaxValue)]
    public int BrokerMaxMessageBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Which of the sidecar's APIs messages are published through: "http" (POST /v1.0/publish/{pubsub}/{topic}, the chunk as
    /// the body) or "grpc" (the SDK's PublishEvent). daprd makes the same CloudEvent of either. HTTP by default (issue 16:
    /// the publish phase was shorter over it on the bench machine); gRPC for a sidecar whose HTTP port is closed to the app.
    /// </summary>
    public string PublishApi { get; set; } = "http";

    /// <summary>Whether messages are published through the sidecar's HTTP API (<see cref="PublishApi"/>).</summary>
    public bool PublishesOverHttp => string.Equals(PublishApi, "http", StringComparison.Ordinal);

    /// <summary>What daprd's gRPC request around a published chunk adds (pub/sub and topic names, content type, metadata).</summary>
    private const int PublishRequestOverheadBytes = 16 * 1024;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var problem in ValidateAggregator()) yield return problem;
        if (!DaprTrain.Engine.Compression.CompressionSpec.TryParse(Compress, out _, out string? codecProblem))
        {
            yield return new ValidationResult($"Job:Compress: {codecProblem}", [nameof(Compress)]);
        }
        if (!Topologies.TryParse(TopologyName, out var topology))
        {
            yield return new ValidationResult($"Job:Topology '{TopologyName}' is not a topology; known: {string.Join(", ", Topologies.Names)}.", [nameof(Topology)]);
        }
        else if (Workers < topology.MinWorkers())
        {
            yield return new ValidationResult($"Job:Topology {topology.Name()} needs at least {topology.MinWorkers()} workers; Workers = {Workers}.", [nameof(Workers)]);
        }
        if (PublishApi is not ("http" or "grpc"))
        {
            yield return new ValidationResult($"Job:PublishApi is '{PublishApi}': give http (the sidecar's HTTP publish API, the default) or grpc (its gRPC PublishEvent).", [nameof(PublishApi)]);
        }
        if (TorchThreads < 0 || TorchThreads > Environment.ProcessorCount)
        {
            yield return new ValidationResult($"Job:TorchThreads must be between 1 and {Environment.ProcessorCount}, the cores this process has, or 0 for libtorch's "
                + $"default (got {TorchThreads}).", [nameof(TorchThreads)]);
        }
        if ((long)MaxChunkBytes + PublishRequestOverheadBytes > SidecarMaxBodyBytes)
        {
            yield return new ValidationResult($"Job:MaxChunkBytes {MaxChunkBytes} does not fit the sidecar's body limit (Job:SidecarMaxBodyBytes {SidecarMaxBodyBytes}, "
                + $"less {PublishRequestOverheadBytes} bytes for the request around it); raise daprd's --max-body-size or lower the chunk size.", [nameof(MaxChunkBytes)]);
        }
        long envelope = CloudEventData.MaxBodyBytes(MaxChunkBytes);
        if (envelope > BrokerMaxMessageBytes)
        {
            yield return new ValidationResult($"Job:MaxChunkBytes {MaxChunkBytes} becomes a CloudEvent of up to {envelope} bytes (base64 plus the envelope), over the broker's "
                + $"message limit (Job:BrokerMaxMessageBytes {BrokerMaxMessageBytes}); at most {MaxChunkFor(BrokerMaxMessageBytes)} fits.", [nameof(MaxChunkBytes)]);
        }
        if (!string.IsNullOrEmpty(DataDir) && !Directory.Exists(DataDir))
        {
            yield return new ValidationResult($"DataDir '{DataDir}' does not exist.", [nameof(DataDir)]);
        }
        else if (!string.IsNullOrEmpty(DataDir) && Dataset == "synthetic")
        {
            yield return new ValidationResult($"Job:Dataset synthetic reads no files, but Job:DataDir is '{DataDir}'; leave one of them out.", [nameof(DataDir)]);
        }
        else if (Dataset == "fashion-mnist" && string.IsNullOrEmpty(DataDir) && TrainingJobOptionsExtensions.LocateFashionMnist(Environment.GetEnvironmentVariable) is { Problem: string problem })
        {
            // Checked at start, so a worker without the data stops with the reason instead of failing its first round.
            yield return new ValidationResult($"Job:Dataset fashion-mnist: {problem}", [nameof(Dataset)]);
        }
    }

    /// <summary>The largest chunk whose CloudEvent fits <paramref name="messageBytes"/>.</summary>
    public static int MaxChunkFor(int messageBytes) => (int)Math.Max(0, ((long)messageBytes - CloudEventData.EnvelopeOverheadBytes) / 4 * 3);
}

public static class TrainingJobOptionsExtensions
{
    /// <summary>
    /// The job's trainer settings. Every trainer a service makes comes from here, so this is where the process's torch threads
    /// are set (Job:TorchThreads), once, before its first tensor.
    /// </summary>
    public static DaprTrain.Training.TrainerOptions Trainer(this TrainingJobOptions job)
    {
        DaprTrain.Training.TorchRuntime.EnsureInitialised(job.TorchThreads == 0 ? null : job.TorchThreads);
        var kind = job.Optimizer == "sgd" ? DaprTrain.Training.Parameters.OptimizerKind.Sgd : DaprTrain.Training.Parameters.OptimizerKind.Adam;
        return new(job.Model, new DaprTrain.Training.Parameters.OptimizerSettings(kind, job.LearningRate, Momentum: kind == DaprTrain.Training.Parameters.OptimizerKind.Sgd ? 0.9 : 0), job.BatchSize, job.Seed);
    }

    /// <summary>
    /// The same data and shards on every node: the dataset from DataDir, Fashion-MNIST from where this machine has it, or
    /// seeded synthetic data (Dataset synthetic, or mnist without a DataDir).
    /// </summary>
    public static TrainingData LoadData(this TrainingJobOptions job)
    {
        if (job.Dataset == "synthetic" || (job.Dataset == "mnist" && string.IsNullOrEmpty(job.DataDir)))
        {
            return TrainingData.Synthetic(10_000, job.Seed, job.Holdout);
        }
        var dataset = IdxDataset.Find(job.Dataset) ?? throw new InvalidOperationException($"Job:Dataset '{job.Dataset}' is not a dataset.");
        string directory = !string.IsNullOrEmpty(job.DataDir)
            ? job.DataDir
            : LocateFashionMnist(Environment.GetEnvironmentVariable) is { Directory: string found } ? found
            : throw new DataNotFoundException($"Job:Dataset {job.Dataset}: {LocateFashionMnist(Environment.GetEnvironmentVariable).Problem}");
        return TrainingData.FromMnistFolder(directory, job.Seed, job.Holdout, dataset: dataset);
    }

    /// <summary>Fashion-MNIST on this machine (its variable, its package's folder, the cache; no download), or why not.</summary>
    internal static (string? Directory, string? Problem) LocateFashionMnist(Func<string, string?> environment)
    {
        var dataset = IdxDataset.FashionMnist;
        var locator = new MnistLocator(environment, dataset.DefaultCacheDirectory(), downloader: null, dataset);
        try
        {
            return (locator.LocateAsync(null).GetAwaiter().GetResult().Directory, null);
        }
        catch (DataNotFoundException ex)
        {
            return (null, ex.Message);
        }
    }
}
