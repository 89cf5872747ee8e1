using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Proto = Dapr.Client.Autogen.Grpc.v1;

namespace DaprTrain.SidecarDouble;

/// <summary>
/// The gRPC methods of dapr.proto.runtime.v1.Dapr that the services call: publish, get/save/delete state, state
/// transactions and metadata. Any other method answers Unimplemented (gRPC's default for an unbound method).
/// A <see cref="Sidecar"/> hosts one for its app; the adapter tests (tests/DaprTrain.Dapr.Tests) host one on a
/// TestServer with <see cref="DaprRuntimeServiceRegistration.AddDaprRuntimeService"/>.
/// </summary>
/// <param name="appId">The app this API belongs to: the source of its publications, the id GetMetadata reports.</param>
/// <param name="components">The state store, broker and placement it works on.</param>
/// <param name="appUrl">The app's base URL, to tell which actor types it hosts; null for no app.</param>
public sealed class DaprRuntimeService(string appId, SharedComponents components, Uri? appUrl = null)
{
    public const int MaxBodyBytes = 4 * 1024 * 1024;
    private const string Service = "dapr.proto.runtime.v1.Dapr";
    private readonly ConcurrentQueue<string> _calls = new();
    private readonly ConcurrentQueue<Proto.PublishEventRequest> _published = new();

    private SharedComponents Components => components;

    /// <summary>
    /// When true, <see cref="Calls"/> and <see cref="Published"/> record what clients asked, for tests that check
    /// the requests a client sends. Off by default: a training run would keep every gradient it published.
    /// </summary>
    public bool RecordCalls { get; init; }

    /// <summary>The method names called, in order (only with <see cref="RecordCalls"/>).</summary>
    public IReadOnlyCollection<string> Calls => _calls;

    /// <summary>Every publication accepted, in order (only with <see cref="RecordCalls"/>).</summary>
    public IReadOnlyCollection<Proto.PublishEventRequest> Published => _published;

