namespace DaprTrain.Simulation.Accounting;

public sealed class NodeMetrics(string node)
{
    public string Node { get; } = node;

    public long BytesSent { get; set; }

    public long BytesReceived { get; set; }

    public long MessagesSent { get; set; }

    public long MessagesReceived { get; set; }

    /// <summary>Virtual milliseconds spent computing, sending, receiving or aggregating: what serverless bills.</summary>
    public double BusyMs { get; set; }

    /// <summary>Virtual milliseconds the node's process was up: what an always-on VM bills.</summary>
    public double AliveMs { get; set; }

    public int Rounds { get; set; }
}

public sealed record RoundRecord(
    long Round,
    int Generation,
    double StartMs,
    double EndMs,
    int Members,
    int Included,
    double ComputeMs,
    double ExchangeWallMs,
    long BytesMoved,
    double? Accuracy,
    double? Loss);

public sealed record FaultRecord(string Fault, long Round, double AtMs)
{
    /// <summary>When the membership no longer counted the dead node (its lease expired), if it applies.</summary>
    public double? DetectedAtMs { get; set; }

    /// <summary>End of the first round completed after the fault.</summary>
    public double? RecoveredAtMs { get; set; }

    public double? RecoveryMs => RecoveredAtMs - AtMs;

    public double? DetectionMs => DetectedAtMs - AtMs;

    public long RoundsLost { get; set; }
}
