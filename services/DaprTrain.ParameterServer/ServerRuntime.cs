using DaprTrain.Dapr;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.ParameterServer;

/// <summary>The parameter server node and its gradients inbox.</summary>
public sealed class ServerRuntime(ILogger<ServerRuntime> logger) : NodeRuntime<ParameterServerNode>
{
    public MessageInbox Gradients { get; } = new(logger, node: ParameterServerNode.NodeId);
}
