namespace DaprTrain.Engine.Messaging;

public enum MessageKind : byte
{
    /// <summary>A worker's whole gradient for a round (PS and p2p).</summary>
    Gradient = 1,

    /// <summary>The parameter server's weights after a round.</summary>
    Weights = 2,

    /// <summary>p2p-scatter: the slice of a worker's gradient that another worker owns.</summary>
    GradientSlice = 3,

    /// <summary>p2p-scatter: an owner's reduced (averaged) slice, sent to every peer.</summary>
    ReducedSlice = 4,
}

/// <summary>
/// What travels between nodes. (Job, Generation, Round, Sender, Kind, SliceIndex) identifies a message:
/// a handler applies that key at most once, whatever the broker redelivers. Generation counts
/// rollbacks (a parameter server restored from a checkpoint), so a round number that is replayed after
/// a rollback is never confused with the same round number before it.
/// </summary>
public sealed record WireMessage(
    MessageKind Kind,
    string JobId,
    int Generation,
    long Round,
    string Sender,
    int SampleCount,
    int SliceIndex,
    int Offset,
    ReadOnlyMemory<float> Values)
{
    public (string Job, int Generation, long Round, string Sender, MessageKind Kind, int Slice) Key =>
        (JobId, Generation, Round, Sender, Kind, SliceIndex);
}

public sealed class MessageRejectedException(string reason) : Exception(reason)
{
    public string Reason { get; } = reason;
}
