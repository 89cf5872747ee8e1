using DaprTrain.Contracts;
using DaprTrain.Engine.Storage;
using DaprTrain.SidecarDouble;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace DaprTrain.Dapr.Tests;

/// <summary>
/// The Dapr adapters against the gRPC API of daprd, through the real DaprClient: the sidecar double's API
/// (tests/DaprTrain.SidecarDouble, the one the end-to-end tests use) on a test server, recording the calls.
/// </summary>
public sealed class AdapterTests : IAsyncLifetime
{
    private WebApplication _server = null!;
    private SharedComponents _components = null!;
    private DaprRuntimeService _runtime = null!;
    private global::Dapr.Client.DaprClient _client = null!;

    public async Task InitializeAsync()
    {
        _components = new SharedComponents();
        _runtime = new DaprRuntimeService("adapter-tests", _components) { RecordCalls = true };
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddDaprRuntimeService(_runtime);
        _server = builder.Build();
        _server.MapGrpcService<DaprRuntimeService>();
        await _server.StartAsync();
        _client = new global::Dapr.Client.DaprClientBuilder()
            .UseGrpcEndpoint("http://localhost")
            .UseGrpcChannelOptions(new GrpcChannelOptions { HttpHandler = _server.GetTestServer().CreateHandler(), MaxReceiveMessageSize = null, MaxSendMessageSize = null })
            .Build();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
        await _components.DisposeAsync();
    }

    [Fact]
    public async Task Publish_sends_binary_chunks_to_the_gradients_component_that_reassemble_to_the_message()
    {
        var message = new byte[1_300_000];
        new Random(1).NextBytes(message);
        var publisher = new DaprMessagePublisher(_client);
        await publisher.PublishAsync(DaprTopics.Gradients, message);

        _runtime.Published.Should().HaveCount(3);
        _runtime.Published.Should().OnlyContain(p => p.PubsubName == "gradients" && p.Topic == "gradients" && p.DataContentType == "application/octet-stream");
        _runtime.Published.Should().OnlyContain(p => p.Data.Length <= ChunkCodec.DefaultMaxChunkBytes);
        var assembler = new ChunkAssembler();
        var results = _runtime.Published.Select(p => assembler.Add(p.Data.Span)).ToList();
        results.Last().Status.Should().Be(ChunkStatus.Complete);
        results.Last().Message.Should().Equal(message);
    }

    [Fact]
    public async Task State_round_trips_and_a_stale_etag_is_refused()
    {
        var store = new DaprCheckpointStore(_client);
        (await store.GetAsync("job/missing")).Should().BeNull("a missing key is empty data, not an error");
        (await store.TrySaveAsync("job/a", [1, 2, 3], null)).Should().BeTrue();
        var first = (await store.GetAsync("job/a"))!;
        first.Data.Should().Equal(1, 2, 3);
        (await store.TrySaveAsync("job/a", [4], first.ETag)).Should().BeTrue();
        (await store.TrySaveAsync("job/a", [5], first.ETag)).Should().BeFalse("Aborted on an ETag mismatch becomes false");
        (await store.GetAsync("job/a"))!.Data.Should().Equal(4);
        _runtime.Calls.Should().Contain("ExecuteStateTransaction").And.Contain("GetState");
    }

    [Fact]
    public async Task A_transaction_with_a_stale_etag_changes_nothing()
    {
        var store = new DaprCheckpointStore(_client);
        await store.TrySaveAsync("k1", [1], null);
        var k1 = (await store.GetAsync("k1"))!;
        await store.TrySaveAsync("k1", [2], k1.ETag);
        bool ok = await store.TryTransactAsync([StoreOperation.Upsert("k2", [9]), StoreOperation.Upsert("k1", [3], k1.ETag)]);
        ok.Should().BeFalse();
        (await store.GetAsync("k2")).Should().BeNull();
        (await store.GetAsync("k1"))!.Data.Should().Equal(2);
    }

    [Fact]
    public async Task A_value_over_the_body_limit_is_stored_in_chunks_and_read_back_whole()
    {
        var value = new byte[9 * 1024 * 1024];
        new Random(2).NextBytes(value);
        var store = new DaprCheckpointStore(_client);
        (await store.TrySaveAsync("job/checkpoint/10", value, null)).Should().BeTrue();
        (await store.GetAsync("job/checkpoint/10"))!.Data.Should().Equal(value);
        _components.State.Count.Should().BeGreaterThan(18, "the value was split into chunk keys under 512 KiB each");
        (await store.TryDeleteAsync("job/checkpoint/10", null)).Should().BeTrue();
        (await store.GetAsync("job/checkpoint/10")).Should().BeNull();
    }

    [Fact]
    public async Task Job_checkpoints_work_through_the_dapr_store()
    {
        var checkpoints = new JobCheckpoints(new DaprCheckpointStore(_client), "job");
        var state = new DaprTrain.Training.TrainingCheckpoint("mlp", new DaprTrain.Training.Parameters.OptimizerSettings(DaprTrain.Training.Parameters.OptimizerKind.Sgd, 0.1),
            3, 3, 1, 0, 0, Enumerable.Range(0, 300_000).Select(i => (float)i).ToArray(), []);
        (await checkpoints.TrySaveAsync(new JobCheckpoint(3, 0, "worker-1", state))).Should().BeTrue();
        var loaded = await checkpoints.LoadLatestAsync();
        loaded!.Value.Checkpoint.State.Weights.Should().Equal(state.Weights);
    }
}
