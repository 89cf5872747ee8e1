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

    public enum Verdict { Accept, Late, Reject, Deferred }

    /// <summary>Messages kept until a view names their sender's key: two rounds of eight strangers, as <see cref="HeldContributions"/> allows.</summary>
    public const int MaxDeferred = 2 * HeldContributions.MaxStrangersPerRound;

    private readonly List<(byte[] Payload, string Sender, long Round, Func<byte[], DeliveryResult> Handle)> _deferred = [];

    public int Deferred => _deferred.Count;

    /// <summary>
    /// The keys messages must be signed with (those of the node's membership view), or null where the job does not sign
    /// (an embedded run with signing off). When set, an unsigned message, or one not signed by the key the view names for
    /// its sender, is dropped before anything else about it is believed.
    /// </summary>
    public MessageKeys? Keys { get; set; }

    /// <summary>
    /// Where the values of compressed messages are decoded into (the node's pool), or null for a new array per message.
    /// The gate gives back the values of every message it drops; the node those of messages it accepted, when it forgets them.
    /// </summary>
    public DecodedValuesPool? DecodedValues { get; set; }

    /// <summary>Gives a message's decoded values back to the pool: nothing reads them any more (values of a float32 message are no pool's and stay).</summary>
    public void Release(ReadOnlyMemory<float> values) => DecodedValues?.Return(values);

    /// <summary>
    /// Decodes and authenticates: the message, or why it is dropped (already counted and logged). A signed message from a
    /// sender the view gives no key yet is kept for <paramref name="defer"/> when given (a peer's first gradient can overtake
    /// the view that registers its key, as it can overtake the view that names it) and judged once a view names the key.
    /// </summary>
    /// <param name="maxValues">The most values a compressed message may decode into (the node's model size).</param>
    public (WireMessage? Message, DeliveryResult Result) Open(byte[] payload, Func<byte[], DeliveryResult>? defer = null, int maxValues = Compression.PayloadCodecs.DefaultMaxValues)
    {
        int length = MessageSignature.MessageLength(payload);
        if (length < 0)
        {
            if (Keys is not null) return Dropped(Reject("unsigned", "unsigned message (no signature block); this job signs every message"));
            length = payload.Length;
        }
        WireMessage message;
        try
        {
            // A compressed message decodes into at most the node's model size, whatever count it claims.
            message = WireCodec.Decode(payload, length, maxValues, DecodedValues);
        }
        catch (MessageRejectedException ex)
        {
            return Dropped(Reject("malformed", ex.Reason));
        }
        if (message.JobId != jobId)
        {
            Release(message.Values);
            return Dropped(Reject("unknown job", $"unknown job '{message.JobId}' (this node runs '{jobId}')"));
        }
        if (Keys is not null && defer is not null && !Keys.TryGet(message.Sender, out _) && length != payload.Length)
        {
            if (_deferred.Count >= MaxDeferred)
            {
                var oldest = _deferred[0];
                _deferred.RemoveAt(0);
                Reject("unregistered key", $"{oldest.Sender}'s message for round {oldest.Round} waited for a view with its key while {MaxDeferred} others did");
            }
            _deferred.Add((payload, message.Sender, message.Round, defer));
            // Only the bytes wait; they are decoded again when the view comes.
            Release(message.Values);
            logger.LogDebug("{Node} keeps {Sender}'s round {Round} message until a view registers its key", node, message.Sender, message.Round);
            return (null, DeliveryResult.Applied);
        }
        if (Keys is not null && MessageSignature.Check(payload, length, message, Keys) is { } bad)
        {
            Release(message.Values);
            return Dropped(Reject(bad.Category, bad.Reason));
        }
        return (message, DeliveryResult.Applied);
    }

    /// <summary>
    /// After the keys changed: deferred messages whose sender now has a key are handled again (and so verified); those of
    /// rounds before <paramref name="openRound"/> whose sender still has none are dropped as unregistered.
    /// </summary>
    public void ReleaseDeferred(long openRound)
    {
        if (_deferred.Count == 0 || Keys is null) return;
        var ready = _deferred.Where(d => Keys.TryGet(d.Sender, out _)).ToList();
        foreach (var stale in _deferred.Where(d => !Keys.TryGet(d.Sender, out _) && d.Round < openRound).ToList())
        {
            Reject("unregistered key", $"{stale.Sender}, who has no key in the membership view, sent a message for round {stale.Round}, which has closed");
            _deferred.Remove(stale);
        }
        foreach (var entry in ready)
        {
            _deferred.Remove(entry);
            entry.Handle(entry.Payload);
        }
    }

    /// <param name="maxSamples">The most samples one message can stand for (a batch; a reduced slice: a batch per member).</param>
    public (Verdict Verdict, WireMessage? Message, DeliveryResult Result) Check(
        byte[] payload, MessageKind expectedKind, int generation, long openRound, Func<WireMessage, string?> shapeProblem, Func<string, bool>? knownSender = null,
        int maxSamples = MaxSamplesPerMessage, Func<byte[], DeliveryResult>? defer = null, int maxValues = Compression.PayloadCodecs.DefaultMaxValues)
    {
        var (opened, dropped) = Open(payload, defer, maxValues);
        if (opened is not { } message) return (defer is not null && dropped == DeliveryResult.Applied ? Verdict.Deferred : Verdict.Reject, null, dropped);
        var judged = Judge(message, expectedKind, generation, openRound, shapeProblem, knownSender, maxSamples);
        if (judged.Verdict == Verdict.Accept) return judged;
        // Dropped: nothing will read its values.
        Release(message.Values);
        return (judged.Verdict, null, judged.Result);
    }

    private (Verdict Verdict, WireMessage? Message, DeliveryResult Result) Judge(
        WireMessage message, MessageKind expectedKind, int generation, long openRound, Func<WireMessage, string?> shapeProblem, Func<string, bool>? knownSender, int maxSamples)
    {
        if (message.Kind != expectedKind) return Reject("wrong kind", $"{message.Kind} message where {expectedKind} was expected");
        if (message.Generation < generation) return Late(message, $"generation {message.Generation} is older than {generation}");
        if (message.Generation > generation) return Reject("future generation", $"generation {message.Generation} from the future (current {generation})");
        if (message.Round < openRound) return Late(message, $"round {message.Round} already closed (open round {openRound})");
        if (message.Round > openRound + 1) return Reject("future round", $"round {message.Round} from the future (open round {openRound})");
        // A sample count weights a gradient in the mean: one claimed far above a batch would outvote every honest worker.
        if (message.SampleCount <= 0 || message.SampleCount > Math.Min(maxSamples, MaxSamplesPerMessage))
        {
            return Reject("bad sample count", $"sample count {message.SampleCount} outside 1..{Math.Min(maxSamples, MaxSamplesPerMessage)}");
        }
        if (shapeProblem(message) is string problem) return Reject("wrong length", "wrong length: " + problem);
        if (knownSender is not null && !knownSender(message.Sender)) return Reject("unknown sender", $"sender '{message.Sender}' is not a member of the job");
        return (Verdict.Accept, message, DeliveryResult.Applied);
    }

    /// <summary>The answer for an accepted contribution, by what holding it did; counted. Values not held are given back.</summary>
    public DeliveryResult Answer(WireMessage message, HeldContributions.Outcome outcome)
    {
        switch (outcome)
        {
            case HeldContributions.Outcome.Duplicate:
                Release(message.Values);
                counters.CountDuplicate();
                return DeliveryResult.Duplicate;
            case HeldContributions.Outcome.TooManyStrangers:
                Release(message.Values);
                return Reject("unknown sender", $"sender '{message.Sender}' is not a member of the job, and "
                    + $"{HeldContributions.MaxStrangersPerRound} senders no view names are already held for round {message.Round}").Result;
            default:
                counters.CountApplied();
                return DeliveryResult.Applied;
        }
    }

    private static (WireMessage?, DeliveryResult) Dropped((Verdict, WireMessage?, DeliveryResult Result) rejected) => (null, rejected.Result);

    public (Verdict Verdict, WireMessage? Message, DeliveryResult Result) Reject(string category, string reason)
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
