using System.Net.Http.Headers;
using Dapr.Client;
using DaprTrain.Contracts;
using DaprTrain.Engine.Telemetry;

namespace DaprTrain.Dapr;

/// <summary>
/// Publishes engine messages as binary CloudEvents (application/octet-stream, data_base64 on the wire), chunked below the
/// size limit, through the sidecar's HTTP publish API (Job:PublishApi "http", the default) or its gRPC one ("grpc").
/// daprd makes the same CloudEvent of either; over HTTP the chunk is the request body as it is, where the SDK's gRPC call
/// copies it into a protobuf message and sends it in HTTP/2 frames of 16 KB (issue 16: the publish phase of a round was
/// 0.3-1.3 ms shorter over HTTP, p2p and ps, 2 workers, over the sidecar double).
/// </summary>
/// <param name="phases">When set, chunking is timed as the round's encode phase and the publish calls as its publish phase (issue 16).</param>
/// <param name="sidecarHttp">The sidecar's HTTP API (<see cref="SidecarHttp.Create"/>); null publishes over gRPC with <paramref name="dapr"/>.</param>
public sealed class DaprMessagePublisher(DaprClient dapr, string pubSubName = DaprComponents.PubSub, int maxChunkBytes = ChunkCodec.DefaultMaxChunkBytes, RoundPhases? phases = null,
    HttpClient? sidecarHttp = null) : DaprTrain.Engine.Messaging.IMessagePublisher
{
    public const string ContentType = "application/octet-stream";

    private static readonly MediaTypeHeaderValue OctetStream = new(ContentType);

    public async Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<byte[]> chunks;
        using (phases?.Time(RoundPhase.Encode, "chunks")) chunks = ChunkCodec.Split(message, maxChunkBytes);
        using var _ = phases?.Time(RoundPhase.Publish);
        foreach (var chunk in chunks)
        {
            if (sidecarHttp is null) await dapr.PublishByteEventAsync(pubSubName, topic, chunk, ContentType, cancellationToken: cancellationToken);
            else await PublishOverHttpAsync(sidecarHttp, topic, chunk, cancellationToken);
        }
    }

    private async Task PublishOverHttpAsync(HttpClient http, string topic, byte[] chunk, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v1.0/publish/{Uri.EscapeDataString(pubSubName)}/{Uri.EscapeDataString(topic)}")
        {
            Content = new ByteArrayContent(chunk) { Headers = { ContentType = OctetStream } },
        };
        using var response = await SidecarHttp.SendAsync(http, request, $"publish to {pubSubName}/{topic}", cancellationToken);
    }
}
