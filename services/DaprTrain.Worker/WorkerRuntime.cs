using DaprTrain.Dapr;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Worker;

/// <summary>The worker node, and an inbox for each topic it may subscribe to.</summary>
public sealed class WorkerRuntime(ILogger<WorkerRuntime> logger) : NodeRuntime<WorkerNode>
{
    public MessageInbox Gradients { get; } = new(logger);

    public MessageInbox Weights { get; } = new(logger);
}
