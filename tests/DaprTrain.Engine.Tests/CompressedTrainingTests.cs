using DaprTrain.Coordination;
using DaprTrain.Engine.Compression;
using DaprTrain.Simulation;
using Xunit.Abstractions;

namespace DaprTrain.Engine.Tests;

/// <summary>Compressed gradients in embedded MNIST runs: replicas stay bit-identical, seeded runs repeat, bytes shrink, top-k converges.</summary>
public class CompressedTrainingTests(ITestOutputHelper output)
{
    private static JobOptions With(Topology topology, long rounds, string codec, params string[] faults) =>
        Jobs.Options(topology, rounds, faults) with { Compression = CompressionSpec.Parse(codec) };

    public static TheoryData<string, string> CodecsByTopology()
    {
        var data = new TheoryData<string, string>();
        foreach (string topology in new[] { "p2p", "p2p-scatter" })
        {
            foreach (string codec in new[] { "fp16", "int8", "topk:0.01", "qsgd:7" }) data.Add(topology, codec);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(CodecsByTopology))]
    public async Task Every_replica_holds_the_same_bits_under_every_codec(string topology, string codec)
    {
        // The embedded job compares every in-sync replica's weight hash after every round and stops on a difference.
        var result = await Jobs.RunAsync(With(Coordination.Topologies.Parse(topology), 12, codec));
        result.FinalWeightHashes.Should().HaveCount(4);
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle($"every {topology} replica under {codec} must end with the same weights");
        result.ConsistencyChecks.Should().Be(12);
        var uncompressed = await Jobs.RunAsync(Jobs.Options(Coordination.Topologies.Parse(topology), 12));
        result.FinalWeights.Should().NotEqual(uncompressed.FinalWeights, "the replicas trained on what the codec decoded");
    }

    [Theory]
    [InlineData("int8")]
    [InlineData("topk:0.01")]
    public async Task Workers_under_a_parameter_server_hold_its_weights_under_compression(string codec)
    {
        var result = await Jobs.RunAsync(With(Topology.ParameterServer, 12, codec));
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle("the server's float32 weights reach every worker");
        result.FinalWeightHashes.Should().ContainKey("ps");
    }

    [Theory]
    [InlineData("p2p", "qsgd:7")]
    [InlineData("p2p-scatter", "topk:0.01")]
    [InlineData("ps", "qsgd:15")]
    public async Task A_seeded_run_gives_the_same_weights_again(string topology, string codec)
    {
        var first = await Jobs.RunAsync(With(Coordination.Topologies.Parse(topology), 10, codec));
        var second = await Jobs.RunAsync(With(Coordination.Topologies.Parse(topology), 10, codec));
        second.FinalWeights.Should().Equal(first.FinalWeights);
    }

