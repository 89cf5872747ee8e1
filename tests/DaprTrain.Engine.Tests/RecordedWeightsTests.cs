using DaprTrain.Coordination;
using DaprTrain.Simulation;

namespace DaprTrain.Engine.Tests;

/// <summary>
/// Seeded runs of every topology, clean and under faults, compared with the weight hashes the engine gave before its
/// restructuring (recorded from commit 62bc8e6). A change to the round loop that moves code around must not move a
/// single bit; a change that means to alter the arithmetic updates these values and says why in its commit.
/// </summary>
public class RecordedWeightsTests
{
    [Theory]
    [InlineData(Topology.ParameterServer, "", 6389505571169192208UL)]
    [InlineData(Topology.PeerToPeer, "", 6389505571169192208UL)]
    [InlineData(Topology.PeerToPeerScatter, "", 6389505571169192208UL)]
    [InlineData(Topology.ParameterServer, "kill:ps@round=17", 17930298156511938709UL)]
    [InlineData(Topology.PeerToPeer, "kill:worker-2@round=8;restart:worker-2@round=20;duplicate=0.3", 16043372950083338860UL)]
    [InlineData(Topology.PeerToPeerScatter, "kill:worker-3@round=10;drop=0.05", 12780291573418698830UL)]
    public async Task A_seeded_run_gives_the_weights_recorded_before_the_restructuring(Topology topology, string faults, ulong recorded)
    {
        var result = await Jobs.RunAsync(Jobs.Options(topology, 30, faults.Split(';', StringSplitOptions.RemoveEmptyEntries)));

        ulong hash = System.IO.Hashing.XxHash3.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.FinalWeights.AsSpan()));
        hash.Should().Be(recorded);
    }
}
