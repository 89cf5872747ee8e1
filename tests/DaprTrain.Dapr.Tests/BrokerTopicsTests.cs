using DaprTrain.Coordination;
using DaprTrain.Engine.Topologies;

namespace DaprTrain.Dapr.Tests;

/// <summary>
/// Which broker topics carry a plan's messages (issue 16): between p2p peers a topic per sender, so that no worker is sent
/// its own gradient back; every other topic as the plan names it.
/// </summary>
public class BrokerTopicsTests
{
    [Fact]
    public void A_p2p_worker_publishes_to_its_own_topic_and_hears_every_peer_of_the_job_but_itself()
    {
        BrokerTopics.Publishing(Topology.PeerToPeer, TopicNames.Gradients, "worker-2").Should().Be("gradients.worker-2");
        BrokerTopics.Subscribed(Topology.PeerToPeer, TopicNames.Gradients, "worker-2", workers: 4)
            .Should().Equal("gradients.worker-1", "gradients.worker-3", "gradients.worker-4");

        // Every worker's topic has every other worker as its subscribers, and its publisher never.
        var ids = Enumerable.Range(1, 4).Select(i => $"worker-{i}").ToList();
        foreach (var sender in ids)
        {
            string topic = BrokerTopics.Publishing(Topology.PeerToPeer, TopicNames.Gradients, sender);
            ids.Where(w => BrokerTopics.Subscribed(Topology.PeerToPeer, TopicNames.Gradients, w, 4).Contains(topic))
                .Should().BeEquivalentTo(ids.Where(w => w != sender), $"{sender}'s gradient reaches each peer once and not itself");
        }
    }

    [Theory]
    [InlineData(Topology.ParameterServer, "gradients")]
    [InlineData(Topology.ParameterServer, "weights")]
    [InlineData(Topology.PeerToPeerScatter, "slices.worker-1")]
    [InlineData(Topology.PeerToPeerScatter, "reduced.worker-2")]
    public void Every_other_topic_is_the_plans_own(Topology topology, string topic)
    {
        // A ps worker's gradient goes to the one server; p2p-scatter's topics already name their one receiver.
        BrokerTopics.Publishing(topology, topic, "worker-1").Should().Be(topic);
        BrokerTopics.Subscribed(topology, topic, "worker-1", workers: 3).Should().Equal(topic);
    }
}
