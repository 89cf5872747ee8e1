using Dapr.Client;
using DaprTrain.Contracts;
using DaprTrain.Engine.Telemetry;

namespace DaprTrain.Dapr;

/// <summary>Publishes engine messages as binary CloudEvents (application/octet-stream, data_base64 on the wire), chunked below the size limit.</summary>
/// <param name="phases">When set, chunking is timed as the round's encode phase and the publish calls as its publish phase (issue 16).</param>
public sealed class DaprMessagePublisher(DaprClient dapr, string pubSubName = DaprComponents.PubSub, int maxChunkBytes = ChunkCodec.DefaultMaxChunkBytes, RoundPhases? phases = null) : DaprTrain.Engine.Messaging.IMessagePublisher
{
    public const string ContentType = "application/octet-stream";

    public async Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<byte[]> chunks;
        using (phases?.Time(RoundPhase.Encode, "chunks")) chunks = ChunkCodec.Split(message, maxChunkBytes);
        using var _ = phases?.Time(RoundPhase.Publish);
        foreach (var chunk in chunks)
        {
            await dapr.PublishByteEventAsync(pubSubName, topic, chunk, ContentType, cancellationToken: cancellationToken);
        }
    }
}
