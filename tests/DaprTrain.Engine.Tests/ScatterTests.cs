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

    /// <summary>
    /// A seeded run's weights must not depend on how fast this machine is. The owners' reduced slices go out once each
    /// owner has reduced (a measured time); their deadline counts from when the slowest owner is done, as the gradients'
    /// counts from the slowest compute, so the machine's load can never make a slice late. (It did count from the
    /// phase's start: under a load average of 20 a reduce that took longer than the deadline cost a round, and one
    /// 5-epoch p2p-scatter run ended at 86.25% where the same seed gives 86.16%.) With no hop latency and a deadline of
    /// 10 microseconds, shorter than any reduce, every slice is still on time and the weights are those of the default
    /// deadline, bit for bit.
    /// </summary>
    [Fact]
    public async Task A_reduced_slice_is_never_late_because_its_owner_took_time_to_reduce_it()
    {
        var instant = Jobs.Options(Topology.PeerToPeerScatter, 12) with { Network = new NetworkModel(LatencyMs: 0, BandwidthMbps: NetworkModel.MaxBandwidthMbps), RoundDeadlineMs = 0.01 };
        var tight = await Jobs.RunAsync(instant);
        tight.GradientsDropped.Should().Be(0, "every gradient slice is sent by the end of the compute phase, and arrives at once");
        var relaxed = await Jobs.RunAsync(instant with { RoundDeadlineMs = 250 });
        tight.FinalWeights.Should().Equal(relaxed.FinalWeights, "no reduced slice may miss its round for the time its owner took to reduce it");
    }

    /// <summary>
    /// Whether a gradient is late depends only on what is modelled. worker-2 is made 2 ms slower and the hop takes 1 ms
    /// against a 2.5 ms deadline: its gradient is late in every round, whoever computed fastest. (Each gradient used to
    /// leave at its own measured ready time while the deadline counted from the slowest one's, so worker-2 made its round
    /// whenever another worker's measured compute was more than 0.5 ms longer than its own: found in review.)
    /// </summary>
    [Theory]
    [InlineData(Topology.PeerToPeer)]
    [InlineData(Topology.ParameterServer)]
    public async Task A_gradient_is_late_for_what_is_modelled_never_for_how_long_the_others_computed(Topology topology)
    {
        const long rounds = 12;
        var options = Jobs.Options(topology, rounds, "slow:worker-2=2ms") with { Network = new NetworkModel(LatencyMs: 1, BandwidthMbps: NetworkModel.MaxBandwidthMbps), RoundDeadlineMs = 2.5 };
        var result = await Jobs.RunAsync(options);
        result.GradientsDropped.Should().Be(rounds, "worker-2's gradient arrives 3 ms after the compute phase, the deadline 2.5 ms after it, in every round");
        var again = await Jobs.RunAsync(options);
        again.FinalWeights.Should().Equal(result.FinalWeights);
    }
}
