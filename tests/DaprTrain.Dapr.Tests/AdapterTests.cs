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
        _server.MapDaprPublishApi();
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

    private HttpClient SidecarHttpClient()
    {
        var http = _server.GetTestServer().CreateClient();
        http.BaseAddress = new Uri("http://localhost/");
        return http;
    }

    [Fact]
    public async Task Publish_over_the_HTTP_API_sends_the_same_binary_chunks_that_reassemble_to_the_message()
    {
        var message = new byte[1_300_000];
        new Random(2).NextBytes(message);
        using var http = SidecarHttpClient();
        await new DaprMessagePublisher(_client, sidecarHttp: http).PublishAsync(DaprTopics.Gradients, message);

        _runtime.Published.Should().HaveCount(3, "three chunks of at most 512 KiB, each its own publish");
        _runtime.Published.Should().OnlyContain(p => p.PubsubName == "gradients" && p.Topic == "gradients" && p.DataContentType == "application/octet-stream");
        var assembler = new ChunkAssembler();
        var results = _runtime.Published.Select(p => assembler.Add(p.Data.Span)).ToList();
        results.Last().Status.Should().Be(ChunkStatus.Complete);
        results.Last().Message.Should().Equal(message);
    }

    [Fact]
    public async Task A_publish_the_sidecar_refuses_over_HTTP_throws_its_status_and_error_and_publishes_nothing()
    {
        using var http = SidecarHttpClient();
        // One chunk past daprd's body limit (4 MiB): the sidecar answers 413 with its error.
        var publisher = new DaprMessagePublisher(_client, maxChunkBytes: 8 * 1024 * 1024, sidecarHttp: http);
        var act = () => publisher.PublishAsync(DaprTopics.Gradients, new byte[DaprRuntimeService.MaxBodyBytes + 1]);
        (await act.Should().ThrowAsync<HttpRequestException>()).Which.Message.Should().Contain("413").And.Contain("body limit").And.Contain("gradients/gradients");
        _components.Broker.Published(DaprTopics.Gradients).Should().Be(0);
    }

    [Fact]
    public async Task A_chunked_publish_over_HTTP_is_read_no_further_than_the_body_limit()
    {
        using var http = SidecarHttpClient();
        // No Content-Length: what the sender claims cannot size the buffer; the sidecar stops one block past the limit.
        var endless = new StreamContent(new EndlessStream());
        endless.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        using var answer = await http.PostAsync("v1.0/publish/gradients/gradients", endless);
        ((int)answer.StatusCode).Should().Be(413);
        (await answer.Content.ReadAsStringAsync()).Should().Contain("ERR_BODY_TOO_LARGE");
    }

    [Fact]
    public async Task A_sidecar_that_does_not_answer_a_publish_over_HTTP_makes_a_timeout_the_loops_retry()
    {
        var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        try
        {
            using var http = SidecarHttp.Create($"http://127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}", apiToken: "");
            http.Timeout = TimeSpan.FromMilliseconds(300);
            var act = () => new DaprMessagePublisher(_client, sidecarHttp: http).PublishAsync(DaprTopics.Gradients, [1, 2, 3]);
            var thrown = (await act.Should().ThrowAsync<TimeoutException>()).Which;
            thrown.Message.Should().Contain("publish to gradients/gradients");
            DaprTrain.Dapr.Hosting.DaprErrors.IsTransient(thrown).Should().BeTrue("a sidecar briefly away is retried, not a reason to stop the service");
        }
        finally
        {
            silent.Stop();
        }
    }

    /// <summary>Zeros for ever, with no length: a sender that never ends its body.</summary>
    private sealed class EndlessStream : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => count;
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
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
        _runtime.Calls.Should().Contain("SaveState").And.Contain("GetState").And.NotContain("ExecuteStateTransaction",
            "daprd reports a transaction's ETag conflict as Internal, so the store never relies on one");
    }

    [Theory]
    [InlineData(StateStoreProfile.Redis)]
    [InlineData(StateStoreProfile.PostgreSql)]
    public async Task The_double_answers_a_transaction_with_a_stale_etag_as_daprd_does(StateStoreProfile profile)
    {
        // daprd: Internal for any failed transaction (not Aborted); Redis's MULTI/EXEC keeps the operations that held,
        // PostgreSQL rolls back. An ETag on a missing key: Redis's script accepts it, PostgreSQL does not.
        await using var components = new SharedComponents(stateProfile: profile);
        components.State.Apply([("checkpoints||k1", [1], null)]);
        var stale = () => components.State.Apply([("checkpoints||k2", [9], null), ("checkpoints||k1", [3], "999")]);
        stale.Should().Throw<EtagMismatchException>();
        components.State.Get("checkpoints||k2").HasValue.Should().Be(profile == StateStoreProfile.Redis, "Redis does not roll back");
        var missing = () => components.State.Apply([("checkpoints||absent", [1], "5")]);
        if (profile == StateStoreProfile.Redis) missing.Should().NotThrow();
        else missing.Should().Throw<EtagMismatchException>();

        await _client.SaveByteStateAsync("checkpoints", "k1", new byte[] { 1 });
        var (_, etag) = await _client.GetByteStateAndETagAsync("checkpoints", "k1");
        await _client.SaveByteStateAsync("checkpoints", "k1", new byte[] { 2 });
        var transaction = () => _client.ExecuteStateTransactionAsync("checkpoints", [new global::Dapr.Client.StateTransactionRequest("k1", [3], global::Dapr.Client.StateOperationType.Upsert, etag)]);
        (await transaction.Should().ThrowAsync<global::Dapr.DaprException>()).Which.InnerException.Should()
            .BeOfType<Grpc.Core.RpcException>().Which.StatusCode.Should().Be(Grpc.Core.StatusCode.Internal);
    }

    [Fact]
    public async Task Two_writers_racing_for_the_checkpoint_pointer_leave_a_whole_checkpoint_and_the_loser_is_told()
    {
        // A restarted node and the one that replaced it checkpoint the same round: the loser reads the pointer, the winner
        // moves it, then the loser writes. Before: one transaction (blob + pointer), which daprd answers Internal (an
        // exception, not "lost") and Redis does not roll back, so the loser's blob overwrote the winner's under the same
        // key and the pointer's hash no longer matched: LoadLatestAsync threw CheckpointFormatException.
        var store = new DaprCheckpointStore(_client);
        var winner = new JobCheckpoints(store, "job");
        (await winner.TrySaveAsync(Checkpoint(10, "worker-1", 1f))).Should().BeTrue();
        var interleaved = new JobCheckpoints(new RunsOnceAfterReadingLatest(store, "job/checkpoint/latest",
            () => winner.TrySaveAsync(Checkpoint(20, "worker-2", 2f))), "job");

        (await interleaved.TrySaveAsync(Checkpoint(20, "worker-1", 3f))).Should().BeFalse("the pointer moved after the loser read it");

        var latest = await winner.LoadLatestAsync();
        latest!.Value.Checkpoint.Writer.Should().Be("worker-2");
        latest.Value.Checkpoint.State.Weights.Should().Equal(2f, 2f, 2f);
        _components.State.Keys.Where(k => k.Contains("checkpoint/20/worker-1", StringComparison.Ordinal)).Should().BeEmpty("the loser deletes its blob");
    }

    private static JobCheckpoint Checkpoint(long round, string writer, float fill) => new(round, 0, writer,
        new DaprTrain.Training.TrainingCheckpoint("mlp", new DaprTrain.Training.Parameters.OptimizerSettings(DaprTrain.Training.Parameters.OptimizerKind.Sgd, 0.1),
            round, round, 1, 0, 0, [fill, fill, fill], []));

    /// <summary>Runs <paramref name="interleave"/> once, right after the first read of <paramref name="key"/>: a writer that slips in.</summary>
    private sealed class RunsOnceAfterReadingLatest(ICheckpointStore inner, string key, Func<Task<bool>> interleave) : ICheckpointStore
    {
        private Func<Task<bool>>? _pending = interleave;

        public async Task<StoredValue?> GetAsync(string k, CancellationToken cancellationToken = default)
        {
            var value = await inner.GetAsync(k, cancellationToken);
            if (k == key && Interlocked.Exchange(ref _pending, null) is { } run) (await run()).Should().BeTrue();
            return value;
        }

        public Task<bool> TrySaveAsync(string k, byte[] data, string? etag, CancellationToken cancellationToken = default) => inner.TrySaveAsync(k, data, etag, cancellationToken);

        public Task<bool> TryDeleteAsync(string k, string? etag, CancellationToken cancellationToken = default) => inner.TryDeleteAsync(k, etag, cancellationToken);
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
        _components.State.Count.Should().Be(0, "deleting a chunked value deletes its chunks too, or every checkpoint would leave them behind");
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
