using DaprTrain.Dapr;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Worker;

/// <summary>
/// The worker node shared by the subscription handlers and the training loop. The node is not thread-safe;
/// every use goes through <see cref="Use{T}"/>, one at a time.
/// </summary>
public sealed class WorkerRuntime(ILogger<WorkerRuntime> logger) : IDisposable
{
    private readonly Lock _gate = new();
    private WorkerNode? _node;

    public MessageInbox Gradients { get; } = new(logger);

    public MessageInbox Weights { get; } = new(logger);

    public bool Ready => _node is not null;

    public void Start(WorkerNode node)
    {
        lock (_gate) _node = node;
    }

    public T Use<T>(Func<WorkerNode, T> action)
    {
        lock (_gate) return action(_node ?? throw new InvalidOperationException("the worker is not started yet"));
    }

    /// <summary>A delivery handler for the inbox: null (retry later) until the node exists.</summary>
    public Func<byte[], DeliveryResult>? Deliver(Func<WorkerNode, byte[], DeliveryResult> handler) =>
        _node is null ? null : payload => Use(node => handler(node, payload));

    public void Dispose()
    {
        lock (_gate) _node?.Dispose();
    }
}
