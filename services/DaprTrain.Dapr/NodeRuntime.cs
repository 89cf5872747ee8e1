using DaprTrain.Engine.Messaging;

namespace DaprTrain.Dapr;

/// <summary>
/// An engine node shared by a service's subscription handlers and its round loop. Nodes are not thread-safe:
/// every use goes through <see cref="Use{T}"/>, one at a time. Until the loop has created the node, handlers
/// are told it is not ready (their deliveries are retried).
/// </summary>
public abstract class NodeRuntime<TNode> : IDisposable where TNode : class, IDisposable
{
    private readonly Lock _gate = new();
    private TNode? _node;

    public bool Ready => _node is not null;

    public void Start(TNode node)
    {
        lock (_gate) _node = node;
    }

    public T Use<T>(Func<TNode, T> action)
    {
        lock (_gate) return action(_node ?? throw new InvalidOperationException($"the {typeof(TNode).Name} is not started yet"));
    }

    /// <summary>A delivery handler for an inbox: null (retry later) until the node exists.</summary>
    public Func<byte[], DeliveryResult>? Deliver(Func<TNode, byte[], DeliveryResult> handler) =>
        _node is null ? null : payload => Use(node => handler(node, payload));

    public void Dispose()
    {
        lock (_gate) _node?.Dispose();
        GC.SuppressFinalize(this);
    }
}