    public Task<Google.Protobuf.WellKnownTypes.Empty> PublishEvent(Proto.PublishEventRequest request, ServerCallContext context)
    {
        long received = System.Diagnostics.Stopwatch.GetTimestamp();
        Record("PublishEvent");
        CheckSize(request);
        if (RecordCalls) _published.Enqueue(request);
        Components.Broker.Publish(appId, request.PubsubName, request.Topic, request.Data.Span,
            string.IsNullOrEmpty(request.DataContentType) ? "application/json" : request.DataContentType, received);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    /// <summary>
    /// daprd's HTTP publish, POST /v1.0/publish/{pubsubname}/{topic} (dapr/dapr pkg/http onPublish: the body, the
    /// Content-Type and the names go the way a gRPC PublishEvent's do, into the same CloudEvent): 204 once the broker took
    /// it, 404 for an empty pub/sub or topic name, 413 past the body limit (daprd's --max-body-size). Recorded as a
    /// PublishEvent, so that the tests that read what was published see both APIs alike.
    /// </summary>
    public async Task<Microsoft.AspNetCore.Http.IResult> PublishOverHttpAsync(string pubSub, string topic, Microsoft.AspNetCore.Http.HttpRequest request)
    {
        long received = System.Diagnostics.Stopwatch.GetTimestamp();
        Record("PublishEvent");
        if (string.IsNullOrEmpty(pubSub) || string.IsNullOrEmpty(topic))
        {
            return Microsoft.AspNetCore.Http.Results.Json(new { errorCode = "ERR_TOPIC_EMPTY", message = "pubsub and topic names are required" }, statusCode: 404);
        }
        if (request.ContentLength > MaxBodyBytes) return TooLarge(request.ContentLength.Value);
        byte[] data;
        if (request.ContentLength is long length)
        {
            data = new byte[length];
            await request.Body.ReadExactlyAsync(data);
        }
        else
        {
            // Chunked: read no more than one block past the limit, so that what a sender claims never decides what is held.
            using var buffer = new MemoryStream();
            var block = new byte[64 * 1024];
            int read;
            while ((read = await request.Body.ReadAsync(block)) > 0)
            {
                if (buffer.Length + read > MaxBodyBytes) return TooLarge(buffer.Length + read);
                buffer.Write(block, 0, read);
            }
            data = buffer.ToArray();
        }
        string contentType = string.IsNullOrEmpty(request.ContentType) ? "application/json" : request.ContentType;
        if (RecordCalls) _published.Enqueue(new Proto.PublishEventRequest { PubsubName = pubSub, Topic = topic, Data = ByteString.CopyFrom(data), DataContentType = contentType });
        Components.Broker.Publish(appId, pubSub, topic, data, contentType, received);
        return Microsoft.AspNetCore.Http.Results.NoContent();
    }

    private static Microsoft.AspNetCore.Http.IResult TooLarge(long size) =>
        Microsoft.AspNetCore.Http.Results.Json(new { errorCode = "ERR_BODY_TOO_LARGE", message = $"request of {size} bytes exceeds the {MaxBodyBytes}-byte body limit" }, statusCode: 413);

    public Task<Proto.GetStateResponse> GetState(Proto.GetStateRequest request, ServerCallContext context)
    {
        Record("GetState");
        var response = new Proto.GetStateResponse();
        if (Components.State.Get(StoreKey(request.StoreName, request.Key)) is { } item)
        {
            response.Data = ByteString.CopyFrom(item.Value);
            response.Etag = item.Etag;
        }
        return Task.FromResult(response);
    }

    public Task<Google.Protobuf.WellKnownTypes.Empty> SaveState(Proto.SaveStateRequest request, ServerCallContext context)
    {
        Record("SaveState");
        CheckSize(request);
        Apply([.. request.States.Select(s => (StoreKey(request.StoreName, s.Key), (byte[]?)s.Value.ToByteArray(), s.Etag?.Value))]);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public Task<Google.Protobuf.WellKnownTypes.Empty> DeleteState(Proto.DeleteStateRequest request, ServerCallContext context)
    {
        Record("DeleteState");
        Apply([(StoreKey(request.StoreName, request.Key), null, request.Etag?.Value)]);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public Task<Google.Protobuf.WellKnownTypes.Empty> ExecuteStateTransaction(Proto.ExecuteStateTransactionRequest request, ServerCallContext context)
    {
        Record("ExecuteStateTransaction");
        CheckSize(request);
        var operations = new List<(string, byte[]?, string?)>();
        foreach (var operation in request.Operations)
        {
            byte[]? value = operation.OperationType switch
            {
                "upsert" => operation.Request.Value.ToByteArray(),
                "delete" => null,
                _ => throw new RpcException(new Status(StatusCode.InvalidArgument, $"unsupported operation type {operation.OperationType}")),
            };
            operations.Add((StoreKey(request.StoreName, operation.Request.Key), value, operation.Request.Etag?.Value));
        }
        try
        {
            Components.State.Apply(operations);
        }
        catch (EtagMismatchException ex)
        {
            // daprd answers a failed transaction with Internal whatever the cause, an ETag mismatch included; only
            // SaveState and DeleteState map a mismatch to Aborted (dapr/dapr pkg/api/grpc/grpc.go, v1.16-v1.18).
            throw new RpcException(new Status(StatusCode.Internal, $"error while executing state transaction: {ex.Message}"));
        }
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    /// <summary>What daprd's metadata API tells about this sidecar: app id, components, subscriptions, actor types.</summary>
    public Task<Proto.GetMetadataResponse> GetMetadata(Proto.GetMetadataRequest request, ServerCallContext context)
    {
        Record("GetMetadata");
        var response = new Proto.GetMetadataResponse { Id = appId, RuntimeVersion = "sidecar-double" };
        foreach (var component in Components.Registered)
        {
            var registered = new Proto.RegisteredComponents { Name = component.Name, Type = component.Type, Version = component.Version };
            registered.Capabilities.AddRange(component.Capabilities);
            response.RegisteredComponents.Add(registered);
        }
        foreach (var (pubSub, topic, route) in Components.Broker.SubscriptionsOf(appId))
        {
            var subscription = new Proto.PubsubSubscription { PubsubName = pubSub, Topic = topic, Rules = new Proto.PubsubSubscriptionRules() };
            subscription.Rules.Rules.Add(new Proto.PubsubSubscriptionRule { Path = route });
            response.Subscriptions.Add(subscription);
        }
        var hosted = Components.Placement.Where(p => appUrl is not null && p.Value == appUrl).Select(p => p.Key).OrderBy(t => t, StringComparer.Ordinal).ToList();
        response.ActorRuntime = new Proto.ActorRuntime { HostReady = hosted.Count > 0 };
        foreach (var type in hosted) response.ActorRuntime.ActiveActors.Add(new Proto.ActiveActorsCount { Type = type });
        return Task.FromResult(response);
    }

    /// <summary>Keys prefixed with the store name: the keyPrefix "name" strategy that components/*/statestore.yaml set.</summary>
    private static string StoreKey(string store, string key) => $"{store}||{key}";

    private void Record(string method)
    {
        if (RecordCalls) _calls.Enqueue(method);
    }

    private void Apply(IReadOnlyList<(string, byte[]?, string?)> operations)
    {
        try
        {
            Components.State.Apply(operations);
        }
        catch (EtagMismatchException ex)
        {
            throw new RpcException(new Status(StatusCode.Aborted, ex.Message));
        }
    }

    private static void CheckSize(IMessage request)
    {
        int size = request.CalculateSize();
        if (size > MaxBodyBytes) throw new RpcException(new Status(StatusCode.ResourceExhausted, $"request of {size} bytes exceeds the {MaxBodyBytes}-byte body limit"));
    }

    internal sealed class Methods : IServiceMethodProvider<DaprRuntimeService>
    {
        public void OnServiceMethodDiscovery(ServiceMethodProviderContext<DaprRuntimeService> context)
        {
            Add(context, "PublishEvent", Proto.PublishEventRequest.Parser, Google.Protobuf.WellKnownTypes.Empty.Parser, (s, r, c) => s.PublishEvent(r, c));
            Add(context, "GetState", Proto.GetStateRequest.Parser, Proto.GetStateResponse.Parser, (s, r, c) => s.GetState(r, c));
            Add(context, "SaveState", Proto.SaveStateRequest.Parser, Google.Protobuf.WellKnownTypes.Empty.Parser, (s, r, c) => s.SaveState(r, c));
            Add(context, "DeleteState", Proto.DeleteStateRequest.Parser, Google.Protobuf.WellKnownTypes.Empty.Parser, (s, r, c) => s.DeleteState(r, c));
            Add(context, "GetMetadata", Proto.GetMetadataRequest.Parser, Proto.GetMetadataResponse.Parser, (s, r, c) => s.GetMetadata(r, c));
            Add(context, "ExecuteStateTransaction", Proto.ExecuteStateTransactionRequest.Parser, Google.Protobuf.WellKnownTypes.Empty.Parser, (s, r, c) => s.ExecuteStateTransaction(r, c));
        }

        private static void Add<TRequest, TResponse>(ServiceMethodProviderContext<DaprRuntimeService> context, string name, MessageParser<TRequest> requestParser,
            MessageParser<TResponse> responseParser, UnaryServerMethod<DaprRuntimeService, TRequest, TResponse> invoker)
            where TRequest : class, IMessage<TRequest>
            where TResponse : class, IMessage<TResponse>
        {
            var method = new Method<TRequest, TResponse>(MethodType.Unary, Service, name,
                Marshallers.Create(m => m.ToByteArray(), requestParser.ParseFrom),
                Marshallers.Create(m => m.ToByteArray(), responseParser.ParseFrom));
            context.AddUnaryMethod(method, [], invoker);
        }
    }
}

public static class DaprRuntimeServiceRegistration
{
    /// <summary>daprd's HTTP publish API over the registered <see cref="DaprRuntimeService"/> (its gRPC twin is PublishEvent).</summary>
    public static Microsoft.AspNetCore.Routing.IEndpointRouteBuilder MapDaprPublishApi(this Microsoft.AspNetCore.Routing.IEndpointRouteBuilder app)
    {
        app.MapPost("/v1.0/publish/{pubsub}/{**topic}", (string pubsub, string topic, Microsoft.AspNetCore.Http.HttpRequest request, DaprRuntimeService runtime) =>
            runtime.PublishOverHttpAsync(pubsub, topic, request));
        return app;
    }

    /// <summary>
    /// Binds <paramref name="runtime"/> as the gRPC service dapr.proto.runtime.v1.Dapr of an ASP.NET Core host, with
    /// daprd's body limit; map it with <c>MapGrpcService&lt;DaprRuntimeService&gt;()</c>.
    /// </summary>
    public static IServiceCollection AddDaprRuntimeService(this IServiceCollection services, DaprRuntimeService runtime)
    {
        services.AddGrpc(o => o.MaxReceiveMessageSize = DaprRuntimeService.MaxBodyBytes + 64 * 1024);
        services.AddSingleton(runtime);
        services.AddSingleton<IServiceMethodProvider<DaprRuntimeService>, DaprRuntimeService.Methods>();
        return services;
    }
}
