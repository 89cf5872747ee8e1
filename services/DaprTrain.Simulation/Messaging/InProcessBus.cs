using DaprTrain.Engine.Messaging;
using DaprTrain.Training;

namespace DaprTrain.Simulation.Messaging;

public delegate DeliveryResult MessageHandler(byte[] payload);

public sealed record DeadLetter(string Topic, string Subscriber, int Bytes, string Reason);

/// <summary>
/// The embedded broker: topics, one queue per subscription (every subscriber gets every message, as with
/// one Dapr app id per worker), delivery at a virtual due time, at-least-once with Dapr's answers
/// (Retry redelivers, Drop dead-letters), and seeded fault injection. Time is the engine's virtual clock,
/// so a run with the same seed delivers the same messages in the same order.
/// </summary>
public sealed class InProcessBus(BusFaults faults, ulong seed, double retryBackoffMs = 100, int maxAttempts = 5)
{
    private readonly Dictionary<string, List<Subscription>> _topics = new(StringComparer.Ordinal);
    private readonly PriorityQueue<Delivery, (double Due, long Sequence)> _queue = new();
    private readonly List<DeadLetter> _deadLetters = [];
    private readonly Dictionary<byte[], int> _queuedCopies = new(ReferenceEqualityComparer.Instance);
    private SplitMix64 _random = SplitMix64.Derive(seed, "bus");
    private long _sequence;

    public BusFaults Faults { get; } = faults;

    public IReadOnlyList<DeadLetter> DeadLetters => _deadLetters;

    public long Delivered { get; private set; }

    public int Pending => _queue.Count;

    /// <summary>Called once per delivery attempt with the subscriber and the payload size (for byte accounting).</summary>
    public Action<string, int>? OnDelivery { get; set; }

    public IDisposable Subscribe(string topic, string subscriber, MessageHandler handler)
    {
        if (!_topics.TryGetValue(topic, out var list)) _topics[topic] = list = [];
        if (list.Any(s => s.Subscriber == subscriber)) throw new InvalidOperationException($"{subscriber} already subscribes to {topic}");
        var subscription = new Subscription(topic, subscriber, handler);
        list.Add(subscription);
        return new Unsubscriber(() => { list.Remove(subscription); subscription.Active = false; });
    }

    /// <summary>
    /// Publishes at virtual time <paramref name="now"/>; each subscriber's copy is due after <paramref name="transitMs"/>, then faults apply.
    /// The publisher does not get its own message back (a Dapr sidecar would deliver it; the Dapr host acknowledges it as a duplicate).
    /// </summary>
    public void Publish(string topic, byte[] payload, double now, double transitMs, string? publisher = null)
    {
        if (!_topics.TryGetValue(topic, out var subscriptions)) return;
        foreach (var subscription in subscriptions)
        {
            if (subscription.Subscriber == publisher) continue;
            double due = now + transitMs;
            if (Faults.Reorder) due += _random.NextSingle() * Math.Max(transitMs, 1.0);
            if (Faults.DelayProbability > 0 && _random.NextSingle() < Faults.DelayProbability) due += Faults.DelayMs;
            if (Faults.DropProbability > 0 && _random.NextSingle() < Faults.DropProbability)
            {
                due += Faults.RedeliverAfterMs;
            }
            Enqueue(new Delivery(subscription, payload, 1), due);
            if (Faults.DuplicateProbability > 0 && _random.NextSingle() < Faults.DuplicateProbability)
            {
                // Half the copies come at once (a publisher retry), half as a redelivery of what was not acknowledged
                // in time, anywhere up to a redelivery interval later.
                double lag = _random.NextSingle() < 0.5 ? _random.NextSingle() * Math.Max(transitMs, 1.0) : _random.NextSingle() * Faults.RedeliverAfterMs;
                Enqueue(new Delivery(subscription, payload, 1), due + lag);
            }
        }
    }

    /// <summary>True while a delivery of these very bytes waits in a queue (delayed, duplicated, to be retried).</summary>
    public bool IsQueued(byte[] payload) => _queuedCopies.ContainsKey(payload);

    /// <summary>The earliest due time of a pending delivery, if any.</summary>
    public double? NextDue => _queue.TryPeek(out _, out var priority) ? priority.Due : null;

    /// <summary>Delivers, in due order, everything due at or before <paramref name="until"/>; returns how many attempts were made.</summary>
    public int DeliverUntil(double until)
    {
        int attempts = 0;
        while (_queue.TryPeek(out var delivery, out var priority) && priority.Due <= until)
        {
            _queue.Dequeue();
            Dequeued(delivery.Payload);
            if (!delivery.Subscription.Active) continue;
            attempts++;
            Delivered++;
            OnDelivery?.Invoke(delivery.Subscription.Subscriber, delivery.Payload.Length);
            var result = delivery.Subscription.Handler(delivery.Payload);
            switch (result.Status)
            {
                case DeliveryStatus.Retry when delivery.Attempt < maxAttempts:
                    Enqueue(delivery with { Attempt = delivery.Attempt + 1 }, priority.Due + retryBackoffMs * delivery.Attempt);
                    break;
                case DeliveryStatus.Retry:
                    _deadLetters.Add(new DeadLetter(delivery.Subscription.Topic, delivery.Subscription.Subscriber, delivery.Payload.Length, $"gave up after {maxAttempts} attempts: {result.Reason}"));
                    break;
                case DeliveryStatus.Drop:
                    _deadLetters.Add(new DeadLetter(delivery.Subscription.Topic, delivery.Subscription.Subscriber, delivery.Payload.Length, result.Reason ?? "dropped"));
                    break;
            }
        }
        return attempts;
    }

    /// <summary>Discards every pending delivery to <paramref name="subscriber"/> (a process that died with its queue).</summary>
    public void Unsubscribe(string subscriber)
    {
        foreach (var list in _topics.Values)
        {
            foreach (var subscription in list.Where(s => s.Subscriber == subscriber).ToList())
            {
                subscription.Active = false;
                list.Remove(subscription);
            }
        }
    }

    private void Enqueue(Delivery delivery, double due)
    {
        _queue.Enqueue(delivery, (due, _sequence++));
        _queuedCopies[delivery.Payload] = _queuedCopies.GetValueOrDefault(delivery.Payload) + 1;
    }

    private void Dequeued(byte[] payload)
    {
        int left = _queuedCopies[payload] - 1;
        if (left == 0) _queuedCopies.Remove(payload);
        else _queuedCopies[payload] = left;
    }

    private sealed class Subscription(string topic, string subscriber, MessageHandler handler)
    {
        public string Topic { get; } = topic;
        public string Subscriber { get; } = subscriber;
        public MessageHandler Handler { get; } = handler;
        public bool Active { get; set; } = true;
    }

    private sealed record Delivery(Subscription Subscription, byte[] Payload, int Attempt);

    private sealed class Unsubscriber(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
