using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace DaprTrain.SidecarDouble;

public sealed record DeadLetter(string AppId, string Topic, string Reason);

/// <summary>
/// Pub/sub as daprd does it with the Redis component: one consumer group per app id (every app gets every
/// message of the topics it subscribes to), deliveries in order per subscription, at least once: SUCCESS (or an
/// empty 2xx) acknowledges, RETRY and any other non-2xx but 404 redeliver with backoff, DROP and 404 drop (to the
/// dead letters). An app that is down keeps its pending messages until it is back.
/// </summary>
public sealed class Broker(SharedComponents components, int seed) : IAsyncDisposable
{
    private readonly SharedComponents _components = components;
    public const int MaxAttempts = 200;
    private readonly ConcurrentDictionary<(string AppId, string PubSub, string Topic), Subscription> _subscriptions = new();
    private readonly ConcurrentQueue<DeadLetter> _deadLetters = new();
    private readonly Random _random = new(seed);
    private readonly CancellationTokenSource _stopping = new();

    public IReadOnlyCollection<DeadLetter> DeadLetters => _deadLetters;

    public long Delivered;

    /// <summary>Registers (or re-points, after an app restart) an app's subscription from its GET /dapr/subscribe.</summary>
    public void Subscribe(string appId, Uri app, string pubSub, string topic, string route)
    {
        var key = (appId, pubSub, topic);
        var subscription = _subscriptions.GetOrAdd(key, k => new Subscription(this, k.AppId, k.Topic, _stopping.Token));
        subscription.Target = new Uri(app, route.TrimStart('/'));
    }

    /// <summary>An app's subscriptions: pub/sub name, topic, route.</summary>
    public IReadOnlyList<(string PubSub, string Topic, string Route)> SubscriptionsOf(string appId) =>
        [.. _subscriptions.Where(s => s.Key.AppId == appId).Select(s => (s.Key.PubSub, s.Key.Topic, s.Value.Target?.AbsolutePath ?? ""))];

    public void Publish(string sourceAppId, string pubSub, string topic, byte[] data, string contentType)
    {
        foreach (var ((_, subscribedPubSub, subscribedTopic), subscription) in _subscriptions)
        {
            if (subscribedPubSub != pubSub || subscribedTopic != topic) continue;
            string envelope = Envelope(sourceAppId, pubSub, topic, data, contentType);
            subscription.Queue.Writer.TryWrite(envelope);
            bool duplicate;
            lock (_random) duplicate = _random.NextDouble() < _components.Faults.DuplicateProbability;
            if (duplicate) subscription.Queue.Writer.TryWrite(envelope);
        }
    }

    /// <summary>The CloudEvent daprd POSTs: binary data as data_base64, JSON as data.</summary>
    public static string Envelope(string source, string pubSub, string topic, byte[] data, string contentType)
    {
        var envelope = new Dictionary<string, object?>
        {
            ["id"] = Guid.NewGuid().ToString(),
            ["specversion"] = "1.0",
            ["source"] = source,
            ["type"] = "com.dapr.event.sent",
            ["topic"] = topic,
            ["pubsubname"] = pubSub,
            ["datacontenttype"] = contentType,
            ["traceid"] = "00-00000000000000000000000000000000-0000000000000000-00",
            ["traceparent"] = "00-00000000000000000000000000000000-0000000000000000-00",
            ["tracestate"] = "",
            ["time"] = DateTime.UtcNow.ToString("O"),
        };
        if (contentType.Contains("json", StringComparison.OrdinalIgnoreCase)) envelope["data"] = JsonSerializer.Deserialize<JsonElement>(data);
        else envelope["data_base64"] = Convert.ToBase64String(data);
        return JsonSerializer.Serialize(envelope);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _stopping.Dispose();
    }

    private sealed class Subscription
    {
        public Subscription(Broker broker, string appId, string topic, CancellationToken stopping)
        {
            _ = Task.Run(() => DeliverAsync(broker, appId, topic, stopping), CancellationToken.None);
        }

        public Channel<string> Queue { get; } = Channel.CreateUnbounded<string>();

        public Uri? Target { get; set; }

        private async Task DeliverAsync(Broker broker, string appId, string topic, CancellationToken stopping)
        {
            try
            {
                await foreach (var envelope in Queue.Reader.ReadAllAsync(stopping))
                {
                    if (broker._components.Faults.DeliveryDelay > TimeSpan.Zero) await Task.Delay(broker._components.Faults.DeliveryDelay, stopping);
                    for (int attempt = 1; ; attempt++)
                    {
                        string? verdict = broker._components.DownApps.ContainsKey(appId) ? null : await TryDeliverAsync(broker._components.Http, envelope, stopping);
                        if (verdict is "SUCCESS") { Interlocked.Increment(ref broker.Delivered); break; }
                        if (verdict is "DROP")
                        {
                            broker._deadLetters.Enqueue(new DeadLetter(appId, topic, "dropped by the app"));
                            break;
                        }
                        if (attempt >= MaxAttempts)
                        {
                            broker._deadLetters.Enqueue(new DeadLetter(appId, topic, $"gave up after {MaxAttempts} attempts"));
                            break;
                        }
                        await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(50 * attempt, 1000)), stopping);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        /// <summary>SUCCESS, DROP, or null for "deliver again".</summary>
        private async Task<string?> TryDeliverAsync(HttpClient http, string envelope, CancellationToken stopping)
        {
            if (Target is null) return null;
            try
            {
                using var content = new StringContent(envelope, Encoding.UTF8, "application/cloudevents+json");
                using var response = await http.PostAsync(Target, content, stopping);
                if (response.StatusCode == System.Net.HttpStatusCode.NotFound) return "DROP";
                if (!response.IsSuccessStatusCode) return null;
                string body = await response.Content.ReadAsStringAsync(stopping);
                if (string.IsNullOrWhiteSpace(body)) return "SUCCESS";
                using var json = JsonDocument.Parse(body);
                return json.RootElement.TryGetProperty("status", out var status) ? status.GetString()?.ToUpperInvariant() switch
                {
                    "RETRY" => null,
                    "DROP" => "DROP",
                    _ => "SUCCESS",
                } : "SUCCESS";
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException && !stopping.IsCancellationRequested)
            {
                return null;
            }
        }
    }
}
