using DaprTrain.Coordination;
using DaprTrain.Simulation;

namespace DaprTrain.Engine.Tests;

public class TopologyAccuracyTests
{
    [Theory]
    [InlineData(Topology.ParameterServer)]
    [InlineData(Topology.PeerToPeer)]
    [InlineData(Topology.PeerToPeerScatter)]
    public async Task Four_workers_reach_94_percent_without_faults(Topology topology)
    {
        var result = await Jobs.RunAsync(Jobs.Options(topology, rounds: 150));
        result.FinalAccuracy.Should().BeGreaterThanOrEqualTo(0.94);
        result.Rounds.Should().HaveCount(150);
        result.Rounds.Should().OnlyContain(r => r.Included == 4);
    }
}
