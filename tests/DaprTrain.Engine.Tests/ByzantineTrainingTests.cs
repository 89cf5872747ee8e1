using DaprTrain.Coordination;
using DaprTrain.Engine.Aggregation;
using DaprTrain.Simulation;
using DaprTrain.Simulation.Faults;
using Xunit.Abstractions;

namespace DaprTrain.Engine.Tests;

/// <summary>Robust aggregation in embedded MNIST runs: replicas stay identical under every rule, and the robust rules survive a sign flip that ruins the mean.</summary>
public class ByzantineTrainingTests(ITestOutputHelper output)
{
    private const long Rounds = 200;

    // The clean run every robust run is measured against: the mean, no attacker, the same seed (computed once for the class).
    private static readonly Lazy<Task<RunResult>> Clean = new(() => Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, Rounds)));

    private static JobOptions With(JobOptions options, string aggregator, int workers = 4) =>
        options with { Workers = workers, Aggregator = AggregationRule.Parse(aggregator) };

    [Theory]
    [InlineData("median")]
    [InlineData("trimmed-mean")]
    [InlineData("krum")]
    [InlineData("multi-krum")]
    [InlineData("bulyan")]
    public async Task Every_replica_holds_the_same_bits_under_every_rule(string aggregator)
    {
        // Seven workers, so every rule tolerates at least one attacker (bulyan: 7 >= 4f + 3), with two attackers sending
        // different things: the rules then really choose and trim, and each replica must choose alike.
        var options = With(Jobs.Options(Topology.PeerToPeer, 12, "byzantine:worker-2=signflip", "byzantine:worker-5=noise:0.1"), aggregator, workers: 7);
        var result = await Jobs.RunAsync(options);
        result.FinalWeightHashes.Should().HaveCount(7);
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle($"every {aggregator} replica must end with the same weights");
        result.ConsistencyChecks.Should().Be(12);
    }

    [Theory]
    [InlineData("median")]
    [InlineData("trimmed-mean")]
    public async Task Coordinate_wise_rules_per_slice_give_exactly_the_weights_of_whole_vectors(string aggregator)
    {
        var p2p = await Jobs.RunAsync(With(Jobs.Options(Topology.PeerToPeer, 10, "byzantine:worker-3=gaussian"), aggregator));
        var scatter = await Jobs.RunAsync(With(Jobs.Options(Topology.PeerToPeerScatter, 10, "byzantine:worker-3=gaussian"), aggregator));
        scatter.FinalWeights.Should().Equal(p2p.FinalWeights);
    }

    [Fact]
    public void Rules_that_need_whole_vectors_are_refused_for_p2p_scatter()
    {
        var act = () => With(Jobs.Options(Topology.PeerToPeerScatter, 10), "krum").Validate();
        act.Should().Throw<ArgumentException>().WithMessage("*krum*whole gradients*p2p-scatter*");
    }

    [Fact]
    public async Task The_mean_collapses_under_one_sign_flipping_worker_of_four()
    {
        var clean = await Clean.Value;
        var attacked = await Jobs.RunAsync(With(Jobs.Options(Topology.PeerToPeer, Rounds, "byzantine:worker-2=signflip"), "mean"));
        output.WriteLine($"clean {clean.FinalAccuracy:P2}, mean under sign flip {attacked.FinalAccuracy:P2}");
        attacked.FinalAccuracy.Should().BeLessThan(clean.FinalAccuracy - 0.3);
    }

    /// <summary>
    /// One sign-flipping worker (-10 x its gradient) of four: each robust rule keeps its accuracy within the bounds measured
    /// for it (200 rounds, this split: clean mean 95.15%). Multi-Krum (f = 0, m = 3: the three best-scored gradients, the
    /// attacker's never among them) ends within 2 points of the clean mean, the goal. The median and the trimmed
    /// mean of four (the same rule for n = 4, f = 1) and Krum do not: they lost 3.9 and 2.85 points. Even without an
    /// attacker they use fewer samples than the mean of all four (median 94.25%, Krum 92.35%), and with the attacker at
    /// one end of every coordinate the median of four averages the two honest values on its side, a biased estimate that
    /// cost the median 3 points more. The bounds below leave a margin over those figures and still fail for anything near
    /// the mean's collapse (9.45%) or its 79% under additive noise.
    /// </summary>
    [Theory]
    [InlineData(Topology.PeerToPeer, "multi-krum:0,3", 0.02, 0.02)]
    [InlineData(Topology.PeerToPeer, "median", 0.04, 0.05)]
    [InlineData(Topology.PeerToPeer, "trimmed-mean", 0.04, 0.05)]
    [InlineData(Topology.PeerToPeer, "krum", 0.02, 0.04)]
    [InlineData(Topology.ParameterServer, "median", 0.04, 0.05)]
    public async Task Robust_rules_keep_their_accuracy_under_one_sign_flipping_worker_of_four(Topology topology, string aggregator, double belowItself, double belowCleanMean)
    {
        var clean = await Clean.Value;
        var unattacked = await Jobs.RunAsync(With(Jobs.Options(topology, Rounds), aggregator));
        var attacked = await Jobs.RunAsync(With(Jobs.Options(topology, Rounds, "byzantine:worker-2=signflip"), aggregator));
        output.WriteLine($"clean mean {clean.FinalAccuracy:P2}; {aggregator} ({topology}) without attacker {unattacked.FinalAccuracy:P2}, under sign flip {attacked.FinalAccuracy:P2}");
        attacked.FinalAccuracy.Should().BeGreaterThanOrEqualTo(unattacked.FinalAccuracy - belowItself);
        attacked.FinalAccuracy.Should().BeGreaterThanOrEqualTo(clean.FinalAccuracy - belowCleanMean);
    }

    [Fact]
    public async Task Seeded_attacked_runs_are_identical()
    {
        var options = With(Jobs.Options(Topology.PeerToPeer, 8, "byzantine:worker-1=gaussian", "byzantine:worker-2=alie"), "trimmed-mean", workers: 5);
        var first = await Jobs.RunAsync(options);
        var second = await Jobs.RunAsync(options);
        second.FinalWeights.Should().Equal(first.FinalWeights);
    }

    [Fact]
    public async Task A_label_flipping_worker_trains_on_flipped_labels_and_its_replica_stays_in_step()
    {
        // Label flipping alone (1 of 4, 150 rounds) bends the mean less than a sign flip; the replicas must agree all the same.
        var result = await Jobs.RunAsync(With(Jobs.Options(Topology.PeerToPeer, 20, "byzantine:worker-4=labelflip"), "median"));
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
        result.FinalAccuracy.Should().BeGreaterThan(0.5);
    }

    [Fact]
    public void The_fault_plan_names_its_attackers_in_the_run()
    {
        FaultPlan.Parse(["byzantine:worker-2=signflip"]).Name.Should().Be("byzantine:worker-2=signflip");
    }
}
