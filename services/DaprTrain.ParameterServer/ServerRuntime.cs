using DaprTrain.Dapr;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.ParameterServer;

/// <summary>The parameter server node and its gradients inbox.</summary>
public sealed class ServerRuntime : NodeRuntime<ParameterServerNode>
{
    public ServerRuntime(ILogger<ServerRuntime> logger, Microsoft.Extensions.Options.IOptions<TrainingJobOptions> job) =>
        Gradients = new MessageInbox(logger, job.Value.MaxChunkBytes, ParameterServerNode.NodeId, () => Ready ? Use(n => n.AppliedRound) : 0);

    /// <summary>Incomplete gradients of rounds the server has long applied are let go (the inbox expires them by its round).</summary>
    public MessageInbox Gradients { get; }
}
