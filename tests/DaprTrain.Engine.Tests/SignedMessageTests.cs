using System.Buffers.Binary;
using System.IO.Hashing;
using DaprTrain.Coordination;
using DaprTrain.Coordination.Security;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;
using DaprTrain.Training.Tests;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Engine.Tests;

/// <summary>
/// Issue 11, parts 3 and 4: every message is signed by its sender's registered key, and the holes an attacker on the
/// broker used (forged weights of generation int.MaxValue, forged gradients a round ahead with a huge sample count) are
/// closed. Each refusal names its reason and is counted; the genuine message still gets in afterwards.
/// </summary>
public sealed class SignedMessageTests : IDisposable
{
    private const int Batch = 32;
    private static readonly TrainerOptions Options = new("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), Batch, 3);
    private readonly CapturingLogger _log = new();
    private readonly NodeKey _key1 = NodeKey.Create();
    private readonly NodeKey _key2 = NodeKey.Create();
    private readonly NodeKey _key3 = NodeKey.Create();
    private readonly NodeKey _serverKey = NodeKey.Create();
    private readonly NodeKey _mallory = NodeKey.Create();
    private readonly WorkerNode _worker;
    private readonly ParameterServerNode _ps;
    private readonly long[][] _shards;

    public SignedMessageTests()
    {
        var data = TestData.Mnist8k2k;
        _shards = [data.TrainIndices[..100], data.TrainIndices[100..200], data.TrainIndices[200..300]];
        _worker = new WorkerNode("worker-1", "job", Options, data, _log) { Key = _key1 };
        _worker.ApplyView(View(), _shards);
        _ps = new ParameterServerNode("job", Options, _log) { Key = _serverKey };
        _ps.SetMembers(View().Members, View().PublicKeys);
    }

    public void Dispose()
    {
        _worker.Dispose();
        _ps.Dispose();
        foreach (var key in new[] { _key1, _key2, _key3, _serverKey, _mallory }) key.Dispose();
    }

    private MembershipView View(int generation = 0) => new(1, ["worker-1", "worker-2", "worker-3"],
        new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2", [2] = "worker-3" }, "worker-1", [], [],
        new Dictionary<string, string> { ["worker-1"] = _key1.PublicKey, ["worker-2"] = _key2.PublicKey, ["worker-3"] = _key3.PublicKey, ["ps"] = _serverKey.PublicKey },
        generation);

    private int Count => _worker.ParameterCount;

    private WireMessage Gradient(string sender = "worker-2", long round = 1, int samples = Batch, float value = 0.01f) =>
        new(MessageKind.Gradient, "job", 0, round, sender, samples, 0, 0, Enumerable.Repeat(value, Count).ToArray());

    private WireMessage Weights(int generation, long round, float value) =>
        new(MessageKind.Weights, "job", generation, round, "ps", 1, 0, 0, Enumerable.Repeat(value, Count).ToArray());

    private static byte[] Signed(WireMessage message, NodeKey key)
    {
        var bytes = WireCodec.Encode(message, message.Values.Span, trailerBytes: MessageSignature.TrailerBytes);
        MessageSignature.Sign(bytes, key);
        return bytes;
    }

    [Fact]
    public void A_gradient_signed_by_its_senders_registered_key_is_held()
    {
        _worker.HandleGradient(Signed(Gradient(), _key2)).Should().Be(DeliveryResult.Applied);
        _worker.HeldSenders(1).Should().Contain("worker-2");
    }

    [Fact]
    public void An_unsigned_message_is_dropped_with_its_reason()
    {
        var result = _worker.HandleGradient(WireCodec.Encode(Gradient()));

        result.Status.Should().Be(DeliveryStatus.Drop);
        result.Reason.Should().Contain("unsigned message");
        _worker.Counters.Rejected.Should().ContainKey("unsigned");
        _worker.HeldSenders(1).Should().NotContain("worker-2");
    }

    [Fact]
    public void A_message_signed_with_an_unregistered_key_is_dropped_and_the_genuine_one_still_counts()
    {
        var result = _worker.HandleGradient(Signed(Gradient(), _mallory));

        result.Status.Should().Be(DeliveryStatus.Drop);
        result.Reason.Should().Contain("which the view does not register");
        _worker.Counters.Rejected.Should().ContainKey("unregistered key");
        _log.Messages.Should().Contain(m => m.Contains("worker-1 dropped a message") && m.Contains("does not register"));
        _worker.HandleGradient(Signed(Gradient(), _key2)).Should().Be(DeliveryResult.Applied, "the forgery must not take the sender's place for the round");
    }

    private MembershipView WithoutWorker3Key() =>
        View() with { Keys = new Dictionary<string, string> { ["worker-1"] = _key1.PublicKey, ["worker-2"] = _key2.PublicKey, ["ps"] = _serverKey.PublicKey } };

    [Fact]
    public void A_message_that_overtakes_the_view_with_its_senders_key_waits_for_it_and_is_verified_then()
    {
        // A peer's first gradient can arrive before this worker's view registers the peer's key (it joined a moment later).
        _worker.ApplyView(WithoutWorker3Key(), _shards);

        _worker.HandleGradient(Signed(Gradient(sender: "worker-3"), _key3)).Should().Be(DeliveryResult.Applied);
        _worker.HandleGradient(Signed(Gradient(sender: "worker-3", round: 2), _mallory)).Should().Be(DeliveryResult.Applied);
        _worker.HeldSenders(1).Should().NotContain("worker-3", "nothing is held before its signature is checked");

        _worker.ApplyView(View(), _shards);

        _worker.HeldSenders(1).Should().Contain("worker-3");
        _worker.HeldSenders(2).Should().NotContain("worker-3", "the forgery is judged against worker-3's key once the view names it");
        _worker.Counters.Rejected.Should().ContainKey("unregistered key");
    }

    [Fact]
    public void A_sender_no_view_gives_a_key_is_dropped_once_its_round_has_closed()
    {
        _worker.ApplyView(WithoutWorker3Key(), _shards);
        _worker.HandleGradient(Signed(Gradient(sender: "worker-3"), _key3));
        _worker.ComputeGradient();
        _worker.ApplyDecision(new RoundDecision(0, 1, ["worker-1"], ["worker-1"]));

        _worker.ApplyView(WithoutWorker3Key(), _shards);

        _worker.Counters.Rejected.Should().ContainKey("unregistered key");
        _log.Messages.Should().Contain(m => m.Contains("worker-3, who has no key in the membership view"));
    }

    [Fact]
    public void A_message_claiming_another_workers_sender_id_is_dropped()
    {
        // worker-3 is a member with a registered key, and signs a gradient that says it comes from worker-2.
        var result = _worker.HandleGradient(Signed(Gradient(sender: "worker-2"), _key3));

        result.Status.Should().Be(DeliveryStatus.Drop);
        result.Reason.Should().Contain("claims sender worker-2 but is signed with worker-3's key");
        _worker.Counters.Rejected.Should().ContainKey("wrong signer");
        _worker.HandleGradient(Signed(Gradient(), _key2)).Should().Be(DeliveryResult.Applied);
    }

    [Theory]
    [InlineData("payload")]
    [InlineData("header")]
    public void A_tampered_signed_message_is_dropped_even_with_its_checksum_recomputed(string where)
    {
        var bytes = Signed(Gradient(), _key2);
        int length = bytes.Length - MessageSignature.TrailerBytes;
        // An attacker on the broker changes a value (or the sample count) and seals the message again: the checksum is
        // right, the signature over header and checksum is not.
        if (where == "payload") BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(length - 8 - 4), 1000f);
        else BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(20), Batch - 1);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(length - 8), XxHash3.HashToUInt64(bytes.AsSpan(0, length - 8)));

        var result = _worker.HandleGradient(bytes);

        result.Status.Should().Be(DeliveryStatus.Drop);
        result.Reason.Should().Contain("signature does not verify");
        _worker.Counters.Rejected.Should().ContainKey("bad signature");
        _worker.HeldSenders(1).Should().NotContain("worker-2");
    }

    [Fact]
    public void The_parameter_server_drops_forged_gradients_and_takes_signed_ones()
    {
        _ps.HandleGradient(Signed(Gradient(), _mallory)).Status.Should().Be(DeliveryStatus.Drop);
        _ps.HandleGradient(Signed(Gradient(), _key2)).Should().Be(DeliveryResult.Applied);
        _ps.HeldSenders(1).Should().Equal("worker-2");
    }

    /// <summary>Hole 2: forged gradients for worker-1 and worker-2, a round ahead, SampleCount 1,000,000, took the real ones' places.</summary>
    [Fact]
    public void Forged_gradients_a_round_ahead_with_a_million_samples_do_not_take_the_real_ones_places()
    {
        foreach (var sender in new[] { "worker-2", "worker-3" })
        {
            var forged = _worker.HandleGradient(Signed(Gradient(sender: sender, round: 2, samples: 1_000_000, value: 50f), _mallory));
            forged.Status.Should().Be(DeliveryStatus.Drop);
        }
        _worker.HeldSenders(2).Should().BeEmpty();
        _worker.HandleGradient(Signed(Gradient(round: 2), _key2)).Should().Be(DeliveryResult.Applied, "the real gradient is not a duplicate");
    }

    [Fact]
    public void A_sample_count_above_the_batch_size_is_dropped_even_from_a_registered_key()
    {
        // An insider with a valid key cannot outvote the others by claiming a huge batch: the mean weights by sample count.
        var result = _worker.HandleGradient(Signed(Gradient(samples: Batch + 1), _key2));

        result.Status.Should().Be(DeliveryStatus.Drop);
        result.Reason.Should().Contain($"sample count {Batch + 1} outside 1..{Batch}");
        _ps.HandleGradient(Signed(Gradient(samples: 1_000_000), _key2)).Status.Should().Be(DeliveryStatus.Drop);
        _worker.HandleGradient(Signed(Gradient(samples: Batch), _key2)).Should().Be(DeliveryResult.Applied);
    }

    /// <summary>Hole 1: one forged weights message with sender ps, generation int.MaxValue and zeros made every real one stale.</summary>
    [Fact]
    public void Forged_weights_of_generation_int_max_are_dropped_and_the_servers_next_weights_apply()
    {
        var zeros = Weights(int.MaxValue, 1, 0f);
        var before = _worker.WeightHash;

        _worker.HandleWeights(WireCodec.Encode(zeros)).Status.Should().Be(DeliveryStatus.Drop);
        _worker.HandleWeights(Signed(zeros, _mallory)).Status.Should().Be(DeliveryStatus.Drop);

        _worker.Generation.Should().Be(0);
        _worker.WeightHash.Should().Be(before);
        _worker.HandleWeights(Signed(Weights(0, 1, 0.5f), _serverKey)).Should().Be(DeliveryResult.Applied);
        _worker.AppliedRound.Should().Be(1);
    }

    [Fact]
    public void Weights_of_a_generation_the_view_does_not_name_make_the_worker_ask_instead_of_jumping()
    {
        // Even a message the server's key signed (or one that reaches a worker which does not check signatures): a higher
        // generation than the view's is not believed on the message's word.
        using var unsigned = new WorkerNode("worker-1", "job", Options, TestData.Mnist8k2k, _log);
        unsigned.ApplyView(View(), _shards);
        var before = unsigned.WeightHash;

        var result = unsigned.HandleWeights(WireCodec.Encode(Weights(int.MaxValue, 1, 0f)));

        result.Status.Should().Be(DeliveryStatus.Retry);
        result.Reason.Should().Contain("newer than the membership view's generation 0");
        unsigned.NeedsView.Should().BeTrue();
        unsigned.Generation.Should().Be(0);
        unsigned.WeightHash.Should().Be(before);
        unsigned.HandleWeights(WireCodec.Encode(Weights(0, 1, 0.5f))).Should().Be(DeliveryResult.Applied, "the real server's weights are not stale");

        // Once the coordinator's view names the new generation, its weights apply.
        unsigned.ApplyView(View(generation: 4), _shards);
        unsigned.NeedsView.Should().BeFalse();
        unsigned.HandleWeights(WireCodec.Encode(Weights(4, 1, 0.25f))).Should().Be(DeliveryResult.Applied);
        unsigned.Generation.Should().Be(4);
    }

    [Fact]
    public void A_nodes_own_messages_are_signed_and_its_peers_take_them()
    {
        _worker.ComputeGradient();
        var message = _worker.GradientMessage();
        MessageSignature.MessageLength(message).Should().Be(message.Length - MessageSignature.TrailerBytes);

        using var peer = new WorkerNode("worker-2", "job", Options, TestData.Mnist8k2k, _log) { Key = _key2 };
        peer.ApplyView(View(), _shards);
        peer.HandleGradient(message).Should().Be(DeliveryResult.Applied);
        _ps.HandleGradient(message).Should().Be(DeliveryResult.Applied);

        var weights = _ps.CloseRound();
        _worker.HandleWeights(weights).Should().Be(DeliveryResult.Applied, "the server signs its weights with the key the view names");
    }

    private sealed class CapturingLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Messages) Messages.Add(formatter(state, exception));
        }
    }
}
