using DaprTrain.Coordination;

namespace DaprTrain.Engine.Tests;

/// <summary>The embedded mode signs and verifies as the services do; signatures change no weight.</summary>
public sealed class SignedEmbeddedRunTests
{
    [Theory]
    [InlineData(Topology.PeerToPeer)]
    [InlineData(Topology.ParameterServer)]
    [InlineData(Topology.PeerToPeerScatter)]
    public async Task A_signed_run_ends_with_the_weights_of_an_unsigned_one_and_drops_nothing(Topology topology)
    {
        var signed = await Jobs.RunAsync(Jobs.Options(topology, 6));
        var unsigned = await Jobs.RunAsync(Jobs.Options(topology, 6) with { SignMessages = false });

        signed.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
        signed.FinalWeightHashes.Should().BeEquivalentTo(unsigned.FinalWeightHashes, "a seeded run gives the same weights whether or not its messages are signed");
        signed.Rounds.Should().HaveCount(6);
    }

    [Fact]
    public async Task A_parameter_server_restored_in_a_new_generation_is_followed_through_the_coordinators_view()
    {
        var result = await Jobs.RunAsync(Jobs.Options(Topology.ParameterServer, 25, "kill:ps@round=15"));

        result.Rounds.Max(r => r.Generation).Should().BeGreaterThan(0, "the restored server runs a newer generation");
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
    }
}
