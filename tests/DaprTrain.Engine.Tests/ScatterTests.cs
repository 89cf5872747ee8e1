using DaprTrain.Coordination;
using DaprTrain.Simulation;

namespace DaprTrain.Engine.Tests;

public class ScatterTests
{
    [Fact]
    public async Task Scatter_moves_about_2_n_minus_1_over_n_of_the_model_per_worker_per_round()
    {
        var result = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeerScatter, 10));
        double modelBytes = result.ParameterCount * 4.0;
        double bound = 2.0 * (4 - 1) / 4 * modelBytes;
        result.BytesPerWorkerPerRound(sent: true).Should().BeInRange(bound * 0.95, bound * 1.05);
        result.BytesPerWorkerPerRound(sent: false).Should().BeInRange(bound * 0.95, bound * 1.05);

        var p2p = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, 10));
        p2p.BytesPerWorkerPerRound(sent: false).Should().BeInRange(3 * modelBytes * 0.99, 3 * modelBytes * 1.01, "p2p receives N-1 whole gradients");
    }

    [Fact]
    public async Task Scatter_weights_equal_p2p_weights_bit_for_bit()
    {
        // Both average the same gradients in the same sender order with element-wise float32 arithmetic;
        // a slice of the vector reduces to exactly the bits of the whole vector.
        var scatter = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeerScatter, 30));
        var p2p = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, 30));
        scatter.FinalWeights.Should().Equal(p2p.FinalWeights);
    }
}
