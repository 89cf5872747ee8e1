using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace DaprTrain.SidecarDouble;

/// <summary>A message the sidecar sent to a subscription's declared dead-letter topic instead of its app.</summary>
public sealed record DeadLetter(string AppId, string Topic, string DeadLetterTopic, string Reason);

/// <summary>A message an app never took and that no dead-letter topic kept: dropped by the app, or a failed delivery acknowledged all the same.</summary>
public sealed record Undelivered(string AppId, string Topic, string Reason);

/// <summary>
/// Pub/sub as daprd does it over one broker component at one Dapr version (<see cref="DeliveryProfile"/>): one
/// consumer group per app id (every app gets every message of the topics it subscribes to), up to
/// <see cref="DeliveryProfile.Concurrency"/> deliveries of a subscription in flight at once (so out of order), the
/// app's answer read as daprd's HTTP postman reads it, and a failure retried by the profile's inbound Resiliency
/// policy, sent to the subscription's dead-letter topic when it declares one, else left to the component: lost
/// (Redis 1.17+), reclaimed after processingTimeout (Redis 1.16), retried without end (Kafka). An app whose sidecar
/// is down keeps its messages until the sidecar is back (nothing consumes them meanwhile).
/// </summary>
public sealed class Broker(SharedComponents components, int seed) : IAsyncDisposable
{
    private readonly SharedComponents _components = components;
    private readonly ConcurrentDictionary<(string AppId, string PubSub, string Topic), Subscription> _subscriptions = new();
    private readonly ConcurrentQueue<DeadLetter> _deadLetters = new();
    private readonly ConcurrentQueue<Undelivered> _undelivered = new();
    private readonly Random _random = new(seed);
    private readonly CancellationTokenSource _stopping = new();
    private long _delivered;
    private long _attempts;

    private DeliveryProfile Profile => _components.Delivery;

    /// <summary>Messages sent to a declared dead-letter topic (and delivered to that topic's subscribers).</summary>
    public IReadOnlyCollection<DeadLetter> DeadLetters => _deadLetters;

    /// <summary>Messages gone without a dead-letter topic: DROPped, or failed and acknowledged (Redis 1.17+).</summary>
    public IReadOnlyCollection<Undelivered> Undelivered => _undelivered;

    /// <summary>Deliveries the apps acknowledged.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>HTTP deliveries attempted, retries and redeliveries included.</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    private readonly ConcurrentDictionary<string, long> _publishedByTopic = new(StringComparer.Ordinal);

    /// <summary>Messages published to <paramref name="topic"/> (of any pub/sub component), whether or not anyone subscribes.</summary>
    public long Published(string topic) => _publishedByTopic.GetValueOrDefault(topic);

    /// <summary>Raised after each message leaves a subscription for good (acknowledged, dead-lettered or gone), for tests that wait on it.</summary>
    public event Action? Settled;

    /// <summary>Registers (or re-points, after an app restart) an app's subscription from its GET /dapr/subscribe.</summary>
    public void Subscribe(string appId, Uri app, string pubSub, string topic, string route, string? deadLetterTopic = null)
    {
        var key = (appId, pubSub, topic);
        var subscription = _subscriptions.GetOrAdd(key, k => new Subscription(this, k.AppId, k.PubSub, k.Topic, _stopping.Token));
        subscription.Target = new Uri(app, route.TrimStart('/'));
        subscription.DeadLetterTopic = string.IsNullOrEmpty(deadLetterTopic) ? null : deadLetterTopic;
    }

    /// <summary>An app's subscriptions: pub/sub name, topic, route.</summary>
    public IReadOnlyList<(string PubSub, string Topic, string Route)> SubscriptionsOf(string appId) =>
        [.. _subscriptions.Where(s => s.Key.AppId == appId).Select(s => (s.Key.PubSub, s.Key.Topic, s.Value.Target?.AbsolutePath ?? ""))];

    /// <summary>The dead-letter topic an app's subscription declared, or null.</summary>
    public string? DeadLetterTopicOf(string appId, string pubSub, string topic) =>
        _subscriptions.TryGetValue((appId, pubSub, topic), out var subscription) ? subscription.DeadLetterTopic : null;

    /// <param name="received">When the sidecar took the publish call (a Stopwatch timestamp), so its own copying counts as receiving too.</param>
    public void Publish(string sourceAppId, string pubSub, string topic, ReadOnlySpan<byte> data, string contentType, long? received = null)
    {
        long started = received ?? System.Diagnostics.Stopwatch.GetTimestamp();
        _publishedByTopic.AddOrUpdate(topic, 1, (_, count) => count + 1);
        byte[] envelope = EnvelopeUtf8(sourceAppId, pubSub, topic, data, contentType);
        _components.Timings.Since("publish receive", started);
        long fanning = System.Diagnostics.Stopwatch.GetTimestamp();
        Enqueue(pubSub, topic, envelope);
        _components.Timings.Since("publish fan-out", fanning);
    }

