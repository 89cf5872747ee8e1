using System.Buffers;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Dapr.Hosting;

/// <summary>
/// One message daprd sent to the dead-letter topic: the CloudEvent's own fields, as the publisher's sidecar wrote them.
/// daprd republishes the delivered event unchanged (dapr/dapr <c>pkg/runtime/subscription</c>, <c>sendToDeadLetter</c>
/// with the event's bytes as data), so <see cref="Topic"/> is the topic it was first published on and
/// <see cref="Source"/> the publishing app. The reason it was refused is not in the event: the subscriber that answered
/// DROP logged it under the same <see cref="Id"/>.
/// </summary>
public sealed record DeadLetter(DateTimeOffset Received, string Id, string Topic, string Source, string PubSub, string ContentType, int Bytes, string? Problem);

/// <summary>
/// Counts and keeps (the newest <see cref="Capacity"/>) what lands on the dead-letter topic, so a user can see what the
/// subscribers dropped, once per event (by its CloudEvent id; each subscriber that drops an event sends it there): <c>GET /dead-letters</c> on the app that hosts it (the coordinator). What it keeps is bounded
/// whatever arrives: fields are cut to <see cref="MaxFieldLength"/> characters, the count per (topic, source) to
/// <see cref="MaxGroups"/> groups, bodies are read up to <see cref="MaxBodyBytes"/> and never stored.
/// </summary>
public sealed class DeadLetterLedger(ILogger<DeadLetterLedger> logger, TimeProvider time)
{
    public const int Capacity = 64;
    public const int MaxFieldLength = 128;
    public const int MaxGroups = 256;

    /// <summary>daprd's default body limit (4 MiB) and a base64 chunk's envelope fit well under it.</summary>
    public const int MaxBodyBytes = 8 << 20;

    private static readonly Meter Meter = new("DaprTrain", "1.0");
    private static readonly Counter<long> Counted = Meter.CreateCounter<long>("daprtrain.dead_letters", "{message}", "Messages a subscriber dropped that reached the dead-letter topic");

    private readonly Lock _gate = new();
    private readonly Queue<DeadLetter> _recent = new();
    private readonly Dictionary<(string Topic, string Source), long> _groups = new();
    private readonly HashSet<string> _seenIds = new(StringComparer.Ordinal);
    private readonly Queue<string> _seenOrder = new();
    private long _total;
    private long _deliveries;

    /// <summary>Ids remembered to tell a dead letter delivered again (or dropped by several subscribers) from a new one.</summary>
    public const int RememberedIds = 4096;

    /// <summary>Distinct dead letters: one per CloudEvent id (an event without an id counts each time).</summary>
    public long Total
    {
        get { lock (_gate) return _total; }
    }

    /// <summary>Deliveries from the dead-letter topic: every subscriber that dropped an event sends it there, and daprd may deliver it more than once.</summary>
    public long Deliveries
    {
        get { lock (_gate) return _deliveries; }
    }

    /// <summary>Records one delivery from the dead-letter topic; never refuses one (a refused dead letter would only come back).</summary>
    public DeadLetter Record(ReadOnlySpan<byte> body, string? contentType) => Add(Describe(body, contentType, time.GetUtcNow()));

    private DeadLetter Add(DeadLetter letter)
    {
        (string Topic, string Source) counted;
        lock (_gate)
        {
            _deliveries++;
            if (letter.Id.Length > 0)
            {
                if (!_seenIds.Add(letter.Id)) return letter;
                _seenOrder.Enqueue(letter.Id);
                if (_seenOrder.Count > RememberedIds) _seenIds.Remove(_seenOrder.Dequeue());
            }
            _total++;
            var group = (letter.Topic, letter.Source);
            // The metric's labels are the ledger's groups: bounded too, whatever topics and sources the letters claim.
            counted = _groups.ContainsKey(group) || _groups.Count < MaxGroups ? group : ("(other)", "(other)");
            _groups[counted] = _groups.GetValueOrDefault(counted) + 1;
            _recent.Enqueue(letter);
            if (_recent.Count > Capacity) _recent.Dequeue();
        }
        Counted.Add(1, new KeyValuePair<string, object?>("topic", counted.Topic), new KeyValuePair<string, object?>("source", counted.Source));
        logger.LogWarning("dead letter {Id} from {Source} on {Topic} ({Bytes} bytes){Problem}: the subscriber that dropped it logged why under the same id",
            letter.Id, letter.Source, letter.Topic, letter.Bytes, letter.Problem is null ? "" : "; " + letter.Problem);
        return letter;
    }

