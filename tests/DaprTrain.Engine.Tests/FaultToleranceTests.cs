using DaprTrain.Coordination;
using DaprTrain.Simulation;

namespace DaprTrain.Engine.Tests;

public class FaultToleranceTests
{
    private const long Rounds = 150;

    [Fact]
    public async Task P2p_survives_a_killed_worker_with_identical_replicas_and_its_shard_reassigned()
    {
        var result = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, Rounds, "kill:worker-2@round=50"));

        result.FinalAccuracy.Should().BeGreaterThanOrEqualTo(0.93);
        // The engine compares every live replica's weight hash after every round and fails the run on a mismatch.
        result.ConsistencyChecks.Should().Be((int)Rounds);
        result.FinalWeightHashes.Keys.Should().BeEquivalentTo("worker-1", "worker-3", "worker-4");
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
        result.FinalShardOwners[1].Should().NotBe("worker-2");
        result.FinalShardOwners.Values.Should().NotContain("worker-2");

        var fault = result.Faults.Should().ContainSingle().Subject;
        fault.DetectedAtMs.Should().NotBeNull("the lease of the dead worker expires");
        fault.RecoveryMs.Should().BePositive();
        result.Rounds.Where(r => r.Round > 60).Should().OnlyContain(r => r.Members == 3 && r.Included == 3);
    }

    [Fact]
    public async Task Ps_killed_mid_run_restores_from_its_checkpoint_and_loses_at_most_one_interval()
    {
        var options = Jobs.Options(Topology.ParameterServer, Rounds, "kill:ps@round=75");
        var result = await Jobs.RunAsync(options);

        result.FinalAccuracy.Should().BeGreaterThanOrEqualTo(0.93);
        result.RoundsLost.Should().BeLessThanOrEqualTo(options.CheckpointEvery);
        result.RoundsLost.Should().BePositive("round 74 completed after the checkpoint of round 70");
        result.Rounds.Last().Generation.Should().Be(1, "the restored server opens a new generation");
        result.Rounds.Select(r => r.Round).Should().Contain(71, "rounds 71.. are replayed after the rollback");
        var fault = result.Faults.Single();
        fault.RecoveryMs.Should().BeGreaterThanOrEqualTo(options.ParameterServerRestartMs);
        // Workers hold exactly the server's weights at the end.
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
    }

    [Theory]
    [InlineData(Topology.PeerToPeer)]
    [InlineData(Topology.PeerToPeerScatter)]
    [InlineData(Topology.ParameterServer)]
    public async Task A_restarted_worker_rejoins_and_ends_with_the_others_weights(Topology topology)
    {
        var result = await Jobs.RunAsync(Jobs.Options(topology, 80, "kill:worker-3@round=20", "restart:worker-3@round=50"));

        result.FinalWeightHashes.Should().ContainKey("worker-3");
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
        result.Rounds.Where(r => r.Round > 55).Should().OnlyContain(r => r.Members == 4 && r.Included == 4);
        result.FinalShardOwners[2].Should().Be("worker-3", "a returning worker gets its own shard back");
    }

    [Theory]
    [InlineData(Topology.PeerToPeer)]
    [InlineData(Topology.PeerToPeerScatter)]
    [InlineData(Topology.ParameterServer)]
    public async Task Duplicated_reordered_and_stale_deliveries_leave_the_weights_of_the_clean_run(Topology topology)
    {
        var clean = await Jobs.RunAsync(Jobs.Options(topology, 40));
        var noisy = await Jobs.RunAsync(Jobs.Options(topology, 40, "duplicate=0.5", "reorder"));

        noisy.DuplicatesIgnored.Should().BePositive();
        noisy.LateMessages.Should().BePositive("some duplicates arrive after their round closed");
        noisy.MessageBuffersReused.Should().BePositive("the bytes of dead messages carry later ones, also while late copies are about");
        noisy.FinalWeights.Should().Equal(clean.FinalWeights);
    }

    [Fact]
    public async Task Lost_messages_leave_senders_out_but_replicas_stay_identical()
    {
        var result = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, 60, "drop=0.1"));
        result.GradientsDropped.Should().BePositive();
        result.Rounds.Should().Contain(r => r.Included < 4);
        result.ConsistencyChecks.Should().Be(60);
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
    }

    [Fact]
    public async Task A_slow_worker_beyond_the_deadline_is_left_out_and_its_gradients_counted()
    {
        var result = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, 30, "slow:worker-1=400ms"));
        result.Rounds.Should().OnlyContain(r => r.Included == 3);
        result.GradientsDropped.Should().Be(30);
        result.Rounds.Should().OnlyContain(r => r.EndMs - r.StartMs >= 250, "every round waits for its deadline");
    }

    [Fact]
    public async Task Same_seed_same_faults_same_weights()
    {
        var a = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, 40, "drop=0.1", "duplicate=0.2", "kill:worker-4@round=10"));
        var b = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, 40, "drop=0.1", "duplicate=0.2", "kill:worker-4@round=10"));
        a.FinalWeights.Should().Equal(b.FinalWeights);
        a.GradientsDropped.Should().Be(b.GradientsDropped);
    }
}