    /// <summary>
    /// Seeded compressed runs under the broker's duplicates and reordering (late copies, duplicates dropped after decoding),
    /// against the weight hashes the engine gave before received values were decoded into pooled arrays (recorded from
    /// commit 6089e95, where each message got a new array). Pooling must not move a bit. (p2p and ps share a hash: the server
    /// steps on the same mean the p2p replicas do.) The top-k hashes were recorded again after top-k's steps became lazy
    /// (a deliberate change of its weights, commit 8ece1b1), on a build that already pooled, so for top-k this test only
    /// pins the weights; the test below is what checks pooling against new arrays for those runs. p2p-scatter's top-k hash was
    /// recorded a third time when its owners began to send their reduced slices whole on their support (sparse-fp16,
    /// another deliberate change of its weights).
    /// </summary>
    [Theory]
    [InlineData("p2p", "int8", 9263649319128652346UL)]
    [InlineData("p2p", "topk:0.01", 17111631423842897583UL)]
    [InlineData("p2p-scatter", "topk:0.01", 18375214131266224089UL)]
    [InlineData("ps", "int8", 9263649319128652346UL)]
    public async Task A_seeded_compressed_run_with_duplicates_and_reordering_gives_the_weights_recorded_before_pooling(string topology, string codec, ulong recorded)
    {
        var result = await Jobs.RunAsync(With(Coordination.Topologies.Parse(topology), 20, codec, "duplicate=0.5", "reorder"));
        result.DuplicatesIgnored.Should().BePositive();
        result.LateMessages.Should().BePositive();
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
        ulong hash = System.IO.Hashing.XxHash3.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.FinalWeights.AsSpan()));
        output.WriteLine($"{topology} {codec}: weight hash {hash}");
        hash.Should().Be(recorded);
    }

    /// <summary>
    /// The same runs with received values decoded into pooled arrays (the default) and into a new array per message: the
    /// same weights, under duplicates, reordering and lost messages (all decoded, then dropped or held a round early). No
    /// kill here: a dead worker's lease expires at a virtual time that follows measured compute, so the round its shards
    /// move in varies between two runs of one seed (seen: round 9 in one, 10 in the other), pooled or not; a disposed
    /// node's arrays are checked in <see cref="PooledReceiveTests"/>.
    /// </summary>
    [Theory]
    [InlineData("p2p", "qsgd:7")]
    [InlineData("p2p", "topk:0.01")]
    [InlineData("p2p-scatter", "int8")]
    [InlineData("p2p-scatter", "topk:0.01")]
    [InlineData("ps", "fp16")]
    public async Task Pooled_decoding_gives_the_weights_of_a_new_array_per_message(string topology, string codec)
    {
        string[] faults = ["duplicate=0.5", "reorder", "drop=0.05"];
        var pooled = await Jobs.RunAsync(With(Coordination.Topologies.Parse(topology), 20, codec, faults));
        var fresh = await Jobs.RunAsync(With(Coordination.Topologies.Parse(topology), 20, codec, faults) with { PoolDecodedValues = false });
        pooled.DecodedArraysReused.Should().BePositive("the pooled run must reuse arrays for the comparison to mean anything");
        fresh.DecodedArraysReused.Should().Be(0);
        pooled.LateMessages.Should().BePositive();
        pooled.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
        pooled.FinalWeights.Should().Equal(fresh.FinalWeights);
    }

    [Theory]
    [InlineData("p2p-scatter", "int8")]
    [InlineData("p2p", "topk:0.01")]
    public async Task Replicas_stay_identical_when_a_worker_dies_and_rejoins_with_a_fresh_residual(string topology, string codec)
    {
        var result = await Jobs.RunAsync(With(Coordination.Topologies.Parse(topology), 30, codec, "kill:worker-2@round=8", "restart:worker-2@round=16"));
        result.FinalWeightHashes.Should().ContainKey("worker-2");
        result.FinalWeightHashes.Values.Distinct().Should().ContainSingle();
    }

    [Theory]
    [InlineData("p2p", "fp16", 1.95, 2.0)]
    [InlineData("p2p", "int8", 3.9, 4.0)]
    [InlineData("p2p", "topk:0.01", 30, 60)]
    [InlineData("p2p-scatter", "fp16", 1.95, 2.0)]
    [InlineData("p2p-scatter", "int8", 3.9, 4.0)]
    [InlineData("p2p-scatter", "topk:0.01", 30, 60)]
    public async Task The_bytes_each_worker_sends_shrink_by_the_codecs_ratio(string topology, string codec, double least, double most)
    {
        var plain = await Jobs.RunAsync(Jobs.Options(Coordination.Topologies.Parse(topology), 6));
        var compressed = await Jobs.RunAsync(With(Coordination.Topologies.Parse(topology), 6, codec));
        double ratio = plain.BytesPerWorkerPerRound(sent: true) / compressed.BytesPerWorkerPerRound(sent: true);
        output.WriteLine($"{topology} {codec}: {ratio:F2}x fewer bytes sent per worker per round");
        ratio.Should().BeInRange(least, most);
        (plain.BytesPerWorkerPerRound(sent: false) / compressed.BytesPerWorkerPerRound(sent: false)).Should().BeInRange(least, most);
    }

    [Fact]
    public async Task Top_k_of_one_percent_with_error_feedback_converges_like_uncompressed_training()
    {
        const long rounds = 150;
        var plain = await Jobs.RunAsync(Jobs.Options(Topology.PeerToPeer, rounds));
        var topk = await Jobs.RunAsync(With(Topology.PeerToPeer, rounds, "topk:0.01"));
        output.WriteLine($"held-out accuracy after {rounds} rounds: uncompressed {plain.FinalAccuracy:P2}, top-k 1% {topk.FinalAccuracy:P2}");
        topk.FinalAccuracy.Should().BeGreaterThan(0.85, "error feedback delivers what top-k drops a few rounds later");
        topk.FinalAccuracy.Should().BeGreaterThan(plain.FinalAccuracy - 0.04);
    }
}