    /// <summary>What <c>GET /dead-letters</c> answers: the total, the counts per topic and publisher, the newest first.</summary>
    public object Snapshot()
    {
        lock (_gate)
        {
            return new
            {
                total = _total,
                deliveries = _deliveries,
                byTopicAndSource = _groups.OrderByDescending(g => g.Value).ThenBy(g => g.Key.Topic, StringComparer.Ordinal).ThenBy(g => g.Key.Source, StringComparer.Ordinal)
                    .Select(g => new { topic = g.Key.Topic, source = g.Key.Source, count = g.Value }).ToArray(),
                recent = _recent.Reverse().ToArray(),
            };
        }
    }

    /// <summary>The CloudEvent's fields, or what is wrong with the envelope (a dead letter may be any bytes a publisher sent).</summary>
    public static DeadLetter Describe(ReadOnlySpan<byte> body, string? contentType, DateTimeOffset received)
    {
        string id = "", topic = "", source = "", pubSub = "", dataType = Cut(contentType ?? "");
        string? problem = null;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 16 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) problem = "not a CloudEvent (not a JSON object)";
            else
            {
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    string? field = reader.ValueTextEquals("id"u8) ? "id"
                        : reader.ValueTextEquals("topic"u8) ? "topic"
                        : reader.ValueTextEquals("source"u8) ? "source"
                        : reader.ValueTextEquals("pubsubname"u8) ? "pubsubname"
                        : reader.ValueTextEquals("datacontenttype"u8) ? "datacontenttype"
                        : null;
                    reader.Read();
                    if (field is null || reader.TokenType != JsonTokenType.String || reader.ValueSpan.Length > 4 * MaxFieldLength)
                    {
                        reader.Skip();
                        continue;
                    }
                    string value = Cut(reader.GetString()!);
                    switch (field)
                    {
                        case "id": id = value; break;
                        case "topic": topic = value; break;
                        case "source": source = value; break;
                        case "pubsubname": pubSub = value; break;
                        default: dataType = value; break;
                    }
                }
            }
        }
        catch (JsonException ex)
        {
            problem = $"not a CloudEvent ({ex.Message.Split('.')[0]})";
        }
        catch (InvalidOperationException)
        {
            // Utf8JsonReader.GetString throws this for a string that is not valid UTF-8.
            problem = "not a CloudEvent (a string that is not valid UTF-8)";
        }
        return new DeadLetter(received, id, topic.Length == 0 ? "(unknown)" : topic, source.Length == 0 ? "(unknown)" : source, pubSub, dataType, body.Length, problem);
    }

    private static string Cut(string value)
    {
        var printable = new string(value.Select(c => char.IsControl(c) ? '?' : c).Take(MaxFieldLength).ToArray());
        return value.Length > MaxFieldLength ? printable + "..." : printable;
    }

    /// <summary>Reads a body of at most <see cref="MaxBodyBytes"/> into a pooled buffer; a longer one is counted by its length only.</summary>
    internal async Task<DeadLetter> RecordAsync(HttpRequest request)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        int length = 0;
        bool over = false;
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(buffer.AsMemory(length), request.HttpContext.RequestAborted)) > 0)
            {
                length += read;
                if (length == buffer.Length)
                {
                    if (buffer.Length >= MaxBodyBytes)
                    {
                        over = true;
                        break;
                    }
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, MaxBodyBytes));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }
            if (over)
            {
                long total = length;
                while ((read = await request.Body.ReadAsync(buffer, request.HttpContext.RequestAborted)) > 0) total += read;
                return Add(new DeadLetter(time.GetUtcNow(), "", "(unknown)", "(unknown)", "", Cut(request.ContentType ?? ""), (int)Math.Min(total, int.MaxValue),
                    $"a body of {total} bytes, over {MaxBodyBytes}: not read"));
            }
            return Record(buffer.AsSpan(0, length), request.ContentType);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

public static class DeadLetterEndpoints
{
    public const string Route = "/dead-letters";

    /// <summary>
    /// POST /dead-letters (the subscription to <paramref name="topic"/>, always answered SUCCESS: a dead letter refused
    /// would be redelivered or lost, never improved) and GET /dead-letters (what has landed there).
    /// </summary>
    public static IEndpointRouteBuilder MapDeadLetters(this IEndpointRouteBuilder endpoints, string pubSub, string topic)
    {
        endpoints.MapPost(Route, async (HttpRequest request, DeadLetterLedger ledger) =>
        {
            await ledger.RecordAsync(request);
            return Results.Json(new { status = "SUCCESS" });
        }).WithTopic(pubSub, topic);
        endpoints.MapGet(Route, (DeadLetterLedger ledger) => Results.Json(ledger.Snapshot(), new JsonSerializerOptions(JsonSerializerDefaults.Web)));
        return endpoints;
    }
}
