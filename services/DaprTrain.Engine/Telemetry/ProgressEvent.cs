using System.Text.Json;
using System.Text.Json.Serialization;

namespace DaprTrain.Engine.Telemetry;

/// <summary>
/// One progress event of a job (schemas/progress-event.schema.json, version 1): what a dashboard shows live. The services
/// publish them on the pub/sub topic <c>progress</c>, the embedded mode writes them one a line (<c>--events FILE</c>).
/// One flat record for every kind, as the schema is flat: the fields a kind does not use stay null and are not written.
/// Build them with the factory methods, which set each kind's required fields; <see cref="ProgressEmitter"/> stamps the
/// envelope (job, source, sequence number, time).
/// </summary>
public sealed record ProgressEvent
{
    public const int SchemaVersion = 1;

    public int Schema { get; init; } = SchemaVersion;

    public required string Kind { get; init; }

    public string Job { get; init; } = "";

    public string Source { get; init; } = "";

    public long Seq { get; init; }

    /// <summary>Unix milliseconds (wall clock) in the services; milliseconds since the job started on the virtual clock in the embedded mode.</summary>
    public double TimeMs { get; init; }

    // job-started
    public string? Topology { get; init; }
    public string? Mode { get; init; }
    public string? Clock { get; init; }
    public int? Workers { get; init; }
    public string? Model { get; init; }
    public string? Aggregator { get; init; }
    public string? Compress { get; init; }
    public bool? Serverless { get; init; }
    public string? Scenario { get; init; }

    // job-started, job-finished
    public long? Rounds { get; init; }

    // most kinds
    public long? Round { get; init; }
    public int? Generation { get; init; }
    public string? Node { get; init; }

    // round-completed
    public double? DurationMs { get; init; }
    public long? Bytes { get; init; }
    public int? Contributors { get; init; }
    public int? MemberCount { get; init; }

    // evaluation, job-finished
    public double? Accuracy { get; init; }
    public double? Loss { get; init; }
    public double? TotalMs { get; init; }

    // membership
    public string? Change { get; init; }
    public IReadOnlyList<string>? Members { get; init; }
    public string? CheckpointWriter { get; init; }
    public IReadOnlyList<string>? ShardOwners { get; init; }

    // node-state
    public string? State { get; init; }
    public string? Reason { get; init; }

    // fault
    public string? Phase { get; init; }
    public string? Fault { get; init; }
    public long? RoundsLost { get; init; }

    // checkpoint
    public string? Writer { get; init; }

    // cost (modelled)
    public double? VmUsd { get; init; }
    public double? ServerlessUsd { get; init; }
    public string? Prices { get; init; }

    public static ProgressEvent JobStarted(string topology, string mode, bool virtualClock, int workers, long rounds, string model,
        string? aggregator = null, string? compress = null, bool? serverless = null, string? scenario = null) => new()
    {
        Kind = "job-started", Topology = topology, Mode = mode, Clock = virtualClock ? "virtual" : "wall", Workers = workers, Rounds = rounds,
        Model = model, Aggregator = aggregator, Compress = compress, Serverless = serverless, Scenario = Clip(scenario),
    };

    public static ProgressEvent RoundCompleted(long round, int generation, double durationMs, long bytes, int contributors, int? memberCount = null) => new()
    {
        Kind = "round-completed", Round = round, Generation = generation, DurationMs = Math.Max(0, durationMs), Bytes = bytes,
        Contributors = contributors, MemberCount = memberCount,
    };

    public static ProgressEvent Evaluation(long round, double accuracy, double? loss) => new()
    {
        Kind = "evaluation", Round = round, Accuracy = accuracy, Loss = loss is { } l && double.IsFinite(l) ? Math.Max(0, l) : null,
    };

    /// <param name="change">joined, lease-expired, left, shards-moved, checkpoint-writer or view.</param>
    public static ProgressEvent Membership(string change, string? node, int generation, IReadOnlyList<string> members, string? checkpointWriter,
        IReadOnlyList<string>? shardOwners) => new()
    {
        Kind = "membership", Change = change, Node = node, Generation = generation, Members = members,
        CheckpointWriter = string.IsNullOrEmpty(checkpointWriter) ? null : checkpointWriter, ShardOwners = shardOwners,
    };

    /// <param name="state">alive, slow, dead or rejoining.</param>
    public static ProgressEvent NodeState(string node, string state, long? round, string? reason) => new()
    {
        Kind = "node-state", Node = node, State = state, Round = round, Reason = Clip(reason),
    };

    /// <param name="phase">injected, detected or recovered.</param>
    public static ProgressEvent FaultEvent(string phase, string fault, string? node, long round, long? roundsLost = null) => new()
    {
        Kind = "fault", Phase = phase, Fault = Clip(fault)!, Node = node, Round = round, RoundsLost = roundsLost,
    };

    public static ProgressEvent Checkpoint(long round, int generation, string writer, long? bytes) => new()
    {
        Kind = "checkpoint", Round = round, Generation = generation, Writer = writer, Bytes = bytes,
    };

    /// <param name="prices">The price table's name, source and date: the figures are modelled from it.</param>
    public static ProgressEvent Cost(long round, double vmUsd, double serverlessUsd, string prices) => new()
    {
        Kind = "cost", Round = round, VmUsd = vmUsd, ServerlessUsd = serverlessUsd, Prices = Clip(prices)!,
    };

    public static ProgressEvent JobFinished(long rounds, double? accuracy, double? loss, double? totalMs) => new()
    {
        Kind = "job-finished", Rounds = rounds, Accuracy = accuracy, Loss = loss is { } l && double.IsFinite(l) ? Math.Max(0, l) : null, TotalMs = totalMs,
    };

    /// <summary>One JSON object, no line breaks: a line of an events file, or a message's data.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ProgressEventJson.Default.ProgressEvent);

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, ProgressEventJson.Default.ProgressEvent);

    // The schema bounds free text at 300 characters (a fault list, a reason).
    private static string? Clip(string? text) => text is { Length: > 300 } ? text[..297] + "..." : text;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ProgressEvent))]
internal sealed partial class ProgressEventJson : JsonSerializerContext;
