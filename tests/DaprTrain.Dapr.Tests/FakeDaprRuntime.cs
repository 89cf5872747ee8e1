using Dapr.Client;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Proto = Dapr.Client.Autogen.Grpc.v1;

namespace DaprTrain.Dapr.Tests;

/// <summary>
/// The subset of daprd's gRPC API (service dapr.proto.runtime.v1.Dapr) that the adapters call, bound method by
/// method with the message types of Dapr.Protos, so the real DaprClient's serialisation is what is tested.
/// State follows Dapr's semantics: a missing key is empty data, a stale ETag is Aborted, a transaction is all or nothing.
/// </summary>
public sealed class FakeDaprRuntime
{
    private const string Service = "dapr.proto.runtime.v1.Dapr";
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Store, string Key), (byte[] Value, long Version)> _state = [];

    public List<Proto.PublishEventRequest> Published { get; } = [];

    public List<string> Calls { get; } = [];

    public int MaxRequestBytes { get; set; } = 4 * 1024 * 1024;

    public Task<Google.Protobuf.WellKnownTypes.Empty> PublishEvent(Proto.PublishEventRequest request, ServerCallContext context)
    {
        Check("PublishEvent", request);
        lock (_gate) Published.Add(request);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public Task<Proto.GetStateResponse> GetState(Proto.GetStateRequest request, ServerCallContext context)
    {
        Check("GetState", request);
        lock (_gate)
        {
            var response = new Proto.GetStateResponse();
            if (_state.TryGetValue((request.StoreName, request.Key), out var item))
            {
                response.Data = ByteString.CopyFrom(item.Value);
                response.Etag = item.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            return Task.FromResult(response);
        }
    }

    public Task<Google.Protobuf.WellKnownTypes.Empty> SaveState(Proto.SaveStateRequest request, ServerCallContext context)
    {
        Check("SaveState", request);
        Apply(request.StoreName, request.States.Select(s => ("upsert", s)).ToList());
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public Task<Google.Protobuf.WellKnownTypes.Empty> DeleteState(Proto.DeleteStateRequest request, ServerCallContext context)
    {
        Check("DeleteState", request);
        var item = new Proto.StateItem { Key = request.Key, Etag = request.Etag };
        Apply(request.StoreName, [("delete", item)]);
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public Task<Google.Protobuf.WellKnownTypes.Empty> ExecuteStateTransaction(Proto.ExecuteStateTransactionRequest request, ServerCallContext context)
    {
        Check("ExecuteStateTransaction", request);
        Apply(request.StoreName, request.Operations.Select(o => (o.OperationType, o.Request)).ToList());
        return Task.FromResult(new Google.Protobuf.WellKnownTypes.Empty());
    }

    public byte[]? Raw(string store, string key)
    {
        lock (_gate) return _state.TryGetValue((store, key), out var item) ? item.Value : null;
    }

    public int KeyCount
    {
        get
        {
            lock (_gate) return _state.Count;
        }
    }

    private void Check(string method, IMessage request)
    {
        lock (_gate) Calls.Add(method);
        if (request.CalculateSize() > MaxRequestBytes)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"request of {request.CalculateSize()} bytes is over the {MaxRequestBytes}-byte limit"));
        }
    }

    private void Apply(string store, IReadOnlyList<(string Operation, Proto.StateItem Item)> operations)
    {
        lock (_gate)
        {
            foreach (var (operation, item) in operations)
            {
                if (operation is not ("upsert" or "delete")) throw new RpcException(new Status(StatusCode.InvalidArgument, $"unknown operation type {operation}"));
                if (item.Etag is { Value.Length: > 0 } etag)
                {
                    string? current = _state.TryGetValue((store, item.Key), out var existing) ? existing.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
                    if (current != etag.Value) throw new RpcException(new Status(StatusCode.Aborted, $"possible etag mismatch for key {item.Key}"));
                }
            }
            foreach (var (operation, item) in operations)
            {
                if (operation == "delete")
                {
                    _state.Remove((store, item.Key));
                    continue;
                }
                long version = _state.TryGetValue((store, item.Key), out var existing) ? existing.Version + 1 : 1;
                _state[(store, item.Key)] = (item.Value.ToByteArray(), version);
            }
        }
    }

    /// <summary>Starts the fake on a test server and returns a real DaprClient wired to it.</summary>
    public static async Task<(WebApplication Server, FakeDaprRuntime Runtime, DaprClient Client)> StartAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = null);
        var runtime = new FakeDaprRuntime();
        builder.Services.AddSingleton(runtime);
        builder.Services.AddSingleton<IServiceMethodProvider<FakeDaprRuntime>, MethodProvider>();
        var app = builder.Build();
        app.MapGrpcService<FakeDaprRuntime>();
        await app.StartAsync();
        var client = new DaprClientBuilder()
            .UseGrpcEndpoint("http://localhost")
            .UseGrpcChannelOptions(new GrpcChannelOptions { HttpHandler = app.GetTestServer().CreateHandler(), MaxReceiveMessageSize = null, MaxSendMessageSize = null })
            .Build();
        return (app, runtime, client);
    }

    private sealed class MethodProvider : IServiceMethodProvider<FakeDaprRuntime>
    {
        public void OnServiceMethodDiscovery(ServiceMethodProviderContext<FakeDaprRuntime> context)
        {
            Add(context, "PublishEvent", Proto.PublishEventRequest.Parser, Google.Protobuf.WellKnownTypes.Empty.Parser, (s, r, c) => s.PublishEvent(r, c));
            Add(context, "GetState", Proto.GetStateRequest.Parser, Proto.GetStateResponse.Parser, (s, r, c) => s.GetState(r, c));
            Add(context, "SaveState", Proto.SaveStateRequest.Parser, Google.Protobuf.WellKnownTypes.Empty.Parser, (s, r, c) => s.SaveState(r, c));
            Add(context, "DeleteState", Proto.DeleteStateRequest.Parser, Google.Protobuf.WellKnownTypes.Empty.Parser, (s, r, c) => s.DeleteState(r, c));
            Add(context, "ExecuteStateTransaction", Proto.ExecuteStateTransactionRequest.Parser, Google.Protobuf.WellKnownTypes.Empty.Parser, (s, r, c) => s.ExecuteStateTransaction(r, c));
        }

        private static void Add<TRequest, TResponse>(ServiceMethodProviderContext<FakeDaprRuntime> context, string name, MessageParser<TRequest> requestParser,
            MessageParser<TResponse> responseParser, UnaryServerMethod<FakeDaprRuntime, TRequest, TResponse> invoker)
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
