using DaprTrain.Coordination;
using DaprTrain.Engine.Compression;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;
using DaprTrain.Training.Tests;
using Microsoft.Extensions.Logging.Abstractions;

namespace DaprTrain.Engine.Tests;

/// <summary>
/// Nodes decode received compressed messages into pooled arrays: every array goes back once (round forgotten, message
/// dropped, node disposed), never while the node still reads it, and the weights are those of a node that decodes into a
/// new array per message.
/// </summary>
public sealed class PooledReceiveTests
{
    private static readonly TrainerOptions Options = new("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 32, 3);
    private static readonly MembershipView View = new(1, ["worker-1", "worker-2"], new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2" }, "worker-1", []);
    private static readonly CompressionSpec TopK = CompressionSpec.Parse("topk:0.05");

    private static long[][] Shards
    {
        get
        {
            var data = TestData.Mnist8k2k;
            return [data.TrainIndices[..100], data.TrainIndices[100..200]];
        }
    }

    private static WorkerNode Worker(DecodedValuesPool? pool)
    {
        var worker = new WorkerNode("worker-1", "job", Options, TestData.Mnist8k2k, NullLogger.Instance) { Compression = TopK, DecodedValues = pool };
        worker.ApplyView(View, Shards);
        return worker;
    }

    /// <summary>worker-2's compressed gradient for a round (top-k with error feedback; the same bytes when sent again), and messages to be dropped.</summary>
    private sealed class Peer(int count)
    {
        private readonly GradientCompressor _compressor = new(TopK, 7, count);
        private readonly Dictionary<long, byte[]> _sent = [];

        public byte[] Gradient(long round)
        {
            if (!_sent.TryGetValue(round, out var message)) _sent[round] = message = _compressor.Encode(Header(round, "job"), Values(round, count), 0);
            return message;
        }

        /// <summary>A well-formed compressed gradient that the gate drops only after decoding it.</summary>
        public static byte[] Dropped(long round, string job, int count) => new GradientCompressor(TopK, 7, count).Encode(Header(round, job), Values(round, count), 0);

        private static WireMessage Header(long round, string job) => new(MessageKind.Gradient, job, 0, round, "worker-2", 32, 0, 0, ReadOnlyMemory<float>.Empty);

        private static float[] Values(long round, int count)
        {
            var random = new SplitMix64((ulong)round);
            return [.. Enumerable.Range(0, count).Select(_ => random.NextGaussian() * 1e-2f)];
        }
    }

    /// <summary>The worker's own gradient for its open round, compressed as it is sent (its replica aggregates what it decodes to).</summary>
    private static void Compute(WorkerNode worker)
    {
        worker.ComputeGradient();
        worker.GradientMessage();
    }

    private static readonly string[] Both = ["worker-1", "worker-2"];

    [Fact]
    public void Every_array_goes_back_once_and_the_weights_are_those_of_a_new_array_per_message()
    {
        var pool = new DecodedValuesPool();
        using var pooled = Worker(pool);
        using var unpooled = Worker(null);
        var peer = new Peer(pooled.ParameterCount);
        var nodes = new[] { pooled, unpooled };

        void Deliver(byte[] message, DeliveryStatus expected)
        {
            foreach (var node in nodes) node.HandleGradient(message).Status.Should().Be(expected);
        }

        foreach (var node in nodes) Compute(node);
        // Round 2's gradient overtakes round 1's: held for the next round while round 1's array comes and goes.
        Deliver(peer.Gradient(2), DeliveryStatus.Success);
        Deliver(peer.Gradient(1), DeliveryStatus.Success);
        pool.Outstanding.Should().Be(2);
        Deliver(peer.Gradient(1), DeliveryStatus.Success);
        Deliver(Peer.Dropped(1, "other-job", pooled.ParameterCount), DeliveryStatus.Drop);
        Deliver(Peer.Dropped(1, "job", pooled.ParameterCount - 1), DeliveryStatus.Drop);
        pool.Outstanding.Should().Be(2, "a duplicate, a message of another job and one of the wrong length are dropped after decoding, and their arrays go back");

        foreach (var node in nodes) node.ApplyDecision(new RoundDecision(0, 1, Both, Both));
        pool.Outstanding.Should().Be(1, "round 1 is forgotten; round 2's contribution is still held");
        pooled.WeightHash.Should().Be(unpooled.WeightHash);

        // A late copy of round 1 is decoded into a free array (round 1's, or a dropped message's), and must not touch round 2's.
        Deliver(peer.Gradient(1), DeliveryStatus.Drop);
        pool.Reused.Should().BePositive();
        for (long round = 2; round <= 4; round++)
        {
            foreach (var node in nodes) Compute(node);
            if (round > 2) Deliver(peer.Gradient(round), DeliveryStatus.Success);
            Deliver(peer.Gradient(round - 1), DeliveryStatus.Drop);
            foreach (var node in nodes) node.ApplyDecision(new RoundDecision(0, round, Both, Both));
            pooled.WeightHash.Should().Be(unpooled.WeightHash, $"round {round} aggregated the same values");
            pool.Outstanding.Should().Be(0);
        }

        foreach (var node in nodes) Compute(node);
        Deliver(peer.Gradient(5), DeliveryStatus.Success);
        pool.Outstanding.Should().Be(1);
        pooled.Dispose();
        pool.Outstanding.Should().Be(0, "a disposed node gives back what it held");
    }

    [Fact]
    public void A_strangers_array_is_held_until_a_view_names_it_and_its_duplicates_go_back()
    {
        var pool = new DecodedValuesPool();
        var data = TestData.Mnist8k2k;
        using var worker = new WorkerNode("worker-1", "job", Options, data, NullLogger.Instance) { Compression = TopK, DecodedValues = pool };
        worker.ApplyView(new MembershipView(1, ["worker-1"], new Dictionary<int, string> { [0] = "worker-1" }, "worker-1", []), [data.TrainIndices[..100]]);
        var peer = new Peer(worker.ParameterCount);
        Compute(worker);
        worker.HandleGradient(peer.Gradient(1)).Should().Be(DeliveryResult.Applied);
        worker.HeldApart(1).Should().Be(1);
        worker.HandleGradient(peer.Gradient(1)).Should().Be(DeliveryResult.Duplicate);
        pool.Outstanding.Should().Be(1);
        worker.ApplyView(View, Shards);
        worker.HeldSenders(1).Should().Equal("worker-1", "worker-2");
        pool.Outstanding.Should().Be(1);
        worker.ApplyDecision(new RoundDecision(0, 1, Both, Both));
        pool.Outstanding.Should().Be(0);
    }

    [Fact]
    public void The_parameter_server_gives_a_rounds_arrays_back_when_it_closes_the_round()
    {
        var pool = new DecodedValuesPool();
        using var server = new ParameterServerNode("job", Options, NullLogger.Instance) { DecodedValues = pool };
        using var reference = new ParameterServerNode("job", Options, NullLogger.Instance) { DecodedValues = null };
        var peer = new Peer(server.ParameterCount);
        foreach (var node in new[] { server, reference })
        {
            node.SetMembers(Both);
            node.HandleGradient(peer.Gradient(2)).Should().Be(DeliveryResult.Applied);
            node.HandleGradient(peer.Gradient(1)).Should().Be(DeliveryResult.Applied);
            node.HandleGradient(peer.Gradient(1)).Should().Be(DeliveryResult.Duplicate);
        }
        pool.Outstanding.Should().Be(2);
        server.CloseRound();
        reference.CloseRound();
        pool.Outstanding.Should().Be(1, "round 2's gradient waits for its round");
        foreach (var node in new[] { server, reference }) node.HandleGradient(peer.Gradient(1)).Status.Should().Be(DeliveryStatus.Drop);
        server.CloseRound();
        reference.CloseRound();
        pool.Outstanding.Should().Be(0);
        pool.Reused.Should().BePositive();
        server.WeightHash.Should().Be(reference.WeightHash);
    }
}