    /// <summary>Puts one CloudEvent in the queue of every subscription of the topic (one consumer group per app id).</summary>
    private void Enqueue(string pubSub, string topic, byte[] envelope)
    {
        foreach (var ((_, subscribedPubSub, subscribedTopic), subscription) in _subscriptions)
        {
            if (subscribedPubSub != pubSub || subscribedTopic != topic) continue;
            subscription.Queue.Writer.TryWrite(new Queued(envelope, System.Diagnostics.Stopwatch.GetTimestamp()));
            bool duplicate;
            lock (_random) duplicate = _random.NextDouble() < _components.Faults.DuplicateProbability;
            if (duplicate) subscription.Queue.Writer.TryWrite(new Queued(envelope, System.Diagnostics.Stopwatch.GetTimestamp()));
        }
    }

    /// <summary>The CloudEvent daprd POSTs, as text: binary data as data_base64, JSON as data.</summary>
    public static string Envelope(string source, string pubSub, string topic, byte[] data, string contentType) =>
        Encoding.UTF8.GetString(EnvelopeUtf8(source, pubSub, topic, data, contentType));

    /// <summary>
    /// The CloudEvent daprd POSTs, in UTF-8 as it goes on the wire, written once and shared by every subscription's deliveries
    /// (issue 16: made as a dictionary serialised to a .NET string, then transcoded again for each delivery, it was a quarter
    /// of the double's CPU in a round). The base64 is written unescaped, as Go's encoding/json writes it ('+' and '/' included).
    /// </summary>
    public static byte[] EnvelopeUtf8(string source, string pubSub, string topic, ReadOnlySpan<byte> data, string contentType)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(System.Buffers.Text.Base64.GetMaxEncodedToUtf8Length(data.Length) + 1024);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteString("id", Guid.NewGuid().ToString());
            json.WriteString("specversion", "1.0");
            json.WriteString("source", source);
            json.WriteString("type", "com.dapr.event.sent");
            json.WriteString("topic", topic);
            json.WriteString("pubsubname", pubSub);
            json.WriteString("datacontenttype", contentType);
            json.WriteString("traceid", "00-00000000000000000000000000000000-0000000000000000-00");
            json.WriteString("traceparent", "00-00000000000000000000000000000000-0000000000000000-00");
            json.WriteString("tracestate", "");
            json.WriteString("time", DateTime.UtcNow.ToString("O"));
            if (contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
            {
                json.WritePropertyName("data");
                using var document = JsonDocument.Parse(data.ToArray());
                document.RootElement.WriteTo(json);
            }
            else
            {
                json.WriteBase64String("data_base64", data);
            }
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>What one delivery attempt came to, as daprd's HTTP postman reads the app's answer.</summary>
    internal enum Verdict
    {
        Success,
        Drop,
        Retry,
    }

    /// <summary>
    /// daprd's reading of the app's answer (dapr/dapr pkg/runtime/subscription/postman/http/http.go, v1.16-v1.18): a 2xx
    /// whose body is empty or is no JSON object with a string status succeeds; status "" and "SUCCESS" succeed,
    /// "RETRY" retries, "DROP" drops, and any other status, "success" included (the comparison is case-sensitive), is
    /// retried; 404 drops from 1.17 (on 1.16 it is acknowledged as a success); any other status code retries.
    /// </summary>
    internal static Verdict Read(HttpStatusCode code, string body, bool notFoundIsDropped)
    {
        int status = (int)code;
        if (status == 404) return notFoundIsDropped ? Verdict.Drop : Verdict.Success;
        if (status is < 200 or > 299) return Verdict.Retry;
        string? answer;
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.ValueKind != JsonValueKind.Object) return Verdict.Success;
            // Go's encoding/json matches the key case-insensitively, the value not at all.
            var field = json.RootElement.EnumerateObject().FirstOrDefault(p => p.Name.Equals("status", StringComparison.OrdinalIgnoreCase));
            if (field.Value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return Verdict.Success;
            if (field.Value.ValueKind != JsonValueKind.String) return Verdict.Success;
            answer = field.Value.GetString();
        }
        catch (JsonException)
        {
            return Verdict.Success;
        }
        return answer switch
        {
            "" or "SUCCESS" => Verdict.Success,
            "DROP" => Verdict.Drop,
            _ => Verdict.Retry,
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _stopping.Dispose();
    }

    /// <summary>What daprd sends a CloudEvent as (a StringContent's header, as before the envelope was kept in UTF-8). Never changed after this.</summary>
    private static readonly System.Net.Http.Headers.MediaTypeHeaderValue CloudEventContentType = new("application/cloudevents+json") { CharSet = "utf-8" };

    /// <summary>A CloudEvent in a subscription's queue, and when it was put there.</summary>
    private readonly record struct Queued(byte[] Envelope, long Since);

    private sealed class Subscription
    {
        private readonly Broker _broker;
        private readonly string _appId;
        private readonly string _pubSub;
        private readonly string _topic;
        private readonly CancellationToken _stopping;

        public Subscription(Broker broker, string appId, string pubSub, string topic, CancellationToken stopping)
        {
            _broker = broker;
            _appId = appId;
            _pubSub = pubSub;
            _topic = topic;
            _stopping = stopping;
            // As pubsub.redis: `concurrency` workers take messages from one queue, so deliveries overlap and finish out of order.
            for (int i = 0; i < Math.Max(1, broker.Profile.Concurrency); i++) _ = Task.Run(WorkAsync, CancellationToken.None);
        }

        public Channel<Queued> Queue { get; } = Channel.CreateUnbounded<Queued>();

        public Uri? Target { get; set; }

        public string? DeadLetterTopic { get; set; }

        private async Task WorkAsync()
        {
            try
            {
                await foreach (var (envelope, since) in Queue.Reader.ReadAllAsync(_stopping))
                {
                    _broker._components.Timings.Since("delivery queued", since);
                    var delay = _broker._components.Faults.DeliveryDelay;
                    if (delay > TimeSpan.Zero) await Task.Delay(delay, _stopping);
                    if (await HandleAsync(envelope)) _broker.Settled?.Invoke();
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        /// <summary>One message through daprd's subscription handler, then the component's treatment of its outcome; false when it is to come back (reclaimed later).</summary>
        private async Task<bool> HandleAsync(byte[] envelope)
        {
            var profile = _broker.Profile;
            while (true)
            {
                var (verdict, reason) = await RunPolicyAsync(envelope, profile);
                if (verdict == Verdict.Success)
                {
                    Interlocked.Increment(ref _broker._delivered);
                    return true;
                }
                // A DROP, or a failure once the policy is spent, goes to the dead-letter topic when the subscription
                // declares one (dapr/dapr pkg/runtime/subscription/subscription.go); otherwise a DROP is acknowledged
                // and a failure goes back to the component.
                if (DeadLetterTopic is { } deadLetterTopic)
                {
                    _broker._deadLetters.Enqueue(new DeadLetter(_appId, _topic, deadLetterTopic, reason));
                    _broker.Enqueue(_pubSub, deadLetterTopic, envelope);
                    return true;
                }
                if (verdict == Verdict.Drop)
                {
                    _broker._undelivered.Enqueue(new Undelivered(_appId, _topic, reason));
                    return true;
                }
                switch (profile.AfterFailure)
                {
                    case AfterFailedDelivery.Lost:
                        _broker._undelivered.Enqueue(new Undelivered(_appId, _topic, $"{reason}; acknowledged all the same ({profile.Name}: no redelivery)"));
                        return true;
                    case AfterFailedDelivery.ReclaimedAfterProcessingTimeout:
                        // Left pending; this worker goes on with other messages, and the reclaim loop hands it out again.
                        _ = ReclaimAsync(envelope, profile.ProcessingTimeout);
                        return false;
                    default:
                        // Kafka: the same message again after the back-off, the partition (this subscription) waiting.
                        await Task.Delay(profile.ProcessingTimeout, _stopping);
                        break;
                }
            }
        }

        private async Task ReclaimAsync(byte[] envelope, TimeSpan processingTimeout)
        {
            try
            {
                await Task.Delay(processingTimeout, _stopping);
                Queue.Writer.TryWrite(new Queued(envelope, System.Diagnostics.Stopwatch.GetTimestamp()));
            }
            catch (OperationCanceledException)
            {
            }
        }

        /// <summary>The attempt and, under an inbound retry policy, its retries (constant back-off) while the app asks for them.</summary>
        private async Task<(Verdict Verdict, string Reason)> RunPolicyAsync(byte[] envelope, DeliveryProfile profile)
        {
            for (int retries = 0; ; retries++)
            {
                var (verdict, reason) = await AttemptAsync(envelope, profile);
                if (verdict != Verdict.Retry) return (verdict, reason);
                if (profile.Retry is not { } retry || (retry.MaxRetries >= 0 && retries >= retry.MaxRetries))
                {
                    return (verdict, profile.Retry is null ? reason : $"{reason} (after {retries} retries)");
                }
                await Task.Delay(retry.Interval, _stopping);
            }
        }

        private async Task<(Verdict Verdict, string Reason)> AttemptAsync(byte[] envelope, DeliveryProfile profile)
        {
            // A sidecar that is down consumes nothing: the message waits in the stream, it is no failed delivery.
            while (_broker._components.DownApps.ContainsKey(_appId)) await Task.Delay(50, _stopping);
            if (Target is not { } target) return (Verdict.Retry, "no route");
            Interlocked.Increment(ref _broker._attempts);
            long posting = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                using var content = new ByteArrayContent(envelope);
                content.Headers.ContentType = CloudEventContentType;
                using var response = await _broker._components.Http.PostAsync(target, content, _stopping);
                string body = await response.Content.ReadAsStringAsync(_stopping);
                var verdict = Read(response.StatusCode, body, profile.NotFoundIsDropped);
                _broker._components.Timings.Since("delivery post", posting);
                return (verdict, $"HTTP {(int)response.StatusCode} {Shorten(body)}");
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !_stopping.IsCancellationRequested)
            {
                return (Verdict.Retry, "app unreachable: " + ex.Message);
            }
        }

        private static string Shorten(string body) => body.Length <= 200 ? body : body[..200] + "...";
    }
}
