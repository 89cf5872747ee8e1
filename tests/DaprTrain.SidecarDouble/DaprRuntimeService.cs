using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Proto = Dapr.Client.Autogen.Grpc.v1;

namespace DaprTrain.SidecarDouble;

/// <summary>
/// The gRPC methods of dapr.proto.runtime.v1.Dapr that the services call: publish, get/save/delete state, state
/// transactions and metadata. Any other method answers Unimplemented (gRPC's default for an unbound method).
/// </summary>
public sealed class DaprRuntimeService(Sidecar sidecar)
{
    public const int MaxBodyBytes = 4 * 1024 * 1024;
    private const string Service = "dapr.proto.runtime.v1.Dapr";

    private SharedComponents Components => sidecar.Components;

    public Task<Google.Protobuf.WellKnownTypes.Empty> PublishEvent(Proto.PublishEventRequest request, ServerCallContext context)
    {
        CheckSize(request);
        Components.Broker.Publish(sidecar.AppId, request.PubsubName, request.Topic, request.Data.ToByteArray(),
            string.IsNullOrEmpty(request.DataContentType) ? "application/json" : request.DataContentType);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public Task<Proto.GetStateResponse> GetState(Proto.GetStateRequest request, ServerCallContext context)
    {
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
        CheckSize(request);
        Apply([.. request.States.Select(s => (StoreKey(request.StoreName, s.Key), (byte[]?)s.Value.ToByteArray(), s.Etag?.Value))]);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public Task<Google.Protobuf.WellKnownTypes.Empty> DeleteState(Proto.DeleteStateRequest request, ServerCallContext context)
    {
        Apply([(StoreKey(request.StoreName, request.Key), null, request.Etag?.Value)]);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public Task<Google.Protobuf.WellKnownTypes.Empty> ExecuteStateTransaction(Proto.ExecuteStateTransactionRequest request, ServerCallContext context)
    {
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
        Apply(operations);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    /// <summary>What daprd's metadata API tells about this sidecar: app id, components, subscriptions, actor types.</summary>
    public Task<Proto.GetMetadataResponse> GetMetadata(Proto.GetMetadataRequest request, ServerCallContext context)
    {
        var response = new Proto.GetMetadataResponse { Id = sidecar.AppId, RuntimeVersion = "sidecar-double" };
        foreach (var component in Components.Registered)
        {
            var registered = new Proto.RegisteredComponents { Name = component.Name, Type = component.Type, Version = component.Version };
            registered.Capabilities.AddRange(component.Capabilities);
            response.RegisteredComponents.Add(registered);
        }
        foreach (var (pubSub, topic, route) in Components.Broker.SubscriptionsOf(sidecar.AppId))
        {
            var subscription = new Proto.PubsubSubscription { PubsubName = pubSub, Topic = topic, Rules = new Proto.PubsubSubscriptionRules() };
            subscription.Rules.Rules.Add(new Proto.PubsubSubscriptionRule { Path = route });
            response.Subscriptions.Add(subscription);
        }
        var hosted = Components.Placement.Where(p => p.Value == sidecar.AppUrl).Select(p => p.Key).OrderBy(t => t, StringComparer.Ordinal).ToList();
        response.ActorRuntime = new Proto.ActorRuntime { HostReady = hosted.Count > 0 };
        foreach (var type in hosted) response.ActorRuntime.ActiveActors.Add(new Proto.ActiveActorsCount { Type = type });
        return Task.FromResult(response);
    }

    /// <summary>Keys prefixed with the store name: the keyPrefix "name" strategy that components/*/statestore.yaml set.</summary>
    private static string StoreKey(string store, string key) => $"{store}||{key}";

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
