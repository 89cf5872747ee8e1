using DaprTrain.Engine.Messaging;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Engine.Nodes;

/// <summary>
/// The checks every inbound message passes before it may touch a model: it decodes (structure, checksum,
/// finite values), it belongs to this job and generation, its round is the open one (or the next), it has
/// the right shape, and (where the caller asks) it comes from a known sender. The answer follows Dapr's contract: poison is
/// dropped with a logged reason, never retried.
/// </summary>
internal sealed class MessageGate(string node, string jobId, ILogger logger, NodeCounters counters)
{
    public const int MaxSamplesPerMessage = 1_000_000;

    public enum Verdict { Accept, Late, Reject }

    public (Verdict Verdict, WireMessage? Message, DeliveryResult Result) Check(
        byte[] payload, MessageKind expectedKind, int generation, long openRound, Func<WireMessage, string?> shapeProblem, Func<string, bool>? knownSender = null,
        int maxValues = Compression.PayloadCodecs.DefaultMaxValues)
    {
        WireMessage message;
        try
        {
            // A compressed message decodes into at most the node's model size, whatever count it claims.
            message = WireCodec.Decode(payload, maxValues);
        }
        catch (MessageRejectedException ex)
        {
            return Reject("malformed", ex.Reason);
        }

        if (message.JobId != jobId) return Reject("unknown job", $"unknown job '{message.JobId}' (this node runs '{jobId}')");
        if (message.Kind != expectedKind) return Reject("wrong kind", $"{message.Kind} message where {expectedKind} was expected");
        if (message.Generation < generation) return Late(message, $"generation {message.Generation} is older than {generation}");
        if (message.Generation > generation) return Reject("future generation", $"generation {message.Generation} from the future (current {generation})");
        if (message.Round < openRound) return Late(message, $"round {message.Round} already closed (open round {openRound})");
        if (message.Round > openRound + 1) return Reject("future round", $"round {message.Round} from the future (open round {openRound})");
        if (message.SampleCount is <= 0 or > MaxSamplesPerMessage) return Reject("bad sample count", $"sample count {message.SampleCount} outside 1..{MaxSamplesPerMessage}");
        if (shapeProblem(message) is string problem) return Reject("wrong length", "wrong length: " + problem);
        if (knownSender is not null && !knownSender(message.Sender)) return Reject("unknown sender", $"sender '{message.Sender}' is not a member of the job");
        return (Verdict.Accept, message, DeliveryResult.Applied);
    }

    /// <summary>The answer for an accepted contribution, by what holding it did; counted.</summary>
    public DeliveryResult Answer(WireMessage message, HeldContributions.Outcome outcome)
    {
        switch (outcome)
        {
            case HeldContributions.Outcome.Duplicate:
                counters.CountDuplicate();
                return DeliveryResult.Duplicate;
            case HeldContributions.Outcome.TooManyStrangers:
                return Reject("unknown sender", $"sender '{message.Sender}' is not a member of the job, and "
                    + $"{HeldContributions.MaxStrangersPerRound} senders no view names are already held for round {message.Round}").Result;
            default:
                counters.CountApplied();
                return DeliveryResult.Applied;
        }
    }

    private (Verdict Verdict, WireMessage? Message, DeliveryResult Result) Reject(string category, string reason)
    {
        counters.CountRejected(category);
        logger.LogWarning("{Node} dropped a message: {Reason}", node, reason);
        return (Verdict.Reject, null, DeliveryResult.Poison(reason));
    }

    private (Verdict, WireMessage?, DeliveryResult) Late(WireMessage message, string reason)
    {
        // A stale message is not poison in the usual sense, but retrying it can never help: drop it.
        counters.CountLate();
        logger.LogDebug("{Node} discarded a late {Kind} from {Sender}: {Reason}", node, message.Kind, message.Sender, reason);
        return (Verdict.Late, message, DeliveryResult.Stale(reason));
    }
}
