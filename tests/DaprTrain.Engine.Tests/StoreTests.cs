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

    private static JobCheckpoint Checkpoint(long round) => new(round, 0, "worker-1",
        new TrainingCheckpoint("mlp", new OptimizerSettings(OptimizerKind.Sgd, 0.1), round, round, 1, 0, 0, [round, 1, 2], []));
}
