using DaprTrain.Engine.Storage;
using DaprTrain.Training;
using DaprTrain.Training.Parameters;

namespace DaprTrain.Engine.Tests;

public sealed class StoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daprtrain-store-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Stores() => ["memory", "file"];

    private ICheckpointStore Create(string kind) => kind == "file" ? new FileCheckpointStore(_dir) : new InMemoryCheckpointStore();

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Missing_keys_are_null_and_etags_guard_writes(string kind)
    {
        var store = Create(kind);
        (await store.GetAsync("job/a")).Should().BeNull();
        (await store.TrySaveAsync("job/a", [1], null)).Should().BeTrue();
        var first = (await store.GetAsync("job/a"))!;
        (await store.TrySaveAsync("job/a", [2], first.ETag)).Should().BeTrue();
        (await store.TrySaveAsync("job/a", [3], first.ETag)).Should().BeFalse("the ETag is stale: first write wins");
        (await store.GetAsync("job/a"))!.Data.Should().Equal(2);
        (await store.TryDeleteAsync("job/a", first.ETag)).Should().BeFalse();
        (await store.TryDeleteAsync("job/a", null)).Should().BeTrue();
        (await store.GetAsync("job/a")).Should().BeNull();
    }

    [Fact]
    public async Task The_file_store_survives_a_new_instance_and_keys_cannot_escape_its_folder()
    {
        await new FileCheckpointStore(_dir).TrySaveAsync("../../etc/evil key", [7], null);
        (await new FileCheckpointStore(_dir).GetAsync("../../etc/evil key"))!.Data.Should().Equal(7);
        Directory.GetFiles(_dir).Should().ContainSingle().Which.Should().StartWith(_dir);
    }

    [Fact]
    public async Task Job_checkpoints_keep_the_latest_and_one_fallback_and_detect_a_corrupt_blob()
    {
        var store = new InMemoryCheckpointStore();
        var checkpoints = new JobCheckpoints(store, "job");
        (await checkpoints.LoadLatestAsync()).Should().BeNull();
        foreach (long round in new long[] { 10, 20, 30 })
        {
            (await checkpoints.TrySaveAsync(Checkpoint(round))).Should().BeTrue();
        }
        var latest = await checkpoints.LoadLatestAsync();
        latest!.Value.Checkpoint.Round.Should().Be(30);
        latest.Value.Checkpoint.State.Weights.Should().Equal(Checkpoint(30).State.Weights);
        store.Keys.Should().HaveCount(3).And.Contain("job/checkpoint/latest");
        store.Keys.Should().ContainSingle(k => k.StartsWith("job/checkpoint/30/worker-1-", StringComparison.Ordinal));
        store.Keys.Should().ContainSingle(k => k.StartsWith("job/checkpoint/20/worker-1-", StringComparison.Ordinal), "the previous blob stays as a fallback");

        string key = store.Keys.Single(k => k.StartsWith("job/checkpoint/30/", StringComparison.Ordinal));
        var corrupt = (await store.GetAsync(key))!.Data.ToArray();
        corrupt[^20] ^= 1;
        await store.TrySaveAsync(key, corrupt, null);
        var act = () => checkpoints.LoadLatestAsync();
        await act.Should().ThrowAsync<CheckpointFormatException>().WithMessage("*does not match the hash*");
    }

    [Fact]
    public async Task A_reader_whose_blob_is_deleted_by_two_newer_checkpoints_reads_the_newest_instead_of_failing()
    {
        // Seen in CI: a worker read the pointer, the writer then saved twice and deleted that blob, and the worker's read
        // of its chunks failed ("chunk 2 of 3 is missing"), which stopped the worker.
        var inner = new InMemoryCheckpointStore();
        var writer = new JobCheckpoints(inner, "job");
        (await writer.TrySaveAsync(Checkpoint(10))).Should().BeTrue();
        var reader = new JobCheckpoints(new WritesBeforeTheFirstBlobRead(inner, async () =>
        {
            await writer.TrySaveAsync(Checkpoint(20));
            await writer.TrySaveAsync(Checkpoint(30));
        }), "job");

        var latest = await reader.LoadLatestAsync();

        latest!.Value.Checkpoint.Round.Should().Be(30, "the pointer moved while the blob was read: the read starts again from it");
    }

    [Fact]
    public async Task A_blob_that_the_pointer_still_names_and_that_is_gone_is_an_error()
    {
        var inner = new InMemoryCheckpointStore();
        var writer = new JobCheckpoints(inner, "job");
        (await writer.TrySaveAsync(Checkpoint(10))).Should().BeTrue();
        foreach (var key in inner.Keys.Where(k => k.Contains("/checkpoint/10/", StringComparison.Ordinal)).ToList()) await inner.TryDeleteAsync(key, null);
        var read = async () => await writer.LoadLatestAsync();
        await read.Should().ThrowAsync<CheckpointFormatException>().WithMessage("*not in the store*");
    }

    /// <summary>Runs <paramref name="write"/> once, just before the first read of a key other than the pointer (a blob).</summary>
    private sealed class WritesBeforeTheFirstBlobRead(ICheckpointStore inner, Func<Task> write) : ICheckpointStore
    {
        private Func<Task>? _pending = write;

        public async Task<StoredValue?> GetAsync(string key, CancellationToken cancellationToken = default)
        {
            if (!key.EndsWith("/latest", StringComparison.Ordinal) && Interlocked.Exchange(ref _pending, null) is { } pending) await pending();
            return await inner.GetAsync(key, cancellationToken);
        }

        public Task<bool> TrySaveAsync(string key, byte[] data, string? etag, CancellationToken cancellationToken = default) => inner.TrySaveAsync(key, data, etag, cancellationToken);

        public Task<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default) => inner.TryDeleteAsync(key, etag, cancellationToken);
    }

    private static JobCheckpoint Checkpoint(long round) => new(round, 0, "worker-1",
        new TrainingCheckpoint("mlp", new OptimizerSettings(OptimizerKind.Sgd, 0.1), round, round, 1, 0, 0, [round, 1, 2], []));
}
