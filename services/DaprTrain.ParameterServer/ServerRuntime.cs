using DaprTrain.Dapr;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.ParameterServer;

/// <summary>The server node shared by the subscription handler and the round loop, used one call at a time.</summary>
public sealed class ServerRuntime(ILogger<ServerRuntime> logger) : IDisposable
{
    private readonly Lock _gate = new();
    private ParameterServerNode? _node;

    public MessageInbox Gradients { get; } = new(logger);

    public bool Ready => _node is not null;

    public void Start(ParameterServerNode node)
    {
        lock (_gate) _node = node;
    }

    public T Use<T>(Func<ParameterServerNode, T> action)
    {
        lock (_gate) return action(_node ?? throw new InvalidOperationException("the parameter server is not started yet"));
    }

    public Func<byte[], DeliveryResult>? Deliver() => _node is null ? null : payload => Use(node => node.HandleGradient(payload));

    public void Dispose()
    {
        lock (_gate) _node?.Dispose();
    }
}
