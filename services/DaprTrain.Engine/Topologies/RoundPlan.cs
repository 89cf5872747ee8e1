using DaprTrain.Coordination;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;

namespace DaprTrain.Engine.Topologies;

/// <summary>A message a worker sends in a round: its topic, its bytes, and how many nodes receive it.</summary>
public readonly record struct Outgoing(string Topic, byte[] Payload, int Receivers);

/// <summary>A topic a worker consumes and the node method its deliveries go to.</summary>
public sealed record WorkerSubscription(string Topic, Func<WorkerNode, byte[], DeliveryResult> Deliver);

/// <summary>
/// What one topology does in a round, from a worker's side: the topics it consumes, what it publishes once its gradient
/// is computed, what it waits for, and how it applies the round. The embedded runtime (DaprTrain.Simulation) and the
/// Dapr worker both drive a round through this, so a topology is written once; adding one is a new subclass plus its
/// line in <see cref="RoundPlans"/>.
/// <para>
/// A round: <see cref="Contribute"/> after the gradient is computed; wait until <see cref="Gathered"/> (or the
/// deadline). Peer plans (<see cref="DecidedByPeers"/>) then report what they hold to the coordinator, take its
/// decision through <see cref="Settle"/>, publish <see cref="Share"/>, wait until <see cref="ReadyToApply"/> and call
/// <see cref="TryApply"/>. Under a parameter server the server decides: the worker's round ends when its weights arrive.
/// </para>
/// </summary>
public abstract class RoundPlan
{
    public abstract Topology Topology { get; }

    /// <summary>Peers agree on each round through the coordinator; otherwise the parameter server aggregates and decides.</summary>
    public bool DecidedByPeers => !Topology.HasParameterServer();

    /// <summary>The topics a worker consumes. Every worker's list has the same shape; per-worker topics name the worker.</summary>
    public abstract IReadOnlyList<WorkerSubscription> Subscriptions(string workerId);

    /// <summary>What a worker publishes once its gradient for the open round is computed (the same bytes when a round is retried).</summary>
    public abstract IReadOnlyList<Outgoing> Contribute(WorkerNode worker);

    /// <summary>True when the worker holds what it waits for before it reports (peers) or its round is over (server's weights arrived).</summary>
    public abstract bool Gathered(WorkerNode worker, long round, IEnumerable<string> contributors);

    /// <summary>The decision as every replica applies it. All replicas settle the same decision the same way.</summary>
    public virtual RoundDecision Settle(RoundDecision decision, IReadOnlyList<string> members) => decision;

    /// <summary>Messages of a second phase after the decision (scatter-reduce: the reduced slice, to every peer).</summary>
    public virtual IReadOnlyList<Outgoing> Share(WorkerNode worker, RoundDecision decision) => [];

    /// <summary>True when the worker has every part it needs to apply the settled decision.</summary>
    public virtual bool ReadyToApply(WorkerNode worker, RoundDecision decision) => true;

    /// <summary>Applies the settled decision; false when the worker lacks a part of it (it then takes a peer's state).</summary>
    public abstract bool TryApply(WorkerNode worker, RoundDecision decision);
}

/// <summary>Topic names every mode uses; the Dapr contracts name the same strings.</summary>
public static class TopicNames
{
    public const string Gradients = "gradients";

    public const string Weights = "weights";

    /// <summary>p2p-scatter: the slices of peers' gradients that <paramref name="owner"/> reduces.</summary>
    public static string Slices(string owner) => $"slices.{owner}";

    /// <summary>p2p-scatter: the reduced slices every owner sends to <paramref name="peer"/>.</summary>
    public static string Reduced(string peer) => $"reduced.{peer}";
}
