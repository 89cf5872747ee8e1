using Dapr.Client;
using DaprTrain.Contracts;

namespace DaprTrain.Dapr;

/// <summary>Publishes engine messages as binary CloudEvents (application/octet-stream, data_base64 on the wire), chunked below the size limit.</summary>
public sealed class DaprMessagePublisher(DaprClient dapr, string pubSubName = DaprComponents.PubSub, int maxChunkBytes = ChunkCodec.DefaultMaxChunkBytes) : DaprTrain.Engine.Messaging.IMessagePublisher
{
    public const string ContentType = "application/octet-stream";

    public async Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default)
    {
        foreach (var chunk in ChunkCodec.Split(message, maxChunkBytes))
        {
            await dapr.PublishByteEventAsync(pubSubName, topic, chunk, ContentType, cancellationToken: cancellationToken);
        }
    }
}
