using System.Buffers;
using System.Diagnostics;
using DaprTrain.Engine.Telemetry;
using DaprTrain.Engine.Messaging;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Dapr;

/// <summary>
/// A subscription route's handling of what daprd delivers: the CloudEvent is read from the raw body (bounded by a chunk's
/// envelope; see <see cref="CloudEventData"/>), chunks are put back together, whole messages go to the node, and the
/// answer follows Dapr's contract: SUCCESS for applied or known duplicates, for late messages (their round is over) and
/// for chunks still waiting for the rest,
/// DROP with a logged reason for poison (whatever is wrong with it: envelope, base64, size, framing, content), RETRY only
/// for transient trouble such as a node that is not ready yet. No input makes it answer 500, which daprd would retry.
/// </summary>
/// <param name="node">The receiving node's id: received bytes are recorded on the project's Meter under it.</param>
/// <param name="round">The node's current round, for expiring incomplete messages whose round has passed (null: never by round).</param>
/// <param name="phases">When set, each delivery's handling is recorded off the round's path (issue 16): "receive" for the
/// whole delivery (body, CloudEvent, base64, chunk), "decode" for the node's part of a whole message (checks, signature, hold).</param>
/// <param name="maxMessageBytes">The largest message taken, and the bytes of incomplete messages held at most (a topic of small messages sets it low).</param>
public sealed class MessageInbox(ILogger logger, int maxChunkBytes = ChunkCodec.DefaultMaxChunkBytes, string node = "", Func<long>? round = null, RoundPhases? phases = null,
    long maxMessageBytes = ChunkAssembler.DefaultMaxPendingBytes)
{
    private readonly System.Diagnostics.TagList _tags = TrainingMetrics.Node(node);
    private readonly ChunkAssembler _assembler = new(maxMessageBytes);
    private readonly int _maxBodyBytes = CloudEventData.MaxBodyBytes(maxChunkBytes);
    private int _redelivered;
    private long _dropped;

    /// <summary>Deliveries of chunks or messages this inbox had already taken (broker redeliveries and duplicates).</summary>
    public int Redelivered => _redelivered;

    private long _bytesReceived;

    /// <summary>Bytes of the whole messages this inbox delivered to its node (the progress events' bytes per round).</summary>
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    /// <summary>Deliveries answered DROP (poison of any kind, and messages the node refused).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Incomplete messages held, and incomplete messages given up (their round passed, or over the budget).</summary>
    public (int Pending, long Expired, long Evicted) Reassembly => (_assembler.PendingMessages, _assembler.Expired, _assembler.Evicted);

    public static IResult Answer(DeliveryStatus status) => Results.Json(new { status = status switch
    {
        DeliveryStatus.Success => "SUCCESS",
        DeliveryStatus.Retry => "RETRY",
        _ => "DROP",
    } });

    /// <param name="deliver">The node's handler, or null while the node is not ready (the delivery is then retried, untouched).</param>
    public async Task<IResult> HandleAsync(HttpRequest request, string route, Func<byte[], DeliveryResult>? deliver)
    {
        if (phases is null) return await HandleCoreAsync(request, route, deliver);
        long started = Stopwatch.GetTimestamp();
        try
        {
            return await HandleCoreAsync(request, route, deliver is null ? null : payload =>
            {
                long decoding = Stopwatch.GetTimestamp();
                try
                {
                    return deliver(payload);
                }
                finally
                {
                    phases.RecordOffPath("decode " + route, Stopwatch.GetElapsedTime(decoding).TotalMilliseconds);
                }
            });
        }
        finally
        {
            phases.RecordOffPath("receive " + route, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    private async Task<IResult> HandleCoreAsync(HttpRequest request, string route, Func<byte[], DeliveryResult>? deliver)
    {
        byte[]? chunk;
        string? problem;
        string? traceParent;
        string? eventId = null;
        var body = await ReadBodyAsync(request);
        if (body is not { } read) return Drop(route, null, $"delivery over {_maxBodyBytes} bytes (a chunk's envelope at most)");
        try
        {
            chunk = CloudEventData.Read(read.AsSpan(), request.ContentType, maxChunkBytes, out problem, out traceParent, out eventId);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(read.Array!);
        }
        if (chunk is null) return Drop(route, eventId, problem!);
        if (deliver is null)
        {
            // Poison is dropped even before the node is ready; a sound chunk waits (untouched) until it is. Checked only
            // here: once the node is ready, Add checks the framing itself, and a chunk is not hashed twice.
            return ChunkAssembler.Check(chunk) is { } framing ? Drop(route, eventId, framing) : Answer(DeliveryStatus.Retry);
        }

        var assembled = _assembler.Add(chunk, round?.Invoke() ?? 0);
        switch (assembled.Status)
        {
            case ChunkStatus.Rejected:
                return Drop(route, eventId, assembled.Reason!);
            case ChunkStatus.Duplicate:
                Interlocked.Increment(ref _redelivered);
                return Answer(DeliveryStatus.Success);
            case ChunkStatus.Incomplete:
                return Answer(DeliveryStatus.Success);
        }
        // The delivery joins the publisher's trace (the traceparent daprd put in the CloudEvent of this, its last, chunk),
        // so a round's messages and their deliveries form one trace across the services.
        ActivityContext.TryParse(traceParent, null, isRemote: true, out var publisher);
        using var span = TrainingMetrics.Tracing.StartActivity("deliver " + route, ActivityKind.Consumer, publisher);
        span?.SetTag("daprtrain.node", node);
        span?.SetTag("messaging.message.body.size", assembled.Message!.Length);
        TrainingMetrics.BytesReceived.Add(assembled.Message!.Length, _tags);
        Interlocked.Add(ref _bytesReceived, assembled.Message!.Length);
        TrainingMetrics.MessagesReceived.Add(1, _tags);
        var delivered = deliver(assembled.Message!);
        if (delivered.Late)
        {
            // A gradient that arrives after its round closed (a peer's echo, a redelivery) is routine, not news: it is
            // acknowledged, not dropped, so that the dead-letter topic holds only what was refused.
            logger.LogDebug("{Route}: discarded a late message: {Reason}", route, delivered.Reason);
            return Answer(DeliveryStatus.Success);
        }
        if (delivered.Status == DeliveryStatus.Drop)
        {
            Interlocked.Increment(ref _dropped);
            logger.LogWarning("{Route}: dropped a message {EventId}: {Reason}", route, eventId ?? "(no id)", delivered.Reason);
        }
        if (delivered.Status != DeliveryStatus.Success)
        {
            // Whatever the node did not take must reach it again when the same bytes come back, not count as a duplicate:
            // a refusal may hold only for now (a sender no view names yet, when the node already holds apart as many such
            // senders as it may), and a RETRY asks for the message later (a p2p-scatter worker before its first view, a
            // worker waiting for the view of a new server generation). Left marked complete, a retried message was taken
            // for a duplicate and lost, and the round went on without its sender (a test of p2p-scatter against p2p caught
            // it once, in CI under load).
            _assembler.Forget(assembled.Message!);
        }
        return Answer(delivered.Status);
    }

    /// <param name="eventId">The CloudEvent's id, which its dead letter keeps (GET /dead-letters on the coordinator).</param>
    private IResult Drop(string route, string? eventId, string reason)
    {
        Interlocked.Increment(ref _dropped);
        logger.LogWarning("{Route}: dropped a poison delivery {EventId}: {Reason}", route, eventId ?? "(no id)", reason);
        return Answer(DeliveryStatus.Drop);
    }

    /// <summary>
    /// Reads the rest of an oversized body into a small buffer and forgets it, so the sender gets the DROP answer: an
    /// unread body makes Kestrel reset the connection, which daprd takes for a failed delivery (and retries). Kestrel's
    /// own request size limit (30 MB by default) bounds what is read; nothing of it is kept.
    /// </summary>
    private static async Task DiscardAsync(HttpRequest request)
    {
        var block = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (await request.Body.ReadAsync(block, request.HttpContext.RequestAborted) > 0)
            {
            }
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException)
        {
            // Over Kestrel's limit: the connection is closed by Kestrel, nothing more to read.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(block);
        }
    }

    /// <summary>
    /// The raw body in a pooled buffer (the caller returns it), or null when it is longer than any chunk's envelope can
    /// be (reading stops there). Pooled because deliveries come thousands a second under attack, and per-request buffers
    /// would grow the heap the worker keeps.
    /// </summary>
    private async Task<ArraySegment<byte>?> ReadBodyAsync(HttpRequest request)
    {
        if (request.ContentLength > _maxBodyBytes)
        {
            await DiscardAsync(request);
            return null;
        }
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(request.ContentLength ?? 64 * 1024, _maxBodyBytes) + 1);
        int length = 0;
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(buffer.AsMemory(length), request.HttpContext.RequestAborted)) > 0)
            {
                length += read;
                if (length > _maxBodyBytes)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    await DiscardAsync(request);
                    return null;
                }
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _maxBodyBytes + 1));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }
            return new ArraySegment<byte>(buffer, 0, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}
