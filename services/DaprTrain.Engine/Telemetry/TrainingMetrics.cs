using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace DaprTrain.Engine.Telemetry;

/// <summary>
/// The project's one <see cref="Meter"/> ("DaprTrain") and its instruments. The embedded runtime records its
/// accounting through these, and a service host records the same figures under the same names, so a dashboard or a
/// <c>dotnet-counters</c> session reads one vocabulary whatever the mode. Every measurement carries the node's id.
/// </summary>
public static class TrainingMetrics
{
    public const string MeterName = "DaprTrain";

    public static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Bytes a node published (each message counted once: the broker fans it out).</summary>
    public static readonly Counter<long> BytesSent = Meter.CreateCounter<long>("daprtrain.bytes.sent", "By", "Bytes a node published");

    /// <summary>Bytes delivered to a node.</summary>
    public static readonly Counter<long> BytesReceived = Meter.CreateCounter<long>("daprtrain.bytes.received", "By", "Bytes delivered to a node");

    public static readonly Counter<long> MessagesSent = Meter.CreateCounter<long>("daprtrain.messages.sent", "{message}", "Messages a node published");

    public static readonly Counter<long> MessagesReceived = Meter.CreateCounter<long>("daprtrain.messages.received", "{message}", "Messages delivered to a node");

    /// <summary>Time a node spent computing, sending, receiving or aggregating: what serverless bills.</summary>
    public static readonly Histogram<double> BusyTime = Meter.CreateHistogram<double>("daprtrain.node.busy", "ms", "Busy time of a node's step");

    /// <summary>Wall time of the exchange (encode, publish, deliver, decode, aggregate), apart from compute and optimizer steps.</summary>
    public static readonly Histogram<double> ExchangeTime = Meter.CreateHistogram<double>("daprtrain.exchange.duration", "ms", "Exchange time");

    /// <summary>
    /// Wall time of a node's completed round in the services, from the previous round's completion (issue 16). Its phases,
    /// <see cref="Telemetry.RoundPhase"/>, add up to it: the named ones measured, "other" the rest.
    /// </summary>
    public static readonly Histogram<double> RoundDuration = Meter.CreateHistogram<double>("daprtrain.round.duration", "ms", "Wall time of a node's round");

    /// <summary>A round's time in one phase (tag daprtrain.phase: compute, encode, publish, wait, aggregate, apply, coordinator, checkpoint, other), once per phase and round, zeros included.</summary>
    public static readonly Histogram<double> RoundPhaseTime = Meter.CreateHistogram<double>("daprtrain.round.phase", "ms", "Time of a round spent in one phase");

    /// <summary>Gradient-function invocations (serverless compute), tagged with their outcome.</summary>
    public static readonly Counter<long> Invocations = Meter.CreateCounter<long>("daprtrain.function.invocations", "{invocation}", "Gradient-function invocations");

    /// <summary>The project's activity source (same name as the meter): a span per round and per delivered message in the services.</summary>
    public static readonly ActivitySource Tracing = new(MeterName, "1.0");

    public static TagList Node(string node) => new() { { "daprtrain.node", node } };
}
