using DaprTrain.Engine.Telemetry;
using DaprTrain.Engine.Messaging;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Dapr;

/// <summary>
/// A subscription route's handling of what daprd delivers (CloudEvents already unwrapped by UseCloudEvents):
/// chunks are put back together, whole messages go to the node, and the answer follows Dapr's contract:
/// SUCCESS for applied or known duplicates (and for chunks still waiting for the rest), DROP with a logged
/// reason for poison, RETRY only for transient trouble such as a node that is not ready yet.
/// </summary>
/// <param name="node">The receiving node's id: received bytes are recorded on the project's Meter under it.</param>
public sealed class MessageInbox(ILogger logger, int maxChunkBytes = ChunkCodec.DefaultMaxChunkBytes, string node = "")
{
    private readonly System.Diagnostics.TagList _tags = TrainingMetrics.Node(node);
    private readonly ChunkAssembler _assembler = new();
    private int _redelivered;

    /// <summary>Deliveries of chunks or messages this inbox had already taken (broker redeliveries and duplicates).</summary>
    public int Redelivered => _redelivered;

    public static IResult Answer(DeliveryStatus status) => Results.Json(new { status = status switch
    {
        DeliveryStatus.Success => "SUCCESS",
        DeliveryStatus.Retry => "RETRY",
        _ => "DROP",
    } });

    /// <param name="deliver">The node's handler, or null while the node is not ready (the delivery is then retried, untouched).</param>
    public async Task<IResult> HandleAsync(HttpRequest request, string route, Func<byte[], DeliveryResult>? deliver)
    {
        if (deliver is null) return Answer(DeliveryStatus.Retry);
        // The body is the decoded CloudEvent data (UseCloudEvents replaced it); Content-Length still describes the envelope.
        using var buffer = new MemoryStream();
        var block = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(block, request.HttpContext.RequestAborted)) > 0)
        {
            if (buffer.Length + read > maxChunkBytes)
            {
                logger.LogWarning("{Route}: dropped a delivery over the {Max}-byte chunk size", route, maxChunkBytes);
                return Answer(DeliveryStatus.Drop);
            }
            buffer.Write(block, 0, read);
        }
        var chunk = _assembler.Add(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        switch (chunk.Status)
        {
            case ChunkStatus.Rejected:
                logger.LogWarning("{Route}: dropped a poison delivery: {Reason}", route, chunk.Reason);
                return Answer(DeliveryStatus.Drop);
            case ChunkStatus.Duplicate:
                Interlocked.Increment(ref _redelivered);
                return Answer(DeliveryStatus.Success);
            case ChunkStatus.Incomplete:
                return Answer(DeliveryStatus.Success);
        }
        TrainingMetrics.BytesReceived.Add(chunk.Message!.Length, _tags);
        TrainingMetrics.MessagesReceived.Add(1, _tags);
        var delivered = deliver(chunk.Message!);
        if (delivered.Late)
        {
            // A gradient that arrives after its round closed (a peer's echo, a redelivery) is routine, not news.
            logger.LogDebug("{Route}: discarded a late message: {Reason}", route, delivered.Reason);
        }
        else if (delivered.Status == DeliveryStatus.Drop)
        {
            logger.LogWarning("{Route}: dropped a message: {Reason}", route, delivered.Reason);
            // A refusal may hold only for now (a sender no view names yet, when the node already holds apart as many
            // such senders as it may); the same bytes resent later must reach the node again, not count as a duplicate.
            _assembler.Forget(chunk.Message!);
        }
        return Answer(delivered.Status);
    }
}
