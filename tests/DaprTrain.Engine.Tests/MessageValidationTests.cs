using DaprTrain.Coordination;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Nodes;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;
using DaprTrain.Training.Tests;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Engine.Tests;

public sealed class MessageValidationTests : IDisposable
{
    private readonly ListLogger _log = new();
    private readonly WorkerNode _worker;
    private readonly ParameterServerNode _ps;
    private static readonly TrainerOptions Options = new("mlp", new OptimizerSettings(OptimizerKind.Adam, 1e-3), 32, 3);
    private static readonly MembershipView View = new(1, ["worker-1", "worker-2"], new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2" }, "worker-1", []);

    public MessageValidationTests()
    {
        var data = TestData.Mnist8k2k;
        var shards = new[] { data.TrainIndices[..100], data.TrainIndices[100..200] };
        _worker = new WorkerNode("worker-1", "job", Options, data, _log);
        _worker.ApplyView(View, shards);
        _ps = new ParameterServerNode("job", Options, _log);
        _ps.SetMembers(View.Members);
    }

    public void Dispose()
    {
        _worker.Dispose();
        _ps.Dispose();
    }

    private int Count => _worker.ParameterCount;

    private static WireMessage Gradient(string job = "job", long round = 1, string sender = "worker-2", int samples = 32, float[]? values = null, int generation = 0) =>
        new(MessageKind.Gradient, job, generation, round, sender, samples, 0, 0, values ?? Enumerable.Repeat(0.01f, 101_770).ToArray());

    public static TheoryData<string, string> PoisonCases() => new()
    {
        { "wrong-length", "wrong length" },
        { "nan", "non-finite value NaN at index 7" },
        { "infinity", "non-finite value Infinity at index 3" },
        { "unknown-job", "unknown job 'other-job'" },
        { "future-round", "round 9 from the future" },
        { "bad-checksum", "checksum mismatch" },
        { "truncated", "checksum mismatch" },
        { "zero-samples", "sample count 0" },
        { "future-generation", "generation 3 from the future" },
        { "garbage", "not a DaprTrain message" },
    };

    private byte[] Poison(string kind)
    {
        switch (kind)
        {
            case "wrong-length": return WireCodec.Encode(Gradient(values: new float[Count - 1]));
            case "nan": { var v = new float[Count]; v[7] = float.NaN; return WireCodec.Encode(Gradient(values: v)); }
            case "infinity": { var v = new float[Count]; v[3] = float.PositiveInfinity; return WireCodec.Encode(Gradient(values: v)); }
            case "unknown-job": return WireCodec.Encode(Gradient(job: "other-job"));
            case "future-round": return WireCodec.Encode(Gradient(round: 9));
            case "bad-checksum": { var b = WireCodec.Encode(Gradient()); b[100] ^= 0x40; return b; }
            case "truncated": return WireCodec.Encode(Gradient())[..5000];
            case "zero-samples": return WireCodec.Encode(Gradient(samples: 0));
            case "future-generation": return WireCodec.Encode(Gradient(generation: 3));
            default: return "GET / HTTP/1.1\r\n\r\n......................................................"u8.ToArray();
        }
    }

    [Theory]
    [MemberData(nameof(PoisonCases))]
    public void Poison_gradients_are_dropped_with_a_logged_reason_and_change_nothing(string kind, string reason)
    {
        var before = _worker.WeightHash;
        var result = _worker.HandleGradient(Poison(kind));
        result.Status.Should().Be(DeliveryStatus.Drop);
        result.Reason.Should().Contain(reason);
        _log.Messages.Should().Contain(m => m.Contains("worker-1 dropped a message") && m.Contains(reason));
        _worker.HeldSenders(1).Should().BeEmpty();
        _worker.WeightHash.Should().Be(before);

        var psResult = _ps.HandleGradient(Poison(kind));
        psResult.Status.Should().Be(DeliveryStatus.Drop);
        _ps.HeldSenders(1).Should().BeEmpty();
    }

    [Fact]
    public void A_round_from_the_far_past_is_discarded_as_stale_and_changes_nothing()
    {
        // Complete rounds 1 and 2, then replay a gradient of round 1.
        foreach (long round in new long[] { 1, 2 })
        {
            _worker.ComputeGradient();
            _worker.HandleGradient(WireCodec.Encode(Gradient(round: round))).Should().Be(DeliveryResult.Applied);
            _worker.ApplyDecision(new RoundDecision(0, round, ["worker-1", "worker-2"], ["worker-1", "worker-2"]));
        }
        var before = _worker.WeightHash;
        var result = _worker.HandleGradient(WireCodec.Encode(Gradient(round: 1)));
        result.Status.Should().Be(DeliveryStatus.Drop);
        result.Reason.Should().Contain("round 1 already closed");
        _worker.Counters.Late.Should().Be(1);
        _worker.WeightHash.Should().Be(before);
    }

    [Fact]
    public void A_duplicate_is_acknowledged_and_applied_once()
    {
        var bytes = WireCodec.Encode(Gradient());
        _worker.HandleGradient(bytes).Should().Be(DeliveryResult.Applied);
        _worker.HandleGradient(bytes).Should().Be(DeliveryResult.Duplicate);
        _worker.HandleGradient(bytes).Status.Should().Be(DeliveryStatus.Success, "a duplicate is acknowledged, never retried");
        _worker.HeldSenders(1).Should().Equal("worker-2");
        _worker.Counters.Duplicates.Should().Be(2);
    }

    [Fact]
    public void Weights_that_are_stale_or_malformed_do_not_touch_the_replica()
    {
        var before = _worker.WeightHash;
        var wrongSender = WireCodec.Encode(new WireMessage(MessageKind.Weights, "job", 0, 1, "worker-2", 1, 0, 0, new float[Count]));
        _worker.HandleWeights(wrongSender).Status.Should().Be(DeliveryStatus.Drop);
        var stale = WireCodec.Encode(new WireMessage(MessageKind.Weights, "job", 0, 0, "ps", 1, 0, 0, new float[Count]));
        _worker.HandleWeights(stale).Status.Should().Be(DeliveryStatus.Success, "weights of the round it already holds are a duplicate");
        _worker.WeightHash.Should().Be(before);
        _log.Messages.Should().Contain(m => m.Contains("Weights from worker-2"));
    }

    [Fact]
    public void A_gradient_that_overtakes_the_view_naming_its_sender_counts_once_the_view_arrives()
    {
        // worker-2 learns that worker-3 is in only after worker-3's round-1 gradient reached it.
        var data = TestData.Mnist8k2k;
        var shards = new[] { data.TrainIndices[..100], data.TrainIndices[100..200], data.TrainIndices[200..300] };
        var three = new MembershipView(2, ["worker-1", "worker-2", "worker-3"],
            new Dictionary<int, string> { [0] = "worker-1", [1] = "worker-2", [2] = "worker-3" }, "worker-1", []);
        using var late = new WorkerNode("worker-2", "job", Options, data, _log);
        using var timely = new WorkerNode("worker-2", "job", Options, data, _log);
        late.ApplyView(View, shards);
        timely.ApplyView(three, shards);
        var fromThree = WireCodec.Encode(Gradient(sender: "worker-3", values: Enumerable.Repeat(0.02f, Count).ToArray()));

        late.HandleGradient(fromThree).Should().Be(DeliveryResult.Applied, "it is held, not dropped: the view may just be behind");
        late.HeldSenders(1).Should().BeEmpty("a sender no view names does not count yet");
        late.HeldApart(1).Should().Be(1);
        late.HandleGradient(fromThree).Should().Be(DeliveryResult.Duplicate);
        timely.HandleGradient(fromThree).Should().Be(DeliveryResult.Applied);

        late.ApplyView(three, shards);
        late.HeldApart(1).Should().Be(0);
        foreach (var node in new[] { late, timely })
        {
            node.ComputeGradient();
            node.HeldSenders(1).Should().Equal("worker-2", "worker-3");
            node.ApplyDecision(new RoundDecision(0, 1, ["worker-2", "worker-3"], ["worker-2", "worker-3"]));
        }
        late.WeightHash.Should().Be(timely.WeightHash, "the order of the gradient and the view changes nothing");
    }

    [Fact]
    public void Senders_no_view_names_are_held_apart_up_to_a_bound_and_forgotten_with_their_round()
    {
        var before = _worker.WeightHash;
        for (int i = 0; i < HeldContributions.MaxStrangersPerRound; i++)
        {
            _worker.HandleGradient(WireCodec.Encode(Gradient(sender: $"stranger-{i}"))).Should().Be(DeliveryResult.Applied);
            _ps.HandleGradient(WireCodec.Encode(Gradient(sender: $"stranger-{i}"))).Should().Be(DeliveryResult.Applied);
        }
        var worker = _worker.HandleGradient(WireCodec.Encode(Gradient(sender: "worker-9")));
        var ps = _ps.HandleGradient(WireCodec.Encode(Gradient(sender: "worker-9")));
        foreach (var result in new[] { worker, ps })
        {
            result.Status.Should().Be(DeliveryStatus.Drop);
            result.Reason.Should().Contain("sender 'worker-9' is not a member of the job").And.Contain("already held for round 1");
        }
        _worker.Counters.Rejected.Should().ContainKey("unknown sender");
        _worker.HeldApart(1).Should().Be(HeldContributions.MaxStrangersPerRound);
        _ps.HeldApart(1).Should().Be(HeldContributions.MaxStrangersPerRound);

        // Round 1 closes with the members' gradients only; the strangers' go with it.
        _worker.ComputeGradient();
        _worker.HandleGradient(WireCodec.Encode(Gradient())).Should().Be(DeliveryResult.Applied);
        _worker.ApplyDecision(new RoundDecision(0, 1, ["worker-1", "worker-2"], ["worker-1", "worker-2"]));
        _worker.HeldApart(1).Should().Be(0);
        _worker.WeightHash.Should().NotBe(before);
        _ps.HandleGradient(WireCodec.Encode(Gradient())).Should().Be(DeliveryResult.Applied);
        _ps.CloseRound();
        _ps.HeldApart(1).Should().Be(0);
        _ps.HeldSenders(2).Should().BeEmpty();
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }
}
