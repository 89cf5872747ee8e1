using DaprTrain.Dapr;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.ParameterServer;

/// <summary>The parameter server node and its gradients inbox.</summary>
public sealed class ServerRuntime : NodeRuntime<ParameterServerNode>
{
    public ServerRuntime(ILogger<ServerRuntime> logger, Microsoft.Extensions.Options.IOptions<TrainingJobOptions> job, DaprTrain.Engine.Telemetry.RoundPhases phases)
        : base(job.Value.WakeOnDelivery, ms => phases.RecordDetail("wait saw a delivery after", ms))
    {
        Phases = phases;
        Gradients = new MessageInbox(logger, job.Value.MaxChunkBytes, ParameterServerNode.NodeId, () => Ready ? Use(n => n.AppliedRound) : 0, phases);
    }

    /// <summary>Where the server's rounds' time goes (issue 16), for /status.</summary>
    public DaprTrain.Engine.Telemetry.RoundPhases Phases { get; }

    private IReadOnlyList<string> _lastContributors = [];

    /// <summary>The senders whose gradients the last round the server closed averaged (for /status).</summary>
    public IReadOnlyList<string> LastContributors
    {
        get => Volatile.Read(ref _lastContributors);
        set => Volatile.Write(ref _lastContributors, value);
    }

    /// <summary>Incomplete gradients of rounds the server has long applied are let go (the inbox expires them by its round).</summary>
    public MessageInbox Gradients { get; }
}
