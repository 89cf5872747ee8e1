using DaprTrain.Contracts;
using DaprTrain.Coordination;
using DaprTrain.Engine.Topologies;

namespace DaprTrain.Dapr;

/// <summary>
/// The broker topics that carry a round plan's topics. The plan names what a message is (a worker's gradient, the server's
/// weights, a slice); the broker's topic is chosen here so that a subscriber is sent only what it uses. Between p2p peers
/// every worker's gradient goes to a topic of its own (<see cref="DaprTopics.GradientsFrom"/>) and each worker subscribes
/// to its peers' topics, those of the job's worker ids (worker-1 to worker-Workers, the only ids a worker may take): on one
/// shared topic the broker delivered every gradient to its own sender too, a quarter of the deliveries at N = 4 and half at
/// N = 2, each the whole gradient as a base64 CloudEvent (issue 16). The other topics are the plan's as they are.
/// </summary>
public static class BrokerTopics
{
    /// <summary>The topic <paramref name="worker"/> publishes a message of the plan's <paramref name="topic"/> to.</summary>
    public static string Publishing(Topology topology, string topic, string worker) =>
        PerSender(topology, topic) ? DaprTopics.GradientsFrom(worker) : topic;

    /// <summary>The topics that bring <paramref name="worker"/> the messages of the plan's <paramref name="topic"/>, in a job of <paramref name="workers"/> workers.</summary>
    public static IReadOnlyList<string> Subscribed(Topology topology, string topic, string worker, int workers) =>
        PerSender(topology, topic)
            ? [.. Enumerable.Range(1, workers).Select(DaprApps.Worker).Where(peer => peer != worker).Select(DaprTopics.GradientsFrom)]
            : [topic];

    private static bool PerSender(Topology topology, string topic) => topology == Topology.PeerToPeer && topic == TopicNames.Gradients;
}
